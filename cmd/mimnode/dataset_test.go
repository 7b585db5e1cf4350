package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/syncbuf"
)

func TestDatasetPublishAndSearchAcrossDaemons(t *testing.T) {
	a, b := initDir(t), initDir(t)
	startDaemon(t, a)
	startDaemon(t, b)
	out, _, err := cli(t, "federation", "create", "Region", "--data", a, "--json")
	if err != nil {
		t.Fatal(err)
	}
	bID := statusOf(t, b)["peerId"].(string)
	out, _, err = cli(t, "federation", "invite", bID, "--data", a, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var inv struct{ Token string }
	json.Unmarshal([]byte(out), &inv)
	if _, _, err := cli(t, "federation", "join", inv.Token, "--data", b); err != nil {
		t.Fatal(err)
	}
	// The example as written, and its TOML equivalent.
	for _, f := range []string{"../../catalog/testdata/air-quality.json", "../../catalog/testdata/air-quality.toml"} {
		out, errOut, err := cli(t, "dataset", "publish", f, "--data", a)
		if err != nil {
			t.Fatalf("publish %s: %v %s", f, err, out)
		}
		// a stores no entity yet: the dataset's versions would be empty.
		if !strings.Contains(errOut, `warning: no entity stored on this node has type "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"`) || !strings.Contains(errOut, "stores no entities yet") {
			t.Errorf("publishing a dataset of a type a does not store warned %q", errOut)
		}
	}
	createExample(t, a)
	if _, errOut, err := cli(t, "dataset", "publish", "../../catalog/testdata/air-quality.json", "--data", a); err != nil || strings.Contains(errOut, "warning") {
		t.Errorf("publishing a dataset of a type a stores: %v, warned %q", err, errOut)
	}
	out, _, err = cli(t, "dataset", "list", "--data", a)
	if err != nil || !strings.Contains(out, "urn:mim:dataset:aarhus:air-quality") {
		t.Fatalf("dataset list = %q, %v", out, err)
	}
	// Each offer is shown in words, as it was published.
	out, _, err = cli(t, "dataset", "show", "urn:mim:dataset:aarhus:air-quality", "--data", a)
	if err != nil || !strings.Contains(out, "offer 1:    urn:mim:dataset:aarhus:air-quality:offer:1") || !strings.Contains(out, "Permission 1: may") {
		t.Errorf("dataset show = %q, %v; want each offer's policy in words", out, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, err = cli(t, "catalog", "search", "air quality", "--type", "AirQualityObserved", "--bbox", "10.1,56.1,10.3,56.2", "--data", b, "--json")
		if err == nil && strings.Contains(out, "urn:mim:dataset:aarhus:air-quality") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never found a's dataset: %q, %v", out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	orig, _ := os.ReadFile("../../catalog/testdata/air-quality.json")
	os.WriteFile(bad, bytes.Replace(orig, []byte(`"dissemination": "federation"`), []byte(`"dissemination": "everyone"`), 1), 0o644)
	if _, _, err := cli(t, "dataset", "publish", bad, "--data", a); err == nil || !strings.Contains(err.Error(), "dissemination") {
		t.Fatalf("bad dataset: %v, want an error naming dissemination", err)
	}
	// The dataset is a view of a's (empty) entity store: its version is built on demand.
	if out, _, err := cli(t, "dataset", "version", "urn:mim:dataset:aarhus:air-quality", "--data", a); err != nil || !strings.Contains(out, "version bagu") {
		t.Fatalf("dataset version: %q, %v", out, err)
	}
	if _, _, err := cli(t, "dataset", "version", "urn:mim:dataset:nope", "--data", a); err == nil {
		t.Fatal("version of an unknown dataset succeeded")
	}
	if _, _, err := cli(t, "dataset", "retire", "urn:mim:dataset:aarhus:air-quality", "--data", a); err != nil {
		t.Fatal(err)
	}
	// Publishing a retired dataset again is the user's mistake, not the
	// node's failure.
	if _, _, err := cli(t, "dataset", "publish", "../../catalog/testdata/air-quality.json", "--data", a); err == nil ||
		!strings.Contains(err.Error(), "Dataset retired") || strings.Contains(err.Error(), "Internal") {
		t.Errorf("publishing a retired dataset again: %v, want it refused as retired", err)
	}
	if _, _, err := cli(t, "catalog", "search", "--bbox", "1,2,3", "--data", b); err == nil {
		t.Fatal("a bbox with three numbers was accepted")
	}
}

// TestTestnetCommandStartsAndAnswers runs `mimnode testnet` as a user would
// and checks every printed API answers.
func TestTestnetCommandStartsAndAnswers(t *testing.T) {
	cmd := exec.Command(binary, "testnet", "--cities", "2", "--agencies", "2", "--researchers", "1", "--entities", "3", "--json")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	}()
	var res struct {
		Federation string
		Nodes      []struct{ Name, Role, PeerID, API, Data string }
	}
	deadline := time.Now().Add(60 * time.Second)
	for json.Unmarshal(out.Bytes(), &res) != nil {
		select {
		case err := <-done:
			t.Fatalf("testnet exited: %v\n%s", err, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testnet printed no node table within 60s\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(res.Nodes) != 5 || res.Federation == "" {
		t.Fatalf("testnet printed %+v", res)
	}
	for _, nd := range res.Nodes {
		st, _, err := cli(t, "status", "--data", nd.Data, "--json")
		if err != nil || !strings.Contains(st, nd.PeerID) {
			t.Errorf("%s: status %q, %v", nd.Name, st, err)
		}
	}

	// Ctrl-C stops every node, exits 0 and removes the temporary
	// directory the nodes' data was in.
	if _, err := os.Stat(filepath.Dir(res.Nodes[0].Data)); err != nil {
		t.Fatalf("the demo's data directory: %v", err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("testnet exited with %v on Ctrl-C\n%s", err, errb.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("testnet did not stop within 60s of Ctrl-C\n%s", errb.String())
	}
	done <- nil // for the deferred stop, which finds the process gone
	if _, err := os.Stat(filepath.Dir(res.Nodes[0].Data)); !os.IsNotExist(err) {
		t.Errorf("the demo's data directory %s is still there after it stopped (%v)", filepath.Dir(res.Nodes[0].Data), err)
	}
}

// TestWalkthroughNegotiateFromTheCatalogue follows the README: a researcher
// finds a dataset and asks for it under its catalogue offer, naming neither
// the provider nor the offer.
func TestWalkthroughNegotiateFromTheCatalogue(t *testing.T) {
	env, lab := initDir(t), initDir(t)
	startDaemon(t, env)
	startDaemon(t, lab)
	if _, _, err := cli(t, "federation", "create", "Aarhus region", "--data", env); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, "federation", "invite", statusOf(t, lab)["peerId"].(string), "--role", "researcher", "--data", env, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var inv struct{ Token string }
	json.Unmarshal([]byte(out), &inv)
	if _, _, err := cli(t, "federation", "join", inv.Token, "--data", lab); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, "dataset", "publish", "../../catalog/testdata/air-quality.json", "--data", env); err != nil {
		t.Fatal(err)
	}
	id := "urn:mim:dataset:aarhus:air-quality"
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _, err = cli(t, "catalog", "search", "air quality", "--data", lab)
		if err == nil && strings.Contains(out, id) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lab never found the dataset: %q, %v", out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Wrong purpose: refused with the policy's reasons.
	out, _, err = cli(t, "contract", "request", id, "--purpose", "marketing", "--wait", "--data", lab)
	if err == nil || !strings.Contains(err.Error(), "refused") || out != "" {
		t.Fatalf("marketing request: %q, %v; want a refusal with reasons, and nothing on stdout", out, err)
	}
	out, _, err = cli(t, "contract", "request", id, "--purpose", "research", "--wait", "--data", lab)
	if err != nil || !strings.HasPrefix(out, "agreement ") {
		t.Fatalf("research request: %q, %v", out, err)
	}
	agreement := strings.TrimSpace(strings.TrimPrefix(out, "agreement "))
	file := filepath.Join(t.TempDir(), "agreement.json")
	if _, _, err := cli(t, "agreement", "export", agreement, "--out", file, "--data", lab); err != nil {
		t.Fatal(err)
	}
	if out, _, err := cli(t, "agreement", "verify", file); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("verify: %q, %v", out, err)
	}
	// Ctrl-C on a fetch (here before the daemon answers) says the fetch
	// was interrupted and how to resume it, not that the daemon is lost.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var iout, ierr bytes.Buffer
	if err := run(cancelled, []string{"fetch", agreement, "--data", lab}, &iout, &ierr); err == nil ||
		!strings.Contains(err.Error(), "fetch interrupted") || !strings.Contains(err.Error(), "'mimnode fetch "+agreement+"' resumes") {
		t.Errorf("an interrupted fetch: %v, want it to say it was interrupted and how to resume", err)
	}
	// A live fetch ends with Ctrl-C: it exits 0 and says how to resume,
	// and running it again picks the feed up where it stopped: an entity
	// written while nobody followed arrives as a change on the second run.
	for round := 0; round < 2; round++ {
		if round == 1 {
			createExample(t, env) // on the provider, between the runs
		}
		want := map[int]string{0: "receiving changes", 1: " urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"}[round]
		ctx, stop := context.WithCancel(context.Background())
		var out, errb syncBuffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"fetch", agreement, "--live", "--data", lab}, &out, &errb) }()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("round %d: fetch --live never printed %q:\n%s\n%s", round, want, out.String(), errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		select {
		case err := <-done:
			if err != nil || !strings.Contains(errb.String(), "--live' resumes it") {
				t.Fatalf("round %d: Ctrl-C on fetch --live: %v\n%s", round, err, errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: fetch --live did not stop on Ctrl-C", round)
		}
	}
	for _, d := range []string{env, lab} {
		if _, _, err := cli(t, "audit", "--verify", "--data", d); err != nil {
			t.Fatalf("audit --verify on %s: %v", d, err)
		}
	}
}

// syncBuffer is a buffer a subprocess writes while the test reads.
type syncBuffer = syncbuf.Buffer

// createExample creates the Smart Data Models AirQualityObserved example
// through the NGSI-LD API of the daemon running on dir.
func createExample(t *testing.T, dir string) {
	t.Helper()
	entity, err := os.ReadFile("../../node/ngsild/testdata/smart-data-models/AirQualityObserved/example.jsonld")
	if err != nil {
		t.Fatal(err)
	}
	api, err := os.ReadFile(filepath.Join(dir, "api"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(strings.TrimSpace(string(api))+"/ngsi-ld/v1/entities", "application/ld+json", bytes.NewReader(entity))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating an entity on %s: %v %v", dir, resp, err)
	}
	resp.Body.Close()
}
