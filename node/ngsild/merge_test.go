package ngsild

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
)

// TestClause5_6_17_MergeKeepsWhatTheFragmentLeavesOut checks that merge
// entity (PATCH /entities/{id}) and batch merge merge an attribute rather
// than replace it: the members a fragment gives replace the stored ones,
// observedAt, unitCode and sub-attributes it leaves out stay, and a
// sub-attribute given as urn:ngsi-ld:null goes.
func TestClause5_6_17_MergeKeepsWhatTheFragmentLeavesOut(t *testing.T) {
	n := newTestNode(t, nil)
	const observed = "2026-03-01T10:00:00Z"
	reading := func(value any, unit string, accuracy map[string]any) map[string]any {
		m := map[string]any{"type": "Property", "value": value, "observedAt": observed, "unitCode": unit}
		if accuracy != nil {
			m["accuracy"] = accuracy
		}
		return m
	}
	accuracy := func(v float64) map[string]any {
		return map[string]any{"type": "Property", "value": v, "unitCode": "CEL"}
	}
	cases := []struct {
		name  string
		batch bool // POST /entityOperations/merge rather than PATCH /entities/{id}
		frag  any
		want  map[string]any
	}{
		{"value only", false, map[string]any{"value": 100}, reading(100.0, "CEL", accuracy(0.5))},
		{"concise", false, 101, reading(101.0, "CEL", accuracy(0.5))},
		{"new unit, sub-attribute removed", false,
			map[string]any{"value": 102, "unitCode": "FAH", "accuracy": "urn:ngsi-ld:null"}, reading(102.0, "FAH", nil)},
		{"sub-attribute merged", false,
			map[string]any{"value": 103, "accuracy": map[string]any{"value": 0.2}}, reading(103.0, "CEL", accuracy(0.2))},
		{"batch merge, value only", true, map[string]any{"value": 104}, reading(104.0, "CEL", accuracy(0.5))},
	}
	for i, c := range cases {
		id := fmt.Sprintf("urn:ngsi-ld:Sensor:merge%d", i)
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
			"id": id, "type": "Sensor", "temperature": reading(99, "CEL", accuracy(0.5)),
		}), http.StatusCreated)
		if c.batch {
			wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/merge",
				[]any{map[string]any{"id": id, "temperature": c.frag}}), http.StatusNoContent)
		} else {
			wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id, map[string]any{"temperature": c.frag}), http.StatusNoContent)
		}
		if got := fetch(t, n, id, "")["temperature"]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: merging %v gave temperature %v, want %v", c.name, c.frag, got, c.want)
		}
	}
}
