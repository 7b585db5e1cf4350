package ngsild

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzRepresentations checks that the normalized and concise forms are
// lossless for every entity the parser accepts, including scope and the
// 1.8 attribute types: reading either back in gives the same normalized
// entity.
func FuzzRepresentations(f *testing.F) {
	f.Add([]byte(normalizedTower))
	f.Add([]byte(conciseTower))
	f.Add([]byte(`{"id":"urn:x:1","type":"T","scope":["/a/b","/c"],"l":{"type":"LanguageProperty","languageMap":{"en":"x"}},"p":{"value":{"json":1}}}`))
	f.Add([]byte(`{"id":"urn:x:1","type":"T","r":{"type":"ListRelationship","objectList":["urn:a:b"],"datasetId":"urn:d:1"},"v":{"vocab":["a","b"],"observedAt":"2024-01-01T00:00:00Z"}}`))
	tc := coreTermContext(f)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	roundTrip := func(t *testing.T, rendered map[string]any) map[string]any {
		b, err := json.Marshal(rendered)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseEntity(b)
		if err != nil {
			t.Fatalf("rendered entity %s does not parse: %v", b, err)
		}
		e, err := decodeEntity(m, tc, now, true)
		if err != nil {
			t.Fatalf("rendered entity %s is refused: %v", b, err)
		}
		return normalizedJSON(t, e.render(tc, renderOpts{}))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseEntity(body)
		if err != nil {
			return
		}
		e, err := decodeEntity(m, tc, now, true)
		if err != nil {
			return
		}
		want := normalizedJSON(t, e.render(tc, renderOpts{}))
		for _, f := range []format{normalized, concise} {
			if got := roundTrip(t, e.render(tc, renderOpts{format: f})); !reflect.DeepEqual(got, want) {
				t.Fatalf("format %d does not read back:\n got %v\nwant %v", f, got, want)
			}
		}
		// keyValues and projections never fail on an accepted entity.
		_ = e.render(tc, renderOpts{format: keyValues, omit: projection{"id": true}})
	})
}

// normalizedJSON passes a rendered entity through JSON, as a client sees it.
func normalizedJSON(t *testing.T, v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
