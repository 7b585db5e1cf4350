//go:build linux && (amd64 || arm64)

package store

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A goroutine in fdatasync holds its processor (P) for the whole call:
// the runtime's monitor takes a P back from a system call only after the
// call has run a while, and less often the quieter the process has been.
// A sync takes 0.1 to 1 ms, and on a 2-core machine every sync in flight
// then leaves one CPU of two without Go code to run while goroutines
// wait in the queue: a provider negotiating with eight consumers, with a
// synced write in flight most of the time, ran on one CPU.
//
// So a sync asked for while another one runs goes through the kernel's
// asynchronous I/O (io_submit with IOCB_CMD_FDSYNC, Linux 4.18 and
// later): the kernel runs the fdatasync on a worker thread and signals
// an eventfd when it is done, and the goroutine waiting for it is parked
// by the network poller, which holds no P. One reaper goroutine per
// process reads the eventfd and hands each completion to its waiter. A
// sync alone is a plain fdatasync call (datasync), the quicker way by
// about 60 µs here. Where the kernel refuses (no AIO, a seccomp filter, a
// file system without fsync for AIO), every sync is a plain call.

// aioIOCB is struct iocb of linux/aio_abi.h, little-endian layout.
type aioIOCB struct {
	data     uint64
	key      uint32
	rwFlags  uint32
	opcode   uint16
	reqprio  int16
	fildes   uint32
	buf      uint64
	nbytes   uint64
	offset   int64
	reserved uint64
	flags    uint32
	resfd    uint32
}

// aioEvent is struct io_event.
type aioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

const (
	iocbCmdFdsync = 3 // IOCB_CMD_FDSYNC
	iocbFlagResfd = 1 // IOCB_FLAG_RESFD: signal aio_resfd on completion
	// aioDepth is how many syncs may be in flight in the process at once
	// (the AIO context's size); more wait for a slot.
	aioDepth = 128
)

// aioRing is the process's AIO context, its eventfd and the syncs in
// flight.
type aioRing struct {
	ctx   uintptr
	efd   int      // the eventfd, as the kernel knows it
	ev    *os.File // the same, read through the network poller
	slots chan struct{}
	// reaped is closed when the reaper has stopped.
	reaped chan struct{}

	mu      sync.Mutex
	next    uint64
	waiters map[uint64]chan error // guarded by mu
	broken  error                 // guarded by mu; set when the reaper stopped
}

var (
	aioOnce sync.Once
	aioAt   *aioRing // nil: syncs are plain fdatasync calls
)

// aioSync returns the process's ring, setting it up on first use, or nil
// where the kernel offers none.
func aioSync() *aioRing {
	aioOnce.Do(func() { aioAt = newAIORing() })
	return aioAt
}

func newAIORing() *aioRing {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, aioDepth, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
		return nil
	}
	r := &aioRing{ctx: ctx, efd: efd, ev: os.NewFile(uintptr(efd), "aio-eventfd"),
		slots: make(chan struct{}, aioDepth), reaped: make(chan struct{}), waiters: map[uint64]chan error{}}
	go r.reap()
	return r
}

// errAIORefused says the kernel would not take the sync: it is then made
// with fdatasync.
var errAIORefused = errors.New("store: asynchronous sync refused")

// datasync syncs the data of the file open as fd and waits for it without
// holding a P. It returns errAIORefused if the kernel would not take it.
func (r *aioRing) datasync(fd int) error {
	r.slots <- struct{}{}
	defer func() { <-r.slots }()
	done := make(chan error, 1)
	r.mu.Lock()
	if r.broken != nil {
		r.mu.Unlock()
		return errAIORefused
	}
	r.next++
	id := r.next
	r.waiters[id] = done
	r.mu.Unlock()
	// On the heap, which does not move: the kernel reads both during the
	// call.
	cb := &aioIOCB{data: id, opcode: iocbCmdFdsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(r.efd)}
	cbs := &[1]*aioIOCB{cb}
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, r.ctx, 1, uintptr(unsafe.Pointer(&cbs[0])))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || n != 1 {
			r.mu.Lock()
			delete(r.waiters, id)
			r.mu.Unlock()
			return errAIORefused
		}
		break
	}
	return <-done
}

// reap hands completed syncs to their waiters: it waits for the eventfd
// to count completions, then takes every completed event.
func (r *aioRing) reap() {
	defer close(r.reaped)
	var count [8]byte
	var evs [aioDepth]aioEvent
	for {
		if _, err := r.ev.Read(count[:]); err != nil {
			r.stop(err)
			return
		}
		for {
			zero := unix.Timespec{}
			n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, r.ctx, 0, aioDepth,
				uintptr(unsafe.Pointer(&evs[0])), uintptr(unsafe.Pointer(&zero)), 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				r.stop(e)
				return
			}
			r.mu.Lock()
			for _, ev := range evs[:n] {
				if ch := r.waiters[ev.data]; ch != nil {
					delete(r.waiters, ev.data)
					var err error
					if ev.res < 0 {
						err = syscall.Errno(-ev.res)
					}
					ch <- err
				}
			}
			r.mu.Unlock()
			if int(n) < len(evs) {
				break
			}
		}
	}
}

// stop fails the syncs in flight and makes later ones plain fdatasync
// calls; it runs if the eventfd or the context fails, which they do not
// while the process lives.
func (r *aioRing) stop(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broken = err
	for id, ch := range r.waiters {
		ch <- errors.Join(errors.New("store: asynchronous sync lost"), err)
		delete(r.waiters, id)
	}
}
