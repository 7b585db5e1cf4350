package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// The report file is checked before the run, so a typo in --out costs
// nothing instead of minutes of measurements.
func TestBenchBadOutFailsBeforeRunning(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing directory", []string{"--quick", "--out", filepath.Join(t.TempDir(), "no", "such", "report.md")}, "report file"},
		{"profile directory missing", []string{"--quick", "--profile", filepath.Join(t.TempDir(), "none")}, "not an existing directory"},
		{"stray argument", []string{"--quick", "now"}, "unknown command"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := benchCmd(&globals{stdout: &stdout, stderr: &stderr})
			cmd.SetArgs(c.args)
			cmd.SetOut(&stdout)
			cmd.SetErr(&stderr)
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("bench %v: %v, want an error about %q", c.args, err, c.want)
			}
			if strings.Contains(stderr.String(), "bench: node start") {
				t.Errorf("bench %v started measuring:\n%s", c.args, stderr.String())
			}
		})
	}
}
