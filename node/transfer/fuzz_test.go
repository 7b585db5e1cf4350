package transfer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/transfer"
)

// seedRequests are data requests as the consumer sends them.
var seedRequests = []string{
	`{"@type":"mim:ManifestRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c"}`,
	`{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]}`,
	`{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"],"bases":["","bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]}`,
	`{"@type":"mim:ReceiptRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","usage":{"bytes":10,"blocks":1,"entities":3,"duration":5}}`,
	`{"@type":"mim:LiveRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","from":42}`,
	`{"@type":"mim:Acknowledgement","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","ack":{"receipt":{"version":"x"},"providerSignature":"AAE="}}`,
}

// FuzzDecodeDataRequest: any frame body gives a request that passes its
// own checks or ErrBadRequest, never a panic; a decoded request encodes and
// decodes to the same.
func FuzzDecodeDataRequest(f *testing.F) {
	for _, s := range seedRequests {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := transfer.DecodeDataRequest(body)
		if err != nil {
			if !errors.Is(err, transfer.ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := transfer.DecodeDataRequest(b); err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", b, err)
		}
	})
}

// FuzzDecodeAnswer: any answer frame is a payload, a refusal or
// ErrBadRequest.
func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte("\x00{\"id\":\"urn:ngsi-ld:x\"}\n"))
	f.Add([]byte("\x01{\"code\":\"MIM-605\",\"reason\":[\"expired\"]}"))
	f.Add([]byte("\x01{}"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := transfer.DecodeAnswer(frame)
		var re *transfer.RefusedError
		switch {
		case err == nil:
			if len(p) != len(frame)-1 {
				t.Fatalf("payload of %d bytes from a frame of %d", len(p), len(frame))
			}
		case errors.As(err, &re):
			if re.Code == "" {
				t.Fatal("refusal without a code")
			}
		case !errors.Is(err, transfer.ErrBadRequest):
			t.Fatalf("error %v is neither a refusal nor ErrBadRequest", err)
		}
	})
}

// FuzzReadBlockBody: a block answer read in pieces of any size, with its
// pieces hashed as they arrive, verifies exactly when the whole frame's
// payload would (content.VerifyBlock); a frame cut short is io.EOF. The
// fuzzer picks the block, the pieces the stream hands out, whether the
// CID is the block's, and where the stream ends.
func FuzzReadBlockBody(f *testing.F) {
	f.Add(bytes.Repeat([]byte("entity line\n"), 3000), []byte{7, 200, 1, 64}, true, 0)
	f.Add(bytes.Repeat([]byte{0xab}, 70000), []byte{255}, false, 0)
	f.Add([]byte("x"), []byte{}, true, 1)
	f.Fuzz(func(t *testing.T, block, pieces []byte, own bool, cut int) {
		frame := append([]byte{0}, block...)
		c := content.BlockCID(block)
		if !own {
			c = content.BlockCID(append(block, 'x'))
		}
		cut = min(max(cut, 0), len(frame))
		r := &piecesReader{b: frame[:len(frame)-cut], sizes: pieces}
		got := make([]byte, len(frame))
		var check content.BlockCheck
		err := transfer.ReadBlockBody(r, got, c, &check)
		if cut > 0 {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("frame cut %d bytes short: err = %v, want io.EOF", cut, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("reading a whole frame: %v", err)
		}
		if !bytes.Equal(got, frame) {
			t.Fatal("frame read differs from the one sent")
		}
		if verr, want := check.Verify(got[1:]), content.VerifyBlock(c, frame[1:]); (verr == nil) != (want == nil) || (want == nil) != own {
			t.Fatalf("checked in pieces: %v; whole: %v; own CID %v", verr, want, own)
		}
	})
}

// piecesReader hands out b in pieces of the sizes given (cycling, 512
// bytes to 128 KiB), then io.EOF.
type piecesReader struct {
	b     []byte
	sizes []byte
	i     int
}

func (r *piecesReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := len(r.b)
	if len(r.sizes) > 0 {
		n = (int(r.sizes[r.i%len(r.sizes)]) + 1) << 9
		r.i++
	}
	n = copy(p, r.b[:min(n, len(r.b))])
	r.b = r.b[n:]
	return n, nil
}

// TestBlockRequestBases: bases come one per CID or not at all, each a CID
// or empty.
func TestBlockRequestBases(t *testing.T) {
	const c = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	head := `{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["` + c + `","` + c + `"],`
	for body, ok := range map[string]bool{
		head + `"bases":["","` + c + `"]}`: true,
		head + `"bases":["` + c + `"]}`:    false,
		head + `"bases":["","x"]}`:         false,
	} {
		if _, err := transfer.DecodeDataRequest([]byte(body)); (err == nil) != ok || (err != nil && !errors.Is(err, transfer.ErrBadRequest)) {
			t.Errorf("%s: err = %v, want ok=%v", body, err, ok)
		}
	}
	if _, err := transfer.DecodeAnswer([]byte("\x02\x01\x01x")); !errors.Is(err, transfer.ErrBadRequest) {
		t.Errorf("a delta answering something else than a block request: err = %v, want ErrBadRequest", err)
	}
}
