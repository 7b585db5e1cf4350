package ngsild

import (
	"net/http"
	"testing"
)

// TestClause5_6_3_WriteThatChangesNothing checks that a partial update in
// which every attribute is skipped (clauses 5.6.2, 5.6.3, 5.6.9: reported
// under notUpdated) leaves the entity as it was: its modifiedAt does not
// move, a subscription watching another attribute is not notified with it
// again, and its history gains no copy of the last value.
func TestClause5_6_3_WriteThatChangesNothing(t *testing.T) {
	n := startedNode(t, nil, func(o *Options) { o.Notify.Workers = 1 }) // one worker keeps order
	rcv := newReceiver(t)
	const id = "urn:ngsi-ld:Sensor:still"
	subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"watchedAttributes": []any{"temperature"},
		"notification":      map[string]any{"format": "keyValues", "endpoint": map[string]any{"uri": rcv.srv.URL}},
	})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": id, "type": "Sensor",
		"temperature": map[string]any{"type": "Property", "value": 20},
		"humidity":    map[string]any{"type": "Property", "value": 50},
	}), http.StatusCreated)
	if got, _ := rcv.entities(t, 1); got[0]["temperature"] != 20.0 {
		t.Fatalf("create notified %v", got[0])
	}
	modifiedAt := func() any { return fetch(t, n, id, "?options=sysAttrs")["modifiedAt"] }
	before := modifiedAt()

	pressure := map[string]any{"pressure": map[string]any{"type": "Property", "value": 1013}}
	cases := []struct {
		name, method, target string
		body                 any
		status               int
	}{
		{"update attrs, none there", "PATCH", "/ngsi-ld/v1/entities/" + id + "/attrs", pressure, http.StatusMultiStatus},
		{"append attrs noOverwrite, all there", "POST", "/ngsi-ld/v1/entities/" + id + "/attrs?options=noOverwrite",
			map[string]any{"temperature": map[string]any{"type": "Property", "value": 30}}, http.StatusMultiStatus},
		{"batch update noOverwrite, all there", "POST", "/ngsi-ld/v1/entityOperations/update?options=noOverwrite",
			[]any{map[string]any{"id": id, "humidity": map[string]any{"type": "Property", "value": 60}}}, http.StatusNoContent},
		{"partial attribute update, none there", "PATCH", "/ngsi-ld/v1/entities/" + id + "/attrs/pressure",
			map[string]any{"value": 1013}, http.StatusNotFound},
	}
	for _, c := range cases {
		wantStatus(t, n.do(c.method, c.target, c.body), c.status)
		waitDispatched(t, n)
		if got := modifiedAt(); got != before {
			t.Errorf("%s: modifiedAt moved from %v to %v", c.name, before, got)
		}
	}
	e := fetch(t, n, id, "?options=keyValues")
	if e["temperature"] != 20.0 || e["humidity"] != 50.0 || e["pressure"] != nil {
		t.Errorf("entity after skipped writes %v, want temperature 20, humidity 50, no pressure", e)
	}

	// A real change is the next thing notified: nothing was queued for
	// the skipped writes.
	setTemp(t, n, id, map[string]any{"temperature": 21})
	if nt := rcv.next(t); len(nt.Data) != 1 || nt.Data[0]["temperature"] != 21.0 {
		t.Fatalf("notified %v after the skipped writes, want temperature 21 first", nt.Data)
	}
	m := decode(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+id+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{20, 21}) {
		t.Errorf("temperature history %v, want [20 21]", got)
	}
}
