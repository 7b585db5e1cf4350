package protocol

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// Framing errors. Every error ReadFrame returns for bad input wraps one of
// these, so the driver can map it to a protocol error code and reset the
// stream.
var (
	// ErrFrameTooLarge means a frame's announced length exceeds the cap the
	// reader (or MaxFrameSize, for the writer) allows.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrMalformedFrame means the length prefix is not a minimal unsigned
	// varint of at most 9 bytes, or announces an empty frame.
	ErrMalformedFrame = errors.New("malformed frame")
	// ErrTruncatedFrame means the stream ended inside a frame (after the
	// first byte of the prefix but before the last byte of the body). It
	// also wraps io.ErrUnexpectedEOF.
	ErrTruncatedFrame = errors.New("truncated frame")
)

// maxVarintLen is the longest prefix accepted. Nine bytes hold 63 bits, the
// limit the multiformats unsigned-varint spec sets, and far more than any cap.
const maxVarintLen = 9

// WriteFrame writes body as one frame: its length as an unsigned varint
// (LEB128, as in multiformats unsigned-varint), then the body. Empty bodies
// and bodies over MaxFrameSize are refused because no peer would accept them.
//
// Small frames are written with a single Write call so that a stream
// multiplexer sends prefix and body in one packet. A writer that buffers
// (bufio.Writer, bytes.Buffer: it has AvailableBuffer) gets the frame
// assembled in its own free space, so that nothing is allocated or copied
// twice for it: the negotiation driver writes every message of a
// conversation that way.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("writing frame: %w: empty body", ErrMalformedFrame)
	}
	if len(body) > MaxFrameSize {
		return fmt.Errorf("writing frame of %d bytes (cap %d): %w", len(body), MaxFrameSize, ErrFrameTooLarge)
	}
	var prefix [maxVarintLen]byte
	n := putUvarint(prefix[:], uint64(len(body)))
	if len(body) <= 16<<10 {
		var buf []byte
		if bw, ok := w.(interface{ AvailableBuffer() []byte }); ok {
			buf = bw.AvailableBuffer() // empty, with the writer's free space as capacity
		}
		buf = append(append(slices.Grow(buf, n+len(body)), prefix[:n]...), body...)
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("writing frame: %w", err)
		}
		return nil
	}
	// Large bodies: avoid copying them just to save one syscall.
	if _, err := w.Write(prefix[:n]); err != nil {
		return fmt.Errorf("writing frame prefix: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("writing frame body: %w", err)
	}
	return nil
}

// ReadFrame reads one frame written by WriteFrame and returns its body. A
// frame longer than max (or MaxFrameSize, whichever is smaller) is refused
// with ErrFrameTooLarge before its body is read.
//
// ReadFrame never reads past the end of the frame, so the caller can read
// the next frame (or raw bytes) from r afterwards:
//   - if r implements io.ByteReader (a *bufio.Reader, a *bytes.Reader) the
//     prefix is read with ReadByte; a bufio.Reader may of course have
//     buffered more of the stream, so keep reading through that same
//     bufio.Reader, not the stream under it;
//   - otherwise the prefix is read one byte per Read call. That is exact
//     but costs a call per prefix byte (at most 3 for frames up to 2 MiB); on
//     a hot path wrap the stream in a bufio.Reader once and keep it.
//
// At a clean end of stream (no byte of a new frame read) it returns io.EOF
// itself, unwrapped, so loops can stop on err == io.EOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 || max > MaxFrameSize {
		max = MaxFrameSize
	}
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("reading frame: %w: zero length", ErrMalformedFrame)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("reading frame: announced %d bytes, cap %d: %w", n, max, ErrFrameTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading frame body of %d bytes: %w: %w", n, ErrTruncatedFrame, io.ErrUnexpectedEOF)
		}
		return nil, fmt.Errorf("reading frame body: %w", err)
	}
	return body, nil
}

func putUvarint(buf []byte, x uint64) int {
	i := 0
	for x >= 0x80 {
		buf[i] = byte(x) | 0x80
		x >>= 7
		i++
	}
	buf[i] = byte(x)
	return i + 1
}

// readUvarint reads a minimal unsigned varint. Non-minimal encodings (a
// trailing 0x00 continuation group) are refused, as multiformats requires,
// so that every length has exactly one encoding.
func readUvarint(r io.Reader) (uint64, error) {
	br, isByteReader := r.(io.ByteReader)
	var one [1]byte
	readByte := func() (byte, error) {
		if isByteReader {
			return br.ReadByte()
		}
		for {
			n, err := r.Read(one[:])
			if n == 1 {
				return one[0], nil
			}
			if err != nil {
				return 0, err
			}
			// A zero-byte read without error is allowed by io.Reader;
			// try again rather than report a bogus EOF.
		}
	}
	var x uint64
	for i := 0; i < maxVarintLen; i++ {
		b, err := readByte()
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("reading frame prefix: %w: %w", ErrTruncatedFrame, io.ErrUnexpectedEOF)
			}
			return 0, fmt.Errorf("reading frame prefix: %w", err)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("reading frame prefix: %w: non-minimal varint", ErrMalformedFrame)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("reading frame prefix: %w: varint longer than %d bytes", ErrMalformedFrame, maxVarintLen)
}
