package ngsild

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// entriesOf lists a history record's entries as code, then instance.
func entriesOf(t *testing.T, v []byte) [][]byte {
	t.Helper()
	var out [][]byte
	if err := recordEntries(v, func(code uint32, inst []byte) bool {
		out = append(out, binary.BigEndian.AppendUint32(nil, code), bytes.Clone(inst))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHistoryPacked checks that history records are written packed when
// that is smaller, and that packed records and the plain ones written
// before read the same; a plain value that would start with the packed
// marker is packed whatever its size, so it is never misread.
func TestHistoryPacked(t *testing.T) {
	n := newTestNode(t, nil)
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEntity(aqoEntity(rand.New(rand.NewPCG(1, 2)), 3), tc, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := n.svc.historyOf(nil, nil, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		plain, err := store.Unpack(r.val, maxUnpackedHistory)
		if err != nil {
			t.Fatal(err)
		}
		if r.val[0] != store.PackedMarker || len(r.val) >= len(plain) {
			t.Errorf("history record of %d bytes stored as %d bytes, packed %v", len(plain), len(r.val), r.val[0] == store.PackedMarker)
		}
		if got, want := entriesOf(t, r.val), entriesOf(t, plain); len(want) == 0 || !equalBytesLists(got, want) {
			t.Errorf("packed record reads %d entries, plain %d, or differently", len(got)/2, len(want)/2)
		}
	}
	small := []byte{0, 0, 0, 1, 0, 0, 0, 0}
	if got := packHistory(small); !bytes.Equal(got, small) {
		t.Errorf("packHistory(%x) = %x, want it plain (packing does not make it smaller)", small, got)
	}
	marked := []byte{store.PackedMarker, 0, 0, 1, 0, 0, 0, 0}
	if got := packHistory(marked); got[0] != store.PackedMarker || !equalBytesLists(entriesOf(t, got), [][]byte{{1, 0, 0, 1}, {}}) {
		t.Errorf("packHistory(%x) = %x, want it packed", marked, got)
	}
}

// TestHistorySharedLayout checks that a write's history records say the
// write's modifiedAt once (histShared) and read as the same entries as
// records of the older layout (4-byte code and length, each instance with
// its modifiedAt), which stores written before hold; and that a damaged
// record of the shared layout is an error.
func TestHistorySharedLayout(t *testing.T) {
	n := newTestNode(t, nil)
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 123, time.UTC)
	e, err := decodeEntity(aqoEntity(rand.New(rand.NewPCG(1, 2)), 3), tc, at, true)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := n.svc.historyOf(nil, nil, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("historyOf made %d records, want 2 (observedAt and modifiedAt)", len(recs))
	}
	for _, r := range recs {
		plain, err := store.Unpack(r.val, maxUnpackedHistory)
		if err != nil {
			t.Fatal(err)
		}
		if plain[0] != histShared {
			t.Errorf("record starts with %#x, want histShared", plain[0])
		}
		// The same instances in the older layout, in the record's order.
		var codes []uint32
		if err := recordEntries(r.val, func(code uint32, _ []byte) bool { codes = append(codes, code); return true }); err != nil {
			t.Fatal(err)
		}
		var old []byte
		for _, c := range codes {
			name, _ := n.svc.codes.nameOf(c)
			a := e.Attrs[name][0]
			old = appendHistEntry(old, false, c, a, instantOf(a))
		}
		got, want := entriesOf(t, r.val), entriesOf(t, old)
		if len(want) != 2*len(codes) || !equalBytesLists(got, want) {
			t.Errorf("shared record reads %d entries, older layout %d, or differently", len(got)/2, len(want)/2)
		}
		if err := recordEntries(plain[:5], func(uint32, []byte) bool { return true }); err == nil {
			t.Errorf("record cut inside its modifiedAt decoded")
		}
		long := append(bytes.Clone(plain[:9]), 1, 200, 1)
		if err := recordEntries(long, func(uint32, []byte) bool { return true }); err == nil {
			t.Errorf("entry claiming more than the record decoded")
		}
	}
}

func equalBytesLists(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestHistoryFromFeed checks that a write's history records, which refer
// to its feed record (histFeed), resolve from the stored state to the
// records historyOf makes of the state written: the same records, with
// the same entries in the same order per attribute.
func TestHistoryFromFeed(t *testing.T) {
	n := newTestNode(t, nil)
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	ents := []*Entity{replacedEntity()}
	for i := range 3 {
		e, err := decodeEntity(aqoEntity(rand.New(rand.NewPCG(1, uint64(i))), i), tc, time.Date(2026, 3, 1, 0, 0, 0, 7, time.UTC), true)
		if err != nil {
			t.Fatal(err)
		}
		ents = append(ents, e)
	}
	for i, b := range recordSeeds(t) {
		e, err := decodeStored(fmt.Sprint("seed ", i), b)
		if err != nil {
			t.Fatal(err)
		}
		ents = append(ents, e)
	}
	for _, e := range ents {
		want, _, err := n.svc.historyOf(nil, nil, e, nil)
		if err != nil {
			t.Fatal(err)
		}
		refs, _, err := n.svc.feedHistoryOf(nil, nil, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != len(want) {
			t.Fatalf("%s: feedHistoryOf made %d records, historyOf %d", e.ID, len(refs), len(want))
		}
		stored, err := decodeStored(e.ID, packEntity(e))
		if err != nil {
			t.Fatal(err)
		}
		// Records come in the order of the attributes met: by key.
		byKey := map[string]histEntry{}
		for _, r := range refs {
			byKey[string(r.key)] = r
		}
		for i, w := range want {
			r, ok := byKey[string(w.key)]
			if !ok || r.val[0] != histFeed {
				t.Fatalf("%s: record %d under key %x is %x, want a histFeed value", e.ID, i, w.key, r.val)
			}
			got, err := n.svc.resolvedRecord(stored, binary.BigEndian.Uint64(w.key[len(w.key)-8:]))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := byCode(entriesOf(t, got)), byCode(entriesOf(t, w.val)); !reflect.DeepEqual(g, w) {
				t.Errorf("%s: record %d resolves to\n%q\nwant\n%q", e.ID, i, g, w)
			}
			err = recordEntries(w.val, func(code uint32, _ []byte) bool {
				if !refersTo(r.val, code) {
					t.Errorf("%s: record %d does not list code %d", e.ID, i, code)
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// byCode groups entries (entriesOf) by code, in their order: the order of
// a record's attributes is not kept, that of an attribute's instances is.
func byCode(entries [][]byte) map[string][]string {
	out := map[string][]string{}
	for i := 0; i+1 < len(entries); i += 2 {
		c := string(entries[i])
		out[c] = append(out[c], string(entries[i+1]))
	}
	return out
}

// TestHistoryOutlivesTrim checks that history read through the temporal
// API (of an entity and of a deleted one) is the same before and after
// TrimChanges drops the feed records the write path's history records
// refer to, and that the trim leaves no history record referring to a
// feed record it dropped.
func TestHistoryOutlivesTrim(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 5)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": "urn:ngsi-ld:Sensor:s2", "type": "Sensor",
		"temperature": []any{
			map[string]any{"type": "Property", "value": 1, "datasetId": "urn:ds:a", "observedAt": obs(1),
				"accuracy": map[string]any{"type": "Property", "value": 0.5}},
			map[string]any{"type": "Property", "value": 2, "datasetId": "urn:ds:b"},
		},
		"name": map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"en": "roof", "es": "tejado"}},
	}), http.StatusCreated)
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:s2/attrs", map[string]any{
		"temperature": map[string]any{"type": "Property", "value": 3, "datasetId": "urn:ds:a", "observedAt": obs(2)},
	}), http.StatusNoContent)
	read := func() string {
		var out []byte
		for _, id := range []string{sensorID, "urn:ngsi-ld:Sensor:s2"} {
			rec := n.do("GET", "/ngsi-ld/v1/temporal/entities/"+id+"?options=sysAttrs", nil)
			wantStatus(t, rec, http.StatusOK)
			out = append(out, rec.Body.Bytes()...)
		}
		return string(out)
	}
	refs := func() (all, dangling int) {
		err := n.db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: []byte(keyHist)}, func(k, v []byte) error {
				if len(v) == 0 || v[0] != histFeed {
					return nil
				}
				all++
				if _, err := tx.Get(feedKey(binary.BigEndian.Uint64(k[len(k)-8:]))); err != nil {
					dangling++
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return all, dangling
	}
	// The history of a deleted entity stays readable, its last state's
	// feed record trimmed as well.
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:s2", nil), http.StatusNoContent)
	before := read()
	if all, _ := refs(); all == 0 {
		t.Fatal("no history record refers to its feed record")
	}
	if err := n.svc.TrimChanges(n.svc.LastSeq() + 1); err != nil {
		t.Fatal(err)
	}
	if _, dangling := refs(); dangling > 0 {
		t.Errorf("%d history records refer to feed records trimmed", dangling)
	}
	if after := read(); after != before {
		t.Errorf("temporal representation changed by the trim:\n%s\nwant\n%s", after, before)
	}
	// The instances the trim wrote out are deleted as any other.
	first := temperatureInstance(t, n, 1)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/temporal/entities/"+sensorID+"/attrs/temperature/"+url.PathEscape(first), nil), http.StatusNoContent)
	m := decode(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{0, 2, 3, 4, 5}) {
		t.Fatalf("after deleting instance of value 1: %v", got)
	}
}

// TestHistoryMarker checks that the temporal representation lists every
// attribute with history: those of the current state, with no marker
// written by a create, and those the state dropped (a replace, the
// entity's delete, two changes of one batch dropping one each), which
// the marker lists.
func TestHistoryMarker(t *testing.T) {
	n := newTestNode(t, nil)
	prop := func(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }
	listed := func(id string) []string {
		t.Helper()
		m := decode(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+id, nil)).(map[string]any)
		var out []string
		for k := range m {
			if k != "id" && k != "type" && k != "@context" {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	marked := func(id string) bool {
		t.Helper()
		found := false
		err := n.db.View(func(tx *store.Txn) error {
			_, err := tx.Get(histMarkKey(id))
			found = err == nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	id := "urn:ngsi-ld:Sensor:m1"
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": id, "type": "Sensor", "a": prop(1), "b": prop(2), "c": prop(3), "d": prop(4),
	}), http.StatusCreated)
	if marked(id) {
		t.Errorf("a create wrote a history marker")
	}
	if got := listed(id); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("after the create, history of %v", got)
	}
	// One batch: the first change drops d, the second c as well.
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", []any{
		map[string]any{"id": id, "type": "Sensor", "a": prop(5), "b": prop(6), "c": prop(7)},
		map[string]any{"id": id, "type": "Sensor", "a": prop(8), "b": prop(9)},
	})
	if rec.Code != http.StatusNoContent && rec.Code != http.StatusCreated {
		t.Fatalf("upsert: %d %s", rec.Code, rec.Body.String())
	}
	if got := listed(id); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("after replaces dropping c and d, history of %v", got)
	}
	wantStatus(t, n.do("PUT", "/ngsi-ld/v1/entities/"+id, map[string]any{"type": "Sensor", "a": prop(10)}), http.StatusNoContent)
	if got := listed(id); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("after a replace dropping b, history of %v", got)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id, nil), http.StatusNoContent)
	if got := listed(id); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("after the delete, history of %v", got)
	}
}
