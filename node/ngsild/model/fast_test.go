package model

import (
	"bytes"
	"errors"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fullSchema compiles a shipped model's schema as published, without taking the
// simple attributes out, as the reference for the direct checks.
func fullSchema(t *testing.T, r *Registry, name string) *jsonschema.Schema {
	t.Helper()
	b, err := files.ReadFile(path.Join("schemas", name, "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	id := doc.(map[string]any)["$id"].(string)
	c := jsonschema.NewCompiler()
	c.UseLoader(offlineLoader(r.shared))
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func failing(err error) []string {
	var out []string
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		var probs []ValidationError
		problems(ve, &probs)
		for _, p := range probs {
			out = append(out, p.Attribute)
		}
	}
	var mine *ValidationError
	if errors.As(err, &mine) {
		out = append(out, mine.Attribute)
		for _, m := range mine.More {
			out = append(out, m.Attribute)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestDirectChecksAgreeWithValidator puts probe values into every attribute the
// registry checks directly, for every shipped model, and compares the attributes
// reported with those the general validator reports on the unreduced schema.
func TestDirectChecksAgreeWithValidator(t *testing.T) {
	r := registry(t)
	probes := []any{"moderate", "", "a-much-longer-text-value-than-any-limit-in-these-schemas-would-allow-for-sure-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789",
		0.0, 1.0, -1.0, 0.5, 1.5, 100.0, 360.0, -180.5, 1e9, true, false, nil,
		map[string]any{"a": 1.0}, []any{"x"}}
	checked := 0
	for _, m := range r.Models() {
		e := r.models[m.TypeIRI]
		if len(e.fast) == 0 {
			t.Errorf("%s: no attribute is checked directly", m.ShortName)
		}
		full := fullSchema(t, r, m.ShortName)
		base := readExample(t, m.ShortName, "example.jsonld")
		delete(base, "@context")
		for _, fp := range e.fast {
			if fp.name == "type" {
				continue // Validate sets type to the model's short name by design
			}
			for _, probe := range probes {
				inst := shallowCopy(base)
				inst["type"] = m.ShortName
				inst[fp.name] = probe
				want := failing(full.Validate(inst))
				got := failing(r.Validate(m.TypeIRI, inst))
				if !slices.Equal(got, want) {
					t.Errorf("%s.%s = %#v: direct checks report %v, the validator %v", m.ShortName, fp.name, probe, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d probes compared", checked)
}

func TestSplitSimpleKeepsOtherDrafts(t *testing.T) {
	doc := map[string]any{
		"$schema":    "http://json-schema.org/draft-07/schema#",
		"properties": map[string]any{"a": map[string]any{"type": "string", "format": "date-time"}},
	}
	out, checks := splitSimple(doc)
	if len(checks) != 0 || out["properties"].(map[string]any)["a"] == true {
		t.Errorf("draft-07 schema was split (format asserts there): %v", checks)
	}
}

func TestSimplePropRejectsComplexSchemas(t *testing.T) {
	tests := []struct {
		name string
		sub  any
	}{
		{"reference", map[string]any{"$ref": "#/definitions/x"}},
		{"pattern", map[string]any{"type": "string", "pattern": "^a"}},
		{"type list", map[string]any{"type": []any{"string", "null"}}},
		{"object type", map[string]any{"type": "object"}},
		{"array type", map[string]any{"type": "array", "items": map[string]any{"type": "string"}}},
		{"numeric enum", map[string]any{"enum": []any{1.0, 2.0}}},
		{"anyOf", map[string]any{"anyOf": []any{map[string]any{"type": "string"}}}},
		{"boolean schema", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fp, ok := simpleProp("a", tt.sub); ok {
				t.Errorf("simpleProp(%v) = %+v, want it left to the validator", tt.sub, fp)
			}
		})
	}
}

// TestUnreadByGeneral checks which directly checked attributes are left out
// of what the general validator sees: none when a schema looks at the
// members as a whole, never a required one or one another branch declares.
func TestUnreadByGeneral(t *testing.T) {
	r := registry(t)
	e := r.models[aqIRI]
	if len(e.unread) == 0 {
		t.Errorf("AirQualityObserved: no directly checked attribute is left out of the general validation")
	}
	for _, n := range e.unread {
		if slices.Contains(e.model.Required, n) {
			t.Errorf("AirQualityObserved: required attribute %q is left out", n)
		}
	}
	cases := []struct {
		name   string
		schema string
		want   []string
	}{
		{"plain", `{"properties": {"a": {"type": "number"}, "b": {"type": "string"}}}`, []string{"a", "b"}},
		{"required", `{"properties": {"a": {"type": "number"}, "b": {"type": "string"}}, "required": ["a"]}`, []string{"b"}},
		{"declared in another branch", `{"allOf": [{"properties": {"a": {"type": "number"}}}, {"properties": {"a": {"$ref": "#/$defs/x"}}}], "$defs": {"x": {"minimum": 1}}}`, nil},
		{"anyOf required", `{"properties": {"a": {"type": "number"}}, "anyOf": [{"required": ["a"]}, {"required": ["c"]}]}`, nil},
		{"additionalProperties", `{"properties": {"a": {"type": "number"}}, "additionalProperties": false}`, nil},
		{"unevaluatedProperties", `{"properties": {"a": {"type": "number"}}, "unevaluatedProperties": false}`, nil},
		{"maxProperties", `{"properties": {"a": {"type": "number"}}, "maxProperties": 3}`, nil},
		{"not", `{"properties": {"a": {"type": "number"}}, "not": {"required": ["a"]}}`, nil},
	}
	for _, c := range cases {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"$schema": "https://json-schema.org/draft/2020-12/schema", ` + c.schema[1:]))
		if err != nil {
			t.Fatal(err)
		}
		reduced, fast := splitSimple(doc.(map[string]any))
		comp := jsonschema.NewCompiler()
		if err := comp.AddResource("urn:test", reduced); err != nil {
			t.Fatal(err)
		}
		sch, err := comp.Compile("urn:test")
		if err != nil {
			t.Fatal(err)
		}
		got := unreadByGeneral(sch, fast)
		sort.Strings(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: unreadByGeneral = %v, want %v", c.name, got, c.want)
		}
	}
}
