package ngsild

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

const crashChildEnv = "NGSILD_CRASH_CHILD_DIR"

// TestKill9Durability runs a writer in a child process, kills it with
// SIGKILL while it writes, and checks every write it acknowledged (201/204)
// is in the store afterwards: acknowledgement comes only after the write
// is synced (ETSI NGSI-LD gives no durability rule; DESIGN.md does).
func TestKill9Durability(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Durability$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	for sc.Scan() && len(acked) < 600 {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked[id] = true
		}
	}
	deadline.Stop()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 600 {
		t.Fatalf("child acknowledged only %d writes before it stopped", len(acked))
	}

	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	n := newTestNodeOn(t, db, nil)
	for id := range acked {
		if e, err := n.svc.Entity(id); err != nil || e == nil {
			t.Errorf("acknowledged entity %s lost after kill -9 (err %v)", id, err)
		}
	}
	if n.svc.LastSeq() < uint64(len(acked)) {
		t.Errorf("feed at seq %d after %d acknowledged writes", n.svc.LastSeq(), len(acked))
	}
}

// crashChild writes entities forever, single and in batches, printing an
// ACK line per entity once its request was answered with success.
func crashChild(dir string) {
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	svc, err := New(db, Options{HTTPClient: noNetwork})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	send := func(path, body string) int {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("urn:x:single:%d", i)
		if send("/ngsi-ld/v1/entities", entityJSON(id, "T", `, "p": 1`)) == http.StatusCreated {
			fmt.Println("ACK " + id)
		}
		var batch []string
		var ids []string
		for j := 0; j < 20; j++ {
			bid := fmt.Sprintf("urn:x:batch:%d:%d", i, j)
			ids = append(ids, bid)
			batch = append(batch, entityJSON(bid, "T", `, "p": 2`))
		}
		if send("/ngsi-ld/v1/entityOperations/upsert", "["+strings.Join(batch, ",")+"]") == http.StatusCreated {
			for _, bid := range ids {
				fmt.Println("ACK " + bid)
			}
		}
	}
}
