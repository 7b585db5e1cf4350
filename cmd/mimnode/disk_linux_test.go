package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFullDiskRefusesWritesAndKeepsRunning fills a small file system with
// NGSI-LD upserts: the daemon answers the write that would take the disk
// below its reserve with an error that says the disk is nearly full, and
// stays up; everything acknowledged before is still there. (Before, the
// daemon died with SIGBUS inside badger, and on every start after.) It
// needs a tmpfs mount: root, with the right to mount, as on CI.
func TestFullDiskRefusesWritesAndKeepsRunning(t *testing.T) {
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=160m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): needs root", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	dir := initDirAt(t, filepath.Join(mnt, "data"))
	d := startDaemon(t, dir)
	base := apiURL(t, dir)
	tmpl := weatherExample(t)
	acked, refused := 0, ""
	for b := 0; b < 400 && refused == ""; b++ {
		var batch []map[string]any
		for i := 0; i < 500; i++ {
			e := map[string]any{}
			for k, v := range tmpl {
				e[k] = v
			}
			e["id"] = fmt.Sprintf("urn:ngsi-ld:WeatherObserved:full-%06d", b*500+i)
			// Bytes that do not compress, so that the disk fills.
			noise := make([]byte, 1024)
			rand.Read(noise)
			e["name"] = map[string]any{"type": "Property", "value": hex.EncodeToString(noise)}
			batch = append(batch, e)
		}
		body, _ := json.Marshal(batch)
		resp, err := http.Post(base+"/ngsi-ld/v1/entityOperations/upsert", "application/ld+json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("after %d acknowledged entities the daemon stopped answering: %v\nstderr:\n%s", acked, err, d.stderr)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusNoContent:
			acked += len(batch)
		default:
			refused = string(msg)
		}
	}
	if !strings.Contains(refused, "nearly full") {
		t.Fatalf("filling the disk: %d entities acknowledged, then %q; want a refusal saying the disk is nearly full", acked, refused)
	}
	for _, id := range []string{"urn:ngsi-ld:WeatherObserved:full-000000", fmt.Sprintf("urn:ngsi-ld:WeatherObserved:full-%06d", acked-1)} {
		resp, err := http.Get(base + "/ngsi-ld/v1/entities/" + id)
		if err != nil {
			t.Fatalf("the daemon stopped answering reads on the full disk: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on the full disk = %d, want 200", id, resp.StatusCode)
		}
	}
	if _, _, err := cli(t, "status", "--data", dir); err != nil {
		t.Errorf("status on the full disk: %v", err)
	}
}
