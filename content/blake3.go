package content

import (
	"math/bits"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// blake3Group is the bytes guts.CompressBuffer hashes at once: MaxSIMD
// chunks (16 KiB with AVX-512), one pass of the SIMD code.
const blake3Group = guts.MaxSIMD * guts.ChunkSize

// blake3Sum256 is blake3.Sum256 computed on the calling goroutine.
//
// blake3.Sum256 hashes an input of more than a chunk group (16 KiB) on
// one goroutine per group, which costs more CPU than it saves time where
// every CPU is busy already (a transfer hashes each block as it arrives
// on every stream at once). This walks the same tree in order: every
// whole group of guts.MaxSIMD chunks but the last goes through
// guts.CompressBuffer (AVX-512 or AVX2 where the CPU has them) and onto
// a stack of whole subtrees, as blake3.Hasher keeps them; the rest, one
// to blake3Group bytes, is the tree's rightmost subtree, one more
// CompressBuffer (which merges its chunks the way BLAKE3's tree does),
// folded into the stack as the root. Cutting the rest into power-of-two
// subtrees (guts.Eigentrees) and a last chunk instead costs a pass over
// a whole group for each: up to five passes where one does.
// TestBLAKE3Sum256 and TestBLAKE3EveryLength check it against
// blake3.Sum256 and the specification's tree.
func blake3Sum256(b []byte) [32]byte {
	if len(b) <= guts.ChunkSize {
		return blake3.Sum256(b) // one chunk: no goroutines
	}
	var t tree
	for len(b) > blake3Group {
		n := guts.CompressBuffer((*[blake3Group]byte)(b[:blake3Group]), blake3Group, &guts.IV, t.counter, 0)
		t.push(guts.ChainingValue(n), bits.TrailingZeros(guts.MaxSIMD))
		b = b[blake3Group:]
	}
	var n guts.Node
	if len(b) <= guts.ChunkSize {
		n = guts.CompressChunk(b, &guts.IV, t.counter, 0)
	} else {
		// CompressBuffer reads a whole group whatever it hashes: from
		// b's capacity, or a copy.
		var scratch [blake3Group]byte
		g := &scratch
		if cap(b) >= blake3Group {
			g = (*[blake3Group]byte)(b[:blake3Group])
		} else {
			copy(g[:], b)
		}
		n = guts.CompressBuffer(g, len(b), &guts.IV, t.counter, 0)
	}
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
