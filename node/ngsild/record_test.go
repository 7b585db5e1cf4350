package ngsild

import (
	"bytes"
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node/store"
)

// recordSeeds are stored entities of every Smart Data Models example, plus
// instances with sub-attributes, datasetIds, language maps and own times.
func recordSeeds(t testing.TB) [][]byte {
	var out [][]byte
	eachExample(t, newTestNode(t, nil), func(_ string, e *Entity, _ *termContext) {
		out = append(out, appendEntity(nil, e))
	})
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	e := &Entity{ID: "urn:x:1", Types: []string{"urn:T"}, Scope: []string{"/a/b"}, CreatedAt: t0, ModifiedAt: t0.Add(time.Hour),
		Attrs: map[string][]*Attribute{
			"urn:p": {
				{Type: Property, Value: 1.5, CreatedAt: t0, ModifiedAt: t0.Add(time.Minute), UnitCode: "CEL", ObservedAt: "2026-03-01T00:00:00Z",
					Sub: map[string][]*Attribute{"urn:q": {{Type: Relationship, Object: []any{"urn:a", "urn:b"}, CreatedAt: t0.Add(time.Second)}}}},
				{Type: Property, Value: map[string]any{"k": []any{true, nil, "s\u00e9\n"}}, DatasetID: "urn:ds:2", CreatedAt: t0, ModifiedAt: t0},
			},
			"urn:name": {{Type: LanguageProperty, LanguageMap: map[string]any{"en": "x", "fr": "y"}, CreatedAt: t0, ModifiedAt: t0}},
			"urn:none": {},
		}}
	return append(out, appendEntity(nil, e), appendEntity(nil, replacedEntity()))
}

// replacedEntity is an entity as a replace leaves it: its attributes keep
// their createdAt and take the write's modifiedAt, but for one written
// with its own and one whose modifiedAt is its createdAt; sub-attributes
// keep theirs.
func replacedEntity() *Entity {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	t1 := time.Date(2026, 3, 2, 0, 0, 0, 5, time.UTC)
	return &Entity{ID: "urn:x:replaced", Types: []string{"urn:T"}, CreatedAt: t0, ModifiedAt: t1,
		Attrs: map[string][]*Attribute{
			"urn:a": {{Type: Property, Value: 1.0, CreatedAt: t0, ModifiedAt: t1}},
			"urn:b": {{Type: Property, Value: "x", CreatedAt: t0.Add(time.Second), ModifiedAt: t1, DatasetID: "urn:ds:1"},
				{Type: Property, Value: "y", CreatedAt: t0, ModifiedAt: t1,
					Sub: map[string][]*Attribute{"urn:s": {{Type: Property, Value: 2.0, CreatedAt: t0, ModifiedAt: t0},
						{Type: Property, Value: 3.0, CreatedAt: t0, ModifiedAt: t1, DatasetID: "urn:ds:2"}}}}},
			"urn:c": {{Type: Relationship, Object: "urn:o:1", CreatedAt: t0, ModifiedAt: t0}},
			"urn:d": {{Type: Property, Value: 4.0, CreatedAt: t0, ModifiedAt: t1.Add(-time.Hour)}},
		}}
}

// TestAttrsModified checks that a record gives its attributes' shared
// modifiedAt once ("am") when they have one, that it decodes (directly,
// generically and as a summary) to the times written, and that the same
// entity written as before, each instance with its own, decodes alike.
func TestAttrsModified(t *testing.T) {
	e := replacedEntity()
	rec := appendEntity(nil, e)
	if !bytes.Contains(rec, []byte(`"am":`)) || bytes.Count(rec, []byte(`"m":`)) != 4 {
		t.Errorf("record of a replaced entity: %s\nwant \"am\" and modifiedAt only for the entity, urn:c, urn:d and urn:s", rec)
	}
	before := appendEntity(nil, &Entity{ID: e.ID, Types: e.Types})
	before = append(before[:len(before)-len(`,"c":"0001-01-01T00:00:00Z","m":"0001-01-01T00:00:00Z"}`)], `,"a":`...)
	before = appendAttrMap(before, e.Attrs, e.CreatedAt)
	before = append(append(append(append(before, `,"c":`...), appendTime(nil, e.CreatedAt)...), `,"m":`...), appendTime(nil, e.ModifiedAt)...)
	before = append(before, '}')
	if bytes.Contains(before, []byte(`"am":`)) {
		t.Fatalf("record as written before has \"am\": %s", before)
	}
	check := func(name string, got *Entity, subs bool) {
		t.Helper()
		for attr, insts := range e.Attrs {
			for i, a := range insts {
				g := got.Attrs[attr][i]
				if !g.CreatedAt.Equal(a.CreatedAt) || !g.ModifiedAt.Equal(a.ModifiedAt) {
					t.Errorf("%s: %s[%d] created %v modified %v, want %v %v", name, attr, i, g.CreatedAt, g.ModifiedAt, a.CreatedAt, a.ModifiedAt)
				}
				for sub, sis := range a.Sub {
					if !subs {
						continue
					}
					for j, sa := range sis {
						gs := g.Sub[sub][j]
						if !gs.CreatedAt.Equal(sa.CreatedAt) || !gs.ModifiedAt.Equal(sa.ModifiedAt) {
							t.Errorf("%s: %s[%d].%s[%d] created %v modified %v, want %v %v", name, attr, i, sub, j, gs.CreatedAt, gs.ModifiedAt, sa.CreatedAt, sa.ModifiedAt)
						}
					}
				}
			}
		}
	}
	for name, b := range map[string][]byte{"record": rec, "record as written before": before} {
		var fast, slow, sum Entity
		if err := decodeRecord(b, &fast); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		if err := decodeRecordGeneric(b, &slow); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := decodeRecordKeeping(b, &sum, func(string) bool { return false }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check(name+", decodeRecord", &fast, true)
		check(name+", decodeRecordGeneric", &slow, true)
		check(name+", summary", &sum, false)
	}
}

// TestDecodeRecord checks the direct record decoder against the generic
// one, which decodes through maps.
func TestDecodeRecord(t *testing.T) {
	for i, b := range recordSeeds(t) {
		var fast, slow Entity
		if err := decodeRecord(b, &fast); err != nil {
			t.Fatalf("seed %d: decodeRecord: %v\n%s", i, err, b)
		}
		if err := decodeRecordGeneric(b, &slow); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("seed %d: decodeRecord differs from the generic decoder\n got %+v\nwant %+v", i, fast, slow)
		}
	}
	// A member the fast decoder does not know falls back to the generic one
	// instead of being dropped.
	var e Entity
	if err := decodeRecord([]byte(`{"id":"urn:x","t":["urn:T"],"new":1,"c":"2026-01-01T00:00:00Z","m":"2026-01-01T00:00:00Z"}`), &e); err != errRecordShape {
		t.Errorf("unknown member: %v, want errRecordShape", err)
	}
}

// FuzzDecodeRecord checks that whenever both decoders accept a record they
// agree, and that the fast one never panics.
// FuzzUnpackEntity checks the unpacking of stored states: what
// packEntityJSON packs unpacks to the same bytes, and arbitrary bytes
// after entityDictMarker give an error, never a panic.
func FuzzUnpackEntity(f *testing.F) {
	for _, b := range recordSeeds(f) {
		f.Add(b)
		f.Add(packEntityJSON(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := unpackEntity(packEntityJSON(b)); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("unpackEntity(packEntityJSON(%q)) = %q, %v", b, got, err)
		}
		_, _ = unpackEntity(append([]byte{entityDictMarker}, b...))
		var buf []byte
		_, _ = unpackEntityInto(&buf, append([]byte{entityDictMarker}, b...))
	})
}

func FuzzDecodeRecord(f *testing.F) {
	for _, b := range recordSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow Entity
		errFast := decodeRecord(b, &fast)
		errSlow := decodeRecordGeneric(b, &slow)
		if errFast == nil && errSlow == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decoders differ on %q:\n fast %+v\n slow %+v", b, fast, slow)
		}
		if errFast != nil || len(b) == 0 {
			return
		}
		// What the full decoder reads, a summary reads too, with the
		// same index keys and counters.
		for name, keep := range summaryKeeps(b) {
			var sum Entity
			if err := decodeRecordKeeping(b, &sum, keep); err != nil {
				t.Fatalf("summary keeping %s of %q: %v", name, b, err)
			}
			checkSummaryKeys(t, &sum, &fast, keep)
		}
	})
}

func BenchmarkDecodeRecord(b *testing.B) {
	seeds := recordSeeds(b)
	for _, dec := range []struct {
		name string
		fn   func([]byte, *Entity) error
	}{{"direct", decodeRecord}, {"generic", decodeRecordGeneric}, {"summary", func(b []byte, e *Entity) error {
		// as a replace reads the state it replaces, with no value index
		return decodeRecordKeeping(b, e, func(string) bool { return false })
	}}} {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var e Entity
				if err := dec.fn(seeds[i%len(seeds)], &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPackEntity measures encoding entity states as stored: the
// record seeds (every SDM example, and a replaced entity).
func BenchmarkPackEntity(b *testing.B) {
	var ents []*Entity
	for _, rec := range recordSeeds(b) {
		e := new(Entity)
		if err := decodeRecord(rec, e); err != nil {
			b.Fatal(err)
		}
		ents = append(ents, e)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		packEntity(ents[i%len(ents)])
	}
}

// TestPackedEntity checks that a packed entity (entityDict) decodes as its
// JSON does, as do records written before (JSON, and packed without the
// dictionary), and that a damaged packed record is an error.
func TestPackedEntity(t *testing.T) {
	for i, b := range recordSeeds(t) {
		var e Entity
		if err := decodeEntityRecord(b, &e); err != nil {
			t.Fatalf("seed %d: JSON record: %v", i, err)
		}
		packed := packEntity(&e)
		if packed[0] != entityDictMarker {
			t.Errorf("seed %d: packed record starts with %#x, want entityDictMarker", i, packed[0])
		}
		if len(packed) > len(store.Pack(appendEntity(nil, &e)))+2 {
			t.Errorf("seed %d: packed with the dictionary %d bytes, without %d", i, len(packed), len(store.Pack(appendEntity(nil, &e))))
		}
		var before Entity
		if err := decodeEntityRecord(store.Pack(appendEntity(nil, &e)), &before); err != nil || !reflect.DeepEqual(e, before) {
			t.Errorf("seed %d: record packed without the dictionary decodes differently (%v)", i, err)
		}
		if len(packed) >= len(b) && len(b) > 200 {
			t.Errorf("seed %d: packed %d bytes, JSON %d", i, len(packed), len(b))
		}
		var back Entity
		if err := decodeEntityRecord(packed, &back); err != nil {
			t.Fatalf("seed %d: packed record: %v", i, err)
		}
		if !reflect.DeepEqual(e, back) {
			t.Errorf("seed %d: packed record decodes differently\n got %+v\nwant %+v", i, back, e)
		}
		for _, bad := range [][]byte{packed[:len(packed)/2], append([]byte{store.PackedMarker}, b...), append(bytes.Clone(packed), 1, 2),
			{entityDictMarker}, {entityDictMarker, 0xff, 0xff, 0xff, 0xff, 0x7f}} {
			if err := decodeEntityRecord(bad, new(Entity)); err == nil {
				t.Errorf("seed %d: damaged packed record %q decoded", i, bad)
			}
		}
	}
}

// TestPackExact checks that packExact writes what store.Pack writes, in a
// slice of its own length, for the record seeds, an empty value and values
// of a few sizes, one after the other (the scratch buffer is reused).
func TestPackExact(t *testing.T) {
	vals := append(recordSeeds(t), []byte{}, bytes.Repeat([]byte("ab"), 40000), []byte(`{"id":"x"}`))
	for i, v := range vals {
		got, want := packExact(v), store.Pack(v)
		if !bytes.Equal(got, want) {
			t.Errorf("value %d (%d bytes): packExact = %x, store.Pack = %x", i, len(v), got, want)
		}
		if cap(got) != len(got) {
			t.Errorf("value %d: packExact returned %d bytes in a slice of %d", i, len(got), cap(got))
		}
	}
}

// summaryOf is what decodeRecordKeeping should make of a record that
// decodes in full to e: e without sub-attributes, and without the values
// of attributes keep leaves out that are not GeoProperties.
func summaryOf(e *Entity, keep func(string) bool) Entity {
	s := *e
	s.Attrs = make(map[string][]*Attribute, len(e.Attrs))
	for name, insts := range e.Attrs {
		out := make([]*Attribute, len(insts))
		for i, a := range insts {
			c := *a
			c.Sub = nil
			if !keep(name) && a.Type != GeoProperty {
				c.Value, c.Object, c.LanguageMap = nil, nil, nil
			}
			out[i] = &c
		}
		s.Attrs[name] = out
	}
	return s
}

// summaryKeeps are the attribute choices the summary tests decode with.
func summaryKeeps(b []byte) map[string]func(string) bool {
	return map[string]func(string) bool{
		"none": func(string) bool { return false },
		"all":  func(string) bool { return true },
		// about half of the attributes, as a node with some value indexes
		"some": func(attr string) bool { return (len(attr)+int(b[len(b)/2]))%2 == 0 },
	}
}

// TestDecodeSummary checks the summary a replace reads of the state it
// replaces against the full decode: the same entity without what it
// leaves out, and the same index keys and counters.
func TestDecodeSummary(t *testing.T) {
	for i, b := range recordSeeds(t) {
		var full Entity
		if err := decodeRecord(b, &full); err != nil {
			t.Fatal(err)
		}
		for name, keep := range summaryKeeps(b) {
			var sum Entity
			if err := decodeRecordKeeping(b, &sum, keep); err != nil {
				t.Fatalf("seed %d keeping %s: %v\n%s", i, name, err, b)
			}
			if want := summaryOf(&full, keep); !reflect.DeepEqual(sum, want) {
				t.Errorf("seed %d keeping %s: summary differs\n got %+v\nwant %+v", i, name, sum, want)
			}
			checkSummaryKeys(t, &sum, &full, keep)
		}
	}
}

// checkSummaryKeys fails t when sum has other index keys or counters than
// full, with the value indexes keep says.
func checkSummaryKeys(t *testing.T, sum, full *Entity, keep func(string) bool) {
	t.Helper()
	cs, cf := map[countKey]int64{}, map[countKey]int64{}
	ks, kf := indexKeys(sum, fnv32, cs, -1, keep), indexKeys(full, fnv32, cf, -1, keep)
	if !reflect.DeepEqual(ks, kf) || !reflect.DeepEqual(cs, cf) {
		t.Errorf("summary of %s: index keys %q counters %v, full decode %q %v", full.ID, ks, cs, kf, cf)
	}
	if !sameCounted(sum, full) {
		t.Errorf("summary of %s: not sameCounted with the full decode", full.ID)
	}
}

// TestUnpackEntityInto checks the pooled unpack gives what store.Unpack
// gives, reusing its buffer, and refuses what it refuses.
func TestUnpackEntityInto(t *testing.T) {
	var buf []byte
	for _, js := range []string{`{"id":"urn:x:1","t":["T"]}`, strings.Repeat(`{"id":"urn:x:2","a":{}}`, 40), `{}`} {
		for name, b := range map[string][]byte{"packed": store.Pack([]byte(js)), "plain": []byte(js)} {
			got, err := unpackEntityInto(&buf, b)
			if err != nil || string(got) != js {
				t.Errorf("unpackEntityInto(%s %.20q) = %.20q, %v", name, js, got, err)
			}
		}
	}
	for _, js := range []string{`{"id":"urn:x:1","t":["T"]}`, strings.Repeat(`{"id":"urn:x:3","a":{}}`, 60), `{}`} {
		got, err := unpackEntityInto(&buf, packEntityJSON([]byte(js)))
		if err != nil || string(got) != js {
			t.Errorf("unpackEntityInto(packed with entityDict %.20q) = %.20q, %v", js, got, err)
		}
	}
	if cap(buf) < len(strings.Repeat(`{"id":"urn:x:3","a":{}}`, 60)) {
		t.Errorf("buffer not kept: cap %d", cap(buf))
	}
	for _, b := range [][]byte{{store.PackedMarker}, {store.PackedMarker, 0xff, 0xff, 0xff, 0xff, 0x7f}, append(store.Pack([]byte(`{"id":"x"}`)), 1, 2)} {
		_, err := unpackEntityInto(&buf, b)
		_, want := store.Unpack(b, maxUnpackedEntity)
		if err == nil || want == nil || !errors.Is(err, store.ErrPacked) {
			t.Errorf("unpackEntityInto(%x) = %v, store.Unpack %v; want both to fail with ErrPacked", b, err, want)
		}
	}
}

// BenchmarkPackAirQuality measures encoding the states of a batch of
// AirQualityObserved-shaped entities (one model, the same attributes), as
// a batch upsert writes them.
func BenchmarkPackAirQuality(b *testing.B) {
	tc, err := newTestNode(b, nil).svc.ctx.resolve(envContext)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ents := make([]*Entity, 100)
	for i := range ents {
		if ents[i], err = decodeEntity(aqoEntity(rng, i), tc, now, true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i, cpu0 := 0, osstat.ProcessCPU()
	for b.Loop() {
		packEntity(ents[i%len(ents)])
		i++
	}
	b.ReportMetric(float64((osstat.ProcessCPU()-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
}

// TestSortedAttrNames checks that the names kept from the entity encoded
// before are used only for an entity with the same set of names.
func TestSortedAttrNames(t *testing.T) {
	set := func(names ...string) map[string][]*Attribute {
		m := map[string][]*Attribute{}
		for _, n := range names {
			m[n] = nil
		}
		return m
	}
	for _, names := range [][]string{
		{"c", "a", "b"}, {"b", "c", "a"}, {"a", "b", "d"}, {"a", "b"}, {"a", "b", "c", "d"}, {}, {"z"}, {"c", "a", "b"},
	} {
		var buf [4]string
		got := appendSortedAttrNames(buf[:0], set(names...))
		want := slices.Sorted(maps.Keys(set(names...)))
		if !slices.Equal(got, want) {
			t.Errorf("appendSortedAttrNames(%v) = %v, want %v", names, got, want)
		}
	}
}
