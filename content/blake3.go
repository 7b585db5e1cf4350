package content

import (
	"math/bits"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// blake3Sum256 is blake3.Sum256 computed on the calling goroutine.
//
// blake3.Sum256 hashes an input of more than a chunk group (16 KiB) on
// one goroutine per group, which costs more CPU than it saves time where
// every CPU is busy already (a transfer hashes each block as it arrives
// on every stream at once). This walks the same tree in order: groups of
// guts.MaxSIMD chunks through guts.CompressBuffer (AVX-512 or AVX2 where
// the CPU has them), the chunks left over as the largest whole subtrees,
// then the last chunk as the root's rightmost leaf. TestBLAKE3Sum256
// checks it against blake3.Sum256.
func blake3Sum256(b []byte) [32]byte {
	if len(b) <= guts.ChunkSize {
		return blake3.Sum256(b) // one chunk: no goroutines
	}
	const group = guts.MaxSIMD * guts.ChunkSize
	var t tree
	// Every chunk but the last, which becomes the root's rightmost leaf
	// (a length that is a multiple of the chunk size keeps a whole one).
	full := uint64(len(b)-1) / guts.ChunkSize
	for t.counter+guts.MaxSIMD <= full {
		n := guts.CompressBuffer((*[group]byte)(b[:group]), group, &guts.IV, t.counter, 0)
		t.push(guts.ChainingValue(n), 4)
		b = b[group:]
	}
	// Fewer than MaxSIMD whole chunks left: the largest whole subtrees.
	// CompressBuffer reads a whole group whatever it hashes, so each gets
	// one, from b's capacity or a copy.
	var scratch [group]byte
	for _, h := range guts.Eigentrees(t.counter, full-t.counter) {
		size := (1 << h) * guts.ChunkSize
		g := &scratch
		if cap(b) >= group {
			g = (*[group]byte)(b[:group])
		} else {
			copy(g[:], b[:size])
		}
		t.push(guts.ChainingValue(guts.CompressBuffer(g, size, &guts.IV, t.counter, 0)), h)
		b = b[size:]
	}
	n := guts.CompressChunk(b, &guts.IV, t.counter, 0)
	for i := bits.TrailingZeros64(t.counter); i < bits.Len64(t.counter); i++ {
		if t.counter&(1<<i) != 0 {
			n = guts.ParentNode(t.stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	return [32]byte(out[:32])
}

// tree holds the roots of the whole subtrees hashed so far, one per
// height at most, as blake3.Hasher does.
type tree struct {
	stack   [64][8]uint32
	counter uint64 // chunks hashed; bit i set: stack[i] holds a subtree
}

func (t *tree) push(cv [8]uint32, height int) {
	i := height
	for t.counter&(1<<i) != 0 {
		cv = guts.ChainingValue(guts.ParentNode(t.stack[i], cv, &guts.IV, 0))
		i++
	}
	t.stack[i] = cv
	t.counter += 1 << height
}
