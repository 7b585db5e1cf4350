package model

import (
	"math"
	"sort"
	"strings"
)

// The general validator spent about 40% of an AirQualityObserved's
// validation on its location: the shared Location-Commons schema is a oneOf
// of six GeoJSON geometries, and every branch that fails (all but one) builds
// its errors. Nearly every location is a plain Point. splitPoints finds the
// attributes whose schema is that oneOf, checked keyword by keyword (a schema
// saying anything else is left alone), in the model's properties or in a
// shared definition it refers to (Location-Commons, inlined for that), and
// compile makes a second reduced schema where they are `true`. Attributes
// whose schema is an object of plain strings (Location-Commons' address)
// are taken the same way. Validate uses that schema when each of them is
// absent or certainly valid: a plain Point (the Point branch accepts it and
// every other branch rejects it by its type enum, so the oneOf holds), an
// object whose declared members are strings. The verdict on the rest is
// then the same; any other value goes through the first schema, so
// verdicts and errors are unchanged.

// schemaAnnotations are the keywords that never assert in draft 2020-12.
var schemaAnnotations = map[string]bool{
	"title": true, "description": true, "$comment": true, "examples": true,
	"default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

// onlyKeys reports whether every keyword of s is in allowed or an annotation.
func onlyKeys(s map[string]any, allowed ...string) bool {
	for k := range s {
		if !schemaAnnotations[k] && !contains(allowed, k) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// splitPoints returns doc with the GeoJSON geometry attribute schemas under
// properties and allOf[i].properties (as splitSimple takes them) replaced by
// true, and their names; nil names when there are none.
func splitPoints(doc map[string]any, shared map[string]any) (map[string]any, []string, []func(any) bool) {
	var found []plainAttr
	// take returns props with the geometry attributes as true, and
	// whether there were any.
	take := func(props map[string]any) (map[string]any, bool) {
		var cp map[string]any
		for name, sub := range props {
			s := resolveRef(sub, shared)
			var plain func(any) bool
			switch {
			case isGeometryOneOf(s):
				plain = plainPoint
			case isStringObject(s):
				plain = stringObject(s)
			default:
				continue
			}
			if cp == nil {
				cp = shallowCopy(props)
			}
			cp[name] = true
			found = append(found, plainAttr{name, plain})
		}
		if cp == nil {
			return props, false
		}
		return cp, true
	}
	out := shallowCopy(doc)
	if props, ok := doc["properties"].(map[string]any); ok {
		out["properties"], _ = take(props)
	}
	if all, ok := doc["allOf"].([]any); ok {
		cp := make([]any, len(all))
		for i, branch := range all {
			cp[i] = branch
			b, ok := branch.(map[string]any)
			if !ok {
				continue
			}
			if props, ok := b["properties"].(map[string]any); ok && len(b) == 1 {
				if taken, changed := take(props); changed {
					cp[i] = map[string]any{"properties": taken}
				}
				continue
			}
			// A $ref to a shared definition that is only an object's
			// properties and refers to nothing (Location-Commons) is
			// the same schema inlined, which can then be changed.
			if _, isRef := b["$ref"]; !isRef {
				continue
			}
			def := resolveRef(b, shared)
			props, ok := def["properties"].(map[string]any)
			if !ok || !onlyKeys(def, "type", "properties") || refers(def) {
				continue
			}
			if taken, changed := take(props); changed {
				inl := map[string]any{"properties": taken}
				if t, ok := def["type"]; ok {
					inl["type"] = t
				}
				cp[i] = inl
			}
		}
		out["allOf"] = cp
	}
	if len(found) == 0 {
		return doc, nil, nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].name < found[j].name })
	names := make([]string, len(found))
	checks := make([]func(any) bool, len(found))
	for i, f := range found {
		names[i], checks[i] = f.name, f.plain
	}
	return out, names, checks
}

// plainAttr is an attribute splitPoints takes, with the check of the
// values its schema certainly accepts.
type plainAttr struct {
	name  string
	plain func(any) bool
}

// isStringObject reports whether s is an object schema whose properties
// are all plain strings (Location-Commons' address): it accepts exactly
// the objects whose declared members, where present, are strings.
func isStringObject(s map[string]any) bool {
	if s == nil || !onlyKeys(s, "type", "properties") || s["type"] != "object" {
		return false
	}
	props, ok := s["properties"].(map[string]any)
	if !ok || len(props) == 0 {
		return false
	}
	for _, p := range props {
		ps, ok := p.(map[string]any)
		if !ok || !onlyKeys(ps, "type") || ps["type"] != "string" {
			return false
		}
	}
	return true
}

// stringObject returns the check of the values a string object schema
// (isStringObject) accepts.
func stringObject(s map[string]any) func(any) bool {
	var names []string
	for name := range s["properties"].(map[string]any) {
		names = append(names, name)
	}
	return func(v any) bool {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, name := range names {
			if x, present := m[name]; present {
				if _, ok := x.(string); !ok {
					return false
				}
			}
		}
		return true
	}
}

// refers reports whether a schema uses any keyword that names another
// schema or a location ($ref, $dynamicRef, $id, $anchor, ...): inlined
// elsewhere, those would resolve differently.
func refers(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			if strings.HasPrefix(k, "$") && k != "$comment" {
				return true
			}
			if refers(sub) {
				return true
			}
		}
	case []any:
		for _, sub := range x {
			if refers(sub) {
				return true
			}
		}
	}
	return false
}

// resolveRef returns the schema sub names: sub itself, or what its $ref
// points at in a shared schema when it is nothing but the $ref; nil when
// it cannot tell.
func resolveRef(sub any, shared map[string]any) map[string]any {
	s, ok := sub.(map[string]any)
	if !ok {
		return nil
	}
	ref, ok := s["$ref"].(string)
	if !ok {
		return s
	}
	if !onlyKeys(s, "$ref") {
		return nil
	}
	base, frag, _ := strings.Cut(ref, "#")
	var cur any = shared[base]
	if cur == nil || !strings.HasPrefix(frag, "/") {
		return nil
	}
	for _, tok := range strings.Split(frag[1:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	m, _ := cur.(map[string]any)
	return m
}

// isGeometryOneOf reports whether s is a oneOf with exactly one branch
// that accepts every plain Point (isPointBranch) and other branches that
// each reject a "type" of "Point" by an enum.
func isGeometryOneOf(s map[string]any) bool {
	if s == nil || !onlyKeys(s, "oneOf") {
		return false
	}
	branches, ok := s["oneOf"].([]any)
	if !ok {
		return false
	}
	points := 0
	for _, br := range branches {
		b, ok := br.(map[string]any)
		if !ok {
			return false
		}
		if isPointBranch(b) {
			points++
			continue
		}
		props, _ := b["properties"].(map[string]any)
		typ, _ := props["type"].(map[string]any)
		enum, _ := typ["enum"].([]any)
		if len(enum) == 0 {
			return false
		}
		for _, v := range enum {
			if v == "Point" {
				return false
			}
		}
	}
	return points == 1
}

// isPointBranch reports whether b accepts every plain Point: an object
// requiring at most type and coordinates, whose type is a string enum with
// "Point" and whose coordinates are an array of numbers of at least two
// (or fewer) items; a bbox schema is allowed, as plain Points have none.
func isPointBranch(b map[string]any) bool {
	if !onlyKeys(b, "type", "required", "properties") || b["type"] != "object" {
		return false
	}
	if req, ok := b["required"]; ok {
		list, ok := req.([]any)
		if !ok {
			return false
		}
		for _, r := range list {
			if r != "type" && r != "coordinates" {
				return false
			}
		}
	}
	props, ok := b["properties"].(map[string]any)
	if !ok || !onlyKeys(props, "type", "coordinates", "bbox") {
		return false
	}
	typ, ok := props["type"].(map[string]any)
	if !ok || !onlyKeys(typ, "type", "enum") {
		return false
	}
	if t, ok := typ["type"]; ok && t != "string" {
		return false
	}
	enum, _ := typ["enum"].([]any)
	if !contains(anyStrings(enum), "Point") {
		return false
	}
	coords, ok := props["coordinates"].(map[string]any)
	if !ok || !onlyKeys(coords, "type", "minItems", "items") || coords["type"] != "array" {
		return false
	}
	if mi, ok := coords["minItems"]; ok {
		if n, ok := schemaNumber(mi); !ok || n > 2 {
			return false
		}
	}
	items, ok := coords["items"].(map[string]any)
	return ok && onlyKeys(items, "type") && items["type"] == "number"
}

func anyStrings(list []any) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// plainPoints reports whether each of names in inst is absent or a value
// its check (checks[i]) certainly accepts.
func plainPoints(inst map[string]any, names []string, checks []func(any) bool) bool {
	for i, name := range names {
		if v, ok := inst[name]; ok && !checks[i](v) {
			return false
		}
	}
	return true
}

// plainPoint reports whether v is a plain Point: {"type": "Point",
// "coordinates": [two or more finite numbers]} and nothing else.
func plainPoint(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 2 || m["type"] != "Point" {
		return false
	}
	coords, ok := m["coordinates"].([]any)
	if !ok || len(coords) < 2 {
		return false
	}
	for _, c := range coords {
		f, ok := c.(float64)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}
