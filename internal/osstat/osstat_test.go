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

// A directory's files add up, those in subdirectories too, and the part
// asked for is counted apart.
func TestDirAllocated(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"a.mem": 64 << 10, "sub/b.vlog": 128 << 10, "c": 32 << 10} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	total, mem := DirAllocated(dir, func(name string) bool { return filepath.Ext(name) == ".mem" })
	if total < 224<<10 {
		t.Errorf("total %d bytes, want at least the 224 KiB written", total)
	}
	if mem < 64<<10 || mem >= total {
		t.Errorf("the .mem file takes %d of %d bytes, want at least its 64 KiB and less than the total", mem, total)
	}
	if again, none := DirAllocated(dir, nil); again != total || none != 0 {
		t.Errorf("without a part: %d and %d, want %d and 0", again, none, total)
	}
}
