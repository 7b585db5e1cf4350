package ngsild

import (
	"io/fs"
	"time"

	"golang.org/x/sys/windows"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var creation, exit, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &creation, &exit, &kernel, &user); err != nil {
		return 0
	}
	return filetimeDuration(kernel) + filetimeDuration(user)
}

// filetimeDuration converts a FILETIME holding an interval (in 100 ns
// ticks, not a date) to a duration.
func filetimeDuration(f windows.Filetime) time.Duration {
	return time.Duration(uint64(f.HighDateTime)<<32|uint64(f.LowDateTime)) * 100
}

// allocated is the file's length: os.Stat on Windows does not report the
// space a sparse file takes, so badger's preallocated logs count in full.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
