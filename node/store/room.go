package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
)

// A full disk does not make badger fail a write: it writes its logs and
// tables through memory maps of files it sized ahead, and a page the file
// system can no longer back kills the process with SIGBUS, inside
// badger, on every start after that too. So the store stops writing while
// the disk has less than MinFree left, with an error that says so, and
// goes on once space is freed; reads go on all along.

// ErrDiskFull is returned for a write while the disk holding the store
// has less free space than Options.MinFree.
var ErrDiskFull = errors.New("the disk is nearly full")

// DefaultMinFree is the free space below which the store stops writing:
// its three memtable logs and a level-0 table (16 MiB each), with room to
// spare for what other writers write in the meantime.
const DefaultMinFree = 100 << 20

// roomEvery is how long a free-space reading stands: at a gigabyte a
// second, 50 ms of writes are half of DefaultMinFree.
const roomEvery = 50 * time.Millisecond

// room checks that the disk holding dir has free space left to write.
type room struct {
	dir  string
	min  uint64
	free func(string) (uint64, error)

	mu   sync.Mutex              // one reading at a time
	last atomic.Pointer[reading] // the last one, read without mu
}

// reading is what one reading of the free space found.
type reading struct {
	until time.Time // it stands until then
	err   error
}

// check returns ErrDiskFull (wrapped, with the numbers) when the disk has
// less than min free. A reading that fails lets the write try. Every
// write calls it: while a reading stands, it takes no lock.
func (r *room) check() error {
	if r == nil {
		return nil
	}
	if rd := r.last.Load(); rd != nil && time.Now().Before(rd.until) {
		return rd.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rd := r.last.Load(); rd != nil && time.Now().Before(rd.until) {
		return rd.err // another writer just read it
	}
	rd := &reading{until: time.Now().Add(roomEvery)}
	if n, err := r.diskFree(); err == nil && n < r.min {
		rd.err = fmt.Errorf("%w: %d MiB free on the disk holding %s; mimnode stops writing below %d MiB so that a full disk cannot damage its store. Free some space (or move the data directory to a larger disk) and writing resumes",
			ErrDiskFull, n>>20, r.dir, r.min>>20)
	}
	r.last.Store(rd)
	return rd.err
}

// checkToStart is check for opening the store: the process then ends, so
// nothing resumes by itself; the message says to start it again.
func (r *room) checkToStart() error {
	n, err := r.diskFree()
	if err != nil || n >= r.min {
		return nil
	}
	return fmt.Errorf("%w: %d MiB free on the disk holding %s; mimnode needs %d MiB free to open its store, so that a full disk cannot damage it. Free some space (or move the data directory to a larger disk), then start it again",
		ErrDiskFull, n>>20, r.dir, r.min>>20)
}

// diskFree reads the free space of the disk holding the store; a store
// not created yet is on the disk of its nearest parent.
func (r *room) diskFree() (uint64, error) {
	dir := r.dir
	n, err := r.free(dir)
	for errors.Is(err, fs.ErrNotExist) && filepath.Dir(dir) != dir {
		dir = filepath.Dir(dir)
		n, err = r.free(dir)
	}
	return n, err
}

func newRoom(dir string, o Options) *room {
	r := &room{dir: dir, min: DefaultMinFree, free: osstat.DiskFree}
	if o.MinFree > 0 {
		r.min = uint64(o.MinFree)
	}
	if o.DiskFree != nil {
		r.free = o.DiskFree
	}
	return r
}
