package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	sdm          = "https://smartdatamodels.org/"
	aqIRI        = sdm + "dataModel.Environment/AirQualityObserved"
	parkingIRI   = sdm + "dataModel.Parking/ParkingSpot"
	coreContext  = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
	exampleCount = 9
)

func registry(t testing.TB) *Registry {
	t.Helper()
	r, err := NewRegistry()
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	return r
}

func readExample(t testing.TB, model, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", model, file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s/%s: %v", model, file, err)
	}
	return m
}

func TestNewRegistryShipsTheModels(t *testing.T) {
	r := registry(t)
	tests := []struct {
		short, typeIRI, context, version string
	}{
		{"AirQualityObserved", aqIRI, "dataModel.Environment", "0.1.4"},
		{"NoiseLevelObserved", sdm + "dataModel.Environment/NoiseLevelObserved", "dataModel.Environment", "0.2.1"},
		{"OffStreetParking", sdm + "dataModel.Parking/OffStreetParking", "dataModel.Parking", "0.1.3"},
		{"ParkingSpot", parkingIRI, "dataModel.Parking", "0.1.0"},
		{"Streetlight", sdm + "dataModel.Streetlighting/Streetlight", "dataModel.Streetlighting", "0.2.1"},
		{"TrafficFlowObserved", sdm + "dataModel.Transportation/TrafficFlowObserved", "dataModel.Transportation", "0.0.1"},
		{"WasteContainer", sdm + "dataModel.WasteManagement/WasteContainer", "dataModel.WasteManagement", "0.3.0"},
		{"WaterQualityObserved", sdm + "dataModel.WaterQuality/WaterQualityObserved", "dataModel.WaterQuality", "0.0.6"},
		{"WeatherObserved", sdm + "dataModel.Weather/WeatherObserved", "dataModel.Weather", "0.3.4"},
	}
	if got := len(r.Models()); got != len(tests) {
		t.Errorf("len(Models()) = %d, want %d", got, len(tests))
	}
	ctxs := Contexts()
	for _, tt := range tests {
		t.Run(tt.short, func(t *testing.T) {
			m, ok := r.Lookup(tt.typeIRI)
			if !ok {
				t.Fatalf("Lookup(%q): not bound", tt.typeIRI)
			}
			wantCtx := "https://raw.githubusercontent.com/smart-data-models/" + tt.context + "/master/context.jsonld"
			if m.ShortName != tt.short || m.ContextURL != wantCtx || m.Version != tt.version || !m.Shipped {
				t.Errorf("Lookup(%q) = %+v; want ShortName %s, ContextURL %s, Version %s, Shipped", tt.typeIRI, m, tt.short, wantCtx, tt.version)
			}
			if !slices.Contains(m.Required, "id") || !slices.Contains(m.Attributes, "type") {
				t.Errorf("Required %v / Attributes %v miss id/type", m.Required, m.Attributes)
			}
			for _, req := range m.Required {
				if !slices.Contains(m.Attributes, req) {
					t.Errorf("required %q is not among the declared attributes", req)
				}
			}
			// The model's @context really compacts its type IRI to its short name.
			var c struct {
				Context map[string]any `json:"@context"`
			}
			if err := json.Unmarshal(ctxs[m.ContextURL], &c); err != nil {
				t.Fatalf("Contexts()[%q]: %v", m.ContextURL, err)
			}
			if c.Context[m.ShortName] != m.TypeIRI {
				t.Errorf("context %s maps %s to %v, want %s", m.ContextURL, m.ShortName, c.Context[m.ShortName], m.TypeIRI)
			}
		})
	}
	if _, ok := r.Lookup("AirQualityObserved"); ok {
		t.Error("Lookup by short name succeeded; the registry is keyed by type IRI")
	}
}

func exampleModels(t *testing.T) []string {
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if d.IsDir() {
			out = append(out, d.Name())
		}
	}
	if len(out) != exampleCount {
		t.Fatalf("found %d example folders, want %d", len(out), exampleCount)
	}
	return out
}

// TestMIM2ExamplesValidate: every shipped keyValues example is valid against its
// schema, compiled offline.
func TestMIM2ExamplesValidate(t *testing.T) {
	r := registry(t)
	for _, name := range exampleModels(t) {
		t.Run(name, func(t *testing.T) {
			kv := readExample(t, name, "example.jsonld")
			m := lookupShort(t, r, name)
			if err := r.Validate(m.TypeIRI, kv); err != nil {
				t.Errorf("Validate(%s example.jsonld) = %v", name, err)
			}
		})
	}
}

func lookupShort(t *testing.T, r *Registry, short string) Model {
	t.Helper()
	for _, m := range r.Models() {
		if m.ShortName == short {
			return m
		}
	}
	t.Fatalf("no model %s", short)
	return Model{}
}

// TestMIM2NormalizedExamplesValidateAsKeyValues converts each normalized example
// with KeyValues and validates it. The raw normalized form must fail (the schemas
// describe keyValues), which shows the conversion is what makes them pass.
//
// AirQualityObserved's normalized example is inconsistent with its own schema
// upstream (windDirection 186 > maximum 180, tsp 73.3 is not an integer; the
// keyValues example has 180 and no tsp), so for it the test checks that exactly
// those two attributes are reported.
func TestMIM2NormalizedExamplesValidateAsKeyValues(t *testing.T) {
	r := registry(t)
	for _, name := range exampleModels(t) {
		t.Run(name, func(t *testing.T) {
			norm := readExample(t, name, "example-normalized.jsonld")
			m := lookupShort(t, r, name)
			if err := r.Validate(m.TypeIRI, norm); err == nil {
				t.Errorf("Validate(raw normalized %s) = nil, want an error", name)
			}
			err := r.Validate(m.TypeIRI, KeyValues(norm))
			if name != "AirQualityObserved" {
				if err != nil {
					t.Errorf("Validate(KeyValues(%s normalized)) = %v", name, err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate(KeyValues(AirQualityObserved normalized)) = %v, want the upstream tsp/windDirection errors", err)
			}
			got := []string{ve.Attribute}
			for _, more := range ve.More {
				got = append(got, more.Attribute)
			}
			if !reflect.DeepEqual(got, []string{"tsp", "windDirection"}) {
				t.Errorf("reported attributes %v (%v), want [tsp windDirection]", got, err)
			}
		})
	}
}

func TestMIM2ValidationErrorNamesAttribute(t *testing.T) {
	r := registry(t)
	aq := readExample(t, "AirQualityObserved", "example.jsonld")
	ps := readExample(t, "ParkingSpot", "example.jsonld")
	with := func(base map[string]any, k string, v any) map[string]any {
		out := make(map[string]any, len(base))
		for bk, bv := range base {
			out[bk] = bv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name, typeIRI string
		kv            map[string]any
		attr, reason  string
	}{
		{"string for a number", aqIRI, with(aq, "no2", "high"), "no2", "got string, want number"},
		{"number above maximum", aqIRI, with(aq, "reliability", 2.0), "reliability", "maximum"},
		{"fraction for an integer", aqIRI, with(aq, "airQualityIndex", 1.5), "airQualityIndex", "want integer"},
		{"negative below minimum", aqIRI, with(aq, "co", -1.0), "co", "minimum"},
		{"value outside enum", parkingIRI, with(ps, "status", "maybe"), "status", "value must be one of"},
		{"required attribute missing", aqIRI, with(aq, "dateObserved", nil), "dateObserved", "required attribute is missing"},
		{"bad GeoJSON", aqIRI, with(aq, "location", map[string]any{"type": "Point", "coordinates": "here"}), "location", "oneOf"},
		{"wrong member of a compound value", aqIRI, with(aq, "address", map[string]any{"addressLocality": 5.0}), "address", "at /addressLocality: got number, want string"},
		{"array item outside enum", parkingIRI, with(ps, "category", []any{"onRoof"}), "category", "at /0"},
		{"relationship not a string", parkingIRI, with(ps, "refParkingSite", 5.0), "refParkingSite", "anyOf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.Validate(tt.typeIRI, tt.kv)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if ve.Attribute != tt.attr || !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("Validate = {%q, %q}, want attribute %q with reason containing %q", ve.Attribute, ve.Reason, tt.attr, tt.reason)
			}
			if len(ve.More) != 0 {
				t.Errorf("one wrong attribute, but More = %v", ve.More)
			}
			if !strings.Contains(err.Error(), `"`+tt.attr+`"`) {
				t.Errorf("Error() = %q does not name %q", err.Error(), tt.attr)
			}
		})
	}
}

func TestValidateSeveralProblems(t *testing.T) {
	r := registry(t)
	kv := readExample(t, "AirQualityObserved", "example.jsonld")
	kv["so2"] = "x"
	kv["no2"] = "y"
	err := r.Validate(aqIRI, kv)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v", err)
	}
	if ve.Attribute != "no2" || len(ve.More) != 1 || ve.More[0].Attribute != "so2" {
		t.Errorf("Validate = %+v, want no2 then so2", ve)
	}
	if !strings.Contains(err.Error(), "and 1 more") {
		t.Errorf("Error() = %q does not mention the second problem", err.Error())
	}
}

func TestValidateTypeAndContext(t *testing.T) {
	r := registry(t)
	kv := readExample(t, "AirQualityObserved", "example.jsonld")
	tests := []struct {
		name string
		typ  any
	}{
		{"short name", "AirQualityObserved"},
		{"expanded type", aqIRI},
		{"several types", []any{"AirQualityObserved", "Device"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv["type"] = tt.typ
			kv["@context"] = []any{coreContext}
			if err := r.Validate(aqIRI, kv); err != nil {
				t.Errorf("Validate with type %v = %v", tt.typ, err)
			}
			if kv["type"] == nil || kv["@context"] == nil {
				t.Errorf("Validate modified its input")
			}
		})
	}
}

func TestValidateUnboundType(t *testing.T) {
	r := registry(t)
	err := r.Validate("https://example.org/Unknown", map[string]any{"id": "urn:x"})
	if !errors.Is(err, ErrNoModel) {
		t.Errorf("Validate(unbound) = %v, want ErrNoModel", err)
	}
}

func TestValidateNonJSONValue(t *testing.T) {
	r := registry(t)
	kv := readExample(t, "AirQualityObserved", "example.jsonld")
	kv["no2"] = struct{}{}
	err := r.Validate(aqIRI, kv)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Attribute != "no2" || !strings.Contains(ve.Reason, "invalid") {
		t.Errorf("Validate(non-JSON value) = %v, want no2 named as invalid", err)
	}
}

const benchSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.org/schemas/Bench.json",
  "type": "object",
  "allOf": [
    {"$ref": "https://smart-data-models.github.io/data-models/common-schema.json#/definitions/GSMA-Commons"},
    {"properties": {
      "location": {"$ref": "https://smart-data-models.github.io/data-models/common-schema.json#/definitions/Location-Commons/properties/location"},
      "seats": {"type": "integer", "minimum": 1}
    }}
  ],
  "required": ["id", "type", "seats"]
}`

func TestBind(t *testing.T) {
	const bench = "https://example.org/Bench"
	r := registry(t)
	if err := r.Bind(bench, []byte(benchSchema)); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	m, ok := r.Lookup(bench)
	if !ok || m.ShortName != "Bench" || m.Shipped || m.SchemaID != "https://example.org/schemas/Bench.json" || m.ContextURL != "" {
		t.Errorf("Lookup after Bind = %+v, %v", m, ok)
	}
	good := map[string]any{"id": "urn:ngsi-ld:Bench:1", "type": "Bench", "seats": 3.0,
		"location": map[string]any{"type": "Point", "coordinates": []any{10.7, 59.9}}}
	if err := r.Validate(bench, good); err != nil {
		t.Errorf("Validate(good bench) = %v", err)
	}
	bad := map[string]any{"id": "urn:ngsi-ld:Bench:1", "seats": 0.0}
	var ve *ValidationError
	if err := r.Validate(bench, bad); !errors.As(err, &ve) || ve.Attribute != "seats" {
		t.Errorf("Validate(bench with 0 seats) = %v, want seats named", err)
	}
	// Binding again (same $id) replaces the schema.
	if err := r.Bind(bench, []byte(strings.Replace(benchSchema, `"minimum": 1`, `"minimum": 0`, 1))); err != nil {
		t.Fatalf("rebinding: %v", err)
	}
	if err := r.Validate(bench, bad); err != nil {
		t.Errorf("after rebinding with minimum 0: Validate = %v", err)
	}
	// An SDM type IRI gets its repository's context URL.
	if err := r.Bind(sdm+"dataModel.Parking/ParkingGroup", []byte(`{"type":"object"}`)); err != nil {
		t.Fatal(err)
	}
	if m, _ := r.Lookup(sdm + "dataModel.Parking/ParkingGroup"); m.ContextURL != "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld" || m.SchemaID != "urn:mimnode:schema:"+sdm+"dataModel.Parking/ParkingGroup" {
		t.Errorf("Bind(ParkingGroup) model = %+v", m)
	}
}

func TestBindErrors(t *testing.T) {
	tests := []struct {
		name, typeIRI, schema, want string
	}{
		{"empty type", "", `{}`, "empty type IRI"},
		{"not JSON", "https://example.org/A", `{"type":`, "not JSON"},
		{"not an object", "https://example.org/A", `[1,2]`, "not a JSON object"},
		{"invalid schema", "https://example.org/A", `{"type": 5}`, "type"},
		{"external reference", "https://example.org/A", `{"$ref": "https://example.org/remote.json"}`, "not available offline"},
		{"shared schema missing definition", "https://example.org/A", `{"$ref": "https://smart-data-models.github.io/data-models/common-schema.json#/definitions/Nope"}`, "Nope"},
		// The schema library panicked on these (compiling the first,
		// validating against the second).
		{"number out of range", "https://example.org/A", `{"properties": {"a": {"multipleOf": 1E10000000000000000000}}}`, "1E10000000000000000000 is out of range"},
		{"number out of range in a bound", "https://example.org/A", `{"properties": {"a": {"not": {"minimum": 0E-10000000000000000000}}}}`, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := registry(t)
			err := r.Bind(tt.typeIRI, []byte(tt.schema))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Bind(%s) = %v, want error containing %q", tt.schema, err, tt.want)
			}
			if tt.typeIRI != "" && !errors.Is(err, ErrSchema) {
				t.Errorf("Bind error %v does not wrap ErrSchema", err)
			}
			if _, ok := r.Lookup(tt.typeIRI); ok {
				t.Errorf("a failed Bind left %q bound", tt.typeIRI)
			}
		})
	}
}

// TestContextsCoverExamples: every @context URL the shipped examples use, except
// the core context (node/ngsild embeds that), is available offline.
func TestContextsCoverExamples(t *testing.T) {
	ctxs := Contexts()
	for _, name := range exampleModels(t) {
		for _, file := range []string{"example.jsonld", "example-normalized.jsonld"} {
			doc := readExample(t, name, file)
			var urls []string
			switch c := doc["@context"].(type) {
			case string:
				urls = []string{c}
			case []any:
				for _, u := range c {
					urls = append(urls, u.(string))
				}
			}
			if len(urls) == 0 {
				t.Errorf("%s/%s has no @context", name, file)
			}
			for _, u := range urls {
				if u == coreContext {
					continue
				}
				b, ok := ctxs[u]
				if !ok {
					t.Errorf("%s/%s uses %s, which Contexts() lacks", name, file, u)
					continue
				}
				var c map[string]any
				if err := json.Unmarshal(b, &c); err != nil || c["@context"] == nil {
					t.Errorf("Contexts()[%s] is not a JSON-LD context: %v", u, err)
				}
			}
		}
	}
	if len(ctxs) != 8 {
		t.Errorf("len(Contexts()) = %d, want 8 (7 repositories, Weather under two URLs)", len(ctxs))
	}
	// Callers get copies: changing one must not change the embedded document.
	for u := range ctxs {
		ctxs[u][0] = 'X'
		if Contexts()[u][0] == 'X' {
			t.Errorf("Contexts()[%s] shares memory with the embedded file", u)
		}
		break
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	r := registry(t)
	kv := readExample(t, "AirQualityObserved", "example.jsonld")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 20 {
				if err := r.Validate(aqIRI, kv); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			if err := r.Bind("https://example.org/Bench"+string(rune('A'+i)), []byte(benchSchema)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := len(r.Models()); got != exampleCount+4 {
		t.Errorf("len(Models()) = %d, want %d", got, exampleCount+4)
	}
}
