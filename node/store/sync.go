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

	// newestMem is the number of the newest memtable log the last sync
	// found (every older one is synced), -1 before the first sync;
	// newestVlog is the newest value-log file's, -1 for none.
	newestMem, newestVlog int
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
	s := &syncer{db: db, dir: dir, newestMem: -1, newestVlog: -1}
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
// The first sync lists the directory (logs left by an earlier run, and
// the newest of each kind); later ones find new logs without listing it:
// badger numbers the memtable logs it creates after opening one by one
// (nextMemFid) and the value-log files likewise (maxFid+1), so a new log
// is the file one past the newest known, which a stat finds. The value
// log only grows a file when a large value is written, after which its
// writer sets vlogDirty, so only a sync that syncs the value log looks
// for a new value-log file.
//
// A commit that landed in a memtable log before the sync started is
// covered whichever log is the newest when the sync looks: badger's one
// writer goroutine writes a memtable's log and creates the next one in
// turn, so a log that is no longer the newest received its last write
// before its successor appeared. If the commit's log is the newest found,
// it is synced as the newest; if not, it is a retired log, which is
// synced once when a sync first finds it retired. The newest log is never
// counted as synced: when it retires, the next sync syncs it again.
func (s *syncer) syncOnce() (err error) {
	full := s.vlogDirty.Swap(false)
	if full {
		// A sync that fails leaves the value log to the next one.
		defer func() {
			if err != nil {
				s.vlogDirty.Store(true)
			}
		}()
		if err := s.db.Sync(); err != nil {
			return err
		}
	}
	if s.newestMem < 0 {
		return s.syncListed(full)
	}
	newFile := false
	newestVlog := s.newestVlog
	if full {
		if newestVlog, err = s.follow(newestVlog, vlogName); err != nil {
			return err
		}
		newFile = newestVlog != s.newestVlog
	}
	newest, err := s.follow(s.newestMem, memName)
	if err != nil {
		return err
	}
	if newest != s.newestMem {
		newFile = true
	}
	if !full {
		if err := s.syncWAL(memName(newest)); err != nil {
			return err
		}
	}
	// The logs that retired since the last sync. A sync that fails
	// leaves what it found unrecorded, so the next one syncs them again.
	for fid := s.newestMem; fid < newest; fid++ {
		if err := syncFile(filepath.Join(s.dir, memName(fid))); err != nil {
			return err
		}
	}
	if newFile {
		if err := syncFile(s.dir); err != nil {
			return err
		}
	}
	s.newestMem, s.newestVlog = newest, newestVlog
	return nil
}

// follow returns the number of the newest log file of a kind (name gives
// its file name), starting from fid, the newest known: badger creates
// them one number after another.
func (s *syncer) follow(fid int, name func(int) string) (int, error) {
	for {
		_, err := os.Stat(filepath.Join(s.dir, name(fid+1)))
		if errors.Is(err, fs.ErrNotExist) {
			return fid, nil
		}
		if err != nil {
			return fid, fmt.Errorf("looking for a new log: %w", err)
		}
		fid++
	}
}

// syncListed is the first sync: it lists the directory for the logs an
// earlier run left, syncs every memtable log but the newest (the newest
// too unless the value log was synced, which synced it) and the
// directory, and notes the newest memtable log and value-log file.
func (s *syncer) syncListed(full bool) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", s.dir, err)
	}
	var mems []int
	newest, newestVlog := -1, -1
	for _, e := range entries {
		name := e.Name()
		if base, ok := strings.CutSuffix(name, ".mem"); ok {
			if fid, err := strconv.Atoi(base); err == nil {
				mems = append(mems, fid)
				newest = max(newest, fid)
			}
		} else if base, ok := strings.CutSuffix(name, ".vlog"); ok {
			if fid, err := strconv.Atoi(base); err == nil {
				newestVlog = max(newestVlog, fid)
			}
		}
	}
	if newest < 0 {
		// badger.Open creates a memtable log; without one there is
		// nothing to follow.
		return fmt.Errorf("no memtable log in %s", s.dir)
	}
	if !full {
		if err := s.syncWAL(memName(newest)); err != nil {
			return err
		}
	}
	for _, fid := range mems {
		if fid == newest {
			continue
		}
		if err := syncFile(filepath.Join(s.dir, memName(fid))); err != nil {
			return err
		}
	}
	if err := syncFile(s.dir); err != nil {
		return err
	}
	s.newestMem, s.newestVlog = newest, newestVlog
	return nil
}

// memName and vlogName are badger's names for the memtable log and the
// value-log file numbered fid (badger's mtFilePath and vlogFilePath).
func memName(fid int) string  { return fmt.Sprintf("%05d.mem", fid) }
func vlogName(fid int) string { return fmt.Sprintf("%06d.vlog", fid) }

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
