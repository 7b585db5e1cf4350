package ngsild

import (
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"testing"
)

// Clause 4.17: the type parameter takes the entity type selection language.
func TestClause4_17TypeSelectionOverHTTP(t *testing.T) {
	n := newTestNode(t, nil)
	for _, e := range []map[string]any{
		{"id": "urn:ngsi-ld:x:building", "type": "Building"},
		{"id": "urn:ngsi-ld:x:both", "type": []any{"Building", "Vehicle"}},
		{"id": "urn:ngsi-ld:x:vehicle", "type": "Vehicle"},
		{"id": "urn:ngsi-ld:x:device", "type": "Device"},
	} {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", e), http.StatusCreated)
	}
	cases := []struct {
		sel  string
		want []string
	}{
		{"Building", []string{"urn:ngsi-ld:x:both", "urn:ngsi-ld:x:building"}},
		{"Vehicle,Device", []string{"urn:ngsi-ld:x:both", "urn:ngsi-ld:x:device", "urn:ngsi-ld:x:vehicle"}},
		{"Building;Vehicle", []string{"urn:ngsi-ld:x:both"}},
		{"(Building;Vehicle)|Device", []string{"urn:ngsi-ld:x:both", "urn:ngsi-ld:x:device"}},
		{"Device|Building;Vehicle", []string{"urn:ngsi-ld:x:both", "urn:ngsi-ld:x:device"}},
		{"(Building|Device);Vehicle", []string{"urn:ngsi-ld:x:both"}},
		{"Building;Device", nil},
	}
	for _, c := range cases {
		rec := n.do("GET", "/ngsi-ld/v1/entities?count=true&type="+url.QueryEscape(c.sel), nil)
		wantStatus(t, rec, http.StatusOK)
		got := ids(t, rec)
		sort.Strings(got)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("GET /entities?type=%s = %v, want %v", c.sel, got, c.want)
		}
		if want := len(c.want); rec.Header().Get("NGSILD-Results-Count") != strconv.Itoa(want) {
			t.Errorf("type=%s: NGSILD-Results-Count %q, want %d", c.sel, rec.Header().Get("NGSILD-Results-Count"), want)
		}
	}
	body := map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Building;Vehicle"}, map[string]any{"type": "Device"}}}
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/query", body)
	wantStatus(t, rec, http.StatusOK)
	got := ids(t, rec)
	sort.Strings(got)
	if want := []string{"urn:ngsi-ld:x:both", "urn:ngsi-ld:x:device"}; !reflect.DeepEqual(got, want) {
		t.Errorf("POST /entityOperations/query with selectors Building;Vehicle and Device = %v, want %v", got, want)
	}
	for _, bad := range []string{"(Building", "Building;", "Building)", "Bui lding", "A=B"} {
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities?type="+url.QueryEscape(bad), nil), BadRequestData)
	}
}
