package transfer

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/mimnode/mimnode/content"
)

// linesBlock is an entities block of n lines, line i with value v(i).
func linesBlock(n int, v func(i int) int) []byte {
	var b []byte
	for i := range n {
		b = fmt.Appendf(b, `{"id":"urn:ngsi-ld:AirQualityObserved:%06d","t":["https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"],"a":{"https://smartdatamodels.org/dataModel.Environment/no2":[{"t":"Property","v":%d,"u":"GQ"}]}}`+"\n", i, v(i))
	}
	return b
}

// TestCompressAnswerRoundTrip: what the provider compresses, a block or a
// delta against the consumer's base, the consumer decompresses to the
// same bytes; a delta of one changed line costs far less than the line
// compressed alone, because the base's old line is its dictionary.
func TestCompressAnswerRoundTrip(t *testing.T) {
	base := linesBlock(2000, func(i int) int { return i * 7 % 1000 })
	target := linesBlock(2000, func(i int) int {
		if i == 1500 {
			return 123456
		}
		return i * 7 % 1000
	})
	zb := *serveBuf()

	z, ok := compressAnswer(zb, target, nil, nil)
	if !ok {
		t.Fatal("a block of entity lines did not compress")
	}
	out, err := decompressAnswer(z[frameHead:], nil)
	if err != nil || !bytes.Equal(*out, target) {
		t.Fatalf("block: decompressed %d bytes (err %v), want the %d of the block", len(*out), err, len(target))
	}

	delta := content.LineDelta(base, target)
	z, ok = compressAnswer(zb, delta, base, target)
	if !ok {
		t.Fatal("a delta did not compress")
	}
	out, err = decompressAnswer(z[frameHead:], base)
	if err != nil || !bytes.Equal(*out, delta) {
		t.Fatalf("delta: decompressed to %q (err %v), want %q", *out, err, delta)
	}
	line := bytes.SplitAfter(target, []byte("\n"))[1500]
	if alone, _ := compressAnswer(*serveBuf(), line, nil, nil); len(z)*2 > len(alone) { // z is in zb
		t.Errorf("the delta of one changed line compressed to %d bytes, the line alone to %d; want under half", len(z)-frameHead, len(alone)-frameHead)
	}

	// Against another base the consumer gets other bytes, which fail
	// verification (or do not decompress) rather than pass as the block.
	other := linesBlock(2000, func(i int) int { return i })
	if out, err := decompressAnswer(z[frameHead:], other); err == nil && bytes.Equal(*out, delta) {
		t.Error("a delta decompressed against another base gave the delta")
	}
	if out, err := decompressAnswer(z[frameHead:], base); err != nil || !bytes.Equal(*out, delta) {
		t.Errorf("the delta no longer decompresses against its base (err %v): the checks above used other bytes", err)
	}
}

// TestCompressAnswerIncompressible: bytes that do not compress go plain.
func TestCompressAnswerIncompressible(t *testing.T) {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*2654435761>>13) ^ byte(i>>8*97)
	}
	if _, ok := compressAnswer(*serveBuf(), b, nil, nil); ok {
		t.Error("compressAnswer took 64 KiB of noise as compressed")
	}
}

// TestManifestAnswerFrame: a manifest goes compressed to a consumer that
// names s2 when that saves enough, plain otherwise, and plain always to
// one that names no encoding; each frame reads back as the manifest.
func TestManifestAnswerFrame(t *testing.T) {
	var m []byte
	for i := range 500 {
		m = fmt.Appendf(m, `{"first":"urn:ngsi-ld:AirQualityObserved:%06d","size":262144},`, i*56)
	}
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(i*2654435761>>13) ^ byte(i>>8*97)
	}
	for _, c := range []struct {
		name      string
		payload   []byte
		encodings []string
		status    byte
	}{
		{"compressible, s2 named", m, []string{"zstd", EncodingS2}, statusS2},
		{"compressible, none named", m, nil, statusData},
		{"incompressible, s2 named", noise, []string{EncodingS2}, statusData},
	} {
		f := answerFrame(c.payload, c.encodings)
		if f[0] != c.status {
			t.Errorf("%s: status %d, want %d", c.name, f[0], c.status)
			continue
		}
		got := f[1:]
		if f[0] == statusS2 {
			var err error
			if got, err = decompressManifest(got); err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
		}
		if !bytes.Equal(got, c.payload) {
			t.Errorf("%s: the frame reads back as %d bytes, want the %d sent", c.name, len(got), len(c.payload))
		}
	}
}

// TestDecompressManifestBounded: a manifest answer of a few bytes that
// claims megabytes (zeros compress to almost nothing) is refused before
// anything that size is allocated; a manifest of real shape, which
// compresses two or three times, decompresses.
func TestDecompressManifestBounded(t *testing.T) {
	z := s2.Encode(nil, make([]byte, 8<<20))
	if _, err := decompressManifest(z); !errors.Is(err, errBadCompression) {
		t.Errorf("8 MiB of zeros in a %d-byte answer: err = %v, want errBadCompression", len(z), err)
	}
	var m []byte
	for i := range 2000 {
		c := content.BlockCID(fmt.Appendf(nil, "block %d", i))
		m = fmt.Appendf(m, `{"cid":{"/":%q},"count":56,"first":"urn:ngsi-ld:AirQualityObserved:%06d","last":"urn:ngsi-ld:AirQualityObserved:%06d","size":262144},`, c, i*56, i*56+55)
	}
	got, err := decompressManifest(s2.Encode(nil, m))
	if err != nil || !bytes.Equal(got, m) {
		t.Errorf("a manifest-shaped %d bytes: err = %v", len(m), err)
	}
}

// FuzzDecompressAnswer: any payload against any base decompresses to at
// most a block (as a manifest, to at most content.MaxManifestSize), or
// fails with errBadCompression; never a panic.
func FuzzDecompressAnswer(f *testing.F) {
	base := linesBlock(40, func(i int) int { return i })
	target := linesBlock(40, func(i int) int { return i % 3 })
	zb := *serveBuf()
	z, _ := compressAnswer(zb, target, nil, nil)
	f.Add(bytes.Clone(z[frameHead:]), false)
	z, _ = compressAnswer(zb, content.LineDelta(base, target), base, target)
	f.Add(bytes.Clone(z[frameHead:]), true)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	f.Add([]byte{0x80}, true)
	f.Fuzz(func(t *testing.T, p []byte, delta bool) {
		if m, err := decompressManifest(p); err != nil && !errors.Is(err, errBadCompression) || len(m) > content.MaxManifestSize {
			t.Fatalf("manifest: %d bytes, error %v", len(m), err)
		}
		var b []byte
		if delta {
			b = base
		}
		out, err := decompressAnswer(p, b)
		if err != nil {
			if !errors.Is(err, errBadCompression) {
				t.Fatalf("error %v is not errBadCompression", err)
			}
			return
		}
		if len(*out) > content.MaxBlockSize {
			t.Fatalf("decompressed to %d bytes, more than a block", len(*out))
		}
		putFrameBuf(out)
	})
}
