package store_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

func TestPackRoundTripAndPlainJSON(t *testing.T) {
	js := []byte(`{"id":"urn:ngsi-ld:AirQualityObserved:1","no2":{"type":"Property","value":22}}`)
	p := store.Pack(js)
	if p[0] != store.PackedMarker {
		t.Fatalf("packed value starts with %#x", p[0])
	}
	if got, err := store.Unpack(p, 1<<20); err != nil || !bytes.Equal(got, js) {
		t.Fatalf("Unpack(Pack) = %s, %v", got, err)
	}
	// Values written before packing are JSON and come back as they are.
	if got, err := store.Unpack(js, 1<<20); err != nil || !bytes.Equal(got, js) {
		t.Fatalf("Unpack(plain) = %s, %v", got, err)
	}
	if _, err := store.Unpack(p, 10); !errors.Is(err, store.ErrPacked) {
		t.Fatalf("a value over the limit: err = %v, want ErrPacked", err)
	}
	if _, err := store.Unpack(append([]byte{store.PackedMarker}, 0xff, 0xff, 0xff), 1<<20); !errors.Is(err, store.ErrPacked) {
		t.Fatalf("a corrupt value: err = %v, want ErrPacked", err)
	}
}
