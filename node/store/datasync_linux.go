package store

import (
	"os"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// datasync is fdatasync: the data and the metadata needed to read it, not
// the modification time, whose journal commit made a full fsync of a
// memtable log cost as much as the rest of a sync. One sync at a time is
// a plain call (plainSync), unless goroutines are waiting for a processor
// (processorsWanted); any other goes through the kernel's asynchronous
// I/O where there is some (aio_linux.go), so that the goroutine waiting
// for it holds no processor.
func datasync(f *os.File) error {
	fd := int(f.Fd())
	if !plainSync.Load() && !processorsWanted() && plainSync.CompareAndSwap(false, true) {
		defer plainSync.Store(false)
		return fdatasync(fd)
	}
	// Another sync holds a processor already.
	if r := aioSync(); r != nil {
		if err := r.datasync(fd); err != errAIORefused {
			return err
		}
	}
	return fdatasync(fd)
}

// plainSync says a plain fdatasync call is running in the process. One
// sync at a time is made that way when no goroutine waits for a
// processor: it is the quickest (no hand-off to a kernel worker and back,
// about 60 µs less on the development machine), and holds one processor;
// a sync asked for while it runs goes through the kernel's asynchronous
// I/O, so that syncs never hold more than one processor between them.
var plainSync atomic.Bool

// processorsWanted says a plain fdatasync would now keep Go code from
// running: some goroutine is runnable and the other processors are all
// running one (ours counts among the running). A plain sync holds its
// processor for the whole call, about 0.1 ms here; the runtime's monitor
// takes it back only after a while. A provider negotiating with eight
// consumers always has a sync in flight and a queue of goroutines: syncs
// taken plainly whenever none was running left it on one CPU of two for a
// good part of the time, and going through the ring when others wait
// made 8% more negotiations a second (BenchmarkNegotiationThroughput8Consumers:
// 520-575/s against 448-521/s alternated) at the same latency alone. A
// count the runtime cannot give reads as not wanted: the plain call, as
// before. It costs about 0.3 µs.
func processorsWanted() bool {
	s := [2]metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}, {Name: "/sched/goroutines/running:goroutines"}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return false
	}
	runnable, running := s[0].Value.Uint64(), s[1].Value.Uint64()
	return runnable > 0 && runnable+running > uint64(runtime.GOMAXPROCS(0))
}

// fdatasync is the fdatasync system call, made again if a signal
// interrupts it.
func fdatasync(fd int) error {
	for {
		err := syscall.Fdatasync(fd)
		if err != syscall.EINTR {
			return err
		}
	}
}

// uncache asks the kernel to drop the cached pages of the file at path
// (POSIX_FADV_DONTNEED); dirty pages are not dropped, only clean ones.
func uncache(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}

// uncacheRange is uncache for n bytes of f from off.
func uncacheRange(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
