package ngsild

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestDecodeBodyEntity checks that the plain-shape decoder reads the
// entities batches carry, makes the entity the generic decoder makes, and
// leaves every other shape to the generic decoder.
func TestDecodeBodyEntity(t *testing.T) {
	tc := coreTermContext(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	aqo, err := json.Marshal(aqoEntity(rand.New(rand.NewPCG(1, 1)), 1))
	if err != nil {
		t.Fatal(err)
	}
	plain := []struct {
		name string
		body string
	}{
		{"AirQualityObserved", string(aqo)},
		{"white space", " {\n \"id\" : \"urn:x:1\" , \"type\":\"T\",\"r\":{ \"object\":\"urn:y\",\"type\":\"Relationship\",\"datasetId\":\"urn:d:1\"} } "},
		{"no attributes", `{"type":"T","id":"urn:x:1"}`},
	}
	for _, c := range plain {
		fast, err := decodeBodyEntity([]byte(c.body), tc, now)
		if err != nil {
			t.Errorf("%s: decodeBodyEntity = %v, want the entity", c.name, err)
			continue
		}
		m, err := ParseEntity([]byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		want, err := decodeEntity(m, tc, now, true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Errorf("%s: decodeBodyEntity =\n%s\nwant\n%s", c.name, appendEntity(nil, fast), appendEntity(nil, want))
		}
	}
	others := []struct {
		name string
		body string
	}{
		{"not an object", `[]`},
		{"truncated", `{"id":`},
		{"data after", `{"id":"urn:x:1","type":"T"} x`},
		{"no type", `{"id":"urn:x:1"}`},
		{"no id", `{"type":"T"}`},
		{"id not a URI", `{"id":"x","type":"T"}`},
		{"type list", `{"id":"urn:x:1","type":["T"]}`},
		{"context", `{"id":"urn:x:1","type":"T","@context":"urn:c"}`},
		{"duplicate attribute", `{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1},"p":{"type":"Property","value":2}}`},
		{"duplicate value", `{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1,"value":2}}`},
		{"bare value", `{"id":"urn:x:1","type":"T","p":1}`},
		{"multi-attribute", `{"id":"urn:x:1","type":"T","p":[{"type":"Property","value":1}]}`},
		{"no attribute type", `{"id":"urn:x:1","type":"T","p":{"value":1}}`},
		{"null value", `{"id":"urn:x:1","type":"T","p":{"type":"Property","value":null}}`},
		{"sub-attribute", `{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1,"q":{"type":"Property","value":2}}}`},
		{"bad observedAt", `{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1,"observedAt":"x"}}`},
		{"object not a URI", `{"id":"urn:x:1","type":"T","r":{"type":"Relationship","object":"x"}}`},
		{"bad geometry", `{"id":"urn:x:1","type":"T","g":{"type":"GeoProperty","value":{"type":"Point","coordinates":[1]}}}`},
		{"LanguageProperty", `{"id":"urn:x:1","type":"T","l":{"type":"LanguageProperty","languageMap":{"en":"x"}}}`},
	}
	for _, c := range others {
		if e, err := decodeBodyEntity([]byte(c.body), tc, now); err != errBodyShape {
			t.Errorf("%s: decodeBodyEntity(%q) = %v, %v, want errBodyShape", c.name, c.body, e, err)
		}
	}
}

// BenchmarkDecodeBodyEntity decodes one AirQualityObserved entity of a
// batch body, the generic way and the plain-shape way.
func BenchmarkDecodeBodyEntity(b *testing.B) {
	tc := coreTermContext(b)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	body, err := json.Marshal(aqoEntity(rand.New(rand.NewPCG(1, 1)), 1))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := ParseEntity(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := decodeEntity(m, tc, now, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeBodyEntity(body, tc, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
