package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer the daemon's stderr can be written to
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startBroken is brokenStoreDaemon with stderr readable during the run.
func startBroken(t *testing.T, flags ...string) (*daemon, *lockedBuffer) {
	t.Helper()
	dir := initDir(t)
	errb := &lockedBuffer{}
	d := &daemon{dir: dir, stdout: &bytes.Buffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, append([]string{"run", "--data", dir}, flags...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, errb
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.kill() })
	if err := waitReady(dir, d.done, 30*time.Second); err != nil {
		t.Fatalf("daemon on %s: %v\nstderr:\n%s", dir, err, errb)
	}
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
	return d, errb
}

// exitOf waits (a liveness bound, not a speed one) for the daemon to exit.
func exitOf(t *testing.T, d *daemon, errb *lockedBuffer) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(2 * time.Minute):
		t.Fatalf("daemon still running 2 minutes after SIGTERM\nstderr:\n%s", errb)
		return nil
	}
}

// A daemon whose store cannot close (its directory removed) still stops
// when told to, after --shutdown-timeout, and says why it stopped anyway.
func TestShutdownTimeoutStopsADaemonWhoseStoreHangs(t *testing.T) {
	d, errb := startBroken(t, "--shutdown-timeout", "2s")
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := exitOf(t, d, errb)
	if err == nil {
		t.Fatalf("daemon exited 0 though its store did not close\nstderr:\n%s", errb)
	}
	if got := errb.String(); !strings.Contains(got, "did not stop within 2s") {
		t.Errorf("stderr does not say it did not stop within 2s:\n%s", got)
	}
}

// A second SIGTERM stops a daemon that is still shutting down at once,
// long before the default 30 s timeout.
func TestSecondSignalStopsShutdownAtOnce(t *testing.T) {
	d, errb := startBroken(t)
	d.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(errb.String(), "still shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no 'still shutting down' hint within a minute of SIGTERM\nstderr:\n%s", errb)
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited (%v) before a second signal, though its store cannot close\nstderr:\n%s", err, errb)
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := exitOf(t, d, errb); err == nil {
		t.Fatalf("daemon exited 0 on a second signal mid-shutdown\nstderr:\n%s", errb)
	}
	if got := errb.String(); !strings.Contains(got, "stopped at once on a second terminated") {
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
