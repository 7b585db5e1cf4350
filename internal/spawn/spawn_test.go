package spawn

import (
	"sync/atomic"
	"testing"
)

func TestGoAfterStopIsRefused(t *testing.T) {
	var g Group
	var ran atomic.Int32
	release := make(chan struct{})
	if !g.Go(func() { <-release; ran.Add(1) }) {
		t.Fatal("Go refused work before Stop")
	}
	g.Stop()
	if g.Go(func() { ran.Add(1) }) {
		t.Fatal("Go started work after Stop")
	}
	close(release)
	g.Wait()
	if n := ran.Load(); n != 1 {
		t.Fatalf("%d goroutines ran, want the one started before Stop", n)
	}
}

// Go racing Stop and Wait: every goroutine Go reports started has finished
// when Wait returns (run with -race).
func TestGoRacingStop(t *testing.T) {
	for range 100 {
		var g Group
		var started, finished atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 50 {
				if g.Go(func() { finished.Add(1) }) {
					started.Add(1)
				}
			}
		}()
		g.Stop()
		g.Wait()
		<-done
		g.Wait()
		if started.Load() != finished.Load() {
			t.Fatalf("started %d, finished %d", started.Load(), finished.Load())
		}
	}
}
