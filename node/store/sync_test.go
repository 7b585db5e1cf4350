package store

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestFlushNoSyncThenSync: writes flushed without a sync are visible at
// once, and after Sync they are still there when the store is reopened.
func TestFlushNoSyncThenSync(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for i := 0; i < 100; i++ {
		b.Set(Key(PrefixTransfer, fmt.Sprintf("%03d", i)), make([]byte, 40<<10)) // value log
	}
	if err := b.FlushNoSync(); err != nil {
		t.Fatal(err)
	}
	count := func(db *DB) (n int) {
		db.View(func(tx *Txn) error {
			return tx.Iterate(IterOptions{Prefix: []byte(PrefixTransfer)}, func(k, v []byte) error {
				if len(v) == 40<<10 {
					n++
				}
				return nil
			})
		})
		return n
	}
	if n := count(db); n != 100 {
		t.Fatalf("after FlushNoSync %d values, want 100", n)
	}
	if err := db.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	db.Close()
	if err := db.Sync(); err == nil {
		t.Fatal("Sync after Close: nil error")
	}
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := count(db); n != 100 {
		t.Fatalf("after reopen %d values, want 100", n)
	}
}

// TestSyncStartsAfterCommit: a writer asking for a sync while one runs
// does not share the running one (it may have started before the
// writer's commit) but waits for the next, which every writer asking
// meanwhile shares.
func TestSyncStartsAfterCommit(t *testing.T) {
	s := newSyncer(nil, "")
	release := make(chan struct{})
	started := make(chan int, 8)
	rounds := 0
	s.do = func() error {
		rounds++ // syncs never overlap, so no lock
		started <- rounds
		<-release
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- s.wait() }()
	if r := <-started; r != 1 {
		t.Fatalf("first sync is round %d", r)
	}
	// Three writers commit while round 1 runs.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- s.wait() })
	}
	// Wait until all three are queued: one that called wait only after
	// round 1 ended would queue for a third round, which never ends.
	for {
		s.mu.Lock()
		queued := s.next != nil && s.next.waiters == 3
		s.mu.Unlock()
		if queued {
			break
		}
		runtime.Gosched()
	}
	waiting := func() int {
		// The writers of round 2 hold no result until it ran.
		return 3 - len(errs)
	}
	release <- struct{}{} // round 1 ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if r := <-started; r != 2 {
		t.Fatalf("second sync is round %d, want 2", r)
	}
	if w := waiting(); w == 0 {
		t.Fatal("writers that committed during round 1 returned before round 2 ran")
	}
	release <- struct{}{} // round 2 ends
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if rounds != 2 {
		t.Fatalf("%d syncs for 4 writers, want 2 (the three waiting share one)", rounds)
	}
	s.close()
	if err := s.wait(); err == nil {
		t.Fatal("wait after close: nil error")
	}
}

// TestConcurrentUpdates: writers on many goroutines all get their writes,
// durably acknowledged, on disk and in memory.
func TestConcurrentUpdates(t *testing.T) {
	openBoth(t, func(t *testing.T, db *DB) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					k := Key(PrefixMeta, fmt.Sprintf("%d-%02d", g, i))
					if err := db.Update(func(tx *Txn) error { return tx.Set(k, []byte("v")) }); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		n := 0
		db.View(func(tx *Txn) error {
			return tx.Iterate(IterOptions{Prefix: []byte(PrefixMeta), KeysOnly: true}, func(k, v []byte) error { n++; return nil })
		})
		if n != 160 {
			t.Fatalf("%d keys, want 160", n)
		}
	})
}

// TestUpdateSyncsOnlyWrites: an Update whose function wrote nothing does
// not wait for a sync; one that set or deleted a key does.
func TestUpdateSyncsOnlyWrites(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	syncs := 0
	do := db.sync.do
	db.sync.do = func() error { syncs++; return do() } // syncs never overlap
	k := Key(PrefixMeta, "k")
	for _, c := range []struct {
		name  string
		fn    func(tx *Txn) error
		syncs int
	}{
		{"set", func(tx *Txn) error { return tx.Set(k, []byte("v")) }, 1},
		{"read only", func(tx *Txn) error { _, err := tx.Get(k); return err }, 0},
		{"nothing", func(tx *Txn) error { return nil }, 0},
		{"delete", func(tx *Txn) error { return tx.Delete(k) }, 1},
		{"failed", func(tx *Txn) error { tx.Set(k, []byte("v")); return ErrStop }, 0},
	} {
		before := syncs
		db.Update(c.fn)
		if got := syncs - before; got != c.syncs {
			t.Errorf("Update(%s): %d syncs, want %d", c.name, got, c.syncs)
		}
	}
}

// TestSyncFollowsNewLogs: after writes that fill several memtables, the
// syncer knows the newest memtable log the directory holds, without
// listing it after its first sync.
func TestSyncFollowsNewLogs(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newestListed := func() int {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		newest := -1
		for _, e := range entries {
			if base, ok := strings.CutSuffix(e.Name(), ".mem"); ok {
				fid, _ := strconv.Atoi(base)
				newest = max(newest, fid)
			}
		}
		return newest
	}
	first := newestListed()
	val := make([]byte, 4<<10) // under the value threshold: in the memtable log
	for i := 0; newestListed() < first+3; i++ {
		b := db.NewBatch()
		for j := range 1000 {
			if err := b.Set(Key(PrefixMeta, fmt.Sprintf("%d-%d", i, j)), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := db.sync.newestMem, newestListed(); got != want {
		t.Fatalf("syncer's newest memtable log %d, directory's %d", got, want)
	}
}

// BenchmarkUpdate: one small durable write at a time, and from 8 writers
// at once (which share syncs).
func BenchmarkUpdate(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			b.SetParallelism(writers)
			var n sync.Mutex
			i := 0
			b.ResetTimer()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n.Lock()
					i++
					k := Key(PrefixMeta, fmt.Sprint(i))
					n.Unlock()
					if err := db.Update(func(tx *Txn) error { return tx.Set(k, make([]byte, 200)) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
			// On a shared machine CPU time per write (all threads, the
			// kernel's share of the syncs included) says more than wall time.
			b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
