package catalog

import (
	"encoding/json"
	"errors"
	"testing"
)

func FuzzParseDataset(f *testing.F) {
	f.Add(readTestdata(f, "air-quality.json"), false)
	f.Add(readTestdata(f, "full.json"), false)
	f.Add(readTestdata(f, "air-quality.toml"), true)
	f.Fuzz(func(t *testing.T, data []byte, isTOML bool) {
		format := FormatJSON
		if isTOML {
			format = FormatTOML
		}
		d, err := ParseDataset(data, format)
		if err != nil {
			if !errors.Is(err, ErrInvalidDataset) {
				t.Fatalf("ParseDataset error %v does not wrap ErrInvalidDataset", err)
			}
			return
		}
		// An accepted description writes back to one that is accepted again
		// and writes the same.
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("accepted dataset does not encode: %v", err)
		}
		d2, err := ParseDataset(b, FormatJSON)
		if err != nil {
			t.Fatalf("re-encoded dataset is refused: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(d2)
		if string(b) != string(b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	c := publisherWith(f, newTestKey(1), newTestKey(2).PeerID())
	for _, r := range c.All() {
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to a record that decodes the same, and its
		// signature verifies only if the input's did.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		r2, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if (r.Verify(testVerifier{}) == nil) != (r2.Verify(testVerifier{}) == nil) {
			t.Fatalf("re-encoding changed whether the signature verifies")
		}
	})
}
