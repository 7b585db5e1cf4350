package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A library's info lines are left out of a node's log at level info, its
// warnings kept; at level debug everything is kept.
func TestQuieter(t *testing.T) {
	for _, c := range []struct {
		level    slog.Level
		wantInfo bool
	}{{slog.LevelInfo, false}, {slog.LevelDebug, true}} {
		var buf bytes.Buffer
		l := quieter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: c.level})).With("component", "pubsub"))
		l.Info("processloop shutting down")
		l.Warn("peer misbehaved")
		out := buf.String()
		if got := strings.Contains(out, "processloop"); got != c.wantInfo {
			t.Errorf("at %s the info line was logged: %v, want %v\n%s", c.level, got, c.wantInfo, out)
		}
		if !strings.Contains(out, "peer misbehaved") || !strings.Contains(out, "component=pubsub") {
			t.Errorf("at %s the warning with its attributes was not logged:\n%s", c.level, out)
		}
	}
}
