package content

import (
	"crypto/sha256"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

func TestBLAKE3Sum256(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	data := make([]byte, 2*MaxBlockSize+3000)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	sizes := []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024, 15 * 1024, 15*1024 + 1,
		16 * 1024, 16*1024 + 1, 17 * 1024, 31*1024 + 5, 32 * 1024, 33*1024 + 1, 255 * 1024, 256 * 1024,
		256*1024 + 1, TargetBlockSize + 777, MaxBlockSize - 1, MaxBlockSize, MaxBlockSize + 1, 2*MaxBlockSize + 3000}
	for range 200 {
		sizes = append(sizes, r.IntN(MaxBlockSize+1))
	}
	for _, n := range sizes {
		// At the start of data (capacity to spare) and at its end (none).
		for _, b := range [][]byte{data[:n], data[len(data)-n:]} {
			if got, want := blake3Sum256(b), blake3.Sum256(b); got != want {
				t.Fatalf("blake3Sum256(%d bytes, cap %d) = %x, want %x", n, cap(b), got, want)
			}
		}
	}
}

// BenchmarkBlockHash: the CPU each block hash costs per MiB (the time
// per op is wall time, which blake3.Sum256 cuts by hashing on several
// goroutines).
func BenchmarkBlockHash(b *testing.B) {
	data := make([]byte, TargetBlockSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, c := range []struct {
		name string
		sum  func([]byte) [32]byte
	}{
		{"sha2-256", sha256.Sum256},
		{"blake3.Sum256", blake3.Sum256},
		{"blake3Sum256", blake3Sum256},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			c0 := cpuTime()
			for b.Loop() {
				c.sum(data)
			}
			b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/(float64(b.N)*float64(len(data))/(1<<20)), "cpu-ms/MiB")
		})
	}
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
