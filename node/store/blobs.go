package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrBadBlobName is returned for a blob name that is not 3 to 255 ASCII
// letters and digits.
var ErrBadBlobName = errors.New("store: bad blob name")

// Blobs is a directory of immutable named files beside the database, for
// large values written once and read whole (transfer blocks, named by
// their CIDs): a file is written with one write and read with one read,
// with no log, compaction or memory mapping in between.
//
// Layout: <dir>/<shard>/<name>, shard being the next-to-last two
// characters of the name (so names that share a prefix, as CIDs do,
// spread over the shards), created on first use. A blob is written to
// <name>.<n>.tmp in its shard and renamed to <name>, so a name holds a whole
// blob once the process wrote it; a name never changes its bytes while
// it exists.
//
// Durability: Put does not sync. Sync makes every blob Put before it on
// disk, with one syncfs of the blobs' file system on Linux (which also
// covers the renames and new shard directories) instead of a sync per
// file, or an fsync of each file and directory written since the last
// Sync elsewhere. A blob whose Put returned but that no Sync covered may,
// after a crash of the machine, be missing or hold other bytes (a rename
// can reach the disk before the data); a caller that puts without a sync
// each therefore reports a blob only after a Sync, and checks blobs it
// reads against their names when they may come from before a crash.
type Blobs struct {
	dir  string
	tmps atomic.Uint64 // numbers the temporary files
	// syncfs says Sync uses syncfs (haveSyncfs; tests turn it off to
	// try the other way).
	syncfs bool

	mu      sync.Mutex
	root    *os.File        // dir, open from the first Put on; guarded by mu
	shards  map[string]bool // shard directories known to exist; guarded by mu
	pending []string        // files and directories to sync where syncfs is missing; guarded by mu
}

func newBlobs(dir string) *Blobs {
	return &Blobs{dir: dir, shards: map[string]bool{}, syncfs: haveSyncfs}
}

// Blobs returns the database's blob directory, or nil for an in-memory
// database (whose callers keep large values in the database itself).
func (d *DB) Blobs() *Blobs { return d.blobs }

// Dir is the directory the blobs live in.
func (b *Blobs) Dir() string { return b.dir }

func (b *Blobs) path(name string) (shard, path string, err error) {
	if len(name) < 3 || len(name) > 255 {
		return "", "", fmt.Errorf("%w: %q", ErrBadBlobName, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", "", fmt.Errorf("%w: %q", ErrBadBlobName, name)
		}
	}
	shard = name[len(name)-3 : len(name)-1]
	return shard, filepath.Join(b.dir, shard, name), nil
}

// Put writes data as the blob name, not yet synced (see Sync). A blob
// that exists is written again (its bytes are the same by contract, or
// a corrupted copy being replaced).
func (b *Blobs) Put(name string, data []byte) error {
	shard, path, err := b.path(name)
	if err != nil {
		return err
	}
	if err := b.ensureShard(shard); err != nil {
		return err
	}
	// A name of its own for each write: two writers of one blob must not
	// write into the same file. One left by a process that crashed
	// before its rename is truncated and used again.
	tmp := fmt.Sprintf("%s.%d.tmp", path, b.tmps.Add(1))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", name, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing blob %s: %w", name, err)
	}
	if !b.syncfs {
		b.mu.Lock()
		b.pending = append(b.pending, path, filepath.Dir(path))
		b.mu.Unlock()
	}
	return nil
}

// ensureShard creates the blob directory and the shard directory once.
func (b *Blobs) ensureShard(shard string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shards[shard] {
		return nil
	}
	// Mkdir, not MkdirAll: each shard is made once per process, and
	// MkdirAll stats it and its parent first.
	err := os.Mkdir(filepath.Join(b.dir, shard), 0o750)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(b.dir, 0o750); err == nil {
			err = os.Mkdir(filepath.Join(b.dir, shard), 0o750)
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating blob directory: %w", err)
	}
	if !b.syncfs {
		b.pending = append(b.pending, b.dir) // the shard's name
	}
	if b.root == nil {
		f, err := os.Open(b.dir)
		if err != nil {
			return fmt.Errorf("opening blob directory: %w", err)
		}
		b.root = f
		if !b.syncfs {
			b.pending = append(b.pending, b.dir, filepath.Dir(b.dir))
		}
	}
	b.shards[shard] = true
	return nil
}

// Sync returns once every blob whose Put returned before the call is on
// disk, with its name.
func (b *Blobs) Sync() error {
	b.mu.Lock()
	root := b.root
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	if root == nil {
		return nil // nothing was ever put
	}
	if b.syncfs {
		if err := syncfs(root); err != nil {
			return fmt.Errorf("syncing blobs: %w", err)
		}
		return nil
	}
	done := map[string]bool{}
	for i, p := range pending {
		if done[p] {
			continue
		}
		if err := syncFile(p); err != nil {
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
// written back stay. A missing blob is skipped.
func (b *Blobs) Uncache(names ...string) error {
	for _, name := range names {
		_, path, err := b.path(name)
		if err != nil {
			return err
		}
		if err := uncache(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("uncaching blob %s: %w", name, err)
		}
	}
	return nil
}

// AppendTo appends the blob name to dst and returns the extended slice,
// or ErrNotFound.
func (b *Blobs) AppendTo(dst []byte, name string) ([]byte, error) {
	_, path, err := b.path(name)
	if err != nil {
		return dst, err
	}
	f, err := os.Open(path)
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
	_, path, err := b.path(name)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes the blob name; one that does not exist needs nothing.
func (b *Blobs) Delete(name string) error {
	_, path, err := b.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting blob %s: %w", name, err)
	}
	return nil
}

// close releases the blob directory.
func (b *Blobs) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.root != nil {
		b.root.Close()
		b.root = nil
	}
}
