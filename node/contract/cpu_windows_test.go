package contract_test

import (
	"time"

	"golang.org/x/sys/windows"
)

// processCPU is the CPU time the test process has used, user and system:
// the nodes on both sides of a negotiation run in it. On a shared machine
// it says more about the cost of a negotiation than wall-clock time.
func processCPU() time.Duration {
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
