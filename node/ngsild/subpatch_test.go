package ngsild

import (
	"net/http"
	"reflect"
	"sort"
	"testing"
)

// TestClause6_11_3_2_PatchKeepsTheSubscriptionsTerms checks that a
// subscription patched under the @context it was created with reads back
// in that context's terms, patched members as the others (not as IRIs),
// and that it notifies by its new q with the new attributes, named by
// their terms.
func TestClause6_11_3_2_PatchKeepsTheSubscriptionsTerms(t *testing.T) {
	n := startedNode(t, nil, func(o *Options) { o.Notify.Workers = 1 }) // one worker keeps order
	rcv := newReceiver(t)
	env := link(envContext)
	rec := n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "AirQualityObserved"}},
		"watchedAttributes": []any{"temperature"}, "q": "temperature>20",
		"notification": map[string]any{"format": "keyValues", "attributes": []any{"temperature"},
			"endpoint": map[string]any{"uri": rcv.srv.URL}},
	}, env...)
	wantStatus(t, rec, http.StatusCreated)
	path := rec.Header().Get("Location")
	wantStatus(t, n.do("PATCH", path, map[string]any{
		"q": "temperature>30", "notification": map[string]any{"attributes": []any{"temperature", "relativeHumidity"}},
	}, env...), http.StatusNoContent)

	got := decode(t, n.do("GET", path, nil)).(map[string]any)
	nd := got["notification"].(map[string]any)
	if got["q"] != "temperature>30" || !reflect.DeepEqual(got["watchedAttributes"], []any{"temperature"}) ||
		!reflect.DeepEqual(nd["attributes"], []any{"temperature", "relativeHumidity"}) {
		t.Errorf("patched subscription reads q %v, watchedAttributes %v, notification.attributes %v; want them in the terms of its @context",
			got["q"], got["watchedAttributes"], nd["attributes"])
	}

	aqo := func(id string, temperature float64) {
		t.Helper()
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
			"id": id, "type": "AirQualityObserved",
			"temperature":      map[string]any{"type": "Property", "value": temperature},
			"relativeHumidity": map[string]any{"type": "Property", "value": 0.5},
			"no2":              map[string]any{"type": "Property", "value": 40},
			"dateObserved":     map[string]any{"type": "Property", "value": "2026-03-01T10:00:00Z"},
			"location":         map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{-3.7, 40.4}}},
		}, env...), http.StatusCreated)
	}
	aqo("urn:ngsi-ld:AirQualityObserved:cool", 25) // matched the old q, not the new
	aqo("urn:ngsi-ld:AirQualityObserved:warm", 35)
	nt := rcv.next(t)
	if len(nt.Data) != 1 || nt.Data[0]["id"] != "urn:ngsi-ld:AirQualityObserved:warm" {
		t.Fatalf("notified %v, want only the entity the new q selects", nt.Data)
	}
	var keys []string
	for k := range nt.Data[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"id", "relativeHumidity", "temperature", "type"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("notification members %v, want %v", keys, want)
	}
}
