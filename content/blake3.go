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
// on every stream at once). This walks the same tree in order
// (blake3Stream). TestBLAKE3Sum256 checks it against blake3.Sum256.
func blake3Sum256(b []byte) [32]byte {
	if len(b) <= guts.ChunkSize {
		return blake3.Sum256(b) // one chunk: no goroutines
	}
	var s blake3Stream
	s.reset(len(b))
	return s.sum(b)
}

// blake3Stream hashes a message whose length it is told first, in order,
// as its bytes become available (advance), so that a block read from the
// network in pieces is hashed while each piece is still in the CPU's
// cache rather than in one pass over the whole block afterwards.
//
// Every whole group of guts.MaxSIMD chunks but the last goes through
// guts.CompressBuffer (AVX-512 or AVX2 where the CPU has them) and onto
// a stack of whole subtrees, as blake3.Hasher keeps them; the rest, one
// to blake3Group bytes, is the tree's rightmost subtree, one more
// CompressBuffer (which merges its chunks the way BLAKE3's tree does),
// folded into the stack as the root. Before, the rest was cut into
// power-of-two subtrees (guts.Eigentrees) and a last chunk, each a pass
// of its own over a whole group: up to five passes where one does.
type blake3Stream struct {
	t    tree
	n    int // the message's length
	done int // bytes hashed into t
}

// reset starts a message of n bytes.
func (s *blake3Stream) reset(n int) {
	s.t.counter, s.n, s.done = 0, n, 0
}

// advance hashes the groups of b, the message's first len(b) bytes, that
// it has not hashed yet, but for the last group of the message, which
// sum hashes.
func (s *blake3Stream) advance(b []byte) {
	for s.done+blake3Group < s.n && s.done+blake3Group <= len(b) {
		n := guts.CompressBuffer((*[blake3Group]byte)(b[s.done:s.done+blake3Group]), blake3Group, &guts.IV, s.t.counter, 0)
		s.t.push(guts.ChainingValue(n), bits.TrailingZeros(guts.MaxSIMD))
		s.done += blake3Group
	}
}

// sum returns the digest of b, the whole message (len(b) == s.n).
func (s *blake3Stream) sum(b []byte) [32]byte {
	s.advance(b)
	rest := b[s.done:]
	var n guts.Node
	if len(rest) <= guts.ChunkSize {
		n = guts.CompressChunk(rest, &guts.IV, s.t.counter, 0)
	} else {
		// CompressBuffer reads a whole group whatever it hashes: from
		// b's capacity, or a copy.
		var scratch [blake3Group]byte
		g := &scratch
		if cap(rest) >= blake3Group {
			g = (*[blake3Group]byte)(rest[:blake3Group])
		} else {
			copy(g[:], rest)
		}
		n = guts.CompressBuffer(g, len(rest), &guts.IV, s.t.counter, 0)
	}
	for i := bits.TrailingZeros64(s.t.counter); i < bits.Len64(s.t.counter); i++ {
		if s.t.counter&(1<<i) != 0 {
			n = guts.ParentNode(s.t.stack[i], guts.ChainingValue(n), &guts.IV, 0)
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
