package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestSyncSeesLogsCreatedBetweenSyncs: a memtable log created after a
// sync is synced by the next one as the newest log, with the log it
// retired and the directory, also when a log came and went meanwhile;
// where the directory is watched, no sync after the first lists it.
func TestSyncSeesLogsCreatedBetweenSyncs(t *testing.T) {
	s, dir, g, _ := fakeLogs(t, "00001.mem", "000001.vlog")
	defer s.close()
	if err := s.wait(); err != nil { // the first sync lists the directory
		t.Fatal(err)
	}
	for _, c := range []struct {
		name             string
		create, remove   []string
		large            bool // a large value committed: the value log is synced
		want             []string
		newest, newestVL int
	}{
		{"no new log", nil, nil, false, []string{"00001.mem"}, 1, 1},
		{"new log", []string{"00002.mem"}, nil, false, []string{"00002.mem", "00001.mem", "DIR"}, 2, 1},
		{"log came and went", []string{"00003.mem", "00004.mem"}, []string{"00003.mem"}, false, []string{"00004.mem", "00002.mem", "DIR"}, 4, 1},
		{"other files", []string{"000001.sst", "MANIFEST-x"}, nil, false, []string{"00004.mem"}, 4, 1},
		{"new value-log file", []string{"000002.vlog", "00005.mem"}, nil, true, []string{"00004.mem", "DIR"}, 5, 2},
	} {
		for _, name := range c.create {
			touch(t, dir, name)
		}
		for _, name := range c.remove {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		if c.large {
			s.vlogDirty.Store(true)
		}
		n := len(g.syncedSince(0))
		if err := s.wait(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := g.syncedSince(n)
		for i, name := range got {
			if name == filepath.Base(dir) {
				got[i] = "DIR"
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: synced %q, want %q", c.name, got, c.want)
		}
		if s.newestMem != c.newest || s.newestVlog != c.newestVL {
			t.Errorf("%s: newest logs known %d and %d, want %d and %d", c.name, s.newestMem, s.newestVlog, c.newest, c.newestVL)
		}
	}
	if s.watch != nil { // none where inotify is not at hand or used up
		if n := s.listings.Load(); n != 1 {
			t.Errorf("%d listings of the watched directory, want 1 (the first sync's)", n)
		}
	}
}

// TestSyncWatchOverflow: when the watch's queue overflowed, so that the
// creation of a log was not reported, the next sync lists the directory
// and syncs that log; the watch keeps working after.
func TestSyncWatchOverflow(t *testing.T) {
	s, dir, g := overflowed(t)
	n := len(g.syncedSince(0))
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if got := g.syncedSince(n); !slices.Contains(got, "00002.mem") || !slices.Contains(got, filepath.Base(dir)) {
		t.Fatalf("after the watch overflowed the sync synced %q, want 00002.mem and the directory", got)
	}
	if l := s.listings.Load(); l != 2 {
		t.Errorf("%d listings, want 2 (the first sync's, the one after the overflow)", l)
	}
	touch(t, dir, "00003.mem")
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.newestMem != 3 || s.watch == nil {
		t.Fatalf("after the overflow: newest log %d (want 3), watch %v", s.newestMem, s.watch)
	}
	if l := s.listings.Load(); l != 2 {
		t.Errorf("%d listings, want 2: the watch is used again after the overflow", l)
	}
}

// TestSyncWatchFails: a watch that stops working (its directory was
// moved) is dropped, its inotify instance closed, and each sync lists the
// directory instead.
func TestSyncWatchFails(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no directory watch")
	}
	before, fdErr := inotifyFDs()
	s, dir, g, _ := fakeLogs(t, "00001.mem")
	defer s.close()
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.watch == nil {
		t.Skip("no inotify instance to be had")
	}
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	touch(t, dir, "00002.mem")
	n := len(g.syncedSince(0))
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if got := g.syncedSince(n); !slices.Contains(got, "00002.mem") {
		t.Fatalf("after the watch failed the sync synced %q, want 00002.mem", got)
	}
	if s.watch != nil {
		t.Fatal("the failed watch was kept")
	}
	if n, _ := inotifyFDs(); fdErr == nil && n != before {
		t.Errorf("%d inotify descriptors after the watch failed, want %d (closed)", n, before)
	}
	touch(t, dir, "00003.mem")
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.newestMem != 3 || s.listings.Load() != 3 {
		t.Fatalf("newest log %d (want 3) after %d listings (want 3)", s.newestMem, s.listings.Load())
	}
}

// TestSyncNewestLogGone: a newest memtable log that is gone when the sync
// opens it (badger flushed its memtable into a synced table and deleted
// it after the sync found it) needs no sync: the sync succeeds.
func TestSyncNewestLogGone(t *testing.T) {
	s, dir, g, _ := fakeLogs(t, "00001.mem")
	defer s.close()
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.watch == nil {
		// A listing finds only the logs still there.
		t.Skip("no directory watch")
	}
	// The watch reports log 2, which is deleted before the sync opens it.
	touch(t, dir, "00002.mem")
	if err := os.Remove(filepath.Join(dir, "00002.mem")); err != nil {
		t.Fatal(err)
	}
	n := len(g.syncedSince(0))
	if err := s.wait(); err != nil {
		t.Fatalf("sync with its newest log deleted: %v, want nil (flushed into a synced table)", err)
	}
	if got, want := g.syncedSince(n), []string{"00001.mem", filepath.Base(dir)}; !slices.Equal(got, want) {
		t.Fatalf("synced %q, want %q (the retired log and the directory)", got, want)
	}
	touch(t, dir, "00003.mem")
	n = len(g.syncedSince(0))
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if got := g.syncedSince(n); !slices.Contains(got, "00003.mem") {
		t.Fatalf("next sync synced %q, want 00003.mem", got)
	}
}

// TestSyncRemembersLogsAfterFailure: a sync that learned of a new log
// (from the watch) and then failed leaves it to the next sync, which
// syncs it as the newest, the log it retired and the directory: what a
// drain reported is not lost with the sync that read it.
func TestSyncRemembersLogsAfterFailure(t *testing.T) {
	for _, mode := range syncModes {
		t.Run(mode.name, func(t *testing.T) {
			s, dir, g, _ := fakeLogs(t, "00001.mem")
			s.noWatch = mode.noWatch
			defer s.close()
			if err := s.wait(); err != nil {
				t.Fatal(err)
			}
			touch(t, dir, "00002.mem") // log 1 retires
			g.mu.Lock()
			g.hold["00001.mem"] = 1 // the retired log's sync fails
			g.mu.Unlock()
			x := make(chan error, 1)
			go func() { x <- s.wait() }()
			fail := errors.New("disk on fire")
			(<-g.held).release <- fail
			if err := <-x; !errors.Is(err, fail) {
				t.Fatalf("sync whose retired log failed: %v, want its error", err)
			}
			n := len(g.syncedSince(0))
			if err := s.wait(); err != nil {
				t.Fatal(err)
			}
			if got, want := g.syncedSince(n), []string{"00002.mem", "00001.mem", filepath.Base(dir)}; !slices.Equal(got, want) {
				t.Fatalf("sync after the failed one synced %q, want %q", got, want)
			}
		})
	}
}

// TestSyncWatchOverflowListingFails: when the listing after an overflow
// fails, the next sync lists the directory again (the events the
// overflow lost are still unaccounted for) and syncs the log whose
// creation was lost.
func TestSyncWatchOverflowListingFails(t *testing.T) {
	s, dir, g := overflowed(t)
	s.dir = dir + ".gone" // the listing fails
	if err := s.wait(); err == nil {
		t.Fatal("sync whose listing failed: nil error")
	}
	s.dir = dir
	n := len(g.syncedSince(0))
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if got := g.syncedSince(n); !slices.Contains(got, "00002.mem") || !slices.Contains(got, filepath.Base(dir)) {
		t.Fatalf("after a failed listing the next sync synced %q, want 00002.mem and the directory", got)
	}
}

// TestSyncCloseClosesWatch: close gives back the watch's inotify
// instance (the user has 128, shared by every process), also when
// called twice.
func TestSyncCloseClosesWatch(t *testing.T) {
	before, err := inotifyFDs()
	if err != nil {
		t.Skip(err)
	}
	s, _, _, _ := fakeLogs(t, "00001.mem")
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.watch == nil {
		s.close()
		t.Skip("no inotify instance to be had")
	}
	if n, _ := inotifyFDs(); n != before+1 {
		t.Fatalf("%d inotify descriptors with the watch, want %d", n, before+1)
	}
	s.close()
	s.close()
	if n, _ := inotifyFDs(); n != before {
		t.Fatalf("%d inotify descriptors after close, want %d", n, before)
	}
}

// inotifyFDs counts the process's open inotify descriptors.
func inotifyFDs() (int, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && l == "anon_inode:inotify" {
			n++
		}
	}
	return n, nil
}

// overflowed is a syncer over fake logs whose first sync (with 00001.mem)
// set up a watch, after which the watch's queue overflowed and 00002.mem
// was created, its event lost. It skips the test without a watch.
func overflowed(t *testing.T) (s *syncer, dir string, g *fsyncGate) {
	t.Helper()
	queue := watchQueue(t)
	s, dir, g, _ = fakeLogs(t, "00001.mem")
	t.Cleanup(s.close)
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	if s.watch == nil {
		t.Skip("no inotify instance to be had")
	}
	fill(t, dir, queue+1)
	touch(t, dir, "00002.mem") // its event is lost
	return s, dir, g
}

// watchQueue returns how many events the kernel queues for a watch,
// skipping the test where there is no watch or the queue is too long to
// fill.
func watchQueue(t *testing.T) int {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("no directory watch")
	}
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip(err)
	}
	queue, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || queue > 1<<16 {
		t.Skipf("inotify queue of %q events", b)
	}
	return queue
}

// fill creates n files in dir that are not badger's.
func fill(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		f, err := os.Create(filepath.Join(dir, "filler-"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// TestSyncLogRetiredDuringDBSync: a memtable log that retires while
// DB.Sync runs (which then syncs its successor, the newest) is synced
// as a retired log by the same sync: the sync looks for new logs after
// DB.Sync, not before.
func TestSyncLogRetiredDuringDBSync(t *testing.T) {
	for _, mode := range syncModes {
		t.Run(mode.name, func(t *testing.T) {
			s, dir, g, _ := fakeLogs(t, "00001.mem", "000001.vlog")
			s.noWatch = mode.noWatch
			defer s.close()
			if err := s.wait(); err != nil {
				t.Fatal(err)
			}
			s.syncDB = func() error {
				touch(t, dir, "00002.mem") // log 1 retires, DB.Sync syncs log 2
				return nil
			}
			s.vlogDirty.Store(true) // a large value: DB.Sync runs
			n := len(g.syncedSince(0))
			if err := s.wait(); err != nil {
				t.Fatal(err)
			}
			if got, want := g.syncedSince(n), []string{"00001.mem", filepath.Base(dir)}; !slices.Equal(got, want) {
				t.Fatalf("sync during whose DB.Sync log 1 retired synced %q, want %q", got, want)
			}
		})
	}
}
