//go:build unix

package osstat

import (
	"io/fs"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcessCPU is the CPU time, user and system, this process has used; 0
// where it cannot be read.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Allocated is the disk space the file fi describes takes: its blocks,
// which for a sparse file (badger preallocates its logs) are fewer than
// its length says.
func Allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// DiskFree is the space an unprivileged process may still use on the file
// system holding path, in bytes.
func DiskFree(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
