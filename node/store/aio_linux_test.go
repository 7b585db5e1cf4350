//go:build linux && (amd64 || arm64)

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// close stops r, a ring of a test's own (the process's is never closed):
// syncs in flight fail, later ones are refused, and the context is
// destroyed once the kernel is done with what it holds.
func (r *aioRing) close() {
	r.ev.Close()
	<-r.reaped
	unix.Syscall(unix.SYS_IO_DESTROY, r.ctx, 0, 0)
}

// waiting is how many syncs r has taken and not yet handed back.
func (r *aioRing) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiters)
}

// ring returns the process's AIO ring, skipping where the kernel offers
// none (syncs are then plain fdatasync calls, which other tests cover).
func ring(t testing.TB) *aioRing {
	r := aioSync()
	if r == nil {
		t.Skip("no asynchronous I/O here (io_setup refused): syncs are plain fdatasync calls")
	}
	return r
}

func dirtyFile(t testing.TB) *os.File {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	return f
}

// Syncs through the ring complete, many at once and more than it holds in
// flight, and leave no waiter behind.
func TestAIODatasync(t *testing.T) {
	r := ring(t)
	f := dirtyFile(t)
	if err := datasync(f); err != nil {
		t.Fatalf("datasync: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*aioDepth)
	for i := 0; i < 3*aioDepth; i++ {
		wg.Go(func() {
			if _, err := f.WriteAt([]byte("x"), int64(i)); err != nil {
				errs <- err
				return
			}
			errs <- r.datasync(int(f.Fd()))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent datasync: %v", err)
		}
	}
	if left := r.waiting(); left != 0 {
		t.Errorf("%d waiters left after every sync returned", left)
	}
}

// A sync alone is a plain fdatasync call; one asked for while another
// runs goes through the ring.
func TestDatasyncRoutes(t *testing.T) {
	r := ring(t)
	f := dirtyFile(t)
	ids := func() uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.next
	}
	if !plainSync.CompareAndSwap(false, true) {
		t.Fatal("a plain sync is running before the test")
	}
	before := ids()
	err := datasync(f) // as if another sync were running
	plainSync.Store(false)
	if err != nil {
		t.Fatalf("datasync beside another sync: %v", err)
	}
	if ids() == before {
		t.Error("a sync beside another one did not go through the ring")
	}
	// Alone in a quiet process; a goroutine of an earlier test made
	// runnable at that moment may send one through the ring.
	plain := false
	for try := 0; try < 5 && !plain; try++ {
		before = ids()
		if err := datasync(f); err != nil {
			t.Fatalf("datasync alone: %v", err)
		}
		plain = ids() == before
	}
	if !plain {
		t.Error("a sync alone went through the ring")
	}
	if plainSync.Load() {
		t.Error("a plain sync is marked running after it returned")
	}

	// With every processor running and goroutines waiting for one, a
	// sync alone goes through the ring and leaves the processor to them.
	var stop atomic.Bool
	var spinning sync.WaitGroup
	for range runtime.GOMAXPROCS(0) + 2 {
		spinning.Go(func() {
			for !stop.Load() {
			}
		})
	}
	defer func() { stop.Store(true); spinning.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !processorsWanted() {
		if time.Now().After(deadline) {
			t.Fatal("processorsWanted never saw goroutines waiting for a processor")
		}
	}
	before = ids()
	if err := datasync(f); err != nil {
		t.Fatalf("datasync while goroutines wait: %v", err)
	}
	if ids() == before {
		t.Error("a sync while goroutines waited for a processor held one")
	}
}

// A sync of a file that is not open fails with EBADF, alone (a plain
// fdatasync) and beside another sync (the ring refuses the submission and
// datasync falls back to fdatasync); it does not hang, leaves no waiter,
// and the ring still syncs open files afterwards.
func TestAIODatasyncClosedFile(t *testing.T) {
	r := ring(t)
	f := dirtyFile(t)
	f.Close() // f.Fd() is now -1: no descriptor another file could reuse
	if err := datasync(f); !errors.Is(err, syscall.EBADF) {
		t.Errorf("datasync of a closed file, alone = %v, want EBADF", err)
	}
	if !plainSync.CompareAndSwap(false, true) {
		t.Fatal("a plain sync is running before the test")
	}
	err := datasync(f) // as if another sync were running: through the ring
	plainSync.Store(false)
	if !errors.Is(err, syscall.EBADF) {
		t.Errorf("datasync of a closed file beside another sync = %v, want EBADF", err)
	}
	if err := r.datasync(-1); err != errAIORefused {
		t.Errorf("the ring's sync of a closed file = %v, want errAIORefused (datasync then falls back)", err)
	}
	if left := r.waiting(); left != 0 {
		t.Errorf("%d waiters left after refused submissions", left)
	}
	if err := r.datasync(int(dirtyFile(t).Fd())); err != nil {
		t.Errorf("the ring after refusing a closed file: %v", err)
	}
}

// A ring whose reaper has stopped refuses syncs, so that datasync makes
// them with fdatasync, and syncs it had taken fail rather than wait
// forever.
func TestAIORingStopped(t *testing.T) {
	ring(t)
	r := newAIORing()
	if r == nil {
		t.Skip("no second AIO context to be had")
	}
	f := dirtyFile(t)
	if err := r.datasync(int(f.Fd())); err != nil {
		t.Fatalf("datasync on a fresh ring: %v", err)
	}
	waiting := make(chan error, 1)
	r.mu.Lock()
	r.waiters[1<<60] = waiting // a sync taken, not completed yet
	r.mu.Unlock()
	r.close()
	if err := <-waiting; err == nil {
		t.Error("a sync in flight when the ring stopped returned no error")
	}
	if err := r.datasync(int(f.Fd())); err != errAIORefused {
		t.Errorf("datasync on a stopped ring = %v, want errAIORefused", err)
	}
}

// BenchmarkDatasync compares one sync of a dirty 300-byte write through
// the ring with a plain fdatasync, one at a time and eight at once on
// eight files (as eight stores would).
func BenchmarkDatasync(b *testing.B) {
	r := ring(b)
	for _, c := range []struct {
		name string
		sync func(*os.File) error
	}{
		{"aio", func(f *os.File) error { return r.datasync(int(f.Fd())) }},
		{"fdatasync", func(f *os.File) error { return fdatasync(int(f.Fd())) }},
	} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/%d-at-once", c.name, par), func(b *testing.B) {
				files := make([]*os.File, par)
				for i := range files {
					files[i] = dirtyFile(b)
				}
				var n atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, f := range files {
					wg.Go(func() {
						for i := 0; n.Add(1) <= int64(b.N); i++ {
							if _, err := f.WriteAt(make([]byte, 300), int64(i%200)*300); err != nil {
								b.Error(err)
								return
							}
							if err := c.sync(f); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
