package model

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The general validator spends most of an entity's validation on the dozens of
// plain numeric and text attributes a Smart Data Models schema declares (it
// compares every number as a big.Rat). splitSimple takes those attribute schemas
// out of the schema before it is compiled and checks them directly; everything
// else ($ref, anyOf, objects, arrays, patterns) stays with the general validator.
// Both verdicts are combined, so the result is that of the whole schema (allOf).

// simpleKeywords are the asserting keywords a property schema may use to be
// checked directly, besides the annotations (schemaAnnotations) and format,
// which does not assert in draft 2020-12 either, the only draft this applies to.
var simpleKeywords = map[string]bool{
	"type": true, "minimum": true, "maximum": true, "exclusiveMinimum": true,
	"exclusiveMaximum": true, "enum": true, "minLength": true, "maxLength": true,
	"format": true,
}

// fastProp is the direct check of one top-level attribute.
type fastProp struct {
	name              string
	typ               string // number, integer, string or boolean; "" for any
	min, max          *float64
	exclMin, exclMax  *float64
	enum              []string // nil when there is no enum
	minLength, maxLen int      // -1 when absent
	enumDisplay       string   // the enum as the general validator words it
}

// splitSimple returns doc with the simple attribute schemas under properties and
// allOf[i].properties replaced by true, and their checks. A schema of another
// draft is returned as it is: there "format" may assert.
func splitSimple(doc map[string]any) (map[string]any, []fastProp) {
	if s, ok := doc["$schema"]; ok && s != "https://json-schema.org/draft/2020-12/schema" {
		return doc, nil
	}
	out := shallowCopy(doc)
	var checks []fastProp
	take := func(props map[string]any) map[string]any {
		cp := shallowCopy(props)
		for name, sub := range props {
			if fp, ok := simpleProp(name, sub); ok {
				checks = append(checks, fp)
				cp[name] = true
			}
		}
		return cp
	}
	if props, ok := doc["properties"].(map[string]any); ok {
		out["properties"] = take(props)
	}
	if all, ok := doc["allOf"].([]any); ok {
		cp := make([]any, len(all))
		for i, branch := range all {
			cp[i] = branch
			b, ok := branch.(map[string]any)
			if !ok {
				continue
			}
			// Only a branch that is nothing but properties: other keywords could
			// make its properties conditional.
			if props, ok := b["properties"].(map[string]any); ok && len(b) == 1 {
				nb := shallowCopy(b)
				nb["properties"] = take(props)
				cp[i] = nb
			}
		}
		out["allOf"] = cp
	}
	return out, checks
}

func shallowCopy(m map[string]any) map[string]any {
	cp := make(map[string]any, len(m))
	for k, v := range m {
		cp[k] = v
	}
	return cp
}

func simpleProp(name string, sub any) (fastProp, bool) {
	fp := fastProp{name: name, minLength: -1, maxLen: -1}
	s, ok := sub.(map[string]any)
	if !ok {
		return fp, false
	}
	for k := range s {
		if !simpleKeywords[k] && !schemaAnnotations[k] {
			return fp, false
		}
	}
	if t, ok := s["type"]; ok {
		ts, ok := t.(string)
		if !ok || (ts != "number" && ts != "integer" && ts != "string" && ts != "boolean") {
			return fp, false
		}
		fp.typ = ts
	}
	for kw, dst := range map[string]**float64{"minimum": &fp.min, "maximum": &fp.max,
		"exclusiveMinimum": &fp.exclMin, "exclusiveMaximum": &fp.exclMax} {
		v, ok := s[kw]
		if !ok {
			continue
		}
		f, ok := schemaNumber(v)
		if !ok {
			return fp, false
		}
		*dst = &f
	}
	for kw, dst := range map[string]*int{"minLength": &fp.minLength, "maxLength": &fp.maxLen} {
		v, ok := s[kw]
		if !ok {
			continue
		}
		f, ok := schemaNumber(v)
		if !ok || f < 0 || f != math.Trunc(f) {
			return fp, false
		}
		*dst = int(f)
	}
	if e, ok := s["enum"]; ok {
		list, ok := e.([]any)
		if !ok || len(list) == 0 {
			return fp, false
		}
		quoted := make([]string, 0, len(list))
		for _, v := range list {
			str, ok := v.(string)
			if !ok {
				return fp, false // only string enums: other equality rules stay with the validator
			}
			fp.enum = append(fp.enum, str)
			quoted = append(quoted, "'"+str+"'")
		}
		if len(quoted) == 1 {
			fp.enumDisplay = "value must be " + quoted[0]
		} else {
			fp.enumDisplay = "value must be one of " + strings.Join(quoted, ", ")
		}
	}
	return fp, true
}

func schemaNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

// check returns the reason v breaks the attribute's schema, "" when it does not.
// Numbers are compared as float64, which differs from exact decimal comparison
// only within a rounding error of a bound.
func (fp *fastProp) check(v any) string {
	var num float64
	isNum := false
	switch x := v.(type) {
	case float64:
		num, isNum = x, true
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return "invalid number " + x.String()
		}
		num, isNum = f, true
	case int:
		num, isNum = float64(x), true
	case int64:
		num, isNum = float64(x), true
	case string, bool, nil, map[string]any, []any:
	default:
		return fmt.Sprintf("invalid jsonType %T", v)
	}
	switch fp.typ {
	case "number":
		if !isNum {
			return "got " + jsonType(v) + ", want number"
		}
	case "integer":
		if !isNum || num != math.Trunc(num) || math.IsInf(num, 0) {
			return "got " + jsonType(v) + ", want integer"
		}
	case "string":
		if _, ok := v.(string); !ok {
			return "got " + jsonType(v) + ", want string"
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return "got " + jsonType(v) + ", want boolean"
		}
	}
	if fp.enum != nil {
		s, ok := v.(string)
		found := false
		for _, e := range fp.enum {
			if ok && s == e {
				found = true
				break
			}
		}
		if !found {
			return fp.enumDisplay
		}
	}
	if isNum {
		switch {
		case fp.min != nil && num < *fp.min:
			return fmt.Sprintf("minimum: got %v, want %v", num, *fp.min)
		case fp.max != nil && num > *fp.max:
			return fmt.Sprintf("maximum: got %v, want %v", num, *fp.max)
		case fp.exclMin != nil && num <= *fp.exclMin:
			return fmt.Sprintf("exclusiveMinimum: got %v, want %v", num, *fp.exclMin)
		case fp.exclMax != nil && num >= *fp.exclMax:
			return fmt.Sprintf("exclusiveMaximum: got %v, want %v", num, *fp.exclMax)
		}
	}
	if s, ok := v.(string); ok && (fp.minLength >= 0 || fp.maxLen >= 0) {
		n := utf8.RuneCountInString(s)
		if fp.minLength >= 0 && n < fp.minLength {
			return fmt.Sprintf("minLength: got %d, want %d", n, fp.minLength)
		}
		if fp.maxLen >= 0 && n > fp.maxLen {
			return fmt.Sprintf("maxLength: got %d, want %d", n, fp.maxLen)
		}
	}
	return ""
}

// jsonType names v's JSON type as the general validator does.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "number"
}

// unreadByGeneral returns the attributes of fast that the reduced schema sch
// never reads, so leaving them out of the instance cannot change its
// verdict or its errors. The general validator still walks every
// property of the instance against the `true` left in its place (a scope
// and an allocation each, most of the cost of an attribute); the direct
// check has already judged them.
//
// An attribute is unread when, in every schema that applies to the entity
// object itself (through $ref, allOf, anyOf, oneOf, not, if/then/else), it
// is not required and its property schema, if any, is `true`, and none of
// those schemas has a keyword that looks at the set of members as a whole
// (additional, unevaluated or pattern properties, property names, min or
// max properties, dependencies, enum, const, format, extensions, dynamic or
// recursive references). When one does, nothing is left out.
func unreadByGeneral(sch *jsonschema.Schema, fast []fastProp) []string {
	if len(fast) == 0 {
		return nil
	}
	read := map[string]bool{"id": true, "type": true}
	seen := map[*jsonschema.Schema]bool{}
	whole := false
	var walk func(s *jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] || whole {
			return
		}
		seen[s] = true
		if s.MaxProperties != nil || s.MinProperties != nil || s.PropertyNames != nil ||
			len(s.PatternProperties) > 0 || s.AdditionalProperties != nil || len(s.Dependencies) > 0 ||
			len(s.DependentRequired) > 0 || len(s.DependentSchemas) > 0 || s.UnevaluatedProperties != nil ||
			s.Enum != nil || s.Const != nil || s.Format != nil || len(s.Extensions) > 0 ||
			s.DynamicRef != nil || s.RecursiveRef != nil {
			whole = true
			return
		}
		for _, n := range s.Required {
			read[n] = true
		}
		for n, sub := range s.Properties {
			if sub == nil || sub.Bool == nil || !*sub.Bool {
				read[n] = true
			}
		}
		walk(s.Ref)
		walk(s.Not)
		walk(s.If)
		walk(s.Then)
		walk(s.Else)
		for _, list := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range list {
				walk(sub)
			}
		}
	}
	walk(sch)
	if whole {
		return nil
	}
	var out []string
	for _, fp := range fast {
		if !read[fp.name] {
			out = append(out, fp.name)
		}
	}
	return out
}
