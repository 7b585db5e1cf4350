package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// logWatch is an inotify watch on the store's directory for files created
// in it (badger's new memtable logs and value-log files). It has no
// goroutine: drain reads what the kernel queued without blocking, and the
// kernel queues a file's event before the call that created it returns,
// so a drain that starts after a file was created reports it.
type logWatch struct {
	fd  int
	dir string
	// buf holds the events of one read: about 128 of badger's file
	// names, and more than one of the longest name (a smaller buffer
	// fails the read).
	buf [4096]byte
}

// newLogWatch starts watching dir; it fails where inotify is not at hand
// (or the user's inotify instances are used up).
func newLogWatch(dir string) (*logWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", dir, err)
	}
	const mask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ONLYDIR | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watching %s: %w", dir, err)
	}
	return &logWatch{fd: fd, dir: dir}, nil
}

// drain calls created with the name of each file created in (or moved
// into) the directory since the last drain, without blocking. It returns
// errWatchOverflow when the kernel dropped events (its queue was full):
// the caller lists the directory, after the drain, for what they said.
// Any other error means the watch no longer watches the directory (it was
// removed or moved, or reading failed).
func (w *logWatch) drain(created func(name []byte)) error {
	overflow := false
	for {
		n, err := unix.Read(w.fd, w.buf[:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if overflow {
				return errWatchOverflow
			}
			return nil
		case err != nil:
			return fmt.Errorf("reading the watch of %s: %w", w.dir, err)
		case n < unix.SizeofInotifyEvent:
			return fmt.Errorf("reading the watch of %s: short read of %d bytes", w.dir, n)
		}
		for b := w.buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			mask := binary.NativeEndian.Uint32(b[4:8])
			size := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:16]))
			if size > len(b) {
				return fmt.Errorf("reading the watch of %s: event of %d bytes in %d", w.dir, size, len(b))
			}
			name := b[unix.SizeofInotifyEvent:size]
			b = b[size:]
			switch {
			case mask&unix.IN_Q_OVERFLOW != 0:
				overflow = true
			case mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0:
				return fmt.Errorf("watch of %s: directory removed or moved (event %#x)", w.dir, mask)
			case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
				if i := bytes.IndexByte(name, 0); i >= 0 {
					name = name[:i]
				}
				created(name)
			}
		}
	}
}

// close stops the watch.
func (w *logWatch) close() error { return unix.Close(w.fd) }
