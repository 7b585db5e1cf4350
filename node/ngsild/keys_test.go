package ngsild

import (
	"encoding/binary"
	"net/http"
	"slices"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

// TestIndexKeysMigrated checks that a store whose type, spatial and value
// index keys name the IRIs (as written before) has them rewritten at start
// into the keys naming the codes, the same ones the writes made, and none
// of the older left; and that queries answer from them.
func TestIndexKeysMigrated(t *testing.T) {
	indexed := func(o *Options) { o.IndexedAttributes = []string{coreVocab + "temperature"} }
	n := newTestNode(t, indexed)
	point := func(x, y float64) map[string]any {
		return map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{x, y}}}
	}
	for i, e := range []map[string]any{
		{"id": "urn:ngsi-ld:Sensor:k1", "type": "Sensor", "location": point(-3.7, 40.4),
			"temperature": map[string]any{"type": "Property", "value": 21.5}},
		{"id": "urn:ngsi-ld:Sensor:k2", "type": []any{"Sensor", "Device"}, "location": point(-3.71, 40.41),
			"temperature": map[string]any{"type": "Property", "value": []any{"warm", 19}}},
		{"id": "urn:ngsi-ld:Park:k3", "type": "Park", "location": map[string]any{"type": "GeoProperty", "value": map[string]any{
			"type": "Polygon", "coordinates": []any{[]any{[]any{-3.7, 40.4}, []any{-3.6, 40.4}, []any{-3.6, 40.5}, []any{-3.7, 40.4}}},
		}}},
	} {
		if rec := n.do("POST", "/ngsi-ld/v1/entities", e); rec.Code != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i, rec.Code, rec.Body.String())
		}
	}
	keysUnder := func(pre string) []string {
		var out []string
		err := n.db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: []byte(pre), KeysOnly: true}, func(k, _ []byte) error {
				out = append(out, string(k))
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if err := n.svc.waitIndexes(t.Context()); err != nil {
		t.Fatal(err)
	}
	types, geo, values := keysUnder(keyType), keysUnder(keyGeo), keysUnder(keyValue)
	if len(types) != 4 || len(geo) < 3 || len(values) != 3 {
		t.Fatalf("writes made type keys %q, spatial keys %q, value keys %q", types, geo, values)
	}
	// Back to the keys of stores written before.
	b := n.db.NewBatch()
	for _, m := range [...]struct {
		keys         []string
		from, legacy string
	}{{types, keyType, keyTypeIRI}, {geo, keyGeo, keyGeoIRI}, {values, keyValue, keyValueIRI}} {
		for _, k := range m.keys {
			iri, ok := n.svc.codes.nameOf(binary.BigEndian.Uint32([]byte(k[len(m.from):])))
			if !ok {
				t.Fatalf("key %q names no code", k)
			}
			if err := b.Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
			if err := b.Set([]byte(m.legacy+iri+"\x00"+k[len(m.from)+4:]), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := keysUnder(keyType); len(got) != 0 {
		t.Fatalf("type keys left: %q", got)
	}
	n = newTestNodeOn(t, n.db, indexed)
	if got := keysUnder(keyType); !slices.Equal(got, types) {
		t.Errorf("type keys after the migration %q, want %q", got, types)
	}
	if got := keysUnder(keyGeo); !slices.Equal(got, geo) {
		t.Errorf("spatial keys after the migration %q, want %q", got, geo)
	}
	if got := keysUnder(keyValue); !slices.Equal(got, values) {
		t.Errorf("value keys after the migration %q, want %q", got, values)
	}
	for _, pre := range []string{keyTypeIRI, keyGeoIRI, keyValueIRI} {
		if got := keysUnder(pre); len(got) != 0 {
			t.Errorf("older keys left under %s: %q", pre, got)
		}
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Sensor", nil)); !slices.Equal(got, []string{"urn:ngsi-ld:Sensor:k1", "urn:ngsi-ld:Sensor:k2"}) {
		t.Errorf("type=Sensor after the migration: %v", got)
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Sensor&q=temperature==%22warm%22", nil)); !slices.Equal(got, []string{"urn:ngsi-ld:Sensor:k2"}) {
		t.Errorf("q=temperature==\"warm\" after the migration: %v", got)
	}
}
