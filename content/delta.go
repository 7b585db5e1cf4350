package content

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Line deltas: a consumer that holds an earlier block of the same entities
// (a base) needs only the lines of the new block that the base does not
// have. An entities block is one entity per line, and its boundaries
// depend on the entities' ids, so after a few entities changed the new
// block and the old one at the same place share all their other lines.
//
// A delta is a sequence of operations, each starting with a uvarint tag:
//
//	0 start n   copy base lines start .. start+n-1 (uvarints; lines keep their '\n')
//	1 len bytes append len literal bytes (uvarint, then the bytes)
//
// The receiver rebuilds the block with ApplyLineDelta and checks it against
// its CID as it would a block sent whole.

const (
	opCopy    = 0
	opLiteral = 1
)

// ErrBadDelta: a delta is malformed or does not fit its base.
var ErrBadDelta = errors.New("malformed block delta")

// splitLines returns data's lines, each with its trailing '\n' (the last
// one may have none).
func splitLines(data []byte) [][]byte {
	lines := make([][]byte, 0, bytes.Count(data, []byte{'\n'})+1)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, data)
			break
		}
		lines = append(lines, data[:i+1])
		data = data[i+1:]
	}
	return lines
}

// LineDelta encodes target against base: runs of lines found in base are
// copies, the rest literals. It is never needed for correctness: a caller
// sends the block whole when the delta is not much smaller.
func LineDelta(base, target []byte) []byte {
	at := make(map[string]int, 256)
	baseLines := splitLines(base)
	for i, l := range baseLines {
		if _, dup := at[string(l)]; !dup {
			at[string(l)] = i
		}
	}
	var out, lit []byte
	copyStart, copyN := 0, 0
	flushCopy := func() {
		if copyN > 0 {
			out = binary.AppendUvarint(out, opCopy)
			out = binary.AppendUvarint(out, uint64(copyStart))
			out = binary.AppendUvarint(out, uint64(copyN))
			copyN = 0
		}
	}
	flushLit := func() {
		if len(lit) > 0 {
			out = binary.AppendUvarint(out, opLiteral)
			out = binary.AppendUvarint(out, uint64(len(lit)))
			out = append(out, lit...)
			lit = lit[:0]
		}
	}
	for _, l := range splitLines(target) {
		j, ok := at[string(l)]
		if !ok {
			flushCopy()
			lit = append(lit, l...)
			continue
		}
		flushLit()
		if copyN > 0 && j == copyStart+copyN {
			copyN++
			continue
		}
		flushCopy()
		copyStart, copyN = j, 1
	}
	flushCopy()
	flushLit()
	return out
}

// ApplyLineDelta rebuilds a block from base and a delta made by LineDelta.
// The result is at most MaxBlockSize bytes; anything else that does not
// fit (a copy past base's lines, a truncated operation, an unknown tag) is
// ErrBadDelta.
func ApplyLineDelta(base, delta []byte) ([]byte, error) {
	lines := splitLines(base)
	out := make([]byte, 0, len(base))
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(delta)
		if n <= 0 {
			return 0, fmt.Errorf("%w: truncated %s", ErrBadDelta, what)
		}
		delta = delta[n:]
		return v, nil
	}
	for len(delta) > 0 {
		tag, err := uv("tag")
		if err != nil {
			return nil, err
		}
		switch tag {
		case opCopy:
			start, err := uv("copy start")
			if err != nil {
				return nil, err
			}
			n, err := uv("copy length")
			if err != nil {
				return nil, err
			}
			if n == 0 || start >= uint64(len(lines)) || n > uint64(len(lines))-start {
				return nil, fmt.Errorf("%w: copy of lines %d+%d from a base of %d lines", ErrBadDelta, start, n, len(lines))
			}
			for _, l := range lines[start : start+n] {
				if len(out)+len(l) > MaxBlockSize {
					return nil, fmt.Errorf("%w: result over %d bytes", ErrBadDelta, MaxBlockSize)
				}
				out = append(out, l...)
			}
		case opLiteral:
			n, err := uv("literal length")
			if err != nil {
				return nil, err
			}
			if n == 0 || n > uint64(len(delta)) {
				return nil, fmt.Errorf("%w: literal of %d bytes with %d left", ErrBadDelta, n, len(delta))
			}
			if len(out)+int(n) > MaxBlockSize {
				return nil, fmt.Errorf("%w: result over %d bytes", ErrBadDelta, MaxBlockSize)
			}
			out = append(out, delta[:n]...)
			delta = delta[n:]
		default:
			return nil, fmt.Errorf("%w: operation %d", ErrBadDelta, tag)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty result", ErrBadDelta)
	}
	return out, nil
}

// DeltaBase picks, for a block of an entities manifest, the block of an
// earlier entities manifest that covers the same ids (the one holding its
// first id, else the first that overlaps its range), or false when none
// does. old must be in id order, as a manifest lists its blocks.
func DeltaBase(old []BlockRef, b BlockRef) (BlockRef, bool) {
	if b.First == "" || b.Last == "" {
		return BlockRef{}, false
	}
	// The first old block whose last id is at or after b's first id.
	lo, hi := 0, len(old)
	for lo < hi {
		mid := (lo + hi) / 2
		if old[mid].Last < b.First {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(old) || old[lo].First > b.Last || old[lo].First == "" {
		return BlockRef{}, false
	}
	return old[lo], true
}
