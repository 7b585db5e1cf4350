package ngsild

import (
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func memberNames(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Clause 4.21 (NGSI-LD 1.8): pick and omit project entities in retrieve and
// query responses.
func TestClause4_21PickOmit(t *testing.T) {
	n := newTestNode(t, nil)
	building := map[string]any{
		"id": "urn:ngsi-ld:Building:b1", "type": "Building", "scope": "/Paris",
		"name":            map[string]any{"type": "Property", "value": "Eiffel Tower"},
		"almostFull":      map[string]any{"type": "Property", "value": false},
		"airQualityLevel": map[string]any{"type": "Property", "value": 4, "unitCode": "C62"},
		"locatedAt":       map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"},
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", building), http.StatusCreated)
	cases := []struct {
		params string
		want   []string
	}{
		{"pick=id,name", []string{"id", "name"}},
		{"pick=name", []string{"name"}},
		{"pick=id", []string{"id"}},
		{"pick=id,type,scope", []string{"id", "scope", "type"}},
		{"pick=id,locatedAt{id,name}", []string{"id", "locatedAt"}},
		{"omit=id", []string{"airQualityLevel", "almostFull", "locatedAt", "name", "scope", "type"}},
		{"omit=type,name", []string{"airQualityLevel", "almostFull", "id", "locatedAt", "scope"}},
		{"omit=scope,locatedAt{name}", []string{"airQualityLevel", "almostFull", "id", "name", "type"}},
		{"pick=name,almostFull&options=keyValues", []string{"almostFull", "name"}},
		{"pick=name,nothing", []string{"name"}},
		{"pick=id,name&attrs=name,almostFull", []string{"id", "name"}},
	}
	for _, c := range cases {
		got := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1?"+c.params, nil)).(map[string]any)
		if names := memberNames(got); !reflect.DeepEqual(names, c.want) {
			t.Errorf("GET /entities/{id}?%s members = %v, want %v", c.params, names, c.want)
		}
		rec := n.do("GET", "/ngsi-ld/v1/entities?type=Building&"+c.params, nil)
		wantStatus(t, rec, http.StatusOK)
		list := decode(t, rec).([]any)
		if len(list) != 1 {
			t.Fatalf("GET /entities?type=Building&%s: %d entities, want 1 (projection must not filter)", c.params, len(list))
		}
		if names := memberNames(list[0].(map[string]any)); !reflect.DeepEqual(names, c.want) {
			t.Errorf("GET /entities?type=Building&%s members = %v, want %v", c.params, names, c.want)
		}
	}
	kv := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1?pick=name&options=keyValues", nil)).(map[string]any)
	if kv["name"] != "Eiffel Tower" {
		t.Errorf("pick=name&options=keyValues: name = %v, want the bare value", kv["name"])
	}
	// Sub-attributes are not projected away: pick names entity members.
	got := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1?pick=airQualityLevel", nil)).(map[string]any)
	if aq, _ := got["airQualityLevel"].(map[string]any); aq["unitCode"] != "C62" || aq["value"] != 4.0 {
		t.Errorf("pick=airQualityLevel lost the attribute's members: %v", got)
	}
}

func TestPickOmitBadInput(t *testing.T) {
	n := newTestNode(t, nil)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Building:b1", "type": "Building"}), http.StatusCreated)
	for _, params := range []string{"pick=id&omit=name", "pick=", "pick=id,,name", "pick=locatedAt{id", "pick=locatedAt{}", "omit=na%20me", "pick=a}", "pick=" + strings.Repeat("a{", 40) + "b" + strings.Repeat("}", 40)} {
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1?"+params, nil), BadRequestData)
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities?type=Building&"+params, nil), BadRequestData)
	}
}

func FuzzParseProjection(f *testing.F) {
	for _, s := range []string{"id,name", "id,locatedAt{id,name,isInCountry{id,description}}", "name,locatedAt{name}", "scope", "a{b{c}},d"} {
		f.Add(s)
	}
	expand := func(s string) string { return "https://example.org/" + s }
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseProjection("pick", s, expand)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("parseProjection(%q) error %T is not a problem: %v", s, err, err)
			}
			return
		}
		if len(p) == 0 {
			t.Fatalf("parseProjection(%q) accepted an empty projection", s)
		}
		for name := range p {
			if !coreMembers[name] && !strings.HasPrefix(name, "https://example.org/") {
				t.Fatalf("parseProjection(%q) kept %q unexpanded", s, name)
			}
		}
	})
}
