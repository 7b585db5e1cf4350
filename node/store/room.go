package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
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

	mu  sync.Mutex
	at  time.Time // of the last reading
	err error     // what it found
}

// check returns ErrDiskFull (wrapped, with the numbers) when the disk has
// less than min free. A reading that fails lets the write try.
func (r *room) check() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && time.Since(r.at) < roomEvery {
		return r.err
	}
	// A store not created yet is on the disk of its nearest parent.
	dir := r.dir
	n, err := r.free(dir)
	for errors.Is(err, fs.ErrNotExist) && filepath.Dir(dir) != dir {
		dir = filepath.Dir(dir)
		n, err = r.free(dir)
	}
	r.at, r.err = time.Now(), nil
	if err == nil && n < r.min {
		r.err = fmt.Errorf("%w: %d MiB free on the disk holding %s; mimnode stops writing below %d MiB so that a full disk cannot damage its store. Free some space (or move the data directory to a larger disk) and writing resumes",
			ErrDiskFull, n>>20, r.dir, r.min>>20)
	}
	return r.err
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
