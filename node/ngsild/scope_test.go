package ngsild

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"
)

func createScoped(t *testing.T, n *testNode) {
	t.Helper()
	for _, e := range []map[string]any{
		{"id": "urn:ngsi-ld:Building:norte", "type": "Building", "scope": "/Madrid/Gardens/ParqueNorte"},
		{"id": "urn:ngsi-ld:Building:sur", "type": "Building", "scope": []any{"/Madrid/Gardens/ParqueSur", "/CompanyA/OrgUnitB/Madrid"}},
		{"id": "urn:ngsi-ld:Building:latina", "type": "Building", "scope": "/Madrid/Districts/Latina"},
		{"id": "urn:ngsi-ld:Building:none", "type": "Building"},
	} {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", e), http.StatusCreated)
	}
}

// Clause 4.18: an entity's scope is kept and shown in every representation,
// one scope as a string, several as a list.
func TestClause4_18EntityScope(t *testing.T) {
	n := newTestNode(t, nil)
	createScoped(t, n)
	for _, opts := range []string{"", "?options=keyValues", "?options=concise"} {
		got := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:norte"+opts, nil)).(map[string]any)
		if got["scope"] != "/Madrid/Gardens/ParqueNorte" {
			t.Errorf("GET%s scope = %v, want the one scope as a string", opts, got["scope"])
		}
		two := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:sur"+opts, nil)).(map[string]any)
		if want := []any{"/Madrid/Gardens/ParqueSur", "/CompanyA/OrgUnitB/Madrid"}; !reflect.DeepEqual(two["scope"], want) {
			t.Errorf("GET%s scope = %v, want %v", opts, two["scope"], want)
		}
	}
	none := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:none", nil)).(map[string]any)
	if _, has := none["scope"]; has {
		t.Errorf("an entity created without scope shows one: %v", none)
	}
}

// Clause 4.18: POST .../attrs adds scopes, PATCH .../attrs and PUT replace them.
func TestClause4_18ScopeUpdates(t *testing.T) {
	n := newTestNode(t, nil)
	createScoped(t, n)
	scope := func() any {
		return decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:norte", nil)).(map[string]any)["scope"]
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:norte/attrs", map[string]any{"scope": "/CompanyA/OrgUnitB"}), http.StatusNoContent)
	if got, want := scope(), []any{"/Madrid/Gardens/ParqueNorte", "/CompanyA/OrgUnitB"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after append: scope = %v, want %v", got, want)
	}
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:norte", map[string]any{"scope": "/Sevilla"}), http.StatusNoContent)
	if got := scope(); got != "/Sevilla" {
		t.Fatalf("after merge: scope = %v, want /Sevilla", got)
	}
	for _, method := range []string{"PATCH", "PUT", "DELETE"} {
		wantProblem(t, n.do(method, "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:norte/attrs/scope", map[string]any{"value": "/x"}), BadRequestData)
	}
	if got := scope(); got != "/Sevilla" {
		t.Fatalf("after refused attribute requests on scope: scope = %v, want /Sevilla", got)
	}
	wantStatus(t, n.do("PUT", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:norte", map[string]any{"type": "Building"}), http.StatusNoContent)
	if got := scope(); got != nil {
		t.Fatalf("after replace without scope: scope = %v, want none", got)
	}
}

// Clause 4.19: scopeQ selects entities by scope.
func TestClause4_19ScopeQueryOverHTTP(t *testing.T) {
	n := newTestNode(t, nil)
	createScoped(t, n)
	cases := []struct {
		scopeQ string
		want   []string
	}{
		{"/Madrid/Gardens/ParqueNorte", []string{"urn:ngsi-ld:Building:norte"}},
		{"/Madrid/Gardens/#", []string{"urn:ngsi-ld:Building:norte", "urn:ngsi-ld:Building:sur"}},
		{"/Madrid/+/Latina", []string{"urn:ngsi-ld:Building:latina"}}, // + as form decoding sees it
		{"/Madrid/%2B/Latina", []string{"urn:ngsi-ld:Building:latina"}},
		{"/#", []string{"urn:ngsi-ld:Building:latina", "urn:ngsi-ld:Building:norte", "urn:ngsi-ld:Building:sur"}},
		{"/Madrid/#;/CompanyA/#", []string{"urn:ngsi-ld:Building:sur"}},
		{"/Madrid/Districts/#,/CompanyA/#", []string{"urn:ngsi-ld:Building:latina", "urn:ngsi-ld:Building:sur"}},
		{"/Sevilla", nil},
	}
	for _, c := range cases {
		for _, extra := range []string{"type=Building&", ""} { // scopeQ alone is a valid query too
			rec := n.do("GET", "/ngsi-ld/v1/entities?"+extra+"scopeQ="+esc(c.scopeQ), nil)
			wantStatus(t, rec, http.StatusOK)
			got := ids(t, rec)
			sort.Strings(got)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("GET /entities?%sscopeQ=%s = %v, want %v", extra, c.scopeQ, got, c.want)
			}
		}
	}
	body := map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Building"}}, "scopeQ": "/Madrid/+/Latina"}
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/query", body)
	wantStatus(t, rec, http.StatusOK)
	if got := ids(t, rec); !reflect.DeepEqual(got, []string{"urn:ngsi-ld:Building:latina"}) {
		t.Errorf("POST /entityOperations/query with scopeQ = %v", got)
	}
}

func TestScopeBadInput(t *testing.T) {
	n := newTestNode(t, nil)
	for _, scope := range []any{"Madrid", "/Madrid/#", "/a//b", []any{}, []any{"/a", 3}, 7} {
		rec := n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Building:x", "type": "Building", "scope": scope})
		wantProblem(t, rec, BadRequestData)
	}
	if rec := n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:x", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("a rejected entity was stored: %d %s", rec.Code, rec.Body.String())
	}
	for _, q := range []string{"Madrid", "/Madrid/%23/x", "(/a", "/a;"} {
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities?type=Building&scopeQ="+q, nil), BadRequestData)
	}
}

// The scope index (n/o/) answers scopeQ without a full scan, and its
// candidates give the same entities as matching every entity would.
func TestScopeQueryUsesScopeIndex(t *testing.T) {
	n := newTestNode(t, nil)
	var batch []any
	for i := 0; i < 600; i++ {
		batch = append(batch, map[string]any{
			"id": fmt.Sprintf("urn:ngsi-ld:Sensor:%03d", i), "type": "Sensor",
			"scope": []any{fmt.Sprintf("/Madrid/District%02d/Station%03d", i%20, i%60), fmt.Sprintf("/Owner%d", i%3)},
		})
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/create", batch), http.StatusCreated)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:007", nil), http.StatusNoContent)
	tc, err := n.svc.ctx.resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		scopeQ       string
		results, max int
	}{
		{"/Madrid/District07/Station007", 9, 9}, // 10 stations of that name, one deleted
		{"/Madrid/+/Station007", 9, 9},
		{"/Madrid/District07/#", 29, 29},
		{"/Madrid/District07/#;/Owner1", 9, 29},
		{"/Owner2,/Madrid/+/Station001", 200 + 10, 210},
		{"/Nowhere/#", 0, 0},
		{"/Madrid/+/Station007,/Madrid/+/Station008", 19, 19}, // two terms under one index prefix
	}
	for _, c := range cases {
		eq, err := n.svc.parseEntityQuery(map[string][]string{"scopeQ": {c.scopeQ}, "limit": {"1000"}}, tc)
		if err != nil {
			t.Fatal(err)
		}
		var cands []string
		if err := n.db.View(func(tx *storeTxn) error {
			cands, err = n.svc.candidates(tx, eq, n.svc.vidx.isReady)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if cands == nil || len(cands) > c.max {
			t.Errorf("scopeQ=%s: %d candidates (nil = full scan), want at most %d of 599", c.scopeQ, len(cands), c.max)
		}
		rec := n.do("GET", "/ngsi-ld/v1/entities?limit=1000&scopeQ="+url.QueryEscape(c.scopeQ), nil)
		wantStatus(t, rec, http.StatusOK)
		if got := len(ids(t, rec)); got != c.results {
			t.Errorf("scopeQ=%s: %d results, want %d", c.scopeQ, got, c.results)
		}
	}
}
