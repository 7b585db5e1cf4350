package ngsild

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func fetch(t testing.TB, n *testNode, id, query string, headers ...string) map[string]any {
	t.Helper()
	rec := n.do("GET", "/ngsi-ld/v1/entities/"+id+query, nil, headers...)
	wantStatus(t, rec, http.StatusOK)
	return decode(t, rec).(map[string]any)
}

func attr(e map[string]any, name string) map[string]any {
	m, _ := e[name].(map[string]any)
	return m
}

// TestAttributeOperations walks the attribute endpoints of clause 6.6 and
// 6.7 over one entity, checking what a client reads back after each.
func TestAttributeOperations(t *testing.T) {
	n := newTestNode(t, func(o *Options) { o.Now = fixedClock() })
	loadFixture(t, n)
	const id = "urn:ngsi-ld:Sensor:a"
	before := fetch(t, n, id, "?options=sysAttrs")

	t.Run("clause6.6.3.1/append", func(t *testing.T) {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities/"+id+"/attrs", `{"humidity": {"type": "Property", "value": 40}}`), http.StatusNoContent)
		if v := attr(fetch(t, n, id, ""), "humidity")["value"]; v != 40.0 {
			t.Errorf("humidity = %v, want 40", v)
		}
	})
	t.Run("clause6.6.3.1/append-noOverwrite", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entities/"+id+"/attrs?options=noOverwrite",
			`{"name": {"type": "Property", "value": "other"}, "colour": {"type": "Property", "value": "red"}}`)
		wantStatus(t, rec, http.StatusMultiStatus)
		var res updateResult
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Updated, []string{"colour"}) || len(res.NotUpdated) != 1 || res.NotUpdated[0].AttributeName != "name" {
			t.Errorf("result %+v, want colour updated and name not", res)
		}
		if v := attr(fetch(t, n, id, ""), "name")["value"]; v != "alpha" {
			t.Errorf("name = %v, want alpha kept", v)
		}
	})
	t.Run("clause6.6.3.2/update-existing-only", func(t *testing.T) {
		rec := n.do("PATCH", "/ngsi-ld/v1/entities/"+id+"/attrs",
			`{"status": {"type": "Property", "value": "maintenance"}, "nothere": {"type": "Property", "value": 1}}`)
		wantStatus(t, rec, http.StatusMultiStatus)
		e := fetch(t, n, id, "")
		if v := attr(e, "status")["value"]; v != "maintenance" {
			t.Errorf("status = %v, want maintenance", v)
		}
		if _, ok := e["nothere"]; ok {
			t.Error("update created an attribute that did not exist")
		}
	})
	t.Run("clause6.7.3.1/partial-attribute-update", func(t *testing.T) {
		wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id+"/attrs/temperature", `{"value": 30}`), http.StatusNoContent)
		temp := attr(fetch(t, n, id, ""), "temperature")
		if temp["value"] != 30.0 || temp["unitCode"] != "CEL" || temp["observedAt"] != "2024-05-01T10:00:00Z" || attr(temp, "accuracy")["value"] != 0.5 {
			t.Errorf("temperature = %v, want value 30 with unitCode, observedAt and accuracy kept", temp)
		}
	})
	t.Run("clause6.7.3.3/replace-attribute", func(t *testing.T) {
		wantStatus(t, n.do("PUT", "/ngsi-ld/v1/entities/"+id+"/attrs/temperature", `{"type": "Property", "value": 31}`), http.StatusNoContent)
		temp := attr(fetch(t, n, id, ""), "temperature")
		if !reflect.DeepEqual(temp, map[string]any{"type": "Property", "value": 31.0}) {
			t.Errorf("temperature = %v, want exactly the replacement", temp)
		}
	})
	t.Run("clause6.7.3.2/delete-attribute", func(t *testing.T) {
		wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id+"/attrs/colour", nil), http.StatusNoContent)
		if _, ok := fetch(t, n, id, "")["colour"]; ok {
			t.Error("colour still there")
		}
		wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id+"/attrs/colour", nil), ResourceNotFound)
	})
	t.Run("clause4.8/system-attributes", func(t *testing.T) {
		after := fetch(t, n, id, "?options=sysAttrs")
		if after["createdAt"] != before["createdAt"] {
			t.Errorf("createdAt changed from %v to %v", before["createdAt"], after["createdAt"])
		}
		if after["modifiedAt"] == before["modifiedAt"] {
			t.Errorf("modifiedAt %v did not change", after["modifiedAt"])
		}
		name := attr(after, "name")
		if name["createdAt"] != attr(before, "name")["createdAt"] || name["modifiedAt"] != name["createdAt"] {
			t.Errorf("untouched attribute timestamps changed: %v", name)
		}
		if attr(after, "temperature")["modifiedAt"] == attr(before, "temperature")["modifiedAt"] {
			t.Error("temperature modifiedAt did not change")
		}
	})
}

// TestEntityOperations covers replace, merge and delete of whole entities
// (clause 6.5).
func TestEntityOperations(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	const id = "urn:ngsi-ld:Sensor:b"
	created := fetch(t, n, id, "?options=sysAttrs")["createdAt"]

	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id, `{"status": {"type": "Property", "value": "ok"}, "extra": 1}`), http.StatusNoContent)
	e := fetch(t, n, id, "?options=keyValues")
	if e["status"] != "ok" || e["extra"] != 1.0 || e["name"] != "beta" {
		t.Errorf("after merge: %v", e)
	}

	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id, `{"extra": "urn:ngsi-ld:null"}`), http.StatusNoContent)
	if e := fetch(t, n, id, "?options=keyValues"); e["extra"] != nil {
		t.Errorf("merge with urn:ngsi-ld:null kept the attribute: %v", e)
	}

	wantStatus(t, n.do("PUT", "/ngsi-ld/v1/entities/"+id, `{"type": "Sensor", "only": {"type": "Property", "value": true}}`), http.StatusNoContent)
	e = fetch(t, n, id, "?options=sysAttrs,keyValues")
	if !reflect.DeepEqual(e, map[string]any{"id": id, "type": "Sensor", "only": true}) {
		t.Errorf("after replace: %v", e)
	}
	if c := fetch(t, n, id, "?options=sysAttrs")["createdAt"]; c != created {
		t.Errorf("replace changed createdAt from %v to %v", created, c)
	}
	rec := n.do("GET", "/ngsi-ld/v1/entities?q=status", nil)
	for _, got := range ids(t, rec) {
		if got == id {
			t.Error("the value index still finds a replaced-away attribute")
		}
	}

	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id, nil), http.StatusNoContent)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/"+id, nil), ResourceNotFound)
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id, nil), ResourceNotFound)
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=Sensor", nil)); len(got) != 2 || contains(got, id) {
		t.Errorf("type index after delete: %v", got)
	}
}

// TestMultiAttributeAndLanguage covers datasetId instances (clause 4.5.5)
// and LanguageProperty (clause 4.5.18).
func TestMultiAttributeAndLanguage(t *testing.T) {
	n := newTestNode(t, nil)
	body := `{"id": "urn:ngsi-ld:Station:1", "type": "Station",
		"speed": [{"type": "Property", "value": 50},
		          {"type": "Property", "value": 52, "datasetId": "urn:ngsi-ld:Dataset:radar"}],
		"label": {"type": "LanguageProperty", "languageMap": {"en": "North gate", "es": "Puerta norte"}}}`
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body), http.StatusCreated)
	e := fetch(t, n, "urn:ngsi-ld:Station:1", "")
	if speeds, ok := e["speed"].([]any); !ok || len(speeds) != 2 {
		t.Fatalf("speed = %v, want two instances", e["speed"])
	}
	// keyValues shows a multi-attribute as {"dataset": {...}}, the
	// default instance under @none (clause 4.5.4, NGSI-LD 1.7 and later).
	kv := fetch(t, n, "urn:ngsi-ld:Station:1", "?options=keyValues")
	if want := map[string]any{"dataset": map[string]any{"@none": 50.0, "urn:ngsi-ld:Dataset:radar": 52.0}}; !reflect.DeepEqual(kv["speed"], want) {
		t.Errorf("keyValues speed = %v, want %v", kv["speed"], want)
	}
	// So does a multi-attribute without a default instance.
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:Station:2", "type": "Station",
		"speed": {"type": "Property", "value": 40, "datasetId": "urn:ngsi-ld:Dataset:radar"}}`), http.StatusCreated)
	kv2 := fetch(t, n, "urn:ngsi-ld:Station:2", "?options=keyValues")
	if want := map[string]any{"dataset": map[string]any{"urn:ngsi-ld:Dataset:radar": 40.0}}; !reflect.DeepEqual(kv2["speed"], want) {
		t.Errorf("keyValues speed without a default instance = %v, want %v", kv2["speed"], want)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Station:2", nil), http.StatusNoContent)
	// keyValues keeps a LanguageProperty's languageMap member (clause 4.5.4).
	label, _ := kv["label"].(map[string]any)
	if lm, _ := label["languageMap"].(map[string]any); lm["es"] != "Puerta norte" {
		t.Errorf("keyValues label = %v", kv["label"])
	}
	for q, want := range map[string]int{"speed==52": 1, "speed==50": 1, "speed.datasetId==urn:ngsi-ld:Dataset:radar": 1, "speed==51": 0} {
		if got := len(ids(t, n.do("GET", "/ngsi-ld/v1/entities?q="+q, nil))); got != want {
			t.Errorf("q=%s found %d, want %d", q, got, want)
		}
	}
	for lang, want := range map[string]string{"es": "Puerta norte", "en-GB": "North gate", "fr": "North gate"} {
		kv := fetch(t, n, "urn:ngsi-ld:Station:1", "?options=keyValues&lang="+lang)
		if kv["label"] != want {
			t.Errorf("keyValues lang=%s: label %v, want %q", lang, kv["label"], want)
		}
	}
	if l := attr(fetch(t, n, "urn:ngsi-ld:Station:1", "?lang=es"), "label"); l["type"] != "Property" || l["value"] != "Puerta norte" || l["lang"] != "es" {
		t.Errorf("normalized lang=es: %v", l)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Station:1/attrs/speed?datasetId=urn:ngsi-ld:Dataset:radar", nil), http.StatusNoContent)
	if s := attr(fetch(t, n, "urn:ngsi-ld:Station:1", ""), "speed"); s["value"] != 50.0 {
		t.Errorf("after deleting the radar instance speed = %v", s)
	}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/entities",
		`{"id": "urn:x:2", "type": "T", "p": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}]}`), BadRequestData)
}

// TestRepresentations checks the response forms: concise, keyValues,
// attrs projection, application/ld+json and GeoJSON (clause 4.5, 6.3.15).
func TestRepresentations(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	const id = "urn:ngsi-ld:Sensor:a"

	concise := fetch(t, n, id, "?options=concise")
	if concise["name"] != "alpha" || attr(concise, "temperature")["value"] != 21.5 || attr(concise, "temperature")["type"] != nil {
		t.Errorf("concise: name %v, temperature %v", concise["name"], concise["temperature"])
	}
	if attr(concise, "controlledBy")["object"] != "urn:ngsi-ld:Device:1" {
		t.Errorf("concise relationship: %v", concise["controlledBy"])
	}
	// A concise body written back creates the same entity.
	concise["id"] = "urn:ngsi-ld:Sensor:copy"
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", concise), http.StatusCreated)
	orig, cp := fetch(t, n, id, ""), fetch(t, n, "urn:ngsi-ld:Sensor:copy", "")
	delete(orig, "id")
	delete(cp, "id")
	if !reflect.DeepEqual(orig, cp) {
		t.Errorf("concise round trip differs:\n%v\n%v", orig, cp)
	}

	proj := fetch(t, n, id, "?attrs=name,status&options=keyValues")
	if !reflect.DeepEqual(proj, map[string]any{"id": id, "type": "Sensor", "name": "alpha", "status": "ok"}) {
		t.Errorf("attrs projection: %v", proj)
	}

	rec := n.do("GET", "/ngsi-ld/v1/entities/"+id, nil, "Accept", "application/ld+json")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "application/ld+json" {
		t.Errorf("Content-Type %q", ct)
	}
	if c := decode(t, rec).(map[string]any)["@context"]; c != CoreContextURL {
		t.Errorf("@context %v, want the core context", c)
	}
	rec = n.do("GET", "/ngsi-ld/v1/entities/"+id, nil)
	if l := rec.Header().Get("Link"); l == "" {
		t.Error("application/json response without a Link header")
	}

	rec = n.do("GET", "/ngsi-ld/v1/entities/"+id+"?options=keyValues", nil, "Accept", "application/geo+json")
	wantStatus(t, rec, http.StatusOK)
	f := decode(t, rec).(map[string]any)
	geom, _ := f["geometry"].(map[string]any)
	props, _ := f["properties"].(map[string]any)
	if f["type"] != "Feature" || f["id"] != id || geom["type"] != "Point" || props["name"] != "alpha" {
		t.Errorf("GeoJSON feature: %v", f)
	}
	// GeoJSON carries its @context in the body, at the top (clause
	// 6.3.15), as well as in the Link header.
	if f["@context"] != CoreContextURL || rec.Header().Get("Link") == "" {
		t.Errorf("GeoJSON feature @context %v, Link %q: want the core context in both", f["@context"], rec.Header().Get("Link"))
	}
	rec = n.do("GET", "/ngsi-ld/v1/entities?type=Room,Road", nil, "Accept", "application/geo+json")
	wantStatus(t, rec, http.StatusOK)
	fc := decode(t, rec).(map[string]any)
	if feats, _ := fc["features"].([]any); fc["type"] != "FeatureCollection" || len(feats) != 2 {
		t.Errorf("GeoJSON collection: %v", fc)
	}
	if fc["@context"] != CoreContextURL {
		t.Errorf("GeoJSON collection @context %v, want the core context", fc["@context"])
	}
	// The request's own context is the one given back.
	rec = n.do("GET", "/ngsi-ld/v1/entities?type=https://smartdatamodels.org/dataModel.Environment/AirQualityObserved", nil,
		"Accept", "application/geo+json", link(envContext)[0], link(envContext)[1])
	wantStatus(t, rec, http.StatusOK)
	if c := decode(t, rec).(map[string]any)["@context"]; c != envContext {
		t.Errorf("GeoJSON collection under a Link context has @context %v, want %s", c, envContext)
	}

	// q=0 marks a type as not acceptable (RFC 9110 section 12.4.2).
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/"+id, nil, "Accept", "application/ld+json;q=0, text/html"), NotAcceptable)
	rec = n.do("GET", "/ngsi-ld/v1/entities/"+id, nil, "Accept", "application/ld+json;q=0, application/json;q=0.5")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Accept with ld+json;q=0 answered as %q, want application/json", ct)
	}
}

// TestTypesAndAttributes checks GET /types, /types/{type}, /attributes
// (clause 6.25 to 6.28) follow writes and deletes.
// TestMergePatchMediaType: a PATCH body may come as
// application/merge-patch+json (RFC 7396), which merges like
// application/json; other methods refuse it (see TestErrorTypes).
func TestMergePatchMediaType(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	const id = "urn:ngsi-ld:Sensor:a"
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id, `{"name": {"type": "Property", "value": "patched"}}`,
		"Content-Type", "application/merge-patch+json"), http.StatusNoContent)
	if e := fetch(t, n, id, "?options=keyValues"); e["name"] != "patched" {
		t.Errorf("after a merge-patch PATCH: %v, want name patched", e)
	}
	wantProblem(t, n.do("PUT", "/ngsi-ld/v1/entities/"+id, `{"type": "Sensor"}`, "Content-Type", "application/merge-patch+json"), UnsupportedMediaType)
	if e := fetch(t, n, id, "?options=keyValues"); e["name"] != "patched" {
		t.Errorf("a refused merge-patch PUT changed the entity: %v", e)
	}
}

func TestTypesAndAttributes(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	list := decode(t, n.do("GET", "/ngsi-ld/v1/types", nil)).(map[string]any)
	if got := list["typeList"]; !reflect.DeepEqual(got, []any{"District", "Road", "Room", "Sensor"}) {
		t.Errorf("typeList = %v", got)
	}
	info := decode(t, n.do("GET", "/ngsi-ld/v1/types/Sensor", nil)).(map[string]any)
	if info["entityCount"] != 3.0 || info["typeName"] != "Sensor" {
		t.Errorf("Sensor info = %v", info)
	}
	attrs := decode(t, n.do("GET", "/ngsi-ld/v1/attributes", nil)).(map[string]any)["attributeList"].([]any)
	if !contains(toStrings(attrs), "controlledBy") || !contains(toStrings(attrs), "temperature") {
		t.Errorf("attributeList = %v", attrs)
	}
	a := decode(t, n.do("GET", "/ngsi-ld/v1/attributes/controlledBy", nil)).(map[string]any)
	if !reflect.DeepEqual(a["attributeTypes"], []any{"Relationship"}) || a["attributeCount"] != 2.0 {
		t.Errorf("controlledBy = %v", a)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Road:d", nil), http.StatusNoContent)
	list = decode(t, n.do("GET", "/ngsi-ld/v1/types", nil)).(map[string]any)
	if got := list["typeList"]; !reflect.DeepEqual(got, []any{"District", "Room", "Sensor"}) {
		t.Errorf("typeList after deleting the road = %v", got)
	}
}

func toStrings(l []any) []string {
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

// TestPut checks the in-node write API: entities read from one node's feed
// land in another node's store and read back the same.
func TestPut(t *testing.T) {
	src, dst := newTestNode(t, nil), newTestNode(t, nil)
	loadFixture(t, src)
	changes, err := src.svc.Changes(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ents []*Entity
	for _, c := range changes {
		ents = append(ents, c.Entity)
	}
	ents = append(ents, &Entity{ID: "not a uri"})
	errs, err := dst.svc.Put(ents)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs[:len(errs)-1] {
		if e != nil {
			t.Errorf("entity %d: %v", i, e)
		}
	}
	if errs[len(errs)-1] == nil {
		t.Error("an entity without a valid id was accepted")
	}
	for _, f := range fixture {
		id := f["id"].(string)
		if a, b := fetch(t, src, id, ""), fetch(t, dst, id, ""); !reflect.DeepEqual(a, b) {
			t.Errorf("%s differs after Put:\n%v\n%v", id, a, b)
		}
	}
	if got := short(ids(t, dst.do("GET", "/ngsi-ld/v1/entities?q=temperature>20", nil))); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("indexes after Put: %v", got)
	}
}

// TestEntityIDsInPaths checks ids with characters that need escaping in a
// URL path round-trip through the {id} routes.
func TestEntityIDsInPaths(t *testing.T) {
	n := newTestNode(t, nil)
	for _, id := range []string{"urn:ngsi-ld:Thing:a/b", "urn:ngsi-ld:Thing:a%20b", "https://city.example/things/1?x=y#z"} {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": id, "type": "Thing"}), http.StatusCreated)
		e := fetch(t, n, url.PathEscape(id), "")
		if e["id"] != id {
			t.Errorf("GET %s returned %v", id, e["id"])
		}
		wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+url.PathEscape(id), nil), http.StatusNoContent)
	}
}
