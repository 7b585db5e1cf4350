package ngsild

import (
	"errors"
	"strings"
)

// The attribute types NGSI-LD added in 1.8 beside Property, GeoProperty,
// Relationship and LanguageProperty (clause 4.5): each keeps its content in
// its own member, which also tells the concise form apart.
//
//	ListProperty      "valueList": [v1, v2, ...]       an ordered list of values
//	ListRelationship  "objectList": [{"object": URI}]  an ordered list of targets
//	JsonProperty      "json": {...}                    JSON kept as it is, never expanded
//	VocabProperty     "vocab": "term" or ["t1", ...]   terms expanded with the @context
//
// Stored, a ListProperty's list, a JsonProperty's JSON and a VocabProperty's
// expanded IRI (or list of them) are the instance's Value; a
// ListRelationship's target URIs are its Object, a list of strings.
const (
	ListProperty     AttrType = "ListProperty"
	ListRelationship AttrType = "ListRelationship"
	JsonProperty     AttrType = "JsonProperty"
	VocabProperty    AttrType = "VocabProperty"
)

// extendedMembers names the member holding each type's content.
var extendedMembers = [...]struct {
	member string
	typ    AttrType
}{
	{"valueList", ListProperty}, {"objectList", ListRelationship}, {"json", JsonProperty}, {"vocab", VocabProperty},
}

func memberOf(t AttrType) string {
	for _, em := range extendedMembers {
		if em.typ == t {
			return em.member
		}
	}
	return ""
}

// extendedMember reports which of these types an attribute object written
// without "type" (concise form) is, by the member it holds.
func extendedMember(m map[string]any) (AttrType, bool) {
	for _, em := range extendedMembers {
		if _, ok := m[em.member]; ok {
			return em.typ, true
		}
	}
	return "", false
}

// decodeExtended fills a (whose Type is set) from its member in m.
func decodeExtended(a *Attribute, name string, m map[string]any, tc *termContext) error {
	member := memberOf(a.Type)
	v, ok := m[member]
	if !ok || v == nil {
		return newError(BadRequestData, "invalid "+string(a.Type), "attribute %q needs a %s member", name, member)
	}
	switch a.Type {
	case ListProperty:
		list, ok := v.([]any)
		if !ok {
			return newError(BadRequestData, "invalid ListProperty", "attribute %q: valueList must be an array", name)
		}
		for _, x := range list {
			if x == nil {
				return newError(BadRequestData, "invalid ListProperty", "attribute %q: valueList holds null", name)
			}
		}
		a.Value = list
	case JsonProperty:
		a.Value = v
	case VocabProperty:
		terms, single, err := vocabTerms(v)
		if err != nil {
			return newError(BadRequestData, "invalid VocabProperty", "attribute %q: %v", name, err)
		}
		if single {
			a.Value = tc.expand(terms[0])
			return nil
		}
		list := make([]any, len(terms))
		for i, t := range terms {
			list[i] = tc.expand(t)
		}
		a.Value = list
	case ListRelationship:
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return newError(BadRequestData, "invalid ListRelationship", "attribute %q: objectList must be a non-empty array", name)
		}
		objs := make([]any, len(list))
		for i, x := range list {
			// Normalized entries are {"object": URI}; a bare URI is accepted too.
			if om, ok := x.(map[string]any); ok {
				x = om["object"]
			}
			s, ok := x.(string)
			if !ok || !isURI(s) {
				return newError(BadRequestData, "invalid ListRelationship", "attribute %q: objectList entry %v is not a URI", name, list[i])
			}
			objs[i] = s
		}
		a.Object = objs
	}
	return nil
}

// vocabTerms reads a vocab member: one term, or a non-empty list of them.
func vocabTerms(v any) (terms []string, single bool, err error) {
	var list []any
	switch x := v.(type) {
	case string:
		list, single = []any{x}, true
	case []any:
		list = x
	}
	if len(list) == 0 {
		return nil, false, errors.New("vocab must be a term or a non-empty list of terms")
	}
	for _, x := range list {
		s, ok := x.(string)
		if !ok || s == "" || strings.ContainsAny(s, " \t\r\n") {
			return nil, false, errors.New("vocab entries must be terms (strings without white space)")
		}
		terms = append(terms, s)
	}
	return terms, single, nil
}

// renderContent is the member an instance of one of these types shows, in
// every representation: vocab terms compacted with tc, objectList as
// {"object": URI} entries, except in keyValues, which lists the URIs.
func (a *Attribute) renderContent(tc *termContext, kv bool) (member string, v any) {
	switch a.Type {
	case VocabProperty:
		switch x := a.Value.(type) {
		case string:
			return "vocab", tc.compact(x)
		case []any:
			out := make([]any, len(x))
			for i, t := range x {
				s, _ := t.(string)
				out[i] = tc.compact(s)
			}
			return "vocab", out
		}
		return "vocab", a.Value
	case ListRelationship:
		list, _ := a.Object.([]any)
		if kv {
			return "objectList", list
		}
		out := make([]any, len(list))
		for i, o := range list {
			out[i] = map[string]any{"object": o}
		}
		return "objectList", out
	}
	return memberOf(a.Type), a.Value
}

// isExtended reports whether t is one of these types.
func isExtended(t AttrType) bool { return memberOf(t) != "" }
