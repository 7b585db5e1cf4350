package lognote

import (
	"testing"
	"time"
)

// TestNoteSaysHourly: a condition held every second for two days is said
// 48 times; another one at once; its end once; a new start at once.
func TestNoteSaysHourly(t *testing.T) {
	var n Note
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	said := 0
	for s := 0; s < 48*3600; s++ {
		if n.Hold("disk full", t0.Add(time.Duration(s)*time.Second)) {
			said++
		}
	}
	if said != 48 {
		t.Errorf("48 hours of one condition said %d times, want 48", said)
	}
	end := t0.Add(48 * time.Hour)
	if !n.Hold("another", end) {
		t.Error("another condition was not said")
	}
	if !n.End() || n.End() {
		t.Error("the end is said once, then nothing")
	}
	if !n.Hold("disk full", end.Add(time.Second)) {
		t.Error("a condition after an end was not said")
	}
}
