package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"one byte", 1},
		{"largest one-byte prefix", 127},
		{"smallest two-byte prefix", 128},
		{"largest two-byte prefix", 16383},
		{"smallest three-byte prefix", 16384},
		{"above single-write threshold", 16<<10 + 1},
		{"negotiation cap", MaxNegotiationFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte{'x'}, tc.size)
			body[0] = '{'
			var buf bytes.Buffer
			if err := WriteFrame(&buf, body); err != nil {
				t.Fatalf("WriteFrame(%d bytes) = %v", tc.size, err)
			}
			got, err := ReadFrame(&buf, MaxNegotiationFrame)
			if err != nil {
				t.Fatalf("ReadFrame = %v", err)
			}
			if !bytes.Equal(got, body) {
				t.Fatalf("ReadFrame returned %d bytes, want the %d written", len(got), len(body))
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes left after one frame", buf.Len())
			}
		})
	}
}

// onlyReader hides any io.ByteReader the underlying reader has, the way a
// libp2p stream looks to ReadFrame.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// stingyReader returns at most one byte per call and sometimes none, which
// io.Reader allows.
type stingyReader struct {
	r     io.Reader
	calls int
}

func (s *stingyReader) Read(p []byte) (int, error) {
	s.calls++
	if s.calls%3 == 0 {
		return 0, nil
	}
	if len(p) > 1 {
		p = p[:1]
	}
	return s.r.Read(p)
}

// TestReadFrameDoesNotOverRead checks the promise the driver relies on:
// after a frame, the next bytes of the stream are still there.
func TestReadFrameDoesNotOverRead(t *testing.T) {
	var stream bytes.Buffer
	for _, b := range []string{"first", strings.Repeat("y", 300)} {
		if err := WriteFrame(&stream, []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	stream.WriteString("raw tail")
	wire := stream.Bytes()

	readers := map[string]func() io.Reader{
		"plain reader":     func() io.Reader { return onlyReader{bytes.NewReader(wire)} },
		"stingy reader":    func() io.Reader { return &stingyReader{r: bytes.NewReader(wire)} },
		"byte reader":      func() io.Reader { return bytes.NewReader(wire) },
		"bufio over plain": func() io.Reader { return bufio.NewReader(onlyReader{bytes.NewReader(wire)}) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := mk()
			for i, want := range []string{"first", strings.Repeat("y", 300)} {
				got, err := ReadFrame(r, 1024)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if string(got) != want {
					t.Fatalf("frame %d = %q, want %q", i, got, want)
				}
			}
			tail, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if string(tail) != "raw tail" {
				t.Fatalf("after two frames the stream holds %q, want %q", tail, "raw tail")
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		wire []byte
		max  int
		want error
	}{
		{"clean end of stream", nil, 100, io.EOF},
		{"announced length over cap", []byte{0x81, 0x01, 'x'}, 100, ErrFrameTooLarge},
		{"huge announced length", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 100, ErrFrameTooLarge},
		{"over absolute cap even if max is larger", appendUvarint(MaxFrameSize + 1), 1 << 30, ErrFrameTooLarge},
		{"zero length", []byte{0x00}, 100, ErrMalformedFrame},
		{"non-minimal varint", []byte{0x85, 0x00, 'a', 'b', 'c', 'd', 'e'}, 100, ErrMalformedFrame},
		{"varint longer than nine bytes", bytes.Repeat([]byte{0x80}, 10), 100, ErrMalformedFrame},
		{"prefix cut off", []byte{0x80}, 100, ErrTruncatedFrame},
		{"body cut off", []byte{0x05, 'a', 'b'}, 100, ErrTruncatedFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(onlyReader{bytes.NewReader(tc.wire)}, tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame(% x) = %v, want %v", tc.wire, err, tc.want)
			}
			if tc.want == io.EOF && err != io.EOF {
				t.Fatalf("clean EOF must be io.EOF itself, got %#v", err)
			}
		})
	}
}

func TestReadFrameTruncatedIsUnexpectedEOF(t *testing.T) {
	_, err := ReadFrame(bytes.NewReader([]byte{0x05, 'a'}), 100)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadFrame(truncated) = %v, want it to wrap io.ErrUnexpectedEOF", err)
	}
}

func TestWriteFrameErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"empty body", nil, ErrMalformedFrame},
		{"over absolute cap", make([]byte, MaxFrameSize+1), ErrFrameTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, tc.body); !errors.Is(err, tc.want) {
				t.Fatalf("WriteFrame(%d bytes) = %v, want %v", len(tc.body), err, tc.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("WriteFrame wrote %d bytes for a refused frame", buf.Len())
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestWriteFramePassesWriterError(t *testing.T) {
	for _, size := range []int{10, 32 << 10} {
		if err := WriteFrame(failingWriter{}, make([]byte, size)); !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("WriteFrame(%d bytes) to a closed pipe = %v, want io.ErrClosedPipe", size, err)
		}
	}
}

func appendUvarint(x uint64) []byte {
	var b [maxVarintLen]byte
	return b[:putUvarint(b[:], x)]
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x03, '{', '}', '\n'})
	f.Add([]byte{0x80})
	f.Add([]byte{0x85, 0x00})
	f.Add(bytes.Repeat([]byte{0xff}, 12))
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte(`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractNegotiation"}`)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := bytes.NewReader(wire)
		body, err := ReadFrame(onlyReader{r}, 1024)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, ErrFrameTooLarge) &&
				!errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrTruncatedFrame) {
				t.Fatalf("ReadFrame(% x) returned an unclassified error %v", wire, err)
			}
			return
		}
		if len(body) == 0 || len(body) > 1024 {
			t.Fatalf("ReadFrame returned a %d-byte body", len(body))
		}
		// What was read must re-encode to exactly the bytes consumed.
		var out bytes.Buffer
		if err := WriteFrame(&out, body); err != nil {
			t.Fatal(err)
		}
		consumed := len(wire) - r.Len()
		if !bytes.Equal(out.Bytes(), wire[:consumed]) {
			t.Fatalf("frame % x re-encodes as % x", wire[:consumed], out.Bytes())
		}
	})
}

// BenchmarkReadWriteFrame measures one negotiation-sized frame (1 KiB)
// written and read back through a bufio.Reader, as the driver does.
func BenchmarkReadWriteFrame(b *testing.B) {
	for _, size := range []int{256, 1 << 10, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			body := bytes.Repeat([]byte{'a'}, size)
			var buf bytes.Buffer
			br := bufio.NewReader(&buf)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteFrame(&buf, body); err != nil {
					b.Fatal(err)
				}
				if _, err := ReadFrame(br, MaxFrameSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// countingWriter records each Write call's bytes and hides any buffer
// of the writer under it, as a libp2p stream does.
type countingWriter struct{ writes [][]byte }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// TestWriteFrameSameBytesWhateverWriter: a frame written into a buffering
// writer's own free space (bufio.Writer, bytes.Buffer), or past it, reads
// the same as one written to a plain writer, which gets a small frame in
// one Write call (one multiplexer packet).
func TestWriteFrameSameBytesWhateverWriter(t *testing.T) {
	for _, size := range []int{1, 127, 128, 3000, 16 << 10, 16<<10 + 1} {
		body := bytes.Repeat([]byte{'z'}, size)
		var plain countingWriter
		if err := WriteFrame(&plain, body); err != nil {
			t.Fatal(err)
		}
		want := bytes.Join(plain.writes, nil)
		if size <= 16<<10 && len(plain.writes) != 1 {
			t.Errorf("WriteFrame(%d bytes) to a plain writer took %d Write calls, want 1", size, len(plain.writes))
		}
		for _, used := range []int{0, 1, 4000, 16<<10 - 2} {
			var out bytes.Buffer
			bw := bufio.NewWriterSize(&out, 16<<10)
			bw.Write(bytes.Repeat([]byte{'-'}, used))
			if err := WriteFrame(bw, body); err != nil {
				t.Fatal(err)
			}
			if err := bw.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := out.Bytes()[used:]; !bytes.Equal(got, want) {
				t.Errorf("WriteFrame(%d bytes) after %d buffered: %d bytes out, want the %d of a plain writer", size, used, len(got), len(want))
			}
		}
		var buf bytes.Buffer
		buf.WriteString("before")
		if err := WriteFrame(&buf, body); err != nil {
			t.Fatal(err)
		}
		if got := buf.Bytes()[len("before"):]; !bytes.Equal(got, want) {
			t.Errorf("WriteFrame(%d bytes) to a bytes.Buffer: %d bytes, want the %d of a plain writer", size, len(got), len(want))
		}
	}
}

// BenchmarkWriteFrameBuffered writes a negotiation message's frame into a
// conversation's buffered writer, as the driver does.
func BenchmarkWriteFrameBuffered(b *testing.B) {
	body := bytes.Repeat([]byte{'x'}, 3000)
	bw := bufio.NewWriterSize(io.Discard, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteFrame(bw, body); err != nil {
			b.Fatal(err)
		}
		bw.Flush()
	}
}

// writeFrameBefore is WriteFrame before 52614ea, for the small frames it
// wrote in one Write call: prefix and body copied into a new buffer.
func writeFrameBefore(w io.Writer, body []byte) error {
	b := append(appendUvarint(uint64(len(body))), body...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing frame: %w", err)
	}
	return nil
}

// limitedWriter takes n bytes in all, then writes what still fits of a
// call and fails it; it records each call's bytes.
type limitedWriter struct {
	n      int
	writes [][]byte
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	l.writes = append(l.writes, bytes.Clone(p))
	if len(p) > l.n {
		n := l.n
		l.n = 0
		return n, io.ErrClosedPipe
	}
	l.n -= len(p)
	return len(p), nil
}

// TestWriteFrameBufferedIsWriteFrameBefore: a small frame written into a
// bufio.Writer's free space makes the calls to the writer under it that
// the frame in a new buffer made, with the same bytes and the same
// error, whatever the buffer's size, how full it is, the frame's size
// around both, and the writer under it failing partway or not; a
// bytes.Buffer read from or grown before gets the same bytes.
func TestWriteFrameBufferedIsWriteFrameBefore(t *testing.T) {
	sizes := []int{1, 2, 13, 14, 15, 126, 127, 128, 129, 4093, 4094, 4095, 4096, 16379, 16380, 16381, 16382, 16383, 16384}
	for _, bufSize := range []int{16, 4096, 16 << 10} {
		for _, used := range []int{0, 1, 2, bufSize / 2, bufSize - 4, bufSize - 3, bufSize - 2, bufSize - 1} {
			for _, size := range sizes {
				body := bytes.Repeat([]byte{'z'}, size)
				body[0], body[size-1] = 'a', 'b'
				for _, limit := range []int{1 << 30, 0, used / 2, used + size/2} {
					run := func(write func(io.Writer, []byte) error) (under *limitedWriter, buffered int, err, flushErr error) {
						under = &limitedWriter{n: limit}
						bw := bufio.NewWriterSize(under, bufSize)
						bw.Write(bytes.Repeat([]byte{'-'}, used))
						err = write(bw, body)
						return under, bw.Buffered(), err, bw.Flush()
					}
					gotW, gotBuf, gotErr, gotFlush := run(WriteFrame)
					wantW, wantBuf, wantErr, wantFlush := run(writeFrameBefore)
					name := fmt.Sprintf("WriteFrame(%d bytes) into bufio.Writer(%d) holding %d, writer under it failing after %d", size, bufSize, used, limit)
					if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || fmt.Sprint(gotFlush) != fmt.Sprint(wantFlush) || gotBuf != wantBuf {
						t.Fatalf("%s: error %v, %d buffered, Flush %v; before: %v, %d, %v", name, gotErr, gotBuf, gotFlush, wantErr, wantBuf, wantFlush)
					}
					if len(gotW.writes) != len(wantW.writes) {
						t.Fatalf("%s: %d writes, before %d", name, len(gotW.writes), len(wantW.writes))
					}
					for i := range gotW.writes {
						if !bytes.Equal(gotW.writes[i], wantW.writes[i]) {
							t.Fatalf("%s: write %d of %d bytes, before %d", name, i, len(gotW.writes[i]), len(wantW.writes[i]))
						}
					}
				}
			}
		}
	}
	for _, size := range sizes {
		body := bytes.Repeat([]byte{'z'}, size)
		want := append(appendUvarint(uint64(size)), body...)
		for _, prep := range []struct {
			name string
			fn   func(*bytes.Buffer)
		}{
			{"read to its end", func(b *bytes.Buffer) { b.WriteString("before"); b.Next(6) }},
			{"read partly", func(b *bytes.Buffer) { b.WriteString("before"); b.Next(3) }},
			{"grown", func(b *bytes.Buffer) { b.Grow(size + 3) }},
			{"grown short", func(b *bytes.Buffer) { b.Grow(size) }},
			{"reset", func(b *bytes.Buffer) { b.Write(make([]byte, 20000)); b.Reset() }},
		} {
			var b bytes.Buffer
			prep.fn(&b)
			kept := bytes.Clone(b.Bytes())
			if err := WriteFrame(&b, body); err != nil {
				t.Fatal(err)
			}
			if got := b.Bytes(); !bytes.Equal(got[:len(kept)], kept) || !bytes.Equal(got[len(kept):], want) {
				t.Fatalf("WriteFrame(%d bytes) into a bytes.Buffer %s: %d bytes, want %q then the %d of the frame", size, prep.name, len(got), kept, len(want))
			}
		}
	}
}
