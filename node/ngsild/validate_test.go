package ngsild

import (
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
