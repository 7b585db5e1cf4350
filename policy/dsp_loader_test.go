package policy

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/piprate/json-gold/ld"
)

// offlineLoader serves the DSP contexts from testdata; anything else fails,
// so no test touches the network.
type offlineLoader struct{}

var offlineContexts = map[string]string{
	"https://w3id.org/dspace/2025/1/context.jsonld":      "testdata/dsp/context/dspace.jsonld",
	"https://w3id.org/dspace/2025/1/odrl-profile.jsonld": "testdata/dsp/context/odrl.jsonld",
}

func (offlineLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	path, ok := offlineContexts[u]
	if !ok {
		return nil, fmt.Errorf("offline loader: no local copy of %s", u)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

// jsonCompat turns json.Number into float64, which json-gold expects.
func jsonCompat(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			out[k] = jsonCompat(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = jsonCompat(x)
		}
		return out
	case json.Number:
		f, _ := t.Float64()
		return f
	}
	return v
}
