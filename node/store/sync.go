package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// errClosed is returned by a sync asked for after Close.
var errClosed = errors.New("store: closed")

// syncer makes committed writes durable with as few syncs as it can: a
// writer that committed asks for a sync that starts after its commit
// (wait); writers asking while a sync runs all share the next one. One
// sync runs at a time.
type syncer struct {
	db  *badger.DB
	dir string
	do  func() error // one sync: syncOnce, or a test's stand-in

	mu      sync.Mutex
	idle    *sync.Cond // signalled when running turns false
	running bool       // a sync is running; guarded by mu
	next    *syncRound // the sync to start after the running one; guarded by mu
	closed  bool       // guarded by mu
	// vlogDirty says a value may have been committed to the value log
	// since the last sync that synced it. Writers set it after their
	// commit (DB.wroteValueLog), a sync clears it before it syncs.
	vlogDirty atomic.Bool

	// The fields below are used by the running sync only.

	// files are the log files the last sync saw, true for a memtable log
	// synced since it stopped being written.
	files map[string]bool
	// wal is the newest memtable log, open while it is the newest (walName).
	wal     *os.File
	walName string
}

// syncRound is one sync and the writers waiting for it.
type syncRound struct {
	done    chan struct{}
	err     error // set before done is closed
	waiters int   // writers queued for it; guarded by syncer.mu (tests read it)
}

func newSyncer(db *badger.DB, dir string) *syncer {
	s := &syncer{db: db, dir: dir, files: map[string]bool{}}
	s.do = s.syncOnce
	s.idle = sync.NewCond(&s.mu)
	return s
}

// wait returns once a sync that started after the call has finished. With
// no sync running the caller runs one itself (a lone writer pays no hand
// off); otherwise it waits for the next one, which the running sync
// starts when it ends.
func (s *syncer) wait() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if s.running {
		if s.next == nil {
			s.next = &syncRound{done: make(chan struct{})}
		}
		r := s.next
		r.waiters++
		s.mu.Unlock()
		<-r.done
		return r.err
	}
	s.running = true
	s.mu.Unlock()
	r := &syncRound{done: make(chan struct{})}
	s.run(r)
	return r.err
}

// run syncs for r, then starts the round queued meanwhile, if any.
func (s *syncer) run(r *syncRound) {
	r.err = s.do()
	close(r.done)
	s.mu.Lock()
	n := s.next
	s.next = nil
	if n != nil && s.closed {
		n.err = errClosed
		close(n.done)
		n = nil
	}
	if n == nil {
		s.running = false
		s.idle.Broadcast()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	go s.run(n)
}

// close fails later syncs and waits for the running one to end; the
// database is closed after it.
func (s *syncer) close() {
	s.mu.Lock()
	s.closed = true
	for s.running {
		s.idle.Wait()
	}
	s.mu.Unlock()
	if s.wal != nil {
		s.wal.Close()
		s.wal = nil
	}
}

// syncOnce puts on disk every write committed before it started.
//
// badger's DB.Sync syncs the active memtable's write-ahead log and the
// current value-log file. A value-log file that was full is synced by
// badger when the next one starts (its truncation syncs it first), but a
// full memtable's log waits unsynced until the memtable is flushed into a
// (synced) table. So each memtable log that is no longer the newest one
// (no longer written) is synced here once, and the directory is synced
// when a log file appeared since the last sync (badger does not sync it
// when it creates one). The logs already synced are not synced again: a
// sync of a clean file still costs a disk cache flush.
//
// The value log is synced only when a value of valueThreshold bytes or
// more was committed since the last sync that synced it (vlogDirty);
// smaller values live in the memtable log with their keys, and nothing
// else writes to the value log (the store runs no value-log GC). A writer
// sets vlogDirty after its commit returned and before it asks for a sync,
// so a sync that clears it started after the commit and syncs the value,
// and a later sync it waits for finds it still set or follows one that
// synced the value. Otherwise only the newest memtable log is synced,
// with fdatasync on its file, which on Linux writes back the pages badger
// dirtied through its shared mapping as msync(MS_SYNC) would.
//
// A commit that landed in a memtable log before the sync started is
// covered whichever log is the newest when the sync lists them: badger's
// one writer goroutine writes a memtable's log and creates the next one
// in turn, so a log that is no longer the newest received its last write
// before its successor appeared. If the commit's log is the newest at the
// listing, it is synced as the newest; if not, it is a retired log, which
// is synced unless a sync after its retirement synced it (and that one saw
// it complete). The newest log is never marked synced: when it retires,
// the next sync syncs it again.
func (s *syncer) syncOnce() error {
	full := s.vlogDirty.Swap(false)
	if full {
		if err := s.db.Sync(); err != nil {
			s.vlogDirty.Store(true)
			return err
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", s.dir, err)
	}
	newFile := false
	seen := make(map[string]bool, len(s.files))
	var mems []string
	newest, newestName := -1, ""
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".mem") {
			mems = append(mems, name)
			if fid, err := strconv.Atoi(strings.TrimSuffix(name, ".mem")); err == nil && fid > newest {
				newest, newestName = fid, name
			}
		} else if !strings.HasSuffix(name, ".vlog") {
			continue
		}
		seen[name] = s.files[name]
		if _, ok := s.files[name]; !ok {
			newFile = true
		}
	}
	if !full && newest >= 0 {
		if err := s.syncWAL(newestName); err != nil {
			return err
		}
	}
	for _, name := range mems {
		if fid, _ := strconv.Atoi(strings.TrimSuffix(name, ".mem")); fid == newest || seen[name] {
			continue
		}
		if err := syncFile(filepath.Join(s.dir, name)); err != nil {
			return err
		}
		seen[name] = true
	}
	if newFile {
		if err := syncFile(s.dir); err != nil {
			return err
		}
	}
	s.files = seen
	return nil
}

// syncWAL syncs the newest memtable log, name, keeping it open while it
// is the newest.
func (s *syncer) syncWAL(name string) error {
	if s.walName != name {
		if s.wal != nil {
			s.wal.Close()
			s.wal = nil
		}
		f, err := os.Open(filepath.Join(s.dir, name))
		if err != nil {
			return fmt.Errorf("opening %s: %w", name, err)
		}
		s.wal, s.walName = f, name
	}
	if err := datasync(s.wal); err != nil {
		return fmt.Errorf("syncing %s: %w", s.walName, err)
	}
	return nil
}

// syncFile syncs the data of the file or directory at path (what msync,
// which badger uses, does too: not the modification time); one deleted meanwhile (a
// memtable log whose table is written) needs nothing.
func syncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = datasync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}
