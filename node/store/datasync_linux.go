package store

import (
	"os"
	"syscall"
)

// datasync is fdatasync: the data and the metadata needed to read it, not
// the modification time, whose journal commit made a full fsync of a
// memtable log cost as much as the rest of a sync.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
