package ngsild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// FuzzParseISODuration checks the aggrPeriodDuration parser never panics
// and never accepts a duration that moves time backwards (which would make
// aggregation loop forever).
func FuzzParseISODuration(f *testing.F) {
	for _, s := range []string{"PT1H", "P1D", "PT15M", "P1W", "P1M", "P1Y2M3DT4H5M6.5S", "PT0.25S", "P0D", "PT", "P-1D"} {
		f.Add(s)
	}
	t0 := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseISODuration(s)
		if err != nil {
			return
		}
		if d.addTo(t0).Before(t0) {
			t.Fatalf("parseISODuration(%q) = %+v goes backwards", s, d)
		}
	})
}

// FuzzHistoryRecord checks the stored history record decoder: every
// instance of a record decodes to what it renders as after re-encoding,
// and arbitrary bytes give an error, never a panic.
func FuzzHistoryRecord(f *testing.F) {
	n := newTestNode(f, nil)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	attrs := map[string][]*Attribute{
		"t": {{Type: Property, Value: 21.5, ObservedAt: "2026-03-01T00:00:00Z", UnitCode: "CEL", CreatedAt: at, ModifiedAt: at}},
		"r": {{Type: Relationship, Object: "urn:ngsi-ld:Building:b1", CreatedAt: at, ModifiedAt: at}},
		"l": {{Type: LanguageProperty, LanguageMap: map[string]any{"en": "roof", "es": "tejado"}, DatasetID: "urn:d:1", CreatedAt: at, ModifiedAt: at},
			{Type: LanguageProperty, LanguageMap: map[string]any{"en": "wall"}, CreatedAt: at, ModifiedAt: at}},
		"g": {{Type: GeoProperty, Value: map[string]any{"type": "Point", "coordinates": []any{-3.7, 40.4}}, CreatedAt: at, ModifiedAt: at,
			Sub: map[string][]*Attribute{"q": {{Type: Property, Value: 2.0, CreatedAt: at, ModifiedAt: at}}}}},
	}
	recs, _, err := n.svc.historyOf(nil, nil, &Entity{ID: sensorID, ModifiedAt: at, Attrs: attrs}, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range recs {
		f.Add(r.val)
	}
	// The older layout, which stores written before hold.
	var old []byte
	for _, name := range sortedKeys(attrs) {
		for _, a := range attrs[name] {
			old = appendHistEntry(old, false, 1, a, at)
		}
	}
	f.Add(old)
	f.Add(packHistory(old))
	tc := coreTermContext(f)
	f.Fuzz(func(t *testing.T, val []byte) {
		_ = recordEntries(val, func(_ uint32, inst []byte) bool {
			a, err := decodeInstanceBytes(inst, at)
			if err != nil {
				return true
			}
			again := appendInstance(nil, a, at, len(inst) > 8 && inst[8]&instOwnCreated != 0)
			back, err := decodeInstanceBytes(again, at)
			if err != nil {
				t.Fatalf("re-encoded instance does not decode: %v\n%s", err, again)
			}
			ro := renderOpts{sysAttrs: true}
			if x, y := appendValue(nil, a.render(tc, ro)), appendValue(nil, back.render(tc, ro)); !bytes.Equal(x, y) {
				t.Fatalf("instance changed through storage:\n%s\n%s", x, y)
			}
			return true
		})
	})
}

// FuzzTemporalQuery sends arbitrary temporal parameters to GET
// /temporal/entities/{id}: 200 or 400, never a panic or internal error.
func FuzzTemporalQuery(f *testing.F) {
	n := newTestNode(f, nil)
	writeReadings(f, n, 30)
	for _, s := range []struct{ timerel, timeAt, end, lastN, aggr, period, opts string }{
		{"between", obs(3), obs(20), "", "sum,avg,min,max,totalCount,distinctCount", "PT5M", ""},
		{"before", obs(10), "", "3", "", "", "temporalValues"},
		{"after", obs(1), "", "", "max", "P1D", ""},
		{"", "", "", "100", "", "", "sysAttrs"},
		{"between", obs(0), obs(1), "1", "totalCount", "PT0.000000001S", ""},
	} {
		f.Add(s.timerel, s.timeAt, s.end, s.lastN, s.aggr, s.period, s.opts)
	}
	f.Fuzz(func(t *testing.T, timerel, timeAt, end, lastN, aggr, period, opts string) {
		v := url.Values{}
		for k, val := range map[string]string{"timerel": timerel, "timeAt": timeAt, "endTimeAt": end, "lastN": lastN,
			"aggrMethods": aggr, "aggrPeriodDuration": period, "options": opts} {
			if val != "" {
				v.Set(k, val)
			}
		}
		tn := *n
		tn.t = t
		rec := tn.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?"+v.Encode(), nil)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d: %s", v.Encode(), rec.Code, rec.Body.String())
		}
	})
}

// FuzzSubscription posts arbitrary subscription bodies: 201 or a 4xx
// problem, never a panic; an accepted one reads back.
func FuzzSubscription(f *testing.F) {
	// No network in a fuzz body: host names resolve to nothing, at once.
	n := newTestNode(f, func(o *Options) { o.Notify.Resolver = noDNS{} })
	for _, s := range []string{
		`{"type":"Subscription","entities":[{"type":"Sensor"}],"watchedAttributes":["temperature"],"q":"temperature>30","notification":{"format":"keyValues","attributes":["temperature"],"endpoint":{"uri":"http://127.0.0.1:9/notify","accept":"application/json","receiverInfo":[{"key":"X-Token","value":"t"}]}}}`,
		`{"type":"Subscription","description":"energy to history","entities":[{"idPattern":"^urn:ngsi-ld:Meter:.*","type":"Meter"}],"throttling":5,"expiresAt":"2099-01-01T00:00:00Z","notification":{"endpoint":{"uri":"https://example.org/ld","accept":"application/ld+json"}}}`,
		`{"type":"Subscription","entities":[{"type":"Sensor"}],"timeInterval":60,"geoQ":{"georel":"near;maxDistance==500","geometry":"Point","coordinates":[-3.70,40.42]},"isActive":false,"notification":{"format":"concise","endpoint":{"uri":"http://127.0.0.1:9/"}}}`,
		`{"type":"Subscription","watchedAttributes":["a"],"geoQ":{"georel":"within","geometry":"Polygon","coordinates":"[[[0,0],[1,0],[1,1],[0,0]]]"},"notification":{"endpoint":{"uri":"http://x/"}}}`,
		`{"type":"Subscription","entities":[{"type":"Sensor"}],"notificationTrigger":["entityCreated","entityDeleted","attributeDeleted"],"notification":{"showChanges":true,"sysAttrs":true,"endpoint":{"uri":"http://127.0.0.1:9/"}}}`,
		`{"type":"Subscription","entities":[{"id":"urn:ngsi-ld:Sensor:1"}],"notificationTrigger":["entityUpdated"],"notification":{"endpoint":{"uri":"http://[::1]:9/"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tn := *n
		tn.t = t
		rec := tn.do("POST", "/ngsi-ld/v1/subscriptions", body)
		switch {
		case rec.Code == http.StatusCreated:
			loc := rec.Header().Get("Location")
			if got := tn.do("GET", loc, nil); got.Code != http.StatusOK {
				t.Fatalf("created %s but GET gives %d", loc, got.Code)
			}
			tn.do("DELETE", loc, nil)
		case rec.Code >= 400 && rec.Code < 500:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}

// noDNS resolves no name, without asking the network.
type noDNS struct{}

func (noDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no DNS in this test", Name: host, IsNotFound: true}
}

// FuzzParseNotifyAllow checks allowlist entries never crash the parser,
// and that what parses answers Check for any endpoint without a panic.
func FuzzParseNotifyAllow(f *testing.F) {
	for _, s := range []string{"127.0.0.0/8", "::1/128", "192.0.2.7", "https://*.city.example", "receiver.lan:8080", "http://x.example/", "ftp://a", "*.", "a:99999"} {
		f.Add(s, "http://127.0.0.1:9/n")
		f.Add(s, "https://a.city.example/n")
	}
	f.Fuzz(func(t *testing.T, entry, uri string) {
		a, err := ParseNotifyAllow([]string{entry})
		if err != nil {
			return
		}
		a.resolver = noDNS{}
		if err := a.Check(t.Context(), uri); err != nil && !errors.Is(err, ErrEndpointNotAllowed) {
			t.Fatalf("Check(%q) under %q = %v, not ErrEndpointNotAllowed", uri, entry, err)
		}
	})
}

// FuzzTemporalInstancePatch sends arbitrary bodies to PATCH one instance
// of a history: 204 or a 4xx problem, never a panic or a 5xx; a refused
// patch leaves the history as it was, an accepted one leaves it readable
// with the instance under the same instanceId.
func FuzzTemporalInstancePatch(f *testing.F) {
	for _, s := range []string{
		`{"value": 10, "unitCode": "CEL", "accuracy": {"type": "Property", "value": 0.5}}`,
		`{"temperature": [{"type": "Property", "value": 11}]}`,
		`{"value": 12, "observedAt": "2026-03-01T00:07:00Z"}`,
		`{"type": "Relationship", "object": "urn:ngsi-ld:Building:b1"}`,
		`{"id": "urn:ngsi-ld:Sensor:s1", "temperature": {"value": 1, "datasetId": "urn:d:1"}}`,
		`[]`, `{"temperature": 12}`,
	} {
		f.Add([]byte(s))
	}
	shared := newTestNode(f, nil)
	var next atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte) {
		n := *shared
		n.t = t
		// An entity of its own per input, with two updates' history.
		id := fmt.Sprintf("urn:ngsi-ld:Sensor:f%d", next.Add(1))
		reading := func(i int) map[string]any {
			return map[string]any{"type": "Property", "value": i, "observedAt": obs(i)}
		}
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": id, "type": "Sensor", "temperature": reading(0)}), http.StatusCreated)
		for i := 1; i <= 2; i++ {
			wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+url.PathEscape(id)+"/attrs", map[string]any{"temperature": reading(i)}), http.StatusNoContent)
		}
		base := "/ngsi-ld/v1/temporal/entities/" + url.PathEscape(id)
		read := func() (string, []any) {
			rec := n.do("GET", base+"?attrs=temperature&options=sysAttrs", nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("history unreadable: %d %s", rec.Code, rec.Body.String())
			}
			m := decode(t, rec).(map[string]any)
			list, _ := m["temperature"].([]any)
			return rec.Body.String(), list
		}
		before, was := read()
		if len(was) != 3 {
			t.Fatalf("history of three updates: %s", before)
		}
		inst := was[1].(map[string]any)["instanceId"].(string)
		rec := n.do("PATCH", base+"/attrs/temperature/"+url.PathEscape(inst), body, "Content-Type", "application/json")
		after, list := read()
		switch {
		case rec.Code == http.StatusNoContent:
			if len(list) != 3 || list[1].(map[string]any)["instanceId"] != inst ||
				list[1].(map[string]any)["createdAt"] != was[1].(map[string]any)["createdAt"] ||
				!reflect.DeepEqual(list[0], was[0]) || !reflect.DeepEqual(list[2], was[2]) {
				t.Fatalf("accepted %s; history was %s, now %s", body, before, after)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if after != before {
				t.Fatalf("refused %s (%d) but the history changed:\n%s\n%s", body, rec.Code, before, after)
			}
		default:
			t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body.String())
		}
	})
}
