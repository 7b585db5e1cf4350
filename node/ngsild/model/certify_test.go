package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// certifyProbes are values put into attributes to compare certify with the
// general validator: identifiers the id pattern takes and refuses, numbers
// on and beside bounds (as float64 and as json.Number), arrays with and
// without duplicates, geometries and addresses well and badly formed.
var certifyProbes = []any{
	"urn:ngsi-ld:AirQualityObserved:Madrid-1", "plain-id_1.2", "has space", "ünïcode", "", "x",
	strings.Repeat("a", 256), strings.Repeat("a", 257), "a/b?c#d", "2016-03-15T11:00:00Z", "not a date",
	"moderate", "good", "indoor", "free", "onStreet", "PostalAddress",
	0.0, math.Copysign(0, -1), 1.0, -1.0, 0.1, 0.5, 0.7, 1.0000000000000002, 0.9999999999999999,
	-1e-300, 1e-300, 180.0, 180.00000000000003, -180.0, -180.00000000000003, 360.0, 1e9, 1e300, 2.5, 3.0,
	json.Number("0"), json.Number("-0.0"), json.Number("1.0"), json.Number("1e0"), json.Number("0.1"),
	json.Number("180"), json.Number("180.0000000000000000001"), json.Number("-1"),
	1, int64(-1), uint8(3),
	true, false, nil,
	map[string]any{},
	map[string]any{"a": 1.0},
	map[string]any{"type": "Point", "coordinates": []any{-3.7, 40.4}},
	map[string]any{"type": "Point", "coordinates": []any{-3.7}},
	map[string]any{"type": "Point", "coordinates": []any{"x", 40.4}},
	map[string]any{"type": "LineString", "coordinates": []any{[]any{-3.7, 40.4}, []any{-3.6, 40.5}}},
	map[string]any{"type": "Polygon", "coordinates": []any{[]any{[]any{0.0, 0.0}, []any{1.0, 0.0}, []any{1.0, 1.0}, []any{0.0, 0.0}}}},
	map[string]any{"type": "Bogus", "coordinates": []any{0.0, 0.0}},
	map[string]any{"addressCountry": "ES", "streetAddress": "Calle 1"},
	map[string]any{"addressCountry": 1.0},
	[]any{}, []any{"x"}, []any{"x", "y"}, []any{"x", "x"}, []any{"onStreet", "free"},
	[]any{1.0, 1.0}, []any{1.0, 2.0}, []any{true, true}, []any{nil, nil}, []any{"x", 1.0},
	[]any{map[string]any{"a": 1.0}, map[string]any{"a": 1.0}},
	[]any{"urn:a", "urn:b"}, []any{"has space"},
}

// compareCertify fails t when certify's verdict on inst contradicts the
// general validator's, and counts the decided ones.
func compareCertify(t *testing.T, name string, sch *jsonschema.Schema, c *checker, inst any, decided *int) {
	t.Helper()
	v := c.certify(inst)
	err := sch.Validate(inst)
	switch {
	case v == valid && err != nil:
		t.Errorf("%s: certify says valid, the validator: %v", name, err)
	case v == invalid && err == nil:
		t.Errorf("%s: certify says invalid, the validator accepts it", name)
	case v != unsure:
		*decided++
	}
}

// TestCertifyAgreesWithValidator compares certify with the general
// validator on every shipped model's reduced schemas (what Validate uses)
// and published schema: the examples in both forms, each probe in every
// declared attribute, and each required attribute left out.
func TestCertifyAgreesWithValidator(t *testing.T) {
	r := registry(t)
	compared, decided := 0, 0
	for _, m := range r.Models() {
		e := r.models[m.TypeIRI]
		full := fullSchema(t, r, m.ShortName)
		schemas := []struct {
			name string
			sch  *jsonschema.Schema
			c    *checker
		}{
			{"reduced", e.schema, e.cert},
			{"published", full, newCertifier(full)},
		}
		if e.pointSchema != nil {
			schemas = append(schemas, struct {
				name string
				sch  *jsonschema.Schema
				c    *checker
			}{"points", e.pointSchema, e.pointCert})
		}
		kv := readExample(t, m.ShortName, "example.jsonld")
		delete(kv, "@context")
		norm := KeyValues(readExample(t, m.ShortName, "example-normalized.jsonld"))
		var insts []any
		var names []string
		add := func(name string, inst map[string]any) {
			inst["type"] = m.ShortName
			insts, names = append(insts, inst), append(names, name)
		}
		add("example", shallowCopy(kv))
		add("normalized example", shallowCopy(norm))
		for _, attr := range m.Attributes {
			for i, p := range certifyProbes {
				inst := shallowCopy(kv)
				inst[attr] = p
				add(fmt.Sprintf("%s = probe %d (%#v)", attr, i, p), inst)
			}
		}
		for _, attr := range m.Required {
			inst := shallowCopy(kv)
			delete(inst, attr)
			add("without "+attr, inst)
		}
		for _, s := range schemas {
			for i, inst := range insts {
				compareCertify(t, m.ShortName+" "+s.name+" "+names[i], s.sch, s.c, inst, &decided)
				compared++
			}
			if v := s.c.certify(insts[0]); v != valid {
				t.Errorf("%s %s: the example is not certified valid (%d)", m.ShortName, s.name, v)
			}
		}
	}
	t.Logf("%d compared, %d decided by certify", compared, decided)
}

// TestCertifyKeywords compares certify with the general validator on
// schemas using each keyword it evaluates or leaves alone, in 2020-12 and
// draft-07 (where $ref hides its siblings and format asserts).
func TestCertifyKeywords(t *testing.T) {
	schemas := []string{
		`{"type": "integer", "minimum": 0.1, "exclusiveMaximum": 3}`,
		`{"type": ["string", "null"], "minLength": 2, "maxLength": 3}`,
		`{"enum": ["a", 1, null, true, [1], {"a": 1}]}`,
		`{"const": "a"}`,
		`{"const": 1.0}`,
		`{"not": {"type": "string"}}`,
		`{"oneOf": [{"type": "number"}, {"minimum": 2}]}`,
		`{"anyOf": [{"pattern": "^a+$"}, {"type": "number"}]}`,
		`{"if": {"type": "string"}, "then": {"minLength": 2}, "else": {"maximum": 2}}`,
		`{"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "number"}, "minItems": 1, "uniqueItems": true}`,
		`{"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#/$defs/x"}}, "minProperties": 1, "maxProperties": 2, "$defs": {"x": {"type": "number", "maximum": 0.1}}}`,
		`{"properties": {"a": {"type": "string"}}, "additionalProperties": false}`,
		`{"properties": {"a": {"type": "string"}}, "unevaluatedProperties": false, "anyOf": [{"properties": {"b": true}}, true]}`,
		`{"$ref": "#", "type": "object"}`,
		`{"multipleOf": 0.1}`,
		`{"type": "string", "format": "date-time"}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "date-time"}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "$ref": "#/definitions/x", "type": "number", "definitions": {"x": {"type": "string"}}}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}], "additionalItems": false}`,
		`{"$schema": "http://json-schema.org/draft-07/schema#", "items": {"type": "string"}, "exclusiveMinimum": 1}`,
		`false`,
		`true`,
	}
	insts := []string{`"a"`, `"aa"`, `"aaaa"`, `"b"`, `""`, `null`, `true`, `0`, `0.1`, `0.10000000000000001`, `1`, `1.5`, `2`, `3`, `2.9999999999999996`,
		`[]`, `["a"]`, `["a", 1]`, `["a", 1, 1]`, `["a", "a"]`, `[1]`, `[{"a": 1}]`, `{}`, `{"a": 0.1}`, `{"a": 0.2}`, `{"a": "x"}`, `{"a": 0, "b": 1, "c": 2}`, `{"b": 1}`,
		`"2016-03-15T11:00:00Z"`, `"2016-13-15T11:00:00Z"`}
	decided := certifyEach(t, "urn:test:", schemas, insts)
	t.Logf("%d decided by certify", decided)
}

// certifyEach compiles each schema (draft 2020-12 unless it says, under
// ids prefix+index) and compares certify with the general validator on
// each instance, decoded as the validator decodes JSON, as float64
// numbers, and with integral numbers as int64 (Go numbers the node's
// forms may hold). It returns how many verdicts certify gave.
func certifyEach(t *testing.T, prefix string, schemas, insts []string) (decided int) {
	t.Helper()
	for i, src := range schemas {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		id := fmt.Sprintf("%s%d", prefix, i)
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile(id)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		cert := newCertifier(sch)
		for _, in := range insts {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(in))
			if err != nil {
				t.Fatal(err)
			}
			compareCertify(t, src+" on "+in, sch, cert, v, &decided)
			var f any
			if err := json.Unmarshal([]byte(in), &f); err != nil {
				t.Fatal(err)
			}
			compareCertify(t, src+" on "+in+" (float64)", sch, cert, f, &decided)
			if n, ok := f.(float64); ok && n == float64(int64(n)) {
				compareCertify(t, src+" on "+in+" (int64)", sch, cert, int64(n), &decided)
			}
		}
	}
	return decided
}

// FuzzCertify compares certify with the general validator on arbitrary
// JSON in an AirQualityObserved attribute and as the whole entity, on the
// published schema and the reduced ones Validate uses.
func FuzzCertify(f *testing.F) {
	f.Add([]byte(`"urn:ngsi-ld:PointOfInterest:1"`))
	f.Add([]byte(`{"type":"Point","coordinates":[-3.7,40.4]}`))
	f.Add([]byte(`["a","a"]`))
	f.Add([]byte(`0.1`))
	f.Add([]byte(`{"id":"urn:x","type":"AirQualityObserved","dateObserved":"2016-03-15T11:00:00Z","location":{"type":"Point","coordinates":[1,2]}}`))
	r, err := NewRegistry()
	if err != nil {
		f.Fatal(err)
	}
	e := r.models[aqIRI]
	kv := map[string]any{"id": "urn:x", "type": "AirQualityObserved", "dateObserved": "2016-03-15T11:00:00Z",
		"location": map[string]any{"type": "Point", "coordinates": []any{1.0, 2.0}}}
	attrs := append([]string{"id"}, e.model.Attributes...)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, number := range []bool{false, true} {
			var v any
			d := json.NewDecoder(strings.NewReader(string(b)))
			if number {
				d.UseNumber()
			}
			if d.Decode(&v) != nil {
				return
			}
			n := 0
			compareCertify(t, "entity", e.schema, e.cert, v, &n)
			attr := attrs[len(b)%len(attrs)]
			inst := shallowCopy(kv)
			inst[attr] = v
			compareCertify(t, attr, e.schema, e.cert, inst, &n)
			compareCertify(t, attr+" (points)", e.pointSchema, e.pointCert, inst, &n)
		}
	})
}
