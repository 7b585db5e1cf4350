package transfer_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/protocol"
)

// TestReadFrameLenAgreesWithReadFrame: the block reader's own length
// parser (it reads bodies into pooled buffers) accepts and refuses the
// prefixes protocol.ReadFrame does, with the same sentinel errors.
func TestReadFrameLenAgreesWithReadFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix []byte
	}{
		{"empty", nil},
		{"one byte", []byte{5}},
		{"two bytes", []byte{0x80, 0x01}},
		{"truncated", []byte{0x80}},
		{"zero", []byte{0}},
		{"non-minimal", []byte{0x85, 0x00}},
		{"too large", []byte{0x80, 0x80, 0x80, 0x08}},
		{"too long", bytes.Repeat([]byte{0xff}, 11)},
	} {
		in := append(bytes.Clone(tc.prefix), make([]byte, 200)...)
		if tc.prefix == nil {
			in = nil
		}
		body, werr := protocol.ReadFrame(bytes.NewReader(in), protocol.MaxFrameSize)
		n, gerr := transfer.ReadFrameLen(bytes.NewReader(in))
		switch {
		case werr == nil && (gerr != nil || n != uint64(len(body))):
			t.Errorf("%s: ReadFrameLen = %d, %v; want %d", tc.name, n, gerr, len(body))
		case werr != nil && gerr == nil:
			t.Errorf("%s: ReadFrameLen = %d, nil; ReadFrame says %v", tc.name, n, werr)
		case werr != nil:
			for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, protocol.ErrTruncatedFrame, protocol.ErrMalformedFrame, protocol.ErrFrameTooLarge} {
				if errors.Is(werr, e) != errors.Is(gerr, e) {
					t.Errorf("%s: ReadFrameLen error %v, ReadFrame %v: differ on %v", tc.name, gerr, werr, e)
				}
			}
		}
	}
}
