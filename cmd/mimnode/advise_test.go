package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingDataDirIsNamed checks that a command given a data directory
// that does not exist (a mistyped --data) says so, rather than advising
// 'mimnode run --data DIR', which would make a new node there.
func TestMissingDataDirIsNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x", "nonexistent")
	for _, args := range [][]string{{"audit"}, {"status"}, {"dataset", "list"}} {
		_, _, err := cli(t, append(args, "--data", dir)...)
		if err == nil || !strings.Contains(err.Error(), "data directory "+dir+" does not exist: check the path") ||
			strings.Contains(err.Error(), "start one with") {
			t.Errorf("mimnode %q with a missing data directory: %v", args, err)
		}
	}
	// A data directory that exists, with no daemon, keeps the advice to
	// start one.
	if _, _, err := cli(t, "status", "--data", initDir(t)); err == nil || !strings.Contains(err.Error(), "start one with 'mimnode run") {
		t.Errorf("status without a daemon: %v", err)
	}
	// A directory that is no node's (a parent, /tmp) is not one to run
	// a node in: the advice is to name the right one.
	if _, _, err := cli(t, "status", "--data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a node's data directory") ||
		strings.Contains(err.Error(), "start one with") {
		t.Errorf("status on a directory that is no node's: %v", err)
	}
}

// TestBusyAPIPortSaysWhatToDo checks that run on an API port another
// program holds says how to give the node another one.
func TestBusyAPIPortSaysWhatToDo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := filepath.Join(t.TempDir(), "data")
	if _, stderr, err := cli(t, "init", "--data", dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--api", ln.Addr().String()); err != nil {
		t.Fatalf("init: %v\n%s", err, stderr)
	}
	out, err := exec.Command(binary, "run", "--data", dir).CombinedOutput()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, want := range []string{"address already in use", "uses port " + port, "[api] listen in " + filepath.Join(dir, "config.toml"), `"127.0.0.1:0"`} {
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("run on a busy API port: %v, want it to say %q\n%s", err, want, out)
		}
	}
}
