//go:build unix

package osstat

import (
	"io/fs"
	"syscall"
	"time"
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
