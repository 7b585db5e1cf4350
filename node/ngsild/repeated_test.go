package ngsild

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// TestRepeatedFailuresAreSaidHourly: a step failing every second for a
// weekend (a full disk) is logged once an hour, not 170,000 times; a new
// failure at once; and the first success after failures once.
func TestRepeatedFailuresAreSaidHourly(t *testing.T) {
	var r repeated
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	full := fmt.Errorf("%w: 99 MiB free", store.ErrDiskFull)
	said := 0
	for s := 0; s < 48*3600; s++ {
		// The free space it reports moves; the failure is the same.
		if r.say(fmt.Errorf("%w: %d MiB free", store.ErrDiskFull, 90+s%10), t0.Add(time.Duration(s)*time.Second)) {
			said++
		}
	}
	if said != 48 {
		t.Errorf("48 hours of the same failure said %d times, want 48", said)
	}
	end := t0.Add(48 * time.Hour)
	if !r.say(errors.New("another failure"), end) {
		t.Error("a new failure was not said")
	}
	if !r.say(nil, end.Add(time.Second)) || r.say(nil, end.Add(2*time.Second)) {
		t.Error("the recovery is said once, then nothing")
	}
	if !r.say(full, end.Add(3*time.Second)) {
		t.Error("a failure after a recovery was not said")
	}
}
