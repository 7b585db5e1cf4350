package federation

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestIsolationIsSaid: a node that reaches none of the other members
// says so after isolatedAfter, with what to do, then hourly while it
// lasts, and once when it reaches one again; a node alone in its
// federations says nothing.
func TestIsolationIsSaid(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	count := func(what string) int { return strings.Count(buf.String(), what) }
	var iso isolation
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	for m := 0; m <= 130; m++ {
		iso.note(log, 2, 0, t0.Add(time.Duration(m)*time.Minute))
		if m == 4 && count("reached none") != 0 {
			t.Fatalf("said after 4 minutes:\n%s", buf.String())
		}
	}
	if got := count("reached none"); got != 3 { // at 5, 65 and 125 minutes
		t.Errorf("130 minutes without a member said %d times, want 3:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), "mimnode connect MULTIADDR") || !strings.Contains(buf.String(), "[network] listen") {
		t.Errorf("the warning does not say what to do:\n%s", buf.String())
	}
	iso.note(log, 2, 1, t0.Add(131*time.Minute))
	iso.note(log, 2, 1, t0.Add(132*time.Minute))
	if got := count("reaching federation members again"); got != 1 {
		t.Errorf("reconnecting said %d times, want once", got)
	}
	buf.Reset()
	for m := 0; m < 60; m++ {
		iso.note(log, 0, 0, t0.Add(time.Duration(200+m)*time.Minute))
	}
	if buf.Len() != 0 {
		t.Errorf("a node alone in its federation logged:\n%s", buf.String())
	}
}
