package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/klauspost/compress/s2"

	"github.com/mimnode/mimnode/content"
)

// Compressed block answers (EncodingS2).
//
// A whole block goes as an S2 block (statusS2). A delta (statusS2Delta)
// goes as a uvarint offset into its base, then an S2 block encoded with a
// dictionary: the base's bytes from that offset, up to s2.MaxDictSize
// (none when fewer than s2.MinDictSize remain). The provider puts the
// offset at the line where the block first differs from its base, which
// holds the old version of the first changed entity, so a changed line
// costs about the bytes that changed in it: compressed alone, a line
// shrinks far less than whole blocks do, and a delta would be a larger
// share of a compressed snapshot than of a plain one.

// compressedStatus is the status of a block answer's payload compressed.
func compressedStatus(status byte) byte {
	if status == statusDelta {
		return statusS2Delta
	}
	return statusS2
}

// compressAnswer compresses payload (a block, or when base is set a delta
// of target against base) into zb after room for the frame head, and
// reports whether that saves an eighth of it or more. zb has room for a
// block (serveBuf); it is returned grown if need be.
func compressAnswer(zb, payload, base, target []byte) ([]byte, bool) {
	zb = zb[:frameHead]
	var z []byte
	if base == nil {
		// Encode writes into zb when it has room (a block that does not
		// compress needs a little more than its size); append below then
		// copies z onto itself.
		z = s2.Encode(zb[frameHead:cap(zb)], payload)
	} else {
		off := deltaDictAt(base, target)
		zb = binary.AppendUvarint(zb, uint64(off))
		// A delta is at most half a block: zb has room after the offset.
		if d := deltaDict(base, off); d != nil {
			z = d.Encode(zb[len(zb):cap(zb)], payload)
		} else {
			z = s2.Encode(zb[len(zb):cap(zb)], payload)
		}
	}
	if !worthCompressing(len(zb)-frameHead+len(z), len(payload)) {
		return zb, false
	}
	return append(zb, z...), true
}

// errBadCompression: a compressed block answer does not decompress, or
// claims more than a block holds.
var errBadCompression = errors.New("compressed block answer does not decompress")

// decompressAnswer decompresses a compressed block answer's payload (a
// delta against base when base is set) into a buffer from framePools. It
// decompresses to at most content.MaxBlockSize (a delta is smaller than
// its block), so a frame cannot make the consumer allocate more.
func decompressAnswer(p, base []byte) (*[]byte, error) {
	var d *s2.Dict
	if base != nil {
		off, n := binary.Uvarint(p)
		if n <= 0 || off > uint64(len(base)) {
			return nil, errBadCompression
		}
		p, d = p[n:], deltaDict(base, int(off))
	}
	n, err := decodedLen(p, content.MaxBlockSize)
	if err != nil {
		return nil, err
	}
	out := frameBuf(uint64(n))
	if err := decodeS2(*out, p, d); err != nil {
		putFrameBuf(out)
		return nil, err
	}
	return out, nil
}

// worthCompressing reports whether n compressed bytes save an eighth or
// more of plain bytes: what makes an answer go, or a block be kept,
// compressed.
func worthCompressing(n, plain int) bool { return n <= plain-plain/8 }

// decodedLen is the length the S2 block p claims to decompress to, which
// must be at most limit.
func decodedLen(p []byte, limit int) (int, error) {
	n, err := s2.DecodedLen(p)
	if err != nil || n > limit {
		return 0, errBadCompression
	}
	return n, nil
}

// decodeS2 decompresses the S2 block p, with dictionary d if set, into
// dst, which is as long as p claims (decodedLen).
func decodeS2(dst, p []byte, d *s2.Dict) error {
	var got []byte
	var err error
	if d != nil {
		got, err = d.Decode(dst, p)
	} else {
		got, err = s2.Decode(dst, p)
	}
	if err != nil || len(got) != len(dst) {
		return errBadCompression
	}
	return nil
}

// answerFrame is the answer frame carrying payload: compressed when the
// request named EncodingS2 and that saves an eighth or more (manifests:
// block answers are framed in serveBlocks, without a copy).
func answerFrame(payload []byte, encodings []string) []byte {
	if slices.Contains(encodings, EncodingS2) {
		// Encode writes into f after the status byte: f has room for the
		// largest result.
		f := make([]byte, 1+s2.MaxEncodedLen(len(payload)))
		if z := s2.Encode(f[1:], payload); worthCompressing(len(z), len(payload)) {
			f[0] = statusS2
			return f[:1+len(z)]
		}
		// Not worth it: the plain frame fits in the same room.
		f[0] = statusData
		return f[:1+copy(f[1:], payload)]
	}
	return dataFrame(payload)
}

// maxManifestRatio bounds how many times its compressed size a manifest
// may claim to decompress to. A manifest is mostly CIDs, which do not
// compress: real ones shrink to a half or a third. Without the bound a
// frame of a few bytes could make the consumer allocate
// content.MaxManifestSize before decoding failed.
const maxManifestRatio = 16

// decompressManifest decompresses a compressed manifest answer, which
// may claim at most content.MaxManifestSize, and at most maxManifestRatio
// times its own size (plus 4 KiB for tiny ones).
func decompressManifest(p []byte) ([]byte, error) {
	n, err := decodedLen(p, min(content.MaxManifestSize, maxManifestRatio*len(p)+4096))
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	return b, decodeS2(b, p, nil)
}

// deltaDict is the dictionary of a delta against base whose answer names
// offset off, nil when too few bytes follow it.
func deltaDict(base []byte, off int) *s2.Dict {
	d := base[off:]
	if len(d) > s2.MaxDictSize {
		d = d[:s2.MaxDictSize]
	}
	if len(d) < s2.MinDictSize {
		return nil
	}
	return s2.MakeDict(d, nil)
}

// deltaDictAt is where target's delta against base takes its dictionary
// from: the start of the line holding the first byte where they differ.
func deltaDictAt(base, target []byte) int {
	n := 0
	const step = 64
	for n+step <= len(base) && n+step <= len(target) && bytes.Equal(base[n:n+step], target[n:n+step]) {
		n += step
	}
	for n < len(base) && n < len(target) && base[n] == target[n] {
		n++
	}
	return bytes.LastIndexByte(base[:n], '\n') + 1
}
