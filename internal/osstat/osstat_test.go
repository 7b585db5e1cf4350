package osstat

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Work done by this process shows in ProcessCPU, and never makes it go
// back.
func TestProcessCPUGrowsWithWork(t *testing.T) {
	before := ProcessCPU()
	if before <= 0 {
		t.Fatalf("ProcessCPU = %v before any work; a running test has used CPU", before)
	}
	x := uint64(1)
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	after := ProcessCPU()
	if after <= before {
		t.Errorf("ProcessCPU %v after 50 ms of work, %v before (x=%d)", after, before, x)
	}
}

// A file with data takes at least one block; a sparse file of the same
// length takes less than its length says, where the system reports blocks.
func TestAllocated(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.WriteFile(full, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if got := Allocated(fi); got < 64<<10 {
		t.Errorf("64 KiB written takes %d bytes", got)
	}
	sparse := filepath.Join(dir, "sparse")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err = os.Stat(sparse); err != nil {
		t.Fatal(err)
	}
	got := Allocated(fi)
	if got > 64<<20 || runtime.GOOS != "windows" && got >= 64<<20 {
		t.Errorf("a 64 MiB sparse file takes %d bytes; want less than its length (Windows: its length)", got)
	}
}
