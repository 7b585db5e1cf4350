package content

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"testing"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"

	"github.com/mimnode/mimnode/internal/osstat"
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
			c0 := osstat.ProcessCPU()
			for b.Loop() {
				c.sum(data)
			}
			b.ReportMetric(float64((osstat.ProcessCPU()-c0).Microseconds())/1000/(float64(b.N)*float64(len(data))/(1<<20)), "cpu-ms/MiB")
		})
	}
}

// refBLAKE3 is BLAKE3-256 as its specification defines the tree (section
// 2.1): a message of more than one chunk is a parent of a left subtree of
// the largest power of two chunks that leaves at least one byte for the
// right. It uses only guts' portable pieces (CompressChunk, ParentNode,
// CompressNode), none of the SIMD code or mergeSubtrees that both
// blake3.Sum256 and blake3Sum256 rely on.
func refBLAKE3(b []byte) [32]byte {
	n := refNode(b, 0)
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	return [32]byte(out[:32])
}

func refNode(b []byte, counter uint64) guts.Node {
	if len(b) <= guts.ChunkSize {
		return guts.CompressChunk(b, &guts.IV, counter, 0)
	}
	chunks := uint64(len(b)+guts.ChunkSize-1) / guts.ChunkSize
	left := uint64(1) << (bits.Len64(chunks-1) - 1)
	l := int(left) * guts.ChunkSize
	return guts.ParentNode(guts.ChainingValue(refNode(b[:l], counter)),
		guts.ChainingValue(refNode(b[l:], counter+left)), &guts.IV, 0)
}

// TestBLAKE3Vectors: refBLAKE3 and blake3Sum256 give the official BLAKE3
// test vectors (test_vectors.json: input byte i is i%251; first 32 bytes
// of "hash").
func TestBLAKE3Vectors(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
		{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
		{2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
		{3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"},
		{8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
		{16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
		{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
		{100000, "d93c23eedaf165a7e0be908ba86f1a7a520d568d2d13cde787c8580c5c72cc54"},
	} {
		b := make([]byte, c.n)
		for i := range b {
			b[i] = byte(i % 251)
		}
		for name, sum := range map[string]func([]byte) [32]byte{"refBLAKE3": refBLAKE3, "blake3Sum256": blake3Sum256} {
			if got := sum(b); hex.EncodeToString(got[:]) != c.want {
				t.Errorf("%s(%d bytes) = %x, want %s", name, c.n, got, c.want)
			}
		}
	}
}

// TestBLAKE3EveryLength: blake3Sum256 against blake3.Sum256 and refBLAKE3
// for every length from 0 to 70 KiB that is within a byte of a multiple
// of 64 (so every BLAKE3 block, 1 KiB chunk and 16 KiB group boundary
// and both sides of it) and every length up to 3 KiB; with -short only
// the lengths around a chunk boundary. Each input is hashed with spare
// capacity after it (CompressBuffer may read it) and with none.
func TestBLAKE3EveryLength(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 70))
	const max = 70 << 10
	data := make([]byte, max+blake3Group)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	checked := 0
	for n := 0; n <= max; n++ {
		near := min(n%64, 64-n%64) <= 1
		if testing.Short() {
			near = min(n%guts.ChunkSize, guts.ChunkSize-n%guts.ChunkSize) <= 1
		}
		if !near && n > 3<<10 {
			continue
		}
		for _, b := range [][]byte{data[:n], data[len(data)-n:]} {
			if got, want := blake3Sum256(b), refBLAKE3(b); got != want {
				t.Fatalf("blake3Sum256(%d bytes, cap %d) = %x, want %x", n, cap(b), got, want)
			}
		}
		if n%64 == 0 || n%64 == 1 { // blake3.Sum256 spawns goroutines: fewer
			if got, want := blake3.Sum256(data[:n]), refBLAKE3(data[:n]); got != want {
				t.Fatalf("blake3.Sum256(%d bytes) = %x, want %x (refBLAKE3)", n, got, want)
			}
		}
		checked++
	}
	t.Logf("%d lengths", checked)
}

// TestBLAKE3LargeLengths: around powers of two and the block sizes the
// chunker makes, up to twice the largest, against refBLAKE3.
func TestBLAKE3LargeLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	data := make([]byte, 2*MaxBlockSize+blake3Group)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var sizes []int
	for p := 11; p <= 21; p++ {
		for _, d := range []int{-1025, -1024, -1023, -1, 0, 1, 1023, 1024, 1025} {
			sizes = append(sizes, 1<<p+d)
		}
	}
	for _, s := range []int{MinBlockSize, TargetBlockSize, MaxBlockSize, 3 * MaxBlockSize / 2} {
		for d := -2; d <= 2; d++ {
			sizes = append(sizes, s+d, s+blake3Group+d, s-blake3Group+d)
		}
	}
	for _, n := range sizes {
		for _, b := range [][]byte{data[:n], data[len(data)-n:]} {
			if got, want := blake3Sum256(b), refBLAKE3(b); got != want {
				t.Fatalf("blake3Sum256(%d bytes, cap %d) = %x, want %x", n, cap(b), got, want)
			}
		}
	}
}

// TestBLAKE3Concurrent: blake3Sum256 from 8 goroutines at once, on their
// own inputs and on one shared input (with -race: nothing shared is
// written).
func TestBLAKE3Concurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	shared := make([]byte, TargetBlockSize+12345)
	for i := range shared {
		shared[i] = byte(r.Uint32())
	}
	wantShared := blake3.Sum256(shared)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			own := make([]byte, 3*blake3Group+int(r.IntN(4*blake3Group)))
			for i := range own {
				own[i] = byte(r.Uint32())
			}
			for i := range 20 {
				if got := blake3Sum256(shared); got != wantShared {
					errs <- fmt.Errorf("goroutine %d, round %d: blake3Sum256(shared) = %x, want %x", g, i, got, wantShared)
					return
				}
				if got := blake3Sum256(own[:len(own)-i]); got != blake3.Sum256(own[:len(own)-i]) {
					errs <- fmt.Errorf("goroutine %d, round %d: blake3Sum256(%d bytes) = %x", g, i, len(own)-i, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzBLAKE3Sum256: blake3Sum256 of any bytes at any length, with spare
// capacity after them or none, is blake3.Sum256 (and refBLAKE3).
func FuzzBLAKE3Sum256(f *testing.F) {
	f.Add([]byte{}, uint32(0), uint64(0))
	f.Add([]byte("abc"), uint32(1025), uint64(1))
	f.Add([]byte{1, 2, 3}, uint32(16384), uint64(2))
	f.Add([]byte{9}, uint32(16385), uint64(3))
	f.Add([]byte{}, uint32(TargetBlockSize), uint64(4))
	f.Fuzz(func(t *testing.T, prefix []byte, n uint32, seed uint64) {
		// The length: up to a little over MaxBlockSize, mostly near a
		// chunk or group boundary.
		n %= MaxBlockSize + 3*blake3Group
		switch seed % 4 {
		case 0:
			n = n / guts.ChunkSize * guts.ChunkSize
		case 1:
			n = n / blake3Group * blake3Group
		}
		if seed&8 != 0 && n > 0 {
			n-- // one below the boundary
		} else if seed&16 != 0 {
			n++ // one above it
		}
		spare := int(seed>>8) % (2 * blake3Group)
		b := make([]byte, int(n), int(n)+spare)
		copy(b, prefix)
		r := rand.New(rand.NewPCG(seed, uint64(n)))
		for i := len(prefix); i < len(b); i++ {
			b[i] = byte(r.Uint32())
		}
		got, want := blake3Sum256(b), blake3.Sum256(b)
		if got != want {
			t.Fatalf("blake3Sum256(%d bytes, cap %d) = %x, blake3.Sum256 %x", len(b), cap(b), got, want)
		}
		if len(b) < 64<<10 {
			if ref := refBLAKE3(b); ref != want {
				t.Fatalf("refBLAKE3(%d bytes) = %x, blake3.Sum256 %x", len(b), ref, want)
			}
		}
	})
}
