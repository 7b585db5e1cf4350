package ngsild

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

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
	i, cpu0 := 0, cpuTime()
	for b.Loop() {
		if err := n.svc.val.check(ents[i%len(ents)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// Wall time depends on the neighbours on a shared machine; CPU time
	// (all threads, the collector's too) much less.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
}
