package transfer_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mimnode/mimnode/node/transfer"
)

// seedRequests are data requests as the consumer sends them.
var seedRequests = []string{
	`{"@type":"mim:ManifestRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c"}`,
	`{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]}`,
	`{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"],"bases":["","bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]}`,
	`{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"],"encodings":["s2"]}`,
	`{"@type":"mim:ReceiptRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","usage":{"bytes":10,"blocks":1,"entities":3,"duration":5}}`,
	`{"@type":"mim:LiveRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","from":42}`,
	`{"@type":"mim:Acknowledgement","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","ack":{"receipt":{"version":"x"},"providerSignature":"AAE="}}`,
	`{"@type":"mim:Revocation","agreement":"urn:uuid:a","reasons":["agreement urn:uuid:a was revoked by its provider"]}`,
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
	f.Add([]byte("\x03\x05\x10hello"))
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

// TestBlockRequestBases: bases come one per CID or not at all, each a CID
// or empty; a request names at most 8 encodings, and names a provider does
// not know are no error. Deltas and compressed blocks answer only block
// requests.
func TestBlockRequestBases(t *testing.T) {
	const c = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	head := `{"@type":"mim:BlockRequest","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","cids":["` + c + `","` + c + `"],`
	for body, ok := range map[string]bool{
		head + `"bases":["","` + c + `"]}`:                          true,
		head + `"bases":["` + c + `"]}`:                             false,
		head + `"bases":["","x"]}`:                                  false,
		head + `"encodings":["s2","zstd-of-the-future"]}`:           true,
		head + `"encodings":["a","b","c","d","e","f","g","h","i"]}`: false,
	} {
		if _, err := transfer.DecodeDataRequest([]byte(body)); (err == nil) != ok || (err != nil && !errors.Is(err, transfer.ErrBadRequest)) {
			t.Errorf("%s: err = %v, want ok=%v", body, err, ok)
		}
	}
	for _, f := range []string{"\x02\x01\x01x", "\x03\x01x", "\x04\x00\x01x"} {
		if _, err := transfer.DecodeAnswer([]byte(f)); !errors.Is(err, transfer.ErrBadRequest) {
			t.Errorf("status %d answering something else than a block request: err = %v, want ErrBadRequest", f[0], err)
		}
	}
}
