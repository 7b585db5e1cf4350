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
	n := newTestNode(t, nil)
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
			e, err := decodeEntity(parsed, tc, time.Now(), true)
			if err != nil {
				t.Fatal(err)
			}
			want := model.KeyValues(e.render(tc, renderOpts{format: normalized}))
			if got := validationForm(e, tc); !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s:\n got %v\nwant %v", m, file, got, want)
			}
		}
	}
}
