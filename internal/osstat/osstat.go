// Package osstat reads what the operating system counts for this process
// and its files, where Unix and Windows ask differently: the CPU time the
// process has used and the disk space a file takes. Benchmarks report CPU
// time per operation (on a shared machine it says more than wall time)
// and store sizes from these.
package osstat
