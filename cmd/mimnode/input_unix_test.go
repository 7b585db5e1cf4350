//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileArgumentsRefuseFIFOs checks that every command reading a file
// refuses a named pipe (opening one blocks until a writer comes, and the
// commands could then not be interrupted) and a directory, without the
// daemon: the file is checked before anything is sent.
func TestFileArgumentsRefuseFIFOs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	data := initDir(t) // no daemon
	for _, args := range [][]string{
		{"dataset", "publish", fifo},
		{"policy", "check", fifo},
		{"agreement", "verify", fifo},
		{"context", "add", "https://example.org/c.jsonld", fifo},
		{"contract", "request", "urn:mim:dataset:x", "--offer-file", fifo},
		{"contract", "offer", "add", "urn:mim:dataset:x", "--file", fifo},
	} {
		done := make(chan error, 1)
		go func() {
			_, _, err := cli(t, append(args, "--data", data)...)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
				t.Errorf("%v: %v, want it refused as not a regular file", args[:2], err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v blocked on the FIFO", args[:2])
		}
		args[len(args)-1] = dir
		if args[len(args)-2] != "--offer-file" && args[len(args)-2] != "--file" {
			if _, _, err := cli(t, append(args, "--data", data)...); err == nil || !strings.Contains(err.Error(), "is a directory") {
				t.Errorf("%v on a directory: %v", args[:2], err)
			}
		}
	}
	if _, _, err := cli(t, "context", "add", " ", fifo, "--data", data); err == nil || !strings.Contains(err.Error(), "URL is empty") {
		t.Errorf("context add with an empty URL: %v", err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte{0x8e, 0x01, 0xff}, 0o600)
	_, _, err := cli(t, "contract", "offer", "add", "urn:mim:dataset:x", "--file", garbage, "--data", data)
	if err == nil || !strings.Contains(err.Error(), "garbage.json is not JSON") {
		t.Errorf("offer add with a garbage file: %v", err)
	}
}
