package ngsild

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/lognote"
	"github.com/mimnode/mimnode/node/store"
)

// TestFullDiskIsOneFailure: the notification state write failing every
// second for two days on a full disk whose free space moves is said once
// an hour (failureKind), not 170,000 times; another failure at once.
func TestFullDiskIsOneFailure(t *testing.T) {
	var n lognote.Note
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	said := 0
	for s := 0; s < 48*3600; s++ {
		err := fmt.Errorf("%w: %d MiB free", store.ErrDiskFull, 90+s%10)
		if n.Hold(failureKind(err), t0.Add(time.Duration(s)*time.Second)) {
			said++
		}
	}
	if said != 48 {
		t.Errorf("48 hours of a full disk said %d times, want 48", said)
	}
	if !n.Hold(failureKind(errors.New("another failure")), t0.Add(48*time.Hour)) {
		t.Error("another failure was not said")
	}
}
