//go:build unix

package contract_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used, user and system:
// the nodes on both sides of a negotiation run in it. On a shared machine
// it says more about the cost of a negotiation than wall-clock time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
