package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"

	"github.com/mimnode/mimnode/internal/osstat"
)

// ErrNotFound is returned by Txn.Get when the key does not exist.
var ErrNotFound = errors.New("store: key not found")

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("store: database is in use by another process")

// ErrConflict is returned by Update when a transaction still conflicts after
// all retries.
var ErrConflict = errors.New("store: transaction conflict")

// Options tunes the database. The zero value is a small-footprint setup
// suited to an agency node; tests may set InMemory.
type Options struct {
	// InMemory keeps everything in memory (dir is ignored). For tests only:
	// nothing survives Close.
	InMemory bool
	// Logger receives badger's warnings and errors; nil discards them.
	Logger *slog.Logger
	// CacheMiB is the block cache size in MiB (default 32).
	CacheMiB int64
	// BlobsDir is where Blobs keeps its files (default: the database's
	// directory with ".blobs" appended, beside it: badger walks its own
	// directory every minute to size its files). Created on first use.
	BlobsDir string
	// MinFree is the free disk space, in bytes, below which writes fail
	// with ErrDiskFull (default DefaultMinFree; room.go).
	MinFree int64
	// DiskFree, if set, replaces the reading of the disk's free space
	// (tests).
	DiskFree func(dir string) (uint64, error)
}

// DB is a node's database. It is safe for concurrent use.
type DB struct {
	db  *badger.DB
	dir string // "" in memory
	// room refuses writes while the disk is nearly full; nil in memory.
	room *room
	// sync makes committed writes durable; nil for an in-memory store.
	sync *syncer
	// blobs is the blob directory; nil for an in-memory store.
	blobs *Blobs

	// disk is the last DiskBytes measurement, taken at diskAt.
	diskMu sync.Mutex
	disk   int64
	diskAt time.Time
}

const updateRetries = 16

// valueThreshold is the size from which a value goes to the value log
// instead of the LSM tree (on disk; see Open). The syncer syncs the value
// log only after such a value was written (sync.go).
const valueThreshold = 32 << 10

// Open opens (creating if needed) the database in dir.
func Open(dir string, o Options) (*DB, error) {
	bo := badger.DefaultOptions(dir)
	if o.InMemory {
		bo = badger.DefaultOptions("").WithInMemory(true)
	}
	cache := o.CacheMiB
	if cache <= 0 {
		cache = 32
	}
	// An agency node is mostly idle: keep the memory footprint small (the
	// defaults reserve hundreds of MiB). Badger does not sync its writes:
	// DB makes them durable itself (sync.go), so that writers committing
	// at the same time share one sync and bulk writers can sync less often.
	bo = bo.WithSyncWrites(false).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		// Eight level-0 tables before compacting them into level 1 (was
		// three): entity, index and history keys are spread over the whole
		// key space, so each L0->L1 compaction rewrites most of level 1,
		// and doing it less often cut the CPU time of a batch upsert by
		// 10-20% (BenchmarkBatchUpsert) at the same store size.
		WithNumLevelZeroTables(8).
		WithNumLevelZeroTablesStall(16).
		WithBlockCacheSize(cache << 20).
		WithIndexCacheSize(16 << 20).
		WithValueLogFileSize(256 << 20).
		WithNumCompactors(2).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{l: o.Logger, cacheMiB: cache, cacheNote: new(atomic.Int64)})
	if !o.InMemory {
		// Values from 32 KiB up (transfer blocks of 64 KiB to 1 MiB) go to
		// the value log: written once and read back with one copy, instead
		// of being compressed into LSM tables and rewritten by every
		// compaction. Entities and index entries stay in the LSM tree. An
		// in-memory store has no value log, and badger refuses values above
		// the threshold there, so it keeps the default.
		bo = bo.WithValueThreshold(valueThreshold).
			// A value-log entry whose key reached the disk before its
			// bytes did (a machine crash before the sync that would have
			// covered both) reads as an error rather than as whatever
			// bytes are at its offset.
			WithVerifyValueChecksum(true)
	}
	var kept []string
	var rm *room
	if !o.InMemory {
		rm = newRoom(dir, o)
		// Opening writes too (a new memtable, the log's replay): on a
		// full disk it would crash inside badger.
		if err := rm.checkToStart(); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		var err error
		if kept, err = keepOrphanTables(dir, bo); errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("open store %s: %w (the user running mimnode must own the data directory and be able to read and write every file in it)", dir, err)
		} else if err != nil {
			return nil, fmt.Errorf("open store %s: %w (the store's files look damaged: stop every process using the data directory and restore %s from a backup; its data cannot be read as it is)", dir, err, dir)
		}
	}
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("open store %s: %w", dir, ErrLocked)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("open store %s: %w (the user running mimnode must own the data directory and be able to read and write every file in it)", dir, err)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
		// What is left is badger finding its files unreadable: a
		// manifest, table or log damaged on disk.
		return nil, fmt.Errorf("open store %s: %w (the store's files look damaged: stop every process using the data directory and restore %s from a backup; its data cannot be read as it is)", dir, err, dir)
	}
	if len(kept) > 0 && o.Logger != nil {
		o.Logger.Warn("the store's MANIFEST does not list some of its table files; they were kept aside instead of deleted. "+
			"After a crash during a compaction this is expected and they may be removed; if the node now misses data, stop it and restore the store from a backup, or ask for help with the kept files",
			"dir", filepath.Join(dir, orphanDir), "tables", len(kept))
	}
	d := &DB{db: db, dir: dir, room: rm}
	if !o.InMemory {
		d.sync = newSyncer(db, dir)
		blobs := o.BlobsDir
		if blobs == "" {
			blobs = filepath.Clean(dir) + ".blobs"
		}
		d.blobs = newBlobs(blobs)
		d.blobs.room = rm
	}
	return d, nil
}

// orphanDir is where Open keeps the table files the MANIFEST does not
// list, inside the store's directory (badger reads only its top level).
const orphanDir = "orphaned-tables"

// keepOrphanTables moves the table files in dir that its MANIFEST does not
// list into dir/orphanDir, and returns their names. Badger deletes such
// files when it opens: after a crash during a compaction they are its
// unfinished output, whose data is still in the tables listed; but a
// MANIFEST cut short by damage lists fewer tables than hold data, and
// opening would delete the store's data for good. Kept aside, nothing is
// lost either way. Called before badger takes its directory lock: the
// node holds the data directory's lock (node.lockDir) whenever it opens
// the store.
func keepOrphanTables(dir string, bo badger.Options) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a new store, or one badger refuses below
	}
	if err != nil {
		return nil, err
	}
	mf, _, err := badger.ReplayManifestFile(f, bo.ExternalMagicVersion, bo)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the MANIFEST: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, e := range entries {
		id, ok := table.ParseFileID(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		if _, listed := mf.Tables[id]; listed {
			if err := checkTable(filepath.Join(dir, e.Name())); err != nil {
				return kept, fmt.Errorf("table file %s is damaged: %w", e.Name(), err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, orphanDir), 0o700); err != nil {
			return kept, err
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, orphanDir, e.Name())); err != nil {
			return kept, err
		}
		kept = append(kept, e.Name())
	}
	return kept, nil
}

// Close flushes and closes the database.
func (d *DB) Close() error {
	if d.sync != nil {
		d.sync.close()
	}
	if d.blobs != nil {
		d.blobs.close()
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(tx *Txn) error) error {
	return d.db.View(func(t *badger.Txn) error { return fn(&Txn{t: t}) })
}

// Update runs fn in a read-write transaction and commits it durably: it
// returns once a sync that started after the commit has finished. A
// transaction that wrote nothing (no Set or Delete) has nothing to make
// durable and returns without waiting for the disk; what it read may then
// be a write of another caller whose own Update has not returned yet, as
// with View. fn may be called more than once if the transaction conflicts
// with another one. ErrTxnTooBig from a huge transaction is returned as
// is; use Batch for bulk writes that need no isolation.
func (d *DB) Update(fn func(tx *Txn) error) error {
	wrote, err := d.update(fn)
	if err != nil || !wrote {
		return err
	}
	return d.Sync()
}

// UpdateNoSync is Update without waiting for the disk: the commit is
// visible at once and survives a crash of the process, but not a crash of
// the machine until a Sync called after it returns. A writer that commits
// while holding a lock uses it to let the lock go before the sync, and
// then calls Sync: the next writer commits while this one's sync runs, and
// their syncs are shared.
func (d *DB) UpdateNoSync(fn func(tx *Txn) error) error {
	_, err := d.update(fn)
	return err
}

// update commits fn's transaction, retrying conflicts, and reports
// whether the committed run of fn wrote anything.
func (d *DB) update(fn func(tx *Txn) error) (wrote bool, err error) {
	if err := d.room.check(); err != nil {
		return false, err
	}
	for i := 0; i < updateRetries; i++ {
		var tx *Txn
		err := d.db.Update(func(t *badger.Txn) error {
			tx = &Txn{t: t}
			return fn(tx)
		})
		// After the commit, whatever its outcome: the sync that sees the
		// note starts after the value reached the value log.
		if tx != nil && tx.big {
			d.wroteValueLog()
		}
		if errors.Is(err, badger.ErrConflict) {
			continue
		}
		return tx != nil && tx.wrote, err
	}
	return false, ErrConflict
}

// Sync returns once every write committed before it was called is on
// disk. Callers that wrote with Batch.FlushNoSync use it to establish
// durability themselves; writers calling it at the same time share syncs.
func (d *DB) Sync() error {
	if d.sync == nil {
		return nil
	}
	if err := d.sync.wait(); err != nil {
		return fmt.Errorf("sync store: %w", err)
	}
	return nil
}

// wroteValueLog notes that a write committed (or may have) a value to
// the value log, so the next sync syncs it.
func (d *DB) wroteValueLog() {
	if d.sync != nil {
		d.sync.vlogDirty.Store(true)
	}
}

// IsTooBig reports whether err says a transaction grew past what one badger
// transaction can hold.
func IsTooBig(err error) bool { return errors.Is(err, badger.ErrTxnTooBig) }

// TxnLimits returns how many bytes and how many entries one Update
// transaction may hold. Badger counts an entry as its key and value
// lengths plus 12 bytes; past either limit Set fails with an error
// IsTooBig recognizes, after all the work of building the transaction.
func (d *DB) TxnLimits() (bytes, entries int64) {
	return d.db.MaxBatchSize(), d.db.MaxBatchCount()
}

// DiskFree returns the free space of the disk holding the store, as the
// writes' guard reads it (room.go); 0 in memory.
func (d *DB) DiskFree() (uint64, error) {
	if d.room == nil {
		return 0, nil
	}
	return d.room.diskFree()
}

// diskEvery is how long DiskBytes reuses a measurement: it walks the
// store's directories, and status and metrics may ask often.
const diskEvery = 10 * time.Second

// DiskBytes returns the disk space the store takes: the blocks allocated
// to its database files (tables, logs, value log; not the sparse part of
// files badger sizes ahead) and to its blob files. 0 in memory. (Badger's
// own Size is 0 unless its metrics are on, which cost every write.)
func (d *DB) DiskBytes() int64 {
	if d.dir == "" {
		return 0
	}
	d.diskMu.Lock()
	defer d.diskMu.Unlock()
	if time.Since(d.diskAt) < diskEvery {
		return d.disk
	}
	n, _ := osstat.DirAllocated(d.dir, nil)
	if d.blobs != nil {
		b, _ := osstat.DirAllocated(d.blobs.Dir(), nil)
		n += b
	}
	d.disk, d.diskAt = n, time.Now()
	return n
}

// Txn is one transaction. It must not be used after the function that
// received it returns.
type Txn struct {
	t *badger.Txn
	// big says a value of valueThreshold bytes or more was set: the
	// commit writes to the value log.
	big bool
	// wrote says Set or Delete was called: the commit has something to
	// make durable.
	wrote bool
}

// Get returns a copy of the value at key, or ErrNotFound.
func (tx *Txn) Get(key []byte) ([]byte, error) {
	it, err := tx.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return it.ValueCopy(nil)
}

// AppendValue appends the value at key to dst and returns the extended
// slice, or ErrNotFound: one copy, into a buffer the caller reuses.
func (tx *Txn) AppendValue(dst, key []byte) ([]byte, error) {
	it, err := tx.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return dst, ErrNotFound
	}
	if err != nil {
		return dst, err
	}
	err = it.Value(func(v []byte) error {
		dst = append(dst, v...)
		return nil
	})
	return dst, err
}

// Has reports whether key exists.
func (tx *Txn) Has(key []byte) (bool, error) {
	_, err := tx.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Set writes value at key.
func (tx *Txn) Set(key, value []byte) error {
	tx.wrote = true
	if len(value) >= valueThreshold {
		tx.big = true
	}
	return tx.t.Set(key, value)
}

// Delete removes key.
func (tx *Txn) Delete(key []byte) error {
	tx.wrote = true
	return tx.t.Delete(key)
}

// IterOptions selects the keys an iteration visits.
type IterOptions struct {
	// Prefix limits the iteration to keys that start with it.
	Prefix []byte
	// Start is the first key visited (the last one when Reverse); nil starts
	// at the beginning of Prefix (its end when Reverse).
	Start []byte
	// Reverse visits keys in descending order.
	Reverse bool
	// KeysOnly skips reading values; fn then gets a nil value.
	KeysOnly bool
}

// ErrStop may be returned by an iteration callback to end it early without
// an error.
var ErrStop = errors.New("store: stop iteration")

// Iterate calls fn for each key selected by o, in key order. The key and
// value passed to fn are only valid during the call; copy them to keep them.
func (tx *Txn) Iterate(o IterOptions, fn func(key, value []byte) error) error {
	it := tx.NewIterator(o)
	defer it.Close()
	for ; it.Valid(); it.Next() {
		var val []byte
		if !o.KeysOnly {
			v, err := it.Value()
			if err != nil {
				return err
			}
			val = v
		}
		if err := fn(it.Key(), val); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Iterator walks the keys o selects in key order, one Next at a time, for
// callers that merge several ranges (Iterate suits everything else). It
// must be closed before the transaction that made it ends.
type Iterator struct {
	it     *badger.Iterator
	prefix []byte
}

// NewIterator returns an iterator positioned at the first key o selects.
func (tx *Txn) NewIterator(o IterOptions) *Iterator {
	bo := badger.DefaultIteratorOptions
	bo.Prefix = o.Prefix
	bo.Reverse = o.Reverse
	bo.PrefetchValues = !o.KeysOnly
	it := &Iterator{it: tx.t.NewIterator(bo), prefix: o.Prefix}
	start := o.Start
	if start == nil {
		start = o.Prefix
		if o.Reverse {
			start = prefixEnd(o.Prefix)
		}
	}
	it.it.Seek(start)
	return it
}

// Valid reports whether the iterator is at a key (false once past the last).
func (it *Iterator) Valid() bool { return it.it.ValidForPrefix(it.prefix) }

// Key is the current key, valid until Next.
func (it *Iterator) Key() []byte { return it.it.Item().Key() }

// Value returns a copy of the current value.
func (it *Iterator) Value() ([]byte, error) { return it.it.Item().ValueCopy(nil) }

// Next moves to the following key.
func (it *Iterator) Next() { it.it.Next() }

// Close releases the iterator.
func (it *Iterator) Close() { it.it.Close() }

// Present reports which of keys (all under prefix) the store holds. The
// keys are visited in key order with one iterator over keys only: for
// keys that lie close together (a chunk of ids in order), one seek costs
// less than a lookup per key, and a key that is absent costs nothing more
// than stepping past its neighbours.
func (tx *Txn) Present(prefix []byte, keys [][]byte) []bool {
	present := make([]bool, len(keys))
	if len(keys) == 0 {
		return present
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	it := tx.NewIterator(IterOptions{Prefix: prefix, Start: keys[order[0]], KeysOnly: true})
	defer it.Close()
	for _, i := range order {
		for it.Valid() && bytes.Compare(it.Key(), keys[i]) < 0 {
			it.Next()
		}
		if !it.Valid() {
			break
		}
		present[i] = bytes.Equal(it.Key(), keys[i])
	}
	return present
}

// prefixEnd returns a key just past every key with prefix p, for reverse
// seeks.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	return append(end, 0xff, 0xff, 0xff, 0xff)
}

// Batch applies many writes without isolation, splitting them into as many
// transactions as needed. Flush makes them durable.
type Batch struct {
	wb *badger.WriteBatch
	d  *DB
	// big says a value of valueThreshold bytes or more was queued.
	big bool
}

// NewBatch starts a batch.
func (d *DB) NewBatch() *Batch { return &Batch{wb: d.db.NewWriteBatch(), d: d} }

// Set queues a write.
func (b *Batch) Set(key, value []byte) error {
	if err := b.d.room.check(); err != nil {
		return err
	}
	if len(value) >= valueThreshold {
		b.big = true
	}
	return b.wb.Set(key, value)
}

// Delete queues a deletion.
func (b *Batch) Delete(key []byte) error { return b.wb.Delete(key) }

// Flush commits everything queued and waits until it is on disk.
func (b *Batch) Flush() error {
	if err := b.FlushNoSync(); err != nil {
		return err
	}
	return b.d.Sync()
}

// FlushNoSync commits everything queued without waiting for the disk: the
// writes are visible at once and survive a crash of the process, but a
// crash of the machine may lose them until a later Sync (or any durable
// write that returned after them) has finished. See the package comment.
func (b *Batch) FlushNoSync() error {
	err := b.wb.Flush()
	b.noteValueLog()
	return err
}

// Cancel drops a batch that will not be flushed.
func (b *Batch) Cancel() {
	b.wb.Cancel()
	// Transactions the batch committed before may hold values in the
	// value log; the next sync syncs it, so that no synced key is left
	// pointing at an unsynced value.
	b.noteValueLog()
}

// noteValueLog tells the syncer, after the batch's commits, that they
// may have written to the value log.
func (b *Batch) noteValueLog() {
	if b.big {
		b.d.wroteValueLog()
	}
}

// badgerLogger sends badger's log lines to slog; nil discards them.
type badgerLogger struct {
	l        *slog.Logger
	cacheMiB int64
	// cacheNote is when the last note on the cache's size was logged
	// (unix seconds).
	cacheNote *atomic.Int64
}

// cacheNoteEvery spaces the notes on the cache's size: badger checks it
// every minute and warns in two multi-line messages each time, which is
// noise after a large transfer (a burst of reads the cache cannot hold).
const cacheNoteEvery = time.Hour

// cacheWarning reports whether msg is one of badger's warnings that its
// block or index cache seems small, and logs a note saying which setting
// to change instead, at most every cacheNoteEvery.
func (b badgerLogger) cacheWarning(msg string) bool {
	if !strings.Contains(msg, "might be too small. Metrics:") && !strings.HasPrefix(msg, "Cache life expectancy") {
		return false
	}
	now := time.Now().Unix()
	last := b.cacheNote.Load()
	if now-last >= int64(cacheNoteEvery/time.Second) && b.cacheNote.CompareAndSwap(last, now) {
		b.l.Info("the store's cache holds less than recent reads used; if reads are slow, raise [store] cache_mib in config.toml",
			"component", "badger", "cache_mib", b.cacheMiB)
	}
	return true
}

func (b badgerLogger) Errorf(f string, a ...any) {
	if b.l != nil {
		b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
	}
}

func (b badgerLogger) Warningf(f string, a ...any) {
	if b.l == nil {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(f, a...))
	if b.cacheWarning(msg) {
		return
	}
	b.l.Warn(msg, "component", "badger")
}

func (b badgerLogger) Infof(string, ...any)  {}
func (b badgerLogger) Debugf(string, ...any) {}
