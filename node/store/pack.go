package store

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// Packed values: records that are JSON (entity states, negotiation
// records) are stored compressed, as the byte PackedMarker followed by the
// JSON in the Snappy block format (written by s2). JSON written before
// packing starts with '{' and is read as it is.
const PackedMarker = 0x01

// ErrPacked: a packed value is corrupt or claims more than allowed.
var ErrPacked = errors.New("corrupt packed value")

// Pack returns js as a packed value.
func Pack(js []byte) []byte {
	out := make([]byte, 1, 1+s2.MaxEncodedLen(len(js)))
	out[0] = PackedMarker
	return append(out, s2.EncodeSnappy(out[1:cap(out)], js)...)
}

// Unpack returns the JSON of a value Pack wrote, or b itself when it is
// not packed. A packed value that claims more than limit bytes is refused
// before anything is allocated.
func Unpack(b []byte, limit int) ([]byte, error) { return UnpackTo(nil, b, limit) }

// UnpackTo is Unpack decoding into buf's storage when it is large enough
// (a reader that keeps the result as its next buf allocates only when a
// value is larger than any before).
func UnpackTo(buf, b []byte, limit int) ([]byte, error) {
	if len(b) == 0 || b[0] != PackedMarker {
		return b, nil
	}
	n, err := s2.DecodedLen(b[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPacked, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%w: claims %d bytes, at most %d", ErrPacked, n, limit)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	js, err := s2.Decode(buf[:n], b[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPacked, err)
	}
	return js, nil
}
