package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startBroken starts a daemon with flags, gives its store a write to
// flush, then removes the store's directory under it: closing the store
// then retries its memtable flush forever, as on a failed disk.
func startBroken(t *testing.T, flags ...string) *daemon {
	t.Helper()
	dir := initDir(t)
	d := startDaemon(t, dir, flags...)
	body := `{"id": "urn:ngsi-ld:Thing:shutdown", "type": "Thing", "n": {"type": "Property", "value": 1}}`
	resp, err := http.Post(apiURL(t, dir)+"/ngsi-ld/v1/entities", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create = %d", resp.StatusCode)
	}
	if err := os.RemoveAll(filepath.Join(dir, "badger")); err != nil {
		t.Fatal(err)
	}
	return d
}

// exitOf waits (a liveness bound, not a speed one) for the daemon to exit.
func exitOf(t *testing.T, d *daemon) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("daemon still running 2 minutes after SIGTERM\nstderr:\n%s", d.stderr)
		return nil
	}
}

// A daemon whose store cannot close (its directory removed) still stops
// when told to, after --shutdown-timeout, and says why it stopped anyway.
func TestShutdownTimeoutStopsADaemonWhoseStoreHangs(t *testing.T) {
	d := startBroken(t, "--shutdown-timeout", "2s")
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := exitOf(t, d)
	if err == nil {
		t.Fatalf("daemon exited 0 though its store did not close\nstderr:\n%s", d.stderr)
	}
	if got := d.stderr.String(); !strings.Contains(got, "did not stop within 2s") {
		t.Errorf("stderr does not say it did not stop within 2s:\n%s", got)
	}
}

// A second SIGTERM stops a daemon that is still shutting down at once,
// long before the default 30 s timeout.
func TestSecondSignalStopsShutdownAtOnce(t *testing.T) {
	d := startBroken(t)
	d.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(d.stderr.String(), "still shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no 'still shutting down' hint within a minute of SIGTERM\nstderr:\n%s", d.stderr)
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited (%v) before a second signal, though its store cannot close\nstderr:\n%s", err, d.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := exitOf(t, d); err == nil {
		t.Fatalf("daemon exited 0 on a second signal mid-shutdown\nstderr:\n%s", d.stderr)
	}
	if got := d.stderr.String(); !strings.Contains(got, "stopped at once on a second terminated") {
		t.Errorf("stderr does not say it stopped on the second signal:\n%s", got)
	}
}

func TestShutdownTimeoutMustBePositive(t *testing.T) {
	dir := initDir(t)
	_, _, err := cli(t, "run", "--data", dir, "--shutdown-timeout", "0s")
	if err == nil || !strings.Contains(err.Error(), "--shutdown-timeout 0s: must be positive") {
		t.Fatalf("run --shutdown-timeout 0s: %v", err)
	}
}

func TestTestnetShutdownTimeoutMustBePositive(t *testing.T) {
	_, _, err := cli(t, "testnet", "--shutdown-timeout", "-1s")
	if err == nil || !strings.Contains(err.Error(), "--shutdown-timeout -1s: must be positive") {
		t.Fatalf("testnet --shutdown-timeout -1s: %v", err)
	}
}

func TestTestnetEntitiesBounded(t *testing.T) {
	for _, n := range []string{"-5", "10001"} {
		_, _, err := cli(t, "testnet", "--entities", n)
		if err == nil || !strings.Contains(err.Error(), "--entities must be between 0 and 10000") {
			t.Errorf("testnet --entities %s: %v", n, err)
		}
	}
}

// TestTestnetRefusesAUsedDir: the nodes of an earlier run are federated
// already; a second run there could only fail halfway, so it says at
// once what to do.
func TestTestnetRefusesAUsedDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "aarhus-environment"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, err := cli(t, "testnet", "--dir", dir)
	if err == nil || !strings.Contains(err.Error(), "is not empty") || !strings.Contains(err.Error(), "give a new or empty directory") {
		t.Fatalf("testnet --dir on a used directory: %v", err)
	}
}
