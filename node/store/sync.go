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

// errSyncPanicked is returned to the writers waiting for a sync that
// panicked; the panic's value follows it in the error.
var errSyncPanicked = errors.New("store: sync panicked")

// errWatchOverflow says a directory watch lost events (the kernel's queue
// was full) or there is no watch: the directory must be listed.
var errWatchOverflow = errors.New("store: directory watch lost events")

// maxSyncs is how many syncs may run at once. A writer that commits while
// a sync runs cannot share it (it may have started before the commit);
// with a second sync started at once instead of after the running one, it
// waits about one sync time instead of one and a half, and the disk
// flushes the two together. Writers asking while maxSyncs run share the
// next one.
const maxSyncs = 2

// syncer makes committed writes durable with as few syncs as it can: a
// writer that committed asks for a sync that starts after its commit
// (wait); with fewer than max syncs running it starts one at once,
// otherwise it waits for the next, which every writer asking meanwhile
// shares.
type syncer struct {
	db  *badger.DB
	dir string
	do  func() error // one sync: syncOnce, or a test's stand-in
	// max is how many syncs may run at once (maxSyncs; tests set it).
	max int
	// syncDB and fsync sync badger's logs (DB.Sync) and a file
	// (datasync); tests make them fail.
	syncDB func() error
	fsync  func(*os.File) error

	mu      sync.Mutex
	idle    *sync.Cond // signalled when a sync ends
	running int        // syncs running; guarded by mu
	next    *syncRound // the sync to start when a running one ends; guarded by mu
	closed  bool       // guarded by mu
	// vlogDirty says a value may have been committed to the value log
	// since the start of the last sync that synced it. Writers set it
	// after their commit (DB.wroteValueLog), a sync clears it (under
	// mu) when it starts and syncs the value log (it claimed it).
	vlogDirty atomic.Bool
	// vlogClaims is the number of running syncs that claimed vlogDirty;
	// a sync that starts while one runs syncs the value log too.
	// Guarded by mu.
	vlogClaims int

	// newestMem is the number of the newest memtable log a finished sync
	// found (every older one is synced), -1 before the first sync;
	// newestVlog is the newest value-log file's, -1 for none. A sync
	// reads them when it starts and raises them when it has synced what
	// it found. Guarded by mu.
	newestMem, newestVlog int
	// wal is the newest memtable log a sync opened, kept open while it
	// is the newest; guarded by mu.
	wal *walFile

	// watch reports the files created in dir since the first sync set
	// it up, before it listed the directory: a sync drains it (under
	// mu) instead of listing the directory. Nil before the first sync
	// and where there is none (noWatch: none to be had, or it failed),
	// when every sync lists the directory. Guarded by mu.
	watch   *logWatch
	noWatch bool // guarded by mu
	// seenMem and seenVlog are the newest memtable log and value-log
	// file the watch reported created (or a listing after it lost
	// events found), -1 for none; relist says it lost events and the
	// directory was not listed since. Guarded by mu.
	seenMem, seenVlog int
	relist            bool
	// listings counts directory listings (tests read it).
	listings atomic.Int64
}

// walFile is an open memtable log.
type walFile struct {
	f   *os.File
	fid int
	// refs counts the syncs using f; the last one closes it once it is
	// no longer syncer.wal. Guarded by syncer.mu.
	refs int
}

// syncRound is one sync and the writers waiting for it.
type syncRound struct {
	done    chan struct{}
	err     error // set before done is closed
	waiters int   // writers queued for it; guarded by syncer.mu (tests read it)
}

func newSyncer(db *badger.DB, dir string) *syncer {
	s := &syncer{db: db, dir: dir, max: maxSyncs, fsync: datasync, newestMem: -1, newestVlog: -1, seenMem: -1, seenVlog: -1}
	s.do = s.syncOnce
	if db != nil {
		s.syncDB = db.Sync
	}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// wait returns once a sync that started after the call has finished. With
// fewer than max syncs running the caller runs one itself (a lone writer
// pays no hand off); otherwise it waits for the next one, which the first
// running sync to end starts when it ends.
func (s *syncer) wait() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	if s.running >= s.max {
		if s.next == nil {
			s.next = &syncRound{done: make(chan struct{})}
		}
		r := s.next
		r.waiters++
		s.mu.Unlock()
		<-r.done
		return r.err
	}
	s.running++
	s.mu.Unlock()
	r := &syncRound{done: make(chan struct{})}
	s.run(r)
	return r.err
}

// run syncs for r, then starts the round queued meanwhile, if any, in
// r's place among the running ones.
func (s *syncer) run(r *syncRound) {
	r.err = s.doOnce()
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
		s.running--
		s.idle.Broadcast()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	go s.run(n)
}

// doOnce is one sync (do); a sync that panics fails with
// errSyncPanicked instead, so that run still releases its place among the
// running ones and its writers get an error: otherwise close would wait
// for it forever, and its writers too.
func (s *syncer) doOnce() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errSyncPanicked, p)
		}
	}()
	return s.do()
}

// close fails later syncs, waits for the running ones to end and stops
// the directory watch; the database is closed after it.
func (s *syncer) close() {
	s.mu.Lock()
	s.closed = true
	for s.running > 0 {
		s.idle.Wait()
	}
	w := s.wal
	s.wal = nil
	watch := s.watch
	s.watch = nil
	s.noWatch = true
	s.mu.Unlock()
	if w != nil {
		w.f.Close() // no sync runs: no refs
	}
	if watch != nil {
		watch.close()
	}
}

// syncOnce puts on disk every write committed before it started. Up to
// max syncs run at once (wait); each reads what the finished ones found
// when it starts and records what it found only once it has synced it,
// so a sync never counts on another one that is still running.
//
// badger's DB.Sync syncs the active memtable's write-ahead log and the
// current value-log file. A value-log file that was full is synced by
// badger when the next one starts (its truncation syncs it first), but a
// full memtable's log waits unsynced until the memtable is flushed into a
// (synced) table. So each memtable log that is no longer the newest one
// (no longer written) is synced here once, and the directory is synced
// when a log file appeared since the last sync (badger does not sync it
// when it creates one). The logs a finished sync synced are not synced
// again: a sync of a clean file still costs a disk cache flush. Syncs
// running at once may each sync the same retired logs and the directory
// (none records them before it has synced them), which costs a flush but
// leaves nothing out.
//
// The value log is synced only when a value of valueThreshold bytes or
// more may have been committed since the start of the last sync that
// synced it; smaller values live in the memtable log with their keys,
// and nothing else writes to the value log (the store runs no value-log
// GC). A writer sets vlogDirty after its commit returned and before it
// asks for a sync; a sync clears it when it starts (under mu) and then
// syncs the value log, having claimed it. So when the writer's own sync
// starts (after the writer set it), vlogDirty is still set (the sync
// claims it), or a sync that started after the commit cleared it and
// either finished having synced the value, or failed and set vlogDirty
// again before it stopped counting in vlogClaims (so under mu: the new
// sync sees one or the other), or still runs, counted in vlogClaims; the
// new sync then syncs the value log too rather than count on it. When
// neither holds, only the newest memtable log is synced, with fdatasync
// on its file, which on Linux writes back the pages badger dirtied
// through its shared mapping as msync(MS_SYNC) would.
//
// The first sync sets up a watch on the directory (inotify, logWatch),
// then lists the directory (logs left by an earlier run, and the newest
// of each kind). Later ones drain the watch (under mu) for the logs
// created since: the kernel queues a file's event before the call that
// created it returns, so the file that received a commit before the sync
// started, or a later one, was reported by this drain or an earlier one,
// unless it existed before the watch, when the first listing found it.
// The newest memtable log is then the newest of those (badger numbers the
// logs it creates one by one, nextMemFid), whether or not it still
// exists: badger deletes a log once its memtable is flushed into a table,
// which may happen to a log that appeared after the last sync before the
// next one looks. When the watch lost events (its queue was full) the
// sync lists the directory under mu after the drain; where there is no
// watch, or it failed, each sync lists the directory (newestMemLog) and
// follows value-log files by number: they are never deleted (no
// value-log GC) and numbered likewise (maxFid+1), so a new one is the
// file one past the newest known, which a stat finds. The value log only
// grows a file when a large value is written, after which its writer
// sets vlogDirty, so only a sync that syncs the value log looks for a
// new value-log file.
//
// A commit that landed in a memtable log before the sync started is
// covered whichever log is the newest when the sync looks: badger's one
// writer goroutine writes a memtable's log and creates the next one in
// turn, so a log that is no longer the newest received its last write
// before its successor appeared. If the commit's log is the newest found,
// it is synced as the newest; if not, it is a retired log, which this
// sync syncs unless a finished sync recorded it as synced, having synced
// it after it found it retired, so after its last write. The newest log
// is never counted as synced: when it retires, the next sync syncs it
// again. The newest log's handle stays open for the syncs that follow,
// and is closed only by the last sync using it once a newer log replaced
// it (openWAL, releaseWAL). A log that is gone when a sync opens or syncs
// it holds nothing to sync: badger deletes a memtable log only when its
// memtable's last reference is dropped, which (the store never drops
// keys or runs value-log GC) happens after the memtable was written into
// a table synced with msync(MS_SYNC) and named in the manifest, synced
// with fsync (handleMemTableFlush, CreateTable, manifest addChanges), or
// for a memtable that held nothing.
//
// A sync that fails (or panics) records nothing it found and leaves
// vlogDirty set, so a later one syncs it all again; its error goes to the
// writers waiting for it only.
func (s *syncer) syncOnce() error {
	s.mu.Lock()
	claimed := s.vlogDirty.Swap(false)
	full := claimed || s.vlogClaims > 0
	if claimed {
		s.vlogClaims++
	}
	knownMem, knownVlog := s.newestMem, s.newestVlog
	s.mu.Unlock()
	if !claimed {
		return s.syncFrom(full, knownMem, knownVlog)
	}
	synced := false
	defer func() {
		s.mu.Lock()
		if !synced {
			// A sync that fails (or panics) leaves the value log to
			// a later one.
			s.vlogDirty.Store(true)
		}
		s.vlogClaims--
		s.mu.Unlock()
	}()
	err := s.syncFrom(full, knownMem, knownVlog)
	synced = err == nil
	return err
}

// syncFrom is syncOnce once it has read what finished syncs found (the
// newest memtable log and value-log file, knownMem and knownVlog) and
// whether it syncs the value log (full).
//
// It looks for the newest memtable log after DB.Sync, not before: DB.Sync
// syncs the log that is the newest when it runs, and a log found newest
// before it may have retired meanwhile, synced neither as the newest nor
// as a retired one.
func (s *syncer) syncFrom(full bool, knownMem, knownVlog int) (err error) {
	if full {
		if err := s.syncDB(); err != nil {
			return err
		}
	}
	if knownMem < 0 {
		return s.syncListed(full)
	}
	newest, newestVlog := knownMem, knownVlog
	s.mu.Lock()
	watched := s.watch != nil
	if watched {
		watched, err = s.drainLocked()
		newest = max(newest, s.seenMem)
		if full {
			newestVlog = max(newestVlog, s.seenVlog)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if !watched {
		if full {
			if newestVlog, err = s.follow(newestVlog, vlogName); err != nil {
				return err
			}
		}
		if newest, err = s.newestMemLog(knownMem); err != nil {
			return err
		}
	}
	newFile := newest != knownMem || newestVlog != knownVlog
	if !full {
		if err := s.syncWAL(newest); err != nil {
			return err
		}
	}
	// The logs that retired since the last finished sync. A sync that
	// fails leaves what it found unrecorded, so a later one syncs them
	// again.
	for fid := knownMem; fid < newest; fid++ {
		if err := s.syncFile(filepath.Join(s.dir, memName(fid))); err != nil {
			return err
		}
	}
	if newFile {
		if err := s.syncDir(s.dir); err != nil {
			return err
		}
	}
	s.found(newest, newestVlog)
	return nil
}

// drainLocked reads the files the watch reported created since the last
// drain into seenMem and seenVlog, and lists the directory into them when
// the watch lost events (now or in a drain whose listing failed). It
// returns false when the watch failed: it is closed, and the caller and
// every later sync list the directory themselves. The listing runs under
// mu, so no sync counts on what the drain read before it found the rest;
// the kernel queues about 16,000 events, so it is rare. Called with mu
// held.
func (s *syncer) drainLocked() (bool, error) {
	err := s.watch.drain(s.created)
	switch {
	case errors.Is(err, errWatchOverflow):
		s.relist = true
	case err != nil:
		s.watch.close()
		s.watch = nil
		s.noWatch = true
		return false, nil
	}
	if s.relist {
		mems, vlog, err := s.listLogs()
		if err != nil {
			return true, err
		}
		for _, fid := range mems {
			s.seenMem = max(s.seenMem, fid)
		}
		s.seenVlog = max(s.seenVlog, vlog)
		s.relist = false
	}
	return true, nil
}

// created notes a file the watch reported created. Called with mu held.
func (s *syncer) created(name []byte) {
	if fid, ok := logNumber(name, ".mem"); ok {
		s.seenMem = max(s.seenMem, fid)
	} else if fid, ok := logNumber(name, ".vlog"); ok {
		s.seenVlog = max(s.seenVlog, fid)
	}
}

// logNumber returns the number of a log file's name with the given
// extension, and whether name is one.
func logNumber[T string | []byte](name T, ext string) (int, bool) {
	base, ok := strings.CutSuffix(string(name), ext)
	if !ok {
		return 0, false
	}
	fid, err := strconv.Atoi(base)
	return fid, err == nil
}

// found records the newest memtable log and value-log file a sync found
// and synced (the newest log as the newest, those before it retired);
// with syncs finishing out of order, the newest recorded stay.
func (s *syncer) found(mem, vlog int) {
	s.mu.Lock()
	s.newestMem = max(s.newestMem, mem)
	s.newestVlog = max(s.newestVlog, vlog)
	s.mu.Unlock()
}

// follow returns the number of the newest log file of a kind (name gives
// its file name), starting from fid, the newest known: badger creates
// them one number after another. Only for value-log files, which are
// never deleted (memtable logs are: newestMemLog).
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

// newestMemLog returns the number of the newest memtable log, fid (the
// newest known) or a later one. It lists the directory rather than
// follow the numbers: a log that appeared after fid may have been deleted
// already (its memtable flushed into a table) while a later one is
// written, so the next number's absence does not say fid is the newest.
func (s *syncer) newestMemLog(fid int) (int, error) {
	mems, _, err := s.listLogs()
	for _, n := range mems {
		fid = max(fid, n)
	}
	return fid, err
}

// listLogs lists the directory for the numbers of its memtable logs and
// of its newest value-log file (-1 for none).
func (s *syncer) listLogs() (mems []int, newestVlog int, err error) {
	s.listings.Add(1)
	newestVlog = -1
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, -1, fmt.Errorf("listing %s: %w", s.dir, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, -1, fmt.Errorf("listing %s: %w", s.dir, err)
	}
	for _, name := range names {
		if fid, ok := logNumber(name, ".mem"); ok {
			mems = append(mems, fid)
		} else if fid, ok := logNumber(name, ".vlog"); ok {
			newestVlog = max(newestVlog, fid)
		}
	}
	return mems, newestVlog, nil
}

// syncListed is the first sync: it sets up the directory watch, then
// lists the directory for the logs an earlier run left, syncs every
// memtable log but the newest (the newest too unless the value log was
// synced, which synced it) and the directory, and notes the newest
// memtable log and value-log file.
func (s *syncer) syncListed(full bool) error {
	s.mu.Lock()
	if s.watch == nil && !s.noWatch {
		// Before the listing: a file created after the listing read
		// the directory must be reported by the watch.
		if w, err := newLogWatch(s.dir); err == nil {
			s.watch = w
		} else {
			s.noWatch = true // every sync lists the directory
		}
	}
	s.mu.Unlock()
	mems, newestVlog, err := s.listLogs()
	if err != nil {
		return err
	}
	newest := -1
	for _, fid := range mems {
		newest = max(newest, fid)
	}
	if newest < 0 {
		// badger.Open creates a memtable log; without one there is
		// nothing to follow.
		return fmt.Errorf("no memtable log in %s", s.dir)
	}
	if !full {
		if err := s.syncWAL(newest); err != nil {
			return err
		}
	}
	for _, fid := range mems {
		if fid == newest {
			continue
		}
		if err := s.syncFile(filepath.Join(s.dir, memName(fid))); err != nil {
			return err
		}
	}
	if err := s.syncDir(s.dir); err != nil {
		return err
	}
	s.found(newest, newestVlog)
	return nil
}

// memName and vlogName are badger's names for the memtable log and the
// value-log file numbered fid (badger's mtFilePath and vlogFilePath).
func memName(fid int) string  { return fmt.Sprintf("%05d.mem", fid) }
func vlogName(fid int) string { return fmt.Sprintf("%06d.vlog", fid) }

// syncWAL syncs the newest memtable log, numbered fid. One that is gone
// was flushed into a synced table (syncOnce): nothing to sync.
func (s *syncer) syncWAL(fid int) error {
	w, err := s.openWAL(fid)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer s.releaseWAL(w)
	if err := s.fsync(w.f); err != nil {
		return fmt.Errorf("syncing %s: %w", memName(fid), err)
	}
	return nil
}

// openWAL returns memtable log fid open, with a reference for the caller:
// syncer.wal when it is that log, else a new handle, which becomes
// syncer.wal unless that is a newer log already (a sync that found fid
// the newest may open it after one that found its successor).
func (s *syncer) openWAL(fid int) (*walFile, error) {
	s.mu.Lock()
	if w := s.wal; w != nil && w.fid == fid {
		w.refs++
		s.mu.Unlock()
		return w, nil
	}
	s.mu.Unlock()
	f, err := openSyncable(filepath.Join(s.dir, memName(fid)))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", memName(fid), err)
	}
	w := &walFile{f: f, fid: fid, refs: 1}
	var drop *os.File
	s.mu.Lock()
	switch old := s.wal; {
	case old != nil && old.fid == fid:
		// Another sync opened it meanwhile.
		old.refs++
		w, drop = old, f
	case old == nil || old.fid < fid:
		s.wal = w
		if old != nil && old.refs == 0 {
			drop = old.f
		}
		// Otherwise the last sync using old closes it.
	}
	s.mu.Unlock()
	if drop != nil {
		drop.Close()
	}
	return w, nil
}

// releaseWAL drops the caller's reference to w, closing it if no sync
// uses it and it is no longer syncer.wal.
func (s *syncer) releaseWAL(w *walFile) {
	s.mu.Lock()
	w.refs--
	last := w.refs == 0 && s.wal != w
	s.mu.Unlock()
	if last {
		w.f.Close()
	}
}

// syncFile syncs the data of the file or directory at path (what msync,
// which badger uses, does too: not the modification time); one deleted
// meanwhile (a memtable log whose table is written) needs nothing.
func syncFile(path string) error { return syncPath(path, datasync) }

// syncFile is syncFile with the syncer's fsync.
func (s *syncer) syncFile(path string) error { return syncPath(path, s.fsync) }

// syncDir syncs the directory dir, so that the names created in it are
// durable, where a directory is synced (dirSyncs: not on Windows).
func syncDir(dir string) error {
	if !dirSyncs {
		return nil
	}
	return syncFile(dir)
}

// syncDir is syncDir with the syncer's fsync.
func (s *syncer) syncDir(dir string) error {
	if !dirSyncs {
		return nil
	}
	return s.syncFile(dir)
}

// syncPath is syncFile with fsync for datasync.
func syncPath(path string, fsync func(*os.File) error) error {
	f, err := openSyncable(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}
