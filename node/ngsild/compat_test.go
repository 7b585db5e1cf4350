package ngsild

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Tests of what common NGSI-LD clients send that the specification's
// text alone does not settle.

// TestTrailingSlashPaths: the FIWARE IoT Agent posts every measurement to
// /entityOperations/upsert/ (with the slash), and clients written against
// other brokers send /entities/ and /subscriptions/: each path works with
// a trailing slash as without.
func TestTrailingSlashPaths(t *testing.T) {
	n := newTestNode(t, nil)
	body := []map[string]any{{"id": "urn:ngsi-ld:Device:d9", "type": "Device", "t": map[string]any{"type": "Property", "value": 1}}}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/upsert/?options=update", body), http.StatusCreated)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities/", map[string]any{"id": "urn:ngsi-ld:Device:d10", "type": "Device"}), http.StatusCreated)
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities/?type=Device", nil)); len(got) != 2 {
		t.Errorf("GET /entities/?type=Device found %v, want both devices", got)
	}
	rec := n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:d9/", nil)
	wantStatus(t, rec, http.StatusOK)
	if e := decode(t, rec).(map[string]any); e["t"] == nil {
		t.Errorf("GET /entities/{id}/ answered %v, want the entity", e)
	}
	// Only one slash more: a path with another segment is still unknown.
	if rec := n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Device:d9/x", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /entities/{id}/x answered %d, want 404", rec.Code)
	}
}

// TestVersionedCoreContextsNeedNoNetwork: payloads naming a versioned core
// context URL, as Smart Data Models examples and FIWARE tutorials do (v1.3
// to v1.8), are taken on a node with no internet, in the body and in the
// Link header; the core context cannot be replaced in any version.
func TestVersionedCoreContextsNeedNoNetwork(t *testing.T) {
	n := newTestNode(t, nil)
	for i, u := range []string{
		"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld",
		"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld",
		"https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
		"http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
	} {
		id := "urn:ngsi-ld:T:core-" + string(rune('a'+i))
		body := map[string]any{"@context": []any{envContext, u}, "id": id, "type": "Reading",
			"NO2": map[string]any{"type": "Property", "value": 22}}
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body, ldJSON()...), http.StatusCreated)
		rec := n.do("GET", "/ngsi-ld/v1/entities/"+id, nil, link(u)...)
		wantStatus(t, rec, http.StatusOK)
		if e := decode(t, rec).(map[string]any); e["type"] == nil {
			t.Errorf("%s in the Link header: answered %v", u, e)
		}
		wantProblem(t, n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(u), map[string]any{"@context": map[string]any{}}), OperationNotSupported)
	}
	// A URL that only looks like one is fetched (and here fails).
	body := map[string]any{"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld.evil", "id": "urn:ngsi-ld:T:x", "type": "T"}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/entities", body, ldJSON()...), LdContextNotAvailable)
}

// TestTimesSentCountsFailures: a notification the receiver refuses counts
// in timesSent and in timesFailed (clause 5.2.14), so that a monitor
// computing (timesSent - timesFailed) / timesSent sees the failure.
func TestTimesSentCountsFailures(t *testing.T) {
	n := startedNode(t, nil, func(o *Options) { o.Notify.Retries = -1 })
	rcv := newReceiver(t)
	rcv.fail.Store(1)
	id := subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL}}})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:s1", "type": "Sensor"}), http.StatusCreated)
	waitStatus(t, n, id, func(nd map[string]any) bool { return nd["timesSent"] == 1.0 && nd["timesFailed"] == 1.0 })
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:s2", "type": "Sensor"}), http.StatusCreated)
	waitStatus(t, n, id, func(nd map[string]any) bool { return nd["timesSent"] == 2.0 && nd["timesFailed"] == 1.0 })
}

// TestListedTenantIsTheNodesData: the FIWARE IoT Agent names its service
// as the tenant on every request. A tenant listed in Options.Tenants is
// the node's own data, and the answer names it back; any other tenant is
// still refused.
func TestListedTenantIsTheNodesData(t *testing.T) {
	n := newTestNode(t, func(o *Options) { o.Tenants = []string{"openiot"} })
	tenant := []string{"NGSILD-Tenant", "openiot"}
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert/?options=update", []map[string]any{{"id": "urn:ngsi-ld:Device:t1", "type": "Device"}}, tenant...)
	wantStatus(t, rec, http.StatusCreated)
	if got := rec.Header().Get("NGSILD-Tenant"); got != "openiot" {
		t.Errorf("answer names tenant %q, want openiot", got)
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Device", nil)); len(got) != 1 {
		t.Errorf("without a tenant the node finds %v, want the device written as openiot", got)
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities?type=Device", nil, "NGSILD-Tenant", "other"), NoMultiTenantSupport)
}

// TestPageLinksAreURIs: a client that sends q unencoded (q=t>0|t<0) gets
// next and prev links that are URIs, which a Link header parser takes,
// and that ask for the same query.
func TestPageLinksAreURIs(t *testing.T) {
	n := newTestNode(t, nil)
	for i := range 3 {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": fmt.Sprintf("urn:ngsi-ld:Device:p%d", i), "type": "Device",
			"t": map[string]any{"type": "Property", "value": i + 1}}), http.StatusCreated)
	}
	rec := n.do("GET", `/ngsi-ld/v1/entities?type=Device&q=t>0|t<0&limit=1&offset=1`, nil)
	wantStatus(t, rec, http.StatusOK)
	for _, l := range rec.Header().Values("Link") {
		if target := strings.TrimPrefix(strings.Split(l, ">;")[0], "<"); strings.ContainsAny(target, `<>|" `) {
			t.Errorf("Link %q holds a character a URI may not", l)
		}
	}
	next := pageLink(rec, "next")
	if next == "" {
		t.Fatalf("no next link in %q", rec.Header().Values("Link"))
	}
	if got := ids(t, n.do("GET", next, nil)); len(got) != 1 || got[0] != "urn:ngsi-ld:Device:p2" {
		t.Errorf("the next link %s found %v, want the third device", next, got)
	}
}

// TestTemporalValuesOfVocabProperty: a VocabProperty's history in the
// temporalValues form is under "vocabs", its terms compacted as a plain
// GET shows them (clause 4.5.9), not its IRIs under "values".
func TestTemporalValuesOfVocabProperty(t *testing.T) {
	n := newTestNode(t, nil)
	ctx := []any{map[string]any{"park": "https://example.org/vocab/park", "category": "https://example.org/category"}}
	body := map[string]any{"@context": ctx, "id": "urn:ngsi-ld:Place:v1", "type": "Place",
		"category": map[string]any{"type": "VocabProperty", "vocab": "park", "observedAt": "2026-03-01T00:00:00Z"}}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body, ldJSON()...), http.StatusCreated)
	q := url.Values{"options": {"temporalValues"}}
	rec := n.do("POST", "/ngsi-ld/v1/temporal/entityOperations/query?"+q.Encode(),
		map[string]any{"@context": ctx, "type": "Query", "entities": []any{map[string]any{"type": "Place"}}}, ldJSON()...)
	wantStatus(t, rec, http.StatusOK)
	got := decode(t, rec).([]any)
	if len(got) != 1 {
		t.Fatalf("temporal query found %v", got)
	}
	cat, _ := got[0].(map[string]any)["category"].(map[string]any)
	if cat["type"] != "VocabProperty" || fmt.Sprint(cat["vocabs"]) != "[[park 2026-03-01T00:00:00.000000Z]]" {
		t.Errorf("category's history = %v, want VocabProperty with vocabs [[park 2026-03-01T00:00:00.000000Z]]", cat)
	}
}

// TestQueryAnswerLinksItsWholeContext: a query whose body carries an
// @context of several entries is answered in application/json with a
// Link to a document holding all of them, with which its names were
// compacted (clause 6.3.6), not to the core context.
func TestQueryAnswerLinksItsWholeContext(t *testing.T) {
	n := newTestNode(t, nil)
	ctx := []any{envContext, map[string]any{"room": "http://ex.org/room"}}
	body := map[string]any{"@context": ctx, "id": "urn:ngsi-ld:AirQualityObserved:q1", "type": "AirQualityObserved",
		"dateObserved": map[string]any{"type": "Property", "value": "2026-03-01T00:00:00Z"},
		"location":     map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{10.2, 56.1}}},
		"room":         map[string]any{"type": "Property", "value": "r1"}}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body, ldJSON()...), http.StatusCreated)
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/query", map[string]any{"@context": ctx, "type": "Query",
		"entities": []any{map[string]any{"type": "AirQualityObserved"}}, "attrs": []any{"room"}}, append(ldJSON(), "Accept", "application/json")...)
	wantStatus(t, rec, http.StatusOK)
	link := rec.Header().Get("Link")
	target := strings.TrimPrefix(strings.Split(link, ">")[0], "<")
	if !strings.Contains(target, "/jsonldContexts/implicit-") {
		t.Fatalf("Link %q, want the implicitly created document of the query's @context", link)
	}
	got := decode(t, rec).([]any)
	if len(got) != 1 || got[0].(map[string]any)["room"] == nil {
		t.Fatalf("answer %v, want the entity with room", got)
	}
	doc := decode(t, n.do("GET", strings.TrimPrefix(target, "http://node.test"), nil)).(map[string]any)
	if fmt.Sprint(doc["@context"]) != fmt.Sprint(ctx) {
		t.Errorf("the linked document holds %v, want the query's @context %v", doc["@context"], ctx)
	}
}
