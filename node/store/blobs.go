package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrBadBlobName is returned for a blob name that is not 3 to 255 ASCII
// letters and digits.
var ErrBadBlobName = errors.New("store: bad blob name")

// Blobs is a directory of immutable named values beside the database, for
// large values written once and read whole (transfer blocks, named by
// their CIDs): a value is written with one write and read with one read,
// with no log, compaction or memory mapping in between.
//
// Layout: Put appends each blob to a segment, <dir>/seg/<n>.blk, and then
// a record of its name, offset and length to the segment's index,
// <dir>/seg/<n>.idx; a process starts a new segment on its first Put and
// another once one holds segmentBytes. The indexes are read into memory
// on first use. Blobs written by nodes before segments are files
// <dir>/<shard>/<name>, shard being the next-to-last two characters of the
// name; they are still read, counted and deleted, when the directory held
// a shard directory as the indexes were read (no Put writes one: a store
// that had none asks the index alone). One file per blob cost
// about three times the CPU of appending to a segment (file creation and
// first-touch page cache), which a transfer pays on every block.
//
// Durability: Put does not sync. Sync makes every blob Put before it on
// disk: an fdatasync of each segment and index written since the last
// Sync (one or two) and of each directory made. (With a file per blob
// that was one syncfs of the whole file system, which also waited for
// every other writer's dirty data there: the database's, other
// processes'.) A blob whose Put returned but that no Sync covered may, after
// a crash of the machine, be missing or hold other bytes (an index record
// can reach the disk before the data); a caller that puts without a sync
// each therefore reports a blob only after a Sync, and checks blobs it
// reads against their names when they may come from before a crash. After
// a crash of the process alone every blob whose Put returned is there.
type Blobs struct {
	dir string
	// room refuses writes while the disk is nearly full (room.go).
	room *room

	// smu serializes Syncs: a Sync takes the segments written since the
	// last one, so one that runs while another syncs what it took must
	// wait for it before it returns.
	smu sync.Mutex
	// wmu serializes appends to the current segment and its index.
	wmu      sync.Mutex
	cur      *segment   // the segment Put appends to, nil before the first; guarded by wmu
	unsynced []*segment // segments written since the last Sync; guarded by wmu
	idxs     []*os.File // indexes of earlier segments, closed by close; guarded by wmu

	mu      sync.Mutex
	made    bool                // the blob and segment directories exist; guarded by mu
	pending []string            // directories made since the last Sync; guarded by mu
	loaded  bool                // index read from the segment indexes; guarded by mu
	legacy  bool                // dir held shard directories at load: blobs may be files; guarded by mu
	index   map[string]blobLoc  // blobs in segments; guarded by mu
	segs    map[uint32]*os.File // segment data files open for reading; guarded by mu
	next    uint32              // the number of the next new segment; guarded by mu
}

// segmentBytes is the size past which Put starts a new segment (a
// variable for tests).
var segmentBytes int64 = 1 << 30

// blobsDatasync is how Sync syncs a segment's files (a variable for
// tests).
var blobsDatasync = datasync

// segment is a segment open for appending.
type segment struct {
	n         uint32
	data, idx *os.File
	size      int64 // bytes in data
	dirty     bool  // in Blobs.unsynced; guarded by Blobs.wmu
}

// blobLoc is where a blob lives in a segment.
type blobLoc struct {
	seg    uint32
	off, n int64
}

// An index record: kind (recPut, recDelete), the name's length (1 byte),
// the name, then offset and length (little-endian uint64, zero for a
// deletion). Records are appended; a later one for a name wins.
const (
	recPut    = 1
	recDelete = 2
	recFixed  = 2 + 16 // kind, name length, offset, length
)

func newBlobs(dir string) *Blobs {
	return &Blobs{dir: dir}
}

// Blobs returns the database's blob directory, or nil for an in-memory
// database (whose callers keep large values in the database itself).
func (d *DB) Blobs() *Blobs { return d.blobs }

// Dir is the directory the blobs live in.
func (b *Blobs) Dir() string { return b.dir }

func (b *Blobs) segDir() string { return filepath.Join(b.dir, "seg") }

func segPath(dir string, n uint32, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%08d.%s", n, ext))
}

func checkName(name string) error {
	if len(name) < 3 || len(name) > 255 {
		return fmt.Errorf("%w: %q", ErrBadBlobName, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return fmt.Errorf("%w: %q", ErrBadBlobName, name)
		}
	}
	return nil
}

// path is where an earlier node kept the blob name, a valid name
// (checkName), as a file of its own.
func (b *Blobs) path(name string) string {
	return filepath.Join(b.dir, name[len(name)-3:len(name)-1], name)
}

// load reads the segment indexes once; the caller holds mu.
func (b *Blobs) load() error {
	if b.loaded {
		return nil
	}
	index := map[string]blobLoc{}
	var next uint32
	entries, err := os.ReadDir(b.segDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading blob segments: %w", err)
	}
	// ReadDir sorts by name, and the numbers have a fixed width: oldest first.
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".idx")
		n, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			continue
		}
		if err := readIndex(b.segDir(), uint32(n), index); err != nil {
			return err
		}
		next = max(next, uint32(n)+1)
	}
	legacy, err := hasShards(b.dir)
	if err != nil {
		return err
	}
	b.index, b.next, b.loaded, b.legacy = index, next, true, legacy
	if b.segs == nil {
		b.segs = map[uint32]*os.File{}
	}
	return nil
}

// hasShards says whether dir holds a shard directory of the per-file
// layout (any directory but the segments', or a symbolic link), where
// blobs may be files.
func hasShards(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("reading blob directory: %w", err)
	}
	for _, e := range entries {
		// A symbolic link may be a shard moved elsewhere.
		if (e.IsDir() || e.Type()&fs.ModeSymlink != 0) && e.Name() != "seg" {
			return true, nil
		}
	}
	return false, nil
}

// readIndex reads the records of segment n into index. It stops at the
// first record that is cut short or does not make sense (what a crash can
// leave at the end); a blob whose record is lost that way is missing.
func readIndex(dir string, n uint32, index map[string]blobLoc) error {
	raw, err := os.ReadFile(segPath(dir, n, "idx"))
	if err != nil {
		return fmt.Errorf("reading blob segment index: %w", err)
	}
	fi, err := os.Stat(segPath(dir, n, "blk"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading blob segment: %w", err)
	}
	var size int64
	if err == nil {
		size = fi.Size()
	}
	for len(raw) >= recFixed {
		kind, l := raw[0], int(raw[1])
		if len(raw) < recFixed+l || kind != recPut && kind != recDelete {
			break
		}
		name := string(raw[2 : 2+l])
		off := int64(binary.LittleEndian.Uint64(raw[2+l:]))
		size1 := int64(binary.LittleEndian.Uint64(raw[10+l:]))
		if checkName(name) != nil || off < 0 || size1 < 0 || off > size || size1 > size-off {
			break
		}
		if kind == recPut {
			index[name] = blobLoc{seg: n, off: off, n: size1}
		} else {
			delete(index, name)
		}
		raw = raw[recFixed+l:]
	}
	return nil
}

// appendRecord appends an index record to a segment's index idx; the
// caller holds wmu.
func appendRecord(idx *os.File, kind byte, name string, off, n int64) error {
	rec := make([]byte, 0, recFixed+len(name))
	rec = append(rec, kind, byte(len(name)))
	rec = append(rec, name...)
	rec = binary.LittleEndian.AppendUint64(rec, uint64(off))
	rec = binary.LittleEndian.AppendUint64(rec, uint64(n))
	_, err := idx.Write(rec)
	return err
}

// segment returns the segment to append n bytes to, starting one when
// there is none yet or the current one is full; the caller holds wmu.
func (b *Blobs) segment(n int) (*segment, error) {
	if b.cur != nil && (b.cur.size == 0 || b.cur.size+int64(n) <= segmentBytes) {
		return b.cur, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.load(); err != nil {
		return nil, err
	}
	if err := b.ensureDir(); err != nil {
		return nil, err
	}
	num := b.next
	// Numbers come from the indexes: a data file left without one by a
	// crash is written over.
	data, err := os.OpenFile(segPath(b.segDir(), num, "blk"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating blob segment: %w", err)
	}
	idx, err := os.OpenFile(segPath(b.segDir(), num, "idx"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		data.Close()
		return nil, fmt.Errorf("creating blob segment index: %w", err)
	}
	if b.cur != nil {
		// Its data file stays open for reading (segs); a Sync may be
		// syncing both.
		b.idxs = append(b.idxs, b.cur.idx)
	}
	b.next++
	b.segs[num] = data
	b.cur = &segment{n: num, data: data, idx: idx}
	b.pending = append(b.pending, b.segDir()) // the new names
	return b.cur, nil
}

// ensureDir creates the blob and segment directories once; the caller
// holds mu.
func (b *Blobs) ensureDir() error {
	if b.made {
		return nil
	}
	if err := os.MkdirAll(b.segDir(), 0o750); err != nil {
		return fmt.Errorf("creating blob directory: %w", err)
	}
	b.made = true
	b.pending = append(b.pending, b.dir, filepath.Dir(b.dir))
	return nil
}

// Put writes data as the blob name, not yet synced (see Sync). A blob
// that exists is written again (its bytes are the same by contract, or
// a corrupted copy being replaced); the later copy is the one read.
func (b *Blobs) Put(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := b.room.check(); err != nil {
		return err
	}
	// The room is taken under wmu and written outside it, so that
	// concurrent Puts (a fetch's streams) copy into the page cache at the
	// same time; the record follows the bytes, under wmu again.
	b.wmu.Lock()
	seg, err := b.segment(len(data))
	if err != nil {
		b.wmu.Unlock()
		return fmt.Errorf("writing blob %s: %w", name, err)
	}
	off := seg.size
	seg.size += int64(len(data))
	b.wmu.Unlock()
	if _, err := seg.data.WriteAt(data, off); err != nil {
		// The room stays unnamed, as a deleted blob's bytes do.
		return fmt.Errorf("writing blob %s: %w", name, err)
	}
	// The bytes are in the file before the record names them (and a
	// failed record leaves them unnamed). The record goes to the index of
	// the blob's segment, which may no longer be the current one.
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.written(seg)
	if err := appendRecord(seg.idx, recPut, name, off, int64(len(data))); err != nil {
		return fmt.Errorf("writing blob %s: %w", name, err)
	}
	b.mu.Lock()
	b.index[name] = blobLoc{seg: seg.n, off: off, n: int64(len(data))}
	b.mu.Unlock()
	return nil
}

// lookup returns where the blob name is in a segment, and the segment's
// file, or ok false for a blob not in a segment; file is the path where
// it may also be a file of its own, "" unless the store has the per-file
// layout.
func (b *Blobs) lookup(name string) (loc blobLoc, f *os.File, ok bool, file string, err error) {
	if err := checkName(name); err != nil {
		return blobLoc{}, nil, false, "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.load(); err != nil {
		return blobLoc{}, nil, false, "", err
	}
	if b.legacy {
		file = b.path(name)
	}
	loc, ok = b.index[name]
	if !ok {
		return blobLoc{}, nil, false, file, nil
	}
	f = b.segs[loc.seg]
	if f == nil {
		if f, err = os.Open(segPath(b.segDir(), loc.seg, "blk")); err != nil {
			return blobLoc{}, nil, false, "", fmt.Errorf("opening blob segment: %w", err)
		}
		b.segs[loc.seg] = f
	}
	return loc, f, true, file, nil
}

// written notes that seg has writes to sync; the caller holds wmu.
func (b *Blobs) written(seg *segment) {
	if !seg.dirty {
		seg.dirty = true
		b.unsynced = append(b.unsynced, seg)
	}
}

// Sync returns once every blob whose Put returned before the call is on
// disk, with its name. Puts go on while it syncs; Syncs run one at a
// time.
func (b *Blobs) Sync() error {
	b.smu.Lock()
	defer b.smu.Unlock()
	b.wmu.Lock()
	segs := b.unsynced
	b.unsynced = nil
	for _, seg := range segs {
		seg.dirty = false
	}
	b.wmu.Unlock()
	for i, seg := range segs {
		err := blobsDatasync(seg.data)
		if err == nil {
			err = blobsDatasync(seg.idx)
		}
		if err != nil {
			b.wmu.Lock()
			for _, seg := range segs[i:] {
				b.written(seg)
			}
			b.wmu.Unlock()
			return fmt.Errorf("syncing blobs: %w", err)
		}
	}
	b.mu.Lock()
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	done := map[string]bool{}
	for i, p := range pending {
		if done[p] {
			continue
		}
		if err := syncDir(p); err != nil {
			b.mu.Lock()
			b.pending = append(b.pending, pending[i:]...)
			b.mu.Unlock()
			return fmt.Errorf("syncing blobs: %w", err)
		}
		done[p] = true
	}
	return nil
}

// Uncache drops the page cache's copy of blobs that a Sync wrote to
// disk, for blobs not read again soon (fetched transfer blocks): their
// pages go back to the kernel at once, to be used for the next writes,
// rather than growing the cache until reclaim takes them. Pages not yet
// written back stay, and so do those a blob shares with a neighbour in
// its segment that is not uncached with it. A missing blob is skipped.
func (b *Blobs) Uncache(names ...string) error {
	type span struct {
		f      *os.File
		seg    uint32
		off, n int64
	}
	var spans []span
	for _, name := range names {
		loc, f, ok, path, err := b.lookup(name)
		switch {
		case err != nil:
			return err
		case ok:
			spans = append(spans, span{f, loc.seg, loc.off, loc.n})
			continue
		case path == "":
			continue
		}
		if err := uncache(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("uncaching blob %s: %w", name, err)
		}
	}
	// Blobs written one after another (a fetch's group) are one call.
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.seg, b.seg), cmp.Compare(a.off, b.off))
	})
	for i := 0; i < len(spans); {
		s := spans[i]
		end := s.off + s.n
		for i++; i < len(spans) && spans[i].seg == s.seg && spans[i].off <= end; i++ {
			end = max(end, spans[i].off+spans[i].n)
		}
		if err := uncacheRange(s.f, s.off, end-s.off); err != nil {
			return fmt.Errorf("uncaching blobs: %w", err)
		}
	}
	return nil
}

// AppendTo appends the blob name to dst and returns the extended slice,
// or ErrNotFound.
func (b *Blobs) AppendTo(dst []byte, name string) ([]byte, error) {
	loc, f, ok, path, err := b.lookup(name)
	if err != nil {
		return dst, err
	}
	if ok {
		start := len(dst)
		dst = slices.Grow(dst, int(loc.n))[:start+int(loc.n)]
		if _, err := f.ReadAt(dst[start:], loc.off); err != nil {
			return dst[:start], fmt.Errorf("reading blob %s: %w", name, err)
		}
		return dst, nil
	}
	if path == "" {
		return dst, ErrNotFound
	}
	f, err = os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return dst, ErrNotFound
	}
	if err != nil {
		return dst, fmt.Errorf("reading blob %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return dst, fmt.Errorf("reading blob %s: %w", name, err)
	}
	n := int(fi.Size())
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	got, err := io.ReadFull(f, dst[start:start+n])
	if err != nil {
		return dst[:start+got], fmt.Errorf("reading blob %s: %w", name, err)
	}
	return dst, nil
}

// Has reports whether the blob name exists.
func (b *Blobs) Has(name string) (bool, error) {
	_, _, ok, path, err := b.lookup(name)
	if ok || path == "" || err != nil {
		return ok, err
	}
	_, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes the blob name; one that does not exist needs nothing. A
// blob in a segment is deleted by a record in the current segment's
// index (its bytes stay where they are, unnamed); Delete does not sync
// either.
func (b *Blobs) Delete(name string) error {
	_, _, ok, path, err := b.lookup(name)
	if err != nil {
		return err
	} else if ok {
		b.wmu.Lock()
		seg, err := b.segment(0)
		if err == nil {
			err = appendRecord(seg.idx, recDelete, name, 0, 0)
		}
		if err == nil {
			b.written(seg)
			b.mu.Lock()
			delete(b.index, name)
			b.mu.Unlock()
		}
		b.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("deleting blob %s: %w", name, err)
		}
	}
	if path == "" {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting blob %s: %w", name, err)
	}
	return nil
}

// close releases the blob directory and segments.
func (b *Blobs) close() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.idx.Close()
		b.cur = nil
	}
	for _, f := range b.idxs {
		f.Close()
	}
	b.idxs, b.unsynced = nil, nil
	for n, f := range b.segs {
		f.Close()
		delete(b.segs, n)
	}
	b.loaded, b.index = false, nil
}
