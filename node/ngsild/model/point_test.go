package model

import (
	"fmt"
	"slices"
	"testing"
)

// TestPointSchemaAgrees validates location probes, alone and with other
// attributes wrong, with and without the Point schema: where Validate
// picks it the errors must be identical, and the failing attributes are
// always those the published schema reports.
func TestPointSchemaAgrees(t *testing.T) {
	r := registry(t)
	pt := func(c ...any) map[string]any { return map[string]any{"type": "Point", "coordinates": c} }
	locations := []any{
		pt(-3.7, 40.4), pt(0.0, 0.0), pt(-180.0, 90.0, 650.5), pt(1e300, -1e300),
		pt(-3.7), pt(), pt("a", 1.0), pt(1.0, nil), pt(1.0, true),
		map[string]any{"type": "Point", "coordinates": []any{1.0, 2.0}, "bbox": []any{1.0, 2.0, 3.0, 4.0}},
		map[string]any{"type": "Point", "coordinates": []any{1.0, 2.0}, "bbox": []any{1.0}},
		map[string]any{"type": "Point", "coordinates": []any{1.0, 2.0}, "crs": "x"},
		map[string]any{"type": "Point"}, map[string]any{"coordinates": []any{1.0, 2.0}},
		map[string]any{"type": "point", "coordinates": []any{1.0, 2.0}},
		map[string]any{"type": "Point", "coordinates": "1,2"},
		map[string]any{"type": "LineString", "coordinates": []any{[]any{1.0, 2.0}, []any{3.0, 4.0}}},
		map[string]any{"type": "LineString", "coordinates": []any{1.0, 2.0}},
		map[string]any{"type": "Polygon", "coordinates": []any{[]any{[]any{0.0, 0.0}, []any{1.0, 0.0}, []any{1.0, 1.0}, []any{0.0, 0.0}}}},
		map[string]any{"type": "MultiPoint", "coordinates": []any{[]any{1.0, 2.0}}},
		map[string]any{}, nil, "Madrid", 4.0, []any{1.0, 2.0},
	}
	others := []map[string]any{
		{},
		{"source": 5.0},
		{"address": "Calle Mayor"},
		{"address": map[string]any{"streetAddress": "Calle Mayor 1", "addressCountry": "ES", "other": 5.0}},
		{"address": map[string]any{"streetAddress": 1.0}},
		{"address": map[string]any{"postalCode": nil}},
		{"address": map[string]any{}},
		{"address": nil},
		{"areaServed": 1.0, "name": []any{}},
		{"dateObserved": nil},
		{"airQualityIndex": -1.0, "reliability": 2.0},
	}
	compared := 0
	for _, m := range r.Models() {
		e := r.models[m.TypeIRI]
		if !slices.Equal(e.points, []string{"address", "location"}) || e.pointSchema == nil {
			t.Errorf("%s: points %v, want [address location] with a Point schema", m.ShortName, e.points)
			continue
		}
		plain := e
		plain.points, plain.plain, plain.pointSchema, plain.pointUnread = nil, nil, nil, nil
		full := fullSchema(t, r, m.ShortName)
		base := readExample(t, m.ShortName, "example.jsonld")
		delete(base, "@context")
		fast := 0
		for _, loc := range locations {
			for _, o := range others {
				inst := shallowCopy(base)
				inst["type"] = m.ShortName
				inst["location"] = loc
				for k, v := range o {
					inst[k] = v
				}
				got := r.Validate(m.TypeIRI, inst)
				r.models[m.TypeIRI] = plain
				want := r.Validate(m.TypeIRI, inst)
				r.models[m.TypeIRI] = e
				// Another location goes through the same schema either
				// way (and the validator orders a oneOf's reasons
				// differently from one run to the next).
				if plainPoints(inst, e.points, e.plain) {
					fast++
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("%s: location %#v with %v: %v; without the Point schema %v", m.ShortName, loc, o, got, want)
					}
				} else if g, w := failing(got), failing(want); !slices.Equal(g, w) {
					t.Errorf("%s: location %#v with %v: fails %v; without the Point schema %v", m.ShortName, loc, o, g, w)
				}
				if g, w := failing(got), failing(full.Validate(inst)); !slices.Equal(g, w) {
					t.Errorf("%s: location %#v with %v: fails %v, the published schema %v", m.ShortName, loc, o, g, w)
				}
				compared++
			}
		}
		// 4 plain Points, each with the 7 others whose address (if any)
		// is an object of strings
		if fast != 4*7 {
			t.Errorf("%s: %d probes took the Point schema, want %d", m.ShortName, fast, 4*7)
		}
	}
	t.Logf("%d probes compared", compared)
}

// TestSplitPointsLeavesOtherSchemas checks that only the GeoJSON geometry
// oneOf is taken: a Point branch asking more, or another branch that
// could accept a Point, keeps the attribute with the general validator.
func TestSplitPointsLeavesOtherSchemas(t *testing.T) {
	r := registry(t)
	loc := resolveRef(map[string]any{"$ref": "https://smart-data-models.github.io/data-models/common-schema.json#/definitions/Location-Commons/properties/location"}, r.shared)
	if !isGeometryOneOf(loc) {
		t.Fatal("the shared Location-Commons location is not recognised")
	}
	branches := loc["oneOf"].([]any)
	point := branches[0].(map[string]any)
	withProps := func(props map[string]any) map[string]any {
		b := shallowCopy(point)
		p := shallowCopy(point["properties"].(map[string]any))
		for k, v := range props {
			p[k] = v
		}
		b["properties"] = p
		return b
	}
	oneOf := func(first map[string]any, rest ...any) map[string]any {
		return map[string]any{"oneOf": append([]any{first}, rest...)}
	}
	for name, s := range map[string]map[string]any{
		"minimum on coordinates": oneOf(withProps(map[string]any{"coordinates": map[string]any{"type": "array", "items": map[string]any{"type": "number", "minimum": 0.0}}})),
		"three coordinates":      oneOf(withProps(map[string]any{"coordinates": map[string]any{"type": "array", "minItems": 3.0, "items": map[string]any{"type": "number"}}})),
		"additionalProperties":   oneOf(func() map[string]any { b := shallowCopy(point); b["additionalProperties"] = false; return b }()),
		"another Point branch":   oneOf(point, point),
		"branch without enum":    oneOf(point, map[string]any{"type": "object"}),
		"enum with Point":        oneOf(point, map[string]any{"properties": map[string]any{"type": map[string]any{"enum": []any{"Point", "LineString"}}}}),
		"more than oneOf":        func() map[string]any { s := shallowCopy(loc); s["not"] = map[string]any{}; return s }(),
	} {
		if isGeometryOneOf(s) {
			t.Errorf("%s: taken as the geometry oneOf", name)
		}
	}
	if !isGeometryOneOf(oneOf(point, branches[1:]...)) {
		t.Error("the unchanged oneOf is not recognised")
	}
	// A shared definition is inlined only when it refers to nothing.
	const base = "https://example.org/s.json"
	for name, c := range map[string]struct {
		def  map[string]any
		want []string
	}{
		"plain":       {map[string]any{"type": "object", "properties": map[string]any{"location": loc}}, []string{"location"}},
		"strings":     {map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "object", "properties": map[string]any{"s": map[string]any{"type": "string"}}}}}, []string{"a"}},
		"not strings": {map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "object", "properties": map[string]any{"s": map[string]any{"type": "string", "maxLength": 3.0}}}}}, nil},
		"with a $ref": {map[string]any{"type": "object", "properties": map[string]any{"location": loc, "address": map[string]any{"$ref": "#/x"}}}, nil},
		"with more":   {map[string]any{"type": "object", "required": []any{"x"}, "properties": map[string]any{"location": loc}}, nil},
	} {
		shared := map[string]any{base: map[string]any{"definitions": map[string]any{"L": c.def}}}
		doc := map[string]any{"allOf": []any{map[string]any{"$ref": base + "#/definitions/L"}}}
		if _, names, _ := splitPoints(doc, shared); !slices.Equal(names, c.want) {
			t.Errorf("%s: splitPoints took %v, want %v", name, names, c.want)
		}
	}
}
