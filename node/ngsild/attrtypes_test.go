package ngsild

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"testing"
	"time"
)

const (
	enContext = "https://city.example/contexts/en.jsonld"
	deContext = "https://city.example/contexts/de.jsonld"
)

// newVocabNode is a node with two contexts that name the same vocabulary
// IRIs in English and in German.
func newVocabNode(t *testing.T) *testNode {
	t.Helper()
	n := newTestNode(t, nil)
	for u, doc := range map[string]string{
		enContext: `{"@context": {"monument": "https://example.org/vocab/monument", "sightseeing": "https://example.org/vocab/sightseeing", "category": "https://example.org/vocab/category"}}`,
		deContext: `{"@context": {"Denkmal": "https://example.org/vocab/monument", "Besichtigung": "https://example.org/vocab/sightseeing", "Kategorie": "https://example.org/vocab/category"}}`,
	} {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(u), doc, "Content-Type", "application/ld+json"), http.StatusCreated)
	}
	return n
}

func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The same entity in the three representations (clause 4.5), with the
// attribute types of NGSI-LD 1.8: ListProperty (4.5.21), ListRelationship
// (4.5.22), JsonProperty (4.5.24) and VocabProperty (4.5.20).
const (
	normalizedTower = `{
	"id": "urn:ngsi-ld:Building:tower", "type": "Building",
	"category": {"type": "VocabProperty", "vocab": "monument"},
	"tags": {"type": "VocabProperty", "vocab": ["monument", "sightseeing"],
		"source": {"type": "Property", "value": "Speedometer"}},
	"tyreTreadDepths": {"type": "ListProperty", "valueList": [300, 300, 120, [6]], "unitCode": "MMT"},
	"route": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:City:Antwerp"}, {"object": "urn:ngsi-ld:City:Rotterdam"}]},
	"config": {"type": "JsonProperty", "json": {"id": "some-id", "type": "some-type", "null": null, "nested": {"a": [1, 2]}}},
	"configList": {"type": "JsonProperty", "json": [{"x": 1}, "y"]}
}`
	conciseTower = `{
	"id": "urn:ngsi-ld:Building:tower", "type": "Building",
	"category": {"vocab": "monument"},
	"tags": {"vocab": ["monument", "sightseeing"], "source": "Speedometer"},
	"tyreTreadDepths": {"valueList": [300, 300, 120, [6]], "unitCode": "MMT"},
	"route": {"objectList": [{"object": "urn:ngsi-ld:City:Antwerp"}, {"object": "urn:ngsi-ld:City:Rotterdam"}]},
	"config": {"json": {"id": "some-id", "type": "some-type", "null": null, "nested": {"a": [1, 2]}}},
	"configList": {"json": [{"x": 1}, "y"]}
}`
	keyValuesTower = `{
	"id": "urn:ngsi-ld:Building:tower", "type": "Building",
	"category": {"vocab": "monument"},
	"tags": {"vocab": ["monument", "sightseeing"]},
	"tyreTreadDepths": {"valueList": [300, 300, 120, [6]]},
	"route": {"objectList": ["urn:ngsi-ld:City:Antwerp", "urn:ngsi-ld:City:Rotterdam"]},
	"config": {"json": {"id": "some-id", "type": "some-type", "null": null, "nested": {"a": [1, 2]}}},
	"configList": {"json": [{"x": 1}, "y"]}
}`
)

// Clause 4.5: each new attribute type reads back identically in normalized
// form and as the spec's concise and keyValues forms; a concise body creates
// the same entity as the normalized one.
func TestClause4_5NewAttributeTypesRoundTrip(t *testing.T) {
	n := newVocabNode(t)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", normalizedTower, link(enContext)...), http.StatusCreated)
	for _, c := range []struct{ options, want string }{
		{"", normalizedTower},
		{"?options=concise", conciseTower},
		{"?options=keyValues", keyValuesTower},
	} {
		got := fetch(t, n, "urn:ngsi-ld:Building:tower", c.options, link(enContext)...)
		if want := jsonOf(t, c.want); !reflect.DeepEqual(got, want) {
			gb, _ := json.Marshal(got)
			t.Errorf("GET%s =\n%s\nwant\n%s", c.options, gb, c.want)
		}
	}
	// The concise form as input gives the same entity.
	concise := jsonOf(t, conciseTower)
	concise["id"] = "urn:ngsi-ld:Building:tower2"
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", concise, link(enContext)...), http.StatusCreated)
	got := fetch(t, n, "urn:ngsi-ld:Building:tower2", "", link(enContext)...)
	want := jsonOf(t, normalizedTower)
	want["id"] = "urn:ngsi-ld:Building:tower2"
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		t.Errorf("entity created from the concise form reads back as\n%s", gb)
	}
}

// Clause 4.5.20: a VocabProperty's terms are expanded with the writer's
// @context and compacted with the reader's.
func TestClause4_5_20VocabPropertyUnderAnotherContext(t *testing.T) {
	n := newVocabNode(t)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", normalizedTower, link(enContext)...), http.StatusCreated)
	de := fetch(t, n, "urn:ngsi-ld:Building:tower", "?options=keyValues", link(deContext)...)
	if got := de["Kategorie"]; !reflect.DeepEqual(got, map[string]any{"vocab": "Denkmal"}) {
		t.Errorf("German reader sees Kategorie = %v, want {vocab: Denkmal}", got)
	}
	if got := de["tags"]; !reflect.DeepEqual(got, map[string]any{"vocab": []any{"Denkmal", "Besichtigung"}}) {
		t.Errorf("German reader sees tags = %v", got)
	}
	core := fetch(t, n, "urn:ngsi-ld:Building:tower", "")
	if got := attr(core, "https://example.org/vocab/category")["vocab"]; got != "https://example.org/vocab/monument" {
		t.Errorf("a reader without the context sees vocab %v, want the IRI", got)
	}
	// q compares a term with the stored IRI, under either context.
	for _, c := range []struct {
		q    string
		hdrs []string
	}{{"category==monument", link(enContext)}, {"Kategorie==Denkmal", link(deContext)}, {"tags==sightseeing", link(enContext)}} {
		if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Building&q="+url.QueryEscape(c.q), nil, c.hdrs...)); len(got) != 1 {
			t.Errorf("q=%s found %v, want the tower", c.q, got)
		}
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Building&q=category==sightseeing", nil, link(enContext)...)); len(got) != 0 {
		t.Errorf("q=category==sightseeing found %v, want nothing", got)
	}
}

// Clause 4.9 over the new types: list elements, list targets and JSON keys
// are queryable, and give the same answer once a value index serves them.
func TestNewAttributeTypesQueries(t *testing.T) {
	n := newVocabNode(t)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", normalizedTower, link(enContext)...), http.StatusCreated)
	other := `{"id": "urn:ngsi-ld:Building:other", "type": "Building",
		"category": {"type": "VocabProperty", "vocab": "sightseeing"},
		"tyreTreadDepths": {"type": "ListProperty", "valueList": [10, 20]},
		"route": {"type": "ListRelationship", "objectList": [{"object": "urn:ngsi-ld:City:Paris"}]},
		"config": {"type": "JsonProperty", "json": {"id": "other-id"}},
		"labels": {"type": "Property", "value": ["red", "green"]}}`
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", other, link(enContext)...), http.StatusCreated)
	cases := map[string][]string{
		"tyreTreadDepths==120":                     {"urn:ngsi-ld:Building:tower"},
		"tyreTreadDepths>250":                      {"urn:ngsi-ld:Building:tower"},
		"tyreTreadDepths==15..25":                  {"urn:ngsi-ld:Building:other"},
		"route==urn:ngsi-ld:City:Rotterdam":        {"urn:ngsi-ld:Building:tower"},
		`config[id]=="other-id"`:                   {"urn:ngsi-ld:Building:other"},
		"category==monument|category==sightseeing": {"urn:ngsi-ld:Building:other", "urn:ngsi-ld:Building:tower"},
		`labels=="green"`:                          {"urn:ngsi-ld:Building:other"},
	}
	run := func(stage string) {
		for q, want := range cases {
			got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Building&q="+url.QueryEscape(q), nil, link(enContext)...))
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: q=%s found %v, want %v", stage, q, got, want)
			}
		}
	}
	run("before value indexes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.svc.waitIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	run("with value indexes")
}

// Clause 6.7.3.1 on the new types: a partial update keeps the type and
// replaces the content; a wrong content is refused and nothing changes.
func TestNewAttributeTypesUpdates(t *testing.T) {
	n := newVocabNode(t)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", normalizedTower, link(enContext)...), http.StatusCreated)
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:tower/attrs/category", `{"vocab": "sightseeing"}`, link(enContext)...), http.StatusNoContent)
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:tower/attrs/tyreTreadDepths", `{"valueList": [1, 2]}`, link(enContext)...), http.StatusNoContent)
	e := fetch(t, n, "urn:ngsi-ld:Building:tower", "", link(enContext)...)
	if got := attr(e, "category"); got["type"] != "VocabProperty" || got["vocab"] != "sightseeing" {
		t.Errorf("category after PATCH = %v", got)
	}
	if got := attr(e, "tyreTreadDepths"); !reflect.DeepEqual(got["valueList"], []any{1.0, 2.0}) || got["unitCode"] != "MMT" {
		t.Errorf("tyreTreadDepths after PATCH = %v, want the new list with unitCode kept", got)
	}
	wantProblem(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:tower/attrs/tyreTreadDepths", `{"valueList": 5}`, link(enContext)...), BadRequestData)
	if got := attr(fetch(t, n, "urn:ngsi-ld:Building:tower", "", link(enContext)...), "tyreTreadDepths"); !reflect.DeepEqual(got["valueList"], []any{1.0, 2.0}) {
		t.Errorf("a refused PATCH changed the attribute: %v", got)
	}
	info := decode(t, n.do("GET", "/ngsi-ld/v1/types/Building", nil)).(map[string]any)
	kinds := map[string]any{}
	for _, d := range info["attributeDetails"].([]any) {
		dm := d.(map[string]any)
		kinds[dm["id"].(string)] = dm["attributeTypes"]
	}
	if got := kinds["https://example.org/vocab/category"]; !reflect.DeepEqual(got, []any{"VocabProperty"}) {
		t.Errorf("GET /types/Building: category attributeTypes %v", got)
	}
}

func TestNewAttributeTypesBadInput(t *testing.T) {
	n := newVocabNode(t)
	for name, attrJSON := range map[string]string{
		"valueList not an array":     `{"type": "ListProperty", "valueList": 3}`,
		"valueList missing":          `{"type": "ListProperty", "value": [1]}`,
		"valueList with null":        `{"type": "ListProperty", "valueList": [1, null]}`,
		"objectList empty":           `{"type": "ListRelationship", "objectList": []}`,
		"objectList entry not a URI": `{"type": "ListRelationship", "objectList": [{"object": "not a uri"}]}`,
		"objectList not an array":    `{"type": "ListRelationship", "objectList": "urn:a:b"}`,
		"json null":                  `{"type": "JsonProperty", "json": null}`,
		"json missing":               `{"type": "JsonProperty", "value": {}}`,
		"vocab number":               `{"type": "VocabProperty", "vocab": 3}`,
		"vocab empty list":           `{"type": "VocabProperty", "vocab": []}`,
		"vocab with space":           `{"type": "VocabProperty", "vocab": "two words"}`,
	} {
		body := `{"id": "urn:ngsi-ld:Building:bad", "type": "Building", "a": ` + attrJSON + `}`
		rec := n.do("POST", "/ngsi-ld/v1/entities", body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, rec.Code, rec.Body.String())
		}
	}
	if rec := n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:bad", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("a rejected entity was stored: %s", rec.Body.String())
	}
}

// Batch operations (clause 6.14 to 6.17) carry scope and the 1.8 attribute
// types like single-entity writes.
func TestBatchCarriesScopeAndNewTypes(t *testing.T) {
	n := newVocabNode(t)
	tower := jsonOf(t, normalizedTower)
	tower["scope"] = "/Paris/7e"
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/create", []any{tower}, link(enContext)...), http.StatusCreated)
	got := fetch(t, n, "urn:ngsi-ld:Building:tower", "", link(enContext)...)
	if got["scope"] != "/Paris/7e" || !reflect.DeepEqual(got["route"], tower["route"]) {
		t.Errorf("batch-created entity reads back as %v", got)
	}
	up := map[string]any{"id": "urn:ngsi-ld:Building:tower", "type": "Building", "scope": "/Lyon",
		"category": map[string]any{"type": "VocabProperty", "vocab": "sightseeing"}}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/upsert?options=update", []any{up}, link(enContext)...), http.StatusNoContent)
	got = fetch(t, n, "urn:ngsi-ld:Building:tower", "?options=keyValues", link(enContext)...)
	if !reflect.DeepEqual(got["category"], map[string]any{"vocab": "sightseeing"}) || got["tyreTreadDepths"] == nil {
		t.Errorf("after upsert with options=update: %v", got)
	}
	if ids := ids(t, n.do("GET", "/ngsi-ld/v1/entities?scopeQ=/Lyon,/Paris/%23", nil)); len(ids) != 1 {
		t.Errorf("scopeQ after upsert found %v", ids)
	}
}
