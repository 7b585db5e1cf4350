package ngsild

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node/ngsild/model"
)

// TestValidationForm checks the keyValues form the validator builds equals
// model.KeyValues of the normalized rendering, for every example.
func TestValidationForm(t *testing.T) {
	eachExample(t, newTestNode(t, nil), func(name string, e *Entity, tc *termContext) {
		want := model.KeyValues(e.render(tc, renderOpts{format: normalized}))
		if got := validationForm(e, tc); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, want)
		}
	})
}

// eachExample calls fn with every Smart Data Models example (both forms)
// decoded as n would store it, and the @context it was written with.
func eachExample(t testing.TB, n *testNode, fn func(name string, e *Entity, tc *termContext)) {
	t.Helper()
	for _, m := range sdmModels {
		for _, file := range []string{"example.jsonld", "example-normalized.jsonld"} {
			b, raw := readExample(t, m, file)
			tc, err := n.svc.ctx.resolve(raw["@context"])
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseEntity(b)
			if err != nil {
				t.Fatal(err)
			}
			e, err := decodeEntity(parsed, tc, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true)
			if err != nil {
				t.Fatal(err)
			}
			fn(m+"/"+file, e, tc)
		}
	}
}

// BenchmarkCheck measures the MIM2 check of one AirQualityObserved-shaped
// entity as a batch upsert makes it (the keyValues form with the model's
// @context, then the schema), apart from the store's noise.
func BenchmarkCheck(b *testing.B) {
	n := newTestNode(b, nil)
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	ents := make([]*Entity, 100)
	for i := range ents {
		if ents[i], err = decodeEntity(aqoEntity(rng, i), tc, time.Now(), true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i, cpu0 := 0, osstat.ProcessCPU()
	for b.Loop() {
		if err := n.svc.val.check(ents[i%len(ents)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// Wall time depends on the neighbours on a shared machine; CPU time
	// (all threads, the collector's too) much less.
	b.ReportMetric(float64((osstat.ProcessCPU()-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
}

// TestCheckWhateverCheckedBefore: check builds each entity's form in a
// map it reuses (validationMaps); an entity gets the verdict and message
// the form made for it alone gives (validationForm, a new map), whatever
// entities were checked before it, one after another or at once (-race):
// a bench without seats checked after one with seats still lacks them.
func TestCheckWhateverCheckedBefore(t *testing.T) {
	n := newTestNode(t, nil)
	s := n.svc
	const typ = "https://city.example/Bench"
	schema := `{"type": "object", "properties": {"seats": {"type": "integer", "minimum": 1}, "colour": {"type": "string", "maxLength": 5}},
		"required": ["seats"]}`
	if err := s.BindModel(typ, "", []byte(schema)); err != nil {
		t.Fatal(err)
	}
	m, _ := s.val.reg.Lookup(typ)
	tc, err := s.ctx.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	bench := func(id string, attrs map[string]any) *Entity {
		e := &Entity{ID: id, Types: []string{typ}, Attrs: map[string][]*Attribute{}}
		for name, v := range attrs {
			e.Attrs[coreVocab+name] = []*Attribute{{Type: Property, Value: v}}
		}
		stampNew(e, at, at)
		return e
	}
	ents := []*Entity{
		bench("urn:bench:full", map[string]any{"seats": 4.0, "colour": "green", "name": "a"}),
		bench("urn:bench:none", map[string]any{"name": "b"}),
		bench("urn:bench:seats", map[string]any{"seats": 2.0}),
		bench("urn:bench:colour", map[string]any{"colour": "red"}),
		bench("urn:bench:bad", map[string]any{"seats": 0.5, "colour": "turquoise"}),
		bench("urn:bench:empty", nil),
	}
	// want is the verdict on a form no other entity's check touched.
	want := make([]string, len(ents))
	for i, e := range ents {
		want[i] = "pass"
		if err := s.val.reg.ValidateOwned(typ, validationForm(e, tc)); err != nil {
			var ve *model.ValidationError
			if !errors.As(err, &ve) {
				t.Fatal(err)
			}
			want[i] = validationDetail(m.ShortName, ve)
		}
	}
	if want[0] != "pass" || want[1] == "pass" || want[3] == "pass" {
		t.Fatalf("verdicts on fresh forms %q: the full bench should pass, those without seats not", want)
	}
	verdict := func(e *Entity) string {
		err := s.val.check(e)
		if err == nil {
			return "pass"
		}
		var de *Error
		if !errors.As(err, &de) || de.Type != BadRequestData {
			return err.Error()
		}
		return de.Detail
	}
	for k := range 300 {
		i := k % len(ents)
		if got := verdict(ents[i]); got != want[i] {
			t.Fatalf("check(%s) after %s = %q, want %q", ents[i].ID, ents[(k+len(ents)-1)%len(ents)].ID, got, want[i])
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (k*(g+1) + g) % len(ents)
				if got := verdict(ents[i]); got != want[i] {
					t.Errorf("check(%s), 4 at once = %q, want %q", ents[i].ID, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

// validationForm is validationFormInto into a new map: what validator.check
// validates, for tests that compare it or validate it themselves.
func validationForm(e *Entity, tc *termContext) map[string]any {
	kv := make(map[string]any, len(e.Attrs)+4)
	validationFormInto(kv, e, tc)
	return kv
}
