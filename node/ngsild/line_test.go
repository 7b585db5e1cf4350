package ngsild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
)

// lineEntities are entities whose lines must match json.Marshal: every
// Smart Data Models example (both forms), the record seeds (multi-instance
// attributes, sub-attributes, datasetIds, language maps, own times),
// AirQualityObserved with geo, and values whose JSON has a canonical form
// the stored one may lack (escapes, non-ASCII, numbers, other zones).
func lineEntities(t testing.TB) []*Entity {
	var out []*Entity
	eachExample(t, newTestNode(t, nil), func(_ string, e *Entity, _ *termContext) { out = append(out, e) })
	for _, b := range recordSeeds(t) {
		e := new(Entity)
		if err := decodeRecord(b, e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	tc, err := newTestNode(t, nil).svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range 20 {
		e, err := decodeEntity(aqoEntity(rng, i), tc, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	cet := time.FixedZone("", 3600)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 120000000, cet)
	odd := &Entity{
		ID: "urn:x:odd-\xff-<&>-\u2028-é", Types: []string{"urn:T", "urn:T2"}, Scope: []string{"/a", "/b/<c>"},
		CreatedAt: t0, ModifiedAt: t0.Add(1500 * time.Millisecond).UTC(),
		Attrs: map[string][]*Attribute{
			"urn:n": {{Type: Property, Value: []any{0.1, 1e21, 1e-7, -0.0, 12345678901234567890.0, 123456789012345.0, 1e300, 5e-324, -3.25e-9, 100.0},
				CreatedAt: t0, ModifiedAt: t0}},
			"urn:s": {{Type: Property, Value: map[string]any{"<k>": "a\"b\\c\n\t\x01\u2029", "\xfe": "x", "é": []any{true, false, nil}, "": map[string]any{}},
				CreatedAt: t0.Add(-time.Hour).UTC(), ModifiedAt: t0.Add(time.Hour), ObservedAt: "2026-03-01T10:00:00.5Z", UnitCode: "C<62>"}},
			"urn:r": {
				{Type: Relationship, Object: "urn:o:1", DatasetID: "urn:ds:1", CreatedAt: t0, ModifiedAt: t0},
				{Type: Relationship, Object: []any{"urn:o:2", "urn:o:3"}, CreatedAt: t0, ModifiedAt: t0,
					Sub: map[string][]*Attribute{"urn:sub": {{Type: Property, Value: "s", CreatedAt: t0.In(time.UTC), ModifiedAt: t0.Add(time.Minute)}}}},
			},
			"urn:l":     {{Type: LanguageProperty, LanguageMap: map[string]any{"en": "x", "fr": "é"}, CreatedAt: t0, ModifiedAt: t0}},
			"urn:empty": {},
			"urn:g":     {{Type: GeoProperty, Value: map[string]any{"type": "Polygon", "coordinates": []any{[]any{[]any{0.5, 1.0}, []any{2.0, 3.25}, []any{0.5, 1.0}}}}, CreatedAt: t0, ModifiedAt: t0}},
		},
	}
	return append(out, odd, &Entity{ID: "urn:x:bare", Types: []string{"urn:T"}, CreatedAt: t0, ModifiedAt: t0})
}

// TestEntityLine checks the rewritten record against json.Marshal of the
// decoded entity, byte for byte, for JSON and packed records, and that
// nothing fell back to decoding but what has to.
func TestEntityLine(t *testing.T) {
	ents := lineEntities(t)
	direct := 0
	for _, e := range ents {
		rec := appendEntity(nil, e)
		var back Entity
		if err := decodeRecord(rec, &back); err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(&back)
		if err != nil {
			t.Fatal(err)
		}
		var w lineWriter
		for _, body := range [][]byte{rec, packEntity(e)} {
			got, err := w.line(e.ID, body)
			if err != nil {
				t.Fatalf("line of %s: %v", e.ID, err)
			}
			if !bytes.Equal(got.JSON, want) {
				t.Errorf("line of %s:\n got %s\nwant %s", e.ID, got.JSON, want)
			}
			if got.ID != back.ID || fmt.Sprint(got.Types) != fmt.Sprint(back.Types) {
				t.Errorf("line of %s: id %q types %q, want %q %q", e.ID, got.ID, got.Types, back.ID, back.Types)
			}
		}
		if _, _, _, ok := w.entityLine(nil, rec); ok {
			direct++
		}
	}
	if direct != len(ents) {
		t.Errorf("%d of %d records rewritten directly, want all", direct, len(ents))
	}
}

// TestEntityLineFallsBack checks records the rewrite does not handle are
// decoded instead, with the decoder's bytes or error (and that an empty
// language map, which it does handle, is left out as json.Marshal does).
func TestEntityLineFallsBack(t *testing.T) {
	emptyLang := `{"id":"urn:x","t":["urn:T"],"a":{"urn:a":[{"t":"Property","l":{ }}]},"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`
	for _, rec := range []string{
		emptyLang,
		`{"id":"urn:x","t":["urn:T"],"a":{"urn:b":[],"urn:a":[]},"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"a":{"urn:a":[{"t":"Property","v":{"b":1,"a":2}}]},"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"a":{"urn:a":[{"v":1,"t":"Property"}]},"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"c":"0001-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"c":"2026-01-01T00:00:00Z","m":"0001-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"new":1,"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"c":"2026-01-01T00:00:00Z"}`,
		`{"id":"urn:x","t":["urn:T"],"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"} x`,
		`{"id":"urn:x","t":["urn:T"],"a":{"urn:a":[{"t":"Property","v":1e999}]},"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`,
	} {
		var w lineWriter
		if _, _, _, ok := w.entityLine(nil, []byte(rec)); ok != (rec == emptyLang) {
			t.Errorf("entityLine(%s) rewrote it: %v", rec, ok)
		}
		got, err := w.line("urn:x", []byte(rec))
		e, derr := decodeStored("urn:x", []byte(rec))
		if derr != nil {
			if err == nil {
				t.Errorf("line(%s) = %s, want the decode error %v", rec, got.JSON, derr)
			}
			continue
		}
		want, _ := json.Marshal(e)
		if err != nil || !bytes.Equal(got.JSON, want) {
			t.Errorf("line(%s) = %s, %v; want %s", rec, got.JSON, err, want)
		}
	}
}

// FuzzEntityLine checks that a record the rewrite accepts is one the
// decoder accepts, with the bytes json.Marshal gives for it.
func FuzzEntityLine(f *testing.F) {
	for _, e := range lineEntities(f) {
		f.Add(appendEntity(nil, e))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		var w lineWriter
		got, id, _, ok := w.entityLine(nil, rec)
		if !ok {
			return
		}
		var e Entity
		if err := decodeRecord(rec, &e); err != nil {
			t.Fatalf("entityLine rewrote %q, which does not decode: %v", rec, err)
		}
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatalf("entityLine rewrote %q, which does not marshal: %v", rec, err)
		}
		if !bytes.Equal(got, want) || id != e.ID {
			t.Fatalf("entityLine(%q) = %s (id %q), json.Marshal gives %s", rec, got, id, want)
		}
	})
}

// TestEachLineOfType checks EachLineOfType against EachOfType with
// json.Marshal over a store holding every line entity.
func TestEachLineOfType(t *testing.T) {
	n := newTestNode(t, nil)
	ents := lineEntities(t)
	seen := map[string]bool{}
	var land []*Entity
	for _, e := range ents {
		if !seen[e.ID] && isURI(e.ID) {
			seen[e.ID] = true
			land = append(land, e)
		}
	}
	if _, err := n.svc.Land(context.Background(), land); err != nil {
		t.Fatal(err)
	}
	for _, types := range [][]string{nil, {"urn:T"}, {aqoType, "urn:T2"}} {
		var want []string
		if err := n.svc.EachOfType(context.Background(), types, func(e *Entity) error {
			b, err := json.Marshal(e)
			want = append(want, e.ID+" "+fmt.Sprint(e.Types)+" "+string(b))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := n.svc.EachLineOfType(context.Background(), types, func(l EntityLine) error {
			got = append(got, l.ID+" "+fmt.Sprint(l.Types)+" "+string(l.JSON))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("EachLineOfType(%q): %d lines, EachOfType+json.Marshal %d; first difference:\n got %.300q\nwant %.300q",
				types, len(got), len(want), firstDiff(got, want), firstDiff(want, got))
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return a[i]
		}
	}
	return ""
}

// BenchmarkEntityLine measures an AirQualityObserved's version line from
// its stored record: rewritten, and decoded then marshalled as before.
func BenchmarkEntityLine(b *testing.B) {
	var recs [][]byte
	for _, e := range storedEntities(b, 1000) {
		recs = append(recs, packEntity(e))
	}
	b.Run("rewrite", func(b *testing.B) {
		b.ReportAllocs()
		var w lineWriter
		for i := 0; i < b.N; i++ {
			if _, err := w.line("", recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode+marshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e, err := decodeStored("", recs[i%len(recs)])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEachLineOfType is BenchmarkEachOfType giving lines, against
// EachOfType with json.Marshal of each entity (what a version build did).
func BenchmarkEachLineOfType(b *testing.B) {
	const total = 20_000
	n := newTestNodeOn(b, openDisk(b), nil)
	ents := storedEntities(b, 1000)
	for i := 0; i < total/len(ents); i++ {
		for _, e := range ents {
			e.ID = fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:%03d-%s", i, e.ID[len("urn:ngsi-ld:AirQualityObserved:"):])
		}
		if _, err := n.svc.Land(context.Background(), ents); err != nil {
			b.Fatal(err)
		}
	}
	run := func(b *testing.B, each func() (int, error)) {
		start, cpu0 := time.Now(), osstat.ProcessCPU()
		for i := 0; i < b.N; i++ {
			got, err := each()
			if err != nil {
				b.Fatal(err)
			}
			if got != total {
				b.Fatalf("visited %d entities, want %d", got, total)
			}
		}
		el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
		b.ReportMetric(float64(b.N*total)/el.Seconds(), "entities/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*total), "cpu-µs/entity")
	}
	b.Run("lines", func(b *testing.B) {
		run(b, func() (int, error) {
			got := 0
			err := n.svc.EachLineOfType(context.Background(), []string{aqoType}, func(EntityLine) error { got++; return nil })
			return got, err
		})
	})
	b.Run("entities+marshal", func(b *testing.B) {
		run(b, func() (int, error) {
			got := 0
			err := n.svc.EachOfType(context.Background(), []string{aqoType}, func(e *Entity) error {
				got++
				_, err := json.Marshal(e)
				return err
			})
			return got, err
		})
	})
}
