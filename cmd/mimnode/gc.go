package main

import "runtime/debug"

// releaseStartGarbage collects what starting the node allocated and
// returns the freed memory to the operating system: compiling the data
// models' schemas and loading the @context documents leave tens of MiB of
// garbage that an idle node would otherwise hold until its heap next grew
// to the collector's goal (idle RSS 41 MiB instead of 57 here).
//
// The collector's goal itself stays Go's (GOGC 100): raising it to 300 cut
// a package benchmark's batch upsert CPU by 7%, but in the benchmark
// harness, twenty nodes in one process, batch upserts ran a quarter
// slower (11,600-13,300/s against 15,500-17,500), its pages fresh from
// the system instead of reused.
func releaseStartGarbage() { debug.FreeOSMemory() }
