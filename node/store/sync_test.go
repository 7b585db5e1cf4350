package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
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

// TestSyncStartsAfterCommit: with one sync at a time, a writer asking
// for a sync while one runs does not share the running one (it may have
// started before the writer's commit) but waits for the next, which every
// writer asking meanwhile shares.
func TestSyncStartsAfterCommit(t *testing.T) {
	s := newSyncer(nil, "")
	s.max = 1
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

// gatedSyncs stands in for syncOnce: round r (from 1) reports its start
// on started and returns what is sent on release[r].
type gatedSyncs struct {
	mu      sync.Mutex
	rounds  int // guarded by mu
	started chan int
	release []chan error
}

func newGatedSyncs(n int) *gatedSyncs {
	g := &gatedSyncs{started: make(chan int, n), release: make([]chan error, n+1)}
	for i := range g.release {
		g.release[i] = make(chan error, 1)
	}
	return g
}

func (g *gatedSyncs) do() error {
	g.mu.Lock()
	g.rounds++
	r := g.rounds
	g.mu.Unlock()
	g.started <- r
	return <-g.release[r]
}

// queuedFor waits until n writers wait for the sync after the running ones.
func queuedFor(s *syncer, n int) {
	for {
		s.mu.Lock()
		queued := s.next != nil && s.next.waiters == n
		s.mu.Unlock()
		if queued {
			return
		}
		runtime.Gosched()
	}
}

// TestSyncStartsAfterCommitConcurrent: with two syncs at a time, a writer
// asking while one runs starts its own at once (the running one may have
// started before its commit); writers asking while two run share the
// next, which starts when one of them ends, and none returns before its
// own sync ended; a failing sync reports to its own writers only.
func TestSyncStartsAfterCommitConcurrent(t *testing.T) {
	s := newSyncer(nil, "")
	if s.max != 2 {
		t.Fatalf("max %d syncs at once, want 2", s.max)
	}
	g := newGatedSyncs(8)
	s.do = g.do
	first := make(chan error, 1)
	go func() { first <- s.wait() }()
	if r := <-g.started; r != 1 {
		t.Fatalf("first sync is round %d", r)
	}
	second := make(chan error, 1)
	go func() { second <- s.wait() }()
	if r := <-g.started; r != 2 {
		t.Fatalf("sync of a writer that committed during round 1 is round %d, want 2", r)
	}
	// Three writers commit while rounds 1 and 2 run.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() { errs <- s.wait() })
	}
	queuedFor(s, 3)
	fail := errors.New("disk on fire")
	g.release[2] <- fail // round 2 ends first, failing
	if err := <-second; !errors.Is(err, fail) {
		t.Fatalf("writer of the failed round 2: %v, want its error", err)
	}
	if r := <-g.started; r != 3 {
		t.Fatalf("sync started after round 2 is round %d, want 3", r)
	}
	if len(errs) != 0 || len(first) != 0 {
		t.Fatal("a writer returned before its sync ended")
	}
	g.release[1] <- nil
	if err := <-first; err != nil {
		t.Fatalf("writer of round 1: %v (round 2 failed, not 1)", err)
	}
	if len(errs) != 0 {
		t.Fatal("writers of round 3 returned before it ended")
	}
	g.release[3] <- nil
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g.rounds != 3 {
		t.Fatalf("%d syncs for 5 writers, want 3 (the three queued share one)", g.rounds)
	}
	s.close()
	if err := s.wait(); err == nil {
		t.Fatal("wait after close: nil error")
	}
}

// TestSyncCloseWaitsForRunning: close returns only after every running
// sync ended, and fails the writers queued for the next one.
func TestSyncCloseWaitsForRunning(t *testing.T) {
	s := newSyncer(nil, "")
	g := newGatedSyncs(8)
	var closed atomic.Bool
	s.do = func() error {
		err := g.do()
		if closed.Load() {
			t.Error("close returned while a sync ran")
		}
		return err
	}
	running := [2]chan error{make(chan error, 1), make(chan error, 1)}
	for _, c := range running {
		go func() { c <- s.wait() }()
		<-g.started
	}
	queued := make(chan error, 1)
	go func() { queued <- s.wait() }()
	queuedFor(s, 1)
	done := make(chan struct{})
	go func() {
		s.close()
		closed.Store(true)
		close(done)
	}()
	for {
		s.mu.Lock()
		c := s.closed
		s.mu.Unlock()
		if c {
			break
		}
		runtime.Gosched()
	}
	g.release[1] <- nil
	if err := <-running[0]; err != nil {
		t.Fatal(err)
	}
	// The queued writer is failed, not run: round 1's end starts no sync.
	if err := <-queued; !errors.Is(err, errClosed) {
		t.Fatalf("writer queued at close: %v, want errClosed", err)
	}
	select {
	case <-done:
		t.Fatal("close returned while round 2 ran")
	default:
	}
	g.release[2] <- nil
	if err := <-running[1]; err != nil {
		t.Fatal(err)
	}
	<-done
	if g.rounds != 2 {
		t.Fatalf("%d syncs, want 2", g.rounds)
	}
}

// fsyncGate stands in for datasync: it holds the first calls for a file
// name (as hold says) until a result is sent on the held call's release,
// and records the names of the files it synced.
type fsyncGate struct {
	mu     sync.Mutex
	hold   map[string]int // guarded by mu
	synced []string       // guarded by mu
	held   chan heldSync
}

type heldSync struct {
	f       *os.File
	release chan error
}

func newFsyncGate() *fsyncGate {
	return &fsyncGate{hold: map[string]int{}, held: make(chan heldSync)}
}

func (g *fsyncGate) fsync(f *os.File) error {
	name := filepath.Base(f.Name())
	g.mu.Lock()
	if g.hold[name] > 0 {
		g.hold[name]--
		g.mu.Unlock()
		c := make(chan error)
		g.held <- heldSync{f, c}
		if err := <-c; err != nil {
			return err
		}
		g.mu.Lock()
	}
	g.synced = append(g.synced, name)
	g.mu.Unlock()
	return nil
}

func (g *fsyncGate) syncedSince(n int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.synced[n:])
}

// fakeLogs makes a syncer for a directory holding the named files, with
// its file syncs through the returned gate and badger's DB.Sync counted.
func fakeLogs(t *testing.T, names ...string) (s *syncer, dir string, g *fsyncGate, dbSyncs *atomic.Int32) {
	dir = t.TempDir()
	for _, n := range names {
		touch(t, dir, n)
	}
	s = newSyncer(nil, dir)
	g = newFsyncGate()
	s.fsync = g.fsync
	dbSyncs = new(atomic.Int32)
	s.syncDB = func() error { dbSyncs.Add(1); return nil }
	return s, dir, g, dbSyncs
}

func touch(t *testing.T, dir, name string) {
	if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSyncFailureConcurrent: of two syncs running at once, the one that
// fails records nothing it found and leaves the value log it claimed to a
// later sync; the other, started while the claim ran, syncs the value
// log itself rather than count on the claim, and the retired log and the
// directory; each writer gets its own sync's outcome.
func TestSyncFailureConcurrent(t *testing.T) {
	s, dir, g, dbSyncs := fakeLogs(t, "00001.mem", "000001.vlog")
	defer s.close()
	if err := s.wait(); err != nil { // the first sync lists the directory
		t.Fatal(err)
	}
	if s.newestMem != 1 || s.newestVlog != 1 {
		t.Fatalf("first sync found logs %d and %d, want 1 and 1", s.newestMem, s.newestVlog)
	}
	touch(t, dir, "00002.mem") // log 1 retires
	s.vlogDirty.Store(true)    // a writer committed a large value
	g.mu.Lock()
	g.hold["00001.mem"] = 2 // the retired log's syncs
	g.mu.Unlock()
	x := make(chan error, 1)
	go func() { x <- s.wait() }()
	hx := <-g.held
	y := make(chan error, 1)
	go func() { y <- s.wait() }()
	hy := <-g.held
	if n := dbSyncs.Load(); n != 2 {
		t.Fatalf("%d value-log syncs by the two syncs, want 2 (the second cannot count on the first)", n)
	}
	n := len(g.syncedSince(0))
	fail := errors.New("disk on fire")
	hx.release <- fail
	if err := <-x; !errors.Is(err, fail) {
		t.Fatalf("writer of the failed sync: %v, want its error", err)
	}
	s.mu.Lock()
	mem, vlogDirty := s.newestMem, s.vlogDirty.Load()
	s.mu.Unlock()
	if mem != 1 {
		t.Fatalf("after the failed sync the newest log known is %d, want 1 (nothing recorded)", mem)
	}
	if !vlogDirty {
		t.Fatal("the failed sync did not leave the value log to a later one")
	}
	hy.release <- nil
	if err := <-y; err != nil {
		t.Fatalf("writer of the sync that ran with the failed one: %v", err)
	}
	if got, want := g.syncedSince(n), []string{"00001.mem", filepath.Base(dir)}; !slices.Equal(got, want) {
		t.Fatalf("second sync then synced %q, want %q", got, want)
	}
	if s.newestMem != 2 {
		t.Fatalf("newest log known %d, want 2", s.newestMem)
	}
	// A later sync syncs the value log the failed one left.
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if n := dbSyncs.Load(); n != 3 {
		t.Fatalf("%d value-log syncs, want 3", n)
	}
}

// TestSyncWALHandleConcurrent: a newer memtable log replacing the open
// one does not close the old handle under a sync still using it; the last
// sync using it closes it.
func TestSyncWALHandleConcurrent(t *testing.T) {
	s, dir, g, _ := fakeLogs(t, "00001.mem")
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.hold["00001.mem"] = 1
	g.mu.Unlock()
	x := make(chan error, 1)
	go func() { x <- s.wait() }()
	hx := <-g.held // x syncs log 1, the newest, on the open handle
	touch(t, dir, "00002.mem")
	if err := s.wait(); err != nil { // finds log 2 and opens it
		t.Fatal(err)
	}
	if s.wal == nil || s.wal.fid != 2 {
		t.Fatal("the open memtable log is not the newest, 2")
	}
	if _, err := hx.f.Stat(); err != nil {
		t.Fatalf("handle of log 1 closed under a running sync: %v", err)
	}
	hx.release <- nil
	if err := <-x; err != nil {
		t.Fatal(err)
	}
	if _, err := hx.f.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("handle of log 1 after its last sync: %v, want closed", err)
	}
	s.close()
	if s.wal != nil {
		t.Fatal("close left the memtable log open")
	}
}

// TestSyncNewestAfterDeletedLog: a memtable log that appeared and was
// deleted (its memtable flushed into a table) between two syncs does not
// hide the logs after it: the next sync syncs the newest log and the
// directory, not only the log it knew, whether that one is still there
// (a reader holds its memtable) or deleted too (its handle still open).
func TestSyncNewestAfterDeletedLog(t *testing.T) {
	for _, c := range []struct {
		name    string
		deleted []string
	}{
		{"known log kept", []string{"00002.mem"}},
		{"known log deleted", []string{"00001.mem", "00002.mem"}},
	} {
		for _, mode := range syncModes {
			t.Run(c.name+"/"+mode.name, func(t *testing.T) {
				s, dir, g, _ := fakeLogs(t, "00001.mem")
				s.noWatch = mode.noWatch
				defer s.close()
				if err := s.wait(); err != nil {
					t.Fatal(err)
				}
				touch(t, dir, "00002.mem")
				touch(t, dir, "00003.mem") // a commit lands in log 3
				for _, name := range c.deleted {
					if err := os.Remove(filepath.Join(dir, name)); err != nil {
						t.Fatal(err)
					}
				}
				n := len(g.syncedSince(0))
				if err := s.wait(); err != nil {
					t.Fatal(err)
				}
				got := g.syncedSince(n)
				if !slices.Contains(got, "00003.mem") || !slices.Contains(got, filepath.Base(dir)) {
					t.Fatalf("sync after log 2 came and went synced %q, want the newest log 00003.mem and the directory", got)
				}
				if s.newestMem != 3 {
					t.Fatalf("newest log known %d, want 3", s.newestMem)
				}
			})
		}
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
	db.sync.do = func() error { syncs++; return do() } // one writer: syncs never overlap
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
// syncer knows the newest memtable log the directory holds.
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
			cpu := osstat.ProcessCPU()
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
			b.ReportMetric(float64((osstat.ProcessCPU()-cpu).Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkUpdateWait: small durable writes from several writers at once
// (writers times GOMAXPROCS goroutines, as in BenchmarkUpdate), with one
// sync at a time (max=1, as before overlapping syncs) and two:
// the mean time a writer waits for its sync after its commit (wait-µs),
// syncs per write and CPU per write.
func BenchmarkUpdateWait(b *testing.B) {
	for _, writers := range []int{2, 4, 8} {
		for _, max := range []int{1, 2} {
			b.Run(fmt.Sprintf("writers=%d/max=%d", writers, max), func(b *testing.B) {
				db, err := Open(b.TempDir(), Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				db.sync.max = max
				var syncs atomic.Int64
				do := db.sync.do
				db.sync.do = func() error { syncs.Add(1); return do() }
				b.SetParallelism(writers)
				var n, waited atomic.Int64
				b.ResetTimer()
				cpu := osstat.ProcessCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						k := Key(PrefixMeta, fmt.Sprint(n.Add(1)))
						if err := db.UpdateNoSync(func(tx *Txn) error { return tx.Set(k, make([]byte, 200)) }); err != nil {
							b.Error(err)
							return
						}
						start := time.Now()
						if err := db.Sync(); err != nil {
							b.Error(err)
							return
						}
						waited.Add(int64(time.Since(start)))
					}
				})
				b.ReportMetric(float64((osstat.ProcessCPU()-cpu).Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
				b.ReportMetric(float64(waited.Load())/1000/float64(b.N), "wait-µs/op")
				b.ReportMetric(float64(syncs.Load())/float64(b.N), "syncs/op")
			})
		}
	}
}

// logModel is a fake badger log directory: commits go to the newest
// memtable log (and, for a large value, the newest value-log file), which
// one writer at a time retires, creates and deletes; it records what each
// file sync covered.
type logModel struct {
	mu        sync.Mutex
	dir       string
	mem, vlog int            // newest fids; guarded by mu
	oldest    int            // oldest memtable log not deleted; guarded by mu
	ver       map[string]int // writes to a file; guarded by mu
	synced    map[string]int // writes a sync covered; guarded by mu
	inDir     map[string]bool
	gone      map[string]bool // flushed to a table, then deleted
}

type modelCommit struct {
	mem, vlog       string
	memVer, vlogVer int
}

func (m *logModel) create(name string) {
	if err := os.WriteFile(filepath.Join(m.dir, name), nil, 0o600); err != nil {
		panic(err)
	}
	m.ver[name] = 0
}

func (m *logModel) commit(rng *rand.Rand, big bool) modelCommit {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rng.IntN(6) == 0 {
		m.mem++
		m.create(memName(m.mem))
	}
	if m.oldest < m.mem && rng.IntN(8) == 0 {
		n := memName(m.oldest)
		os.Remove(filepath.Join(m.dir, n))
		m.gone[n] = true
		m.oldest++
	}
	var c modelCommit
	c.mem = memName(m.mem)
	m.ver[c.mem]++
	c.memVer = m.ver[c.mem]
	if big {
		if rng.IntN(6) == 0 {
			old := vlogName(m.vlog)
			m.synced[old] = m.ver[old] // badger syncs a full value-log file
			m.vlog++
			m.create(vlogName(m.vlog))
		}
		c.vlog = vlogName(m.vlog)
		m.ver[c.vlog]++
		c.vlogVer = m.ver[c.vlog]
	}
	return c
}

func (m *logModel) durable(name string, v int) bool {
	return m.gone[name] || (m.synced[name] >= v && m.inDir[name])
}

var errModel = errors.New("model: sync failed")

// fsync records what a datasync of f covers: the writes before the call.
func (m *logModel) fsync(rng func() int, f *os.File) error {
	name := filepath.Base(f.Name())
	m.mu.Lock()
	var covered map[string]int
	var entries []string
	if f.Name() == m.dir {
		for n := range m.ver {
			entries = append(entries, n)
		}
	} else {
		covered = map[string]int{name: m.ver[name]}
	}
	m.mu.Unlock()
	return m.finish(rng, covered, entries)
}

func (m *logModel) syncDB(rng func() int) error {
	m.mu.Lock()
	covered := map[string]int{memName(m.mem): m.ver[memName(m.mem)], vlogName(m.vlog): m.ver[vlogName(m.vlog)]}
	m.mu.Unlock()
	return m.finish(rng, covered, nil)
}

func (m *logModel) finish(rng func() int, covered map[string]int, entries []string) error {
	for range rng() % 3 {
		runtime.Gosched()
	}
	if rng()%25 == 0 {
		return errModel
	}
	m.mu.Lock()
	for n, v := range covered {
		m.synced[n] = max(m.synced[n], v)
	}
	for _, n := range entries {
		m.inDir[n] = true
	}
	m.mu.Unlock()
	return nil
}

// TestSyncModelStress: writers commit to a fake log directory (logModel)
// while the syncer runs up to two syncs at once with file syncs that
// yield and fail at random; every wait that returns nil finds its commit
// synced: its memtable log (and value-log file for a large value) synced
// after the commit, and the directory after the file appeared, or the
// log deleted after its memtable was flushed.
func TestSyncModelStress(t *testing.T) {
	for _, mode := range syncModes {
		t.Run(mode.name, func(t *testing.T) { syncModelStress(t, mode.noWatch) })
	}
}

// syncModes are the two ways a sync finds new logs: the directory watch
// (where the platform has one) and a listing of the directory at each
// sync (where it has none, or the watch failed).
var syncModes = []struct {
	name    string
	noWatch bool
}{{"watch", false}, {"listing", true}}

func syncModelStress(t *testing.T, noWatch bool) {
	for seed := range uint64(8) {
		dir := t.TempDir()
		m := &logModel{dir: dir, mem: 1, vlog: 1, oldest: 1, ver: map[string]int{}, synced: map[string]int{},
			inDir: map[string]bool{}, gone: map[string]bool{}}
		m.create(memName(1))
		m.create(vlogName(1))
		s := newSyncer(nil, dir)
		s.noWatch = noWatch
		var rmu sync.Mutex
		r := rand.New(rand.NewPCG(seed, 1))
		rng := func() int { rmu.Lock(); defer rmu.Unlock(); return r.IntN(1 << 20) }
		s.fsync = func(f *os.File) error { return m.fsync(rng, f) }
		s.syncDB = func() error { return m.syncDB(rng) }
		var wg sync.WaitGroup
		var checked, failed, bigs int
		var cmu sync.Mutex
		for w := range 6 {
			wg.Go(func() {
				wr := rand.New(rand.NewPCG(seed, uint64(w)+2))
				for range 300 {
					big := wr.IntN(3) == 0
					c := m.commit(wr, big)
					if big {
						s.vlogDirty.Store(true)
					}
					err := s.wait()
					m.mu.Lock()
					ok := m.durable(c.mem, c.memVer) && (!big || m.durable(c.vlog, c.vlogVer))
					state := fmt.Sprintf("log synced up to write %d, in the directory %v", m.synced[c.mem], m.inDir[c.mem])
					m.mu.Unlock()
					cmu.Lock()
					if err != nil {
						failed++
					} else {
						checked++
						if big {
							bigs++
						}
						if !ok {
							t.Errorf("seed %d: wait returned nil before commit %+v was durable (%s)", seed, c, state)
						}
					}
					cmu.Unlock()
				}
			})
		}
		wg.Wait()
		s.close()
		if checked == 0 || bigs == 0 || m.mem < 10 || m.vlog < 5 {
			t.Fatalf("seed %d: %d durable, %d large, %d failed; logs %d, value log %d: too few to check", seed, checked, bigs, failed, m.mem, m.vlog)
		}
	}
}

// BenchmarkSync: one small durable write at a time (one sync each) with
// about 20 and 2,000 files in the store's directory (other files than
// badger's, which it ignores): the CPU per synced commit, all threads and
// the kernel's share included.
func BenchmarkSync(b *testing.B) {
	for _, files := range []int{20, 2000} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			dir := b.TempDir()
			db, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			entries, err := os.ReadDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			for i := len(entries); i < files; i++ {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("filler-%04d.tmp", i)), nil, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			write := func(i int) {
				k := Key(PrefixMeta, strconv.Itoa(i))
				if err := db.Update(func(tx *Txn) error { return tx.Set(k, make([]byte, 200)) }); err != nil {
					b.Fatal(err)
				}
			}
			write(-1) // the first sync lists the directory
			b.ResetTimer()
			cpu := osstat.ProcessCPU()
			for i := range b.N {
				write(i)
			}
			b.ReportMetric(float64((osstat.ProcessCPU()-cpu).Nanoseconds())/1000/float64(b.N), "cpu-µs/op")
		})
	}
}

// TestSyncPanic: a sync that panics releases its place among the running
// syncs and fails its writers, those queued for it too, with an error;
// later syncs run, and close does not wait for it.
func TestSyncPanic(t *testing.T) {
	s := newSyncer(nil, "")
	g := newGatedSyncs(8)
	s.do = func() error {
		g.mu.Lock()
		r := g.rounds + 1
		g.mu.Unlock()
		if r == 3 {
			g.mu.Lock()
			g.rounds++
			g.mu.Unlock()
			panic("disk driver bug")
		}
		return g.do()
	}
	// A lone writer's sync panics: it gets the error.
	running := [2]chan error{make(chan error, 1), make(chan error, 1)}
	for _, c := range running {
		go func() { c <- s.wait() }()
		<-g.started
	}
	// Round 3, started for the writers queued while 1 and 2 run, panics.
	queued := make(chan error, 2)
	for range 2 {
		go func() { queued <- s.wait() }()
	}
	queuedFor(s, 2)
	g.release[1] <- nil
	if err := <-running[0]; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-queued; !errors.Is(err, errSyncPanicked) || !strings.Contains(err.Error(), "disk driver bug") {
			t.Fatalf("writer of the sync that panicked: %v, want errSyncPanicked with the panic", err)
		}
	}
	g.release[2] <- nil
	if err := <-running[1]; err != nil {
		t.Fatal(err)
	}
	// An inline sync (no other running) that panics.
	g.mu.Lock()
	g.rounds = 2
	g.mu.Unlock()
	if err := s.wait(); !errors.Is(err, errSyncPanicked) {
		t.Fatalf("lone writer of a sync that panicked: %v, want errSyncPanicked", err)
	}
	g.release[4] <- nil
	if err := s.wait(); err != nil {
		t.Fatalf("sync after the panics: %v", err)
	}
	s.close() // returns: no sync counted as running
	if s.running != 0 {
		t.Fatalf("%d syncs running after close", s.running)
	}
}

// TestSyncPanicLeavesValueLog: a sync that claimed the value log and
// panicked leaves it to the next sync, as one that failed does.
func TestSyncPanicLeavesValueLog(t *testing.T) {
	s, _, _, dbSyncs := fakeLogs(t, "00001.mem", "000001.vlog")
	defer s.close()
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	s.vlogDirty.Store(true)
	syncDB := s.syncDB
	s.syncDB = func() error { panic("badger bug") }
	if err := s.wait(); !errors.Is(err, errSyncPanicked) {
		t.Fatalf("writer of the sync that panicked: %v, want errSyncPanicked", err)
	}
	if !s.vlogDirty.Load() || s.vlogClaims != 0 {
		t.Fatalf("after the panic: value log dirty %v (want true), %d claims (want 0)", s.vlogDirty.Load(), s.vlogClaims)
	}
	s.syncDB = syncDB
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if n := dbSyncs.Load(); n != 1 || s.vlogDirty.Load() {
		t.Fatalf("%d value-log syncs after the panic (want 1), dirty %v", n, s.vlogDirty.Load())
	}
}

// TestSyncWALGone: a newest memtable log that is gone when the sync
// opens it (badger flushed its memtable into a synced table and deleted
// it after the sync found it) needs no sync.
func TestSyncWALGone(t *testing.T) {
	s, _, _, _ := fakeLogs(t, "00001.mem")
	defer s.close()
	if err := s.syncWAL(2); err != nil {
		t.Fatalf("sync of a newest log that is gone: %v, want nil (flushed into a synced table)", err)
	}
}
