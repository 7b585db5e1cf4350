package osstat

import (
	"io/fs"
	"time"

	"golang.org/x/sys/windows"
)

// ProcessCPU is the CPU time, user and kernel, this process has used; 0
// where it cannot be read.
func ProcessCPU() time.Duration {
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &creation, &exit, &kernel, &user); err != nil {
		return 0
	}
	return interval(kernel) + interval(user)
}

// interval converts a FILETIME holding an interval (100 ns ticks, not a
// date) to a duration.
func interval(f windows.Filetime) time.Duration {
	return time.Duration(uint64(f.HighDateTime)<<32|uint64(f.LowDateTime)) * 100
}

// Allocated is the file's length: os.Stat on Windows does not report the
// space a sparse file takes, so badger's preallocated logs count in full.
func Allocated(fi fs.FileInfo) int64 { return fi.Size() }

// DiskFree is the space the caller may still use on the volume holding
// path, in bytes.
func DiskFree(path string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, err
	}
	return avail, nil
}
