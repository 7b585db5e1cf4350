package query

import "strings"

// MapEntity is an entity in NGSI-LD normalized (or concise) form as decoded JSON,
// attribute names as the caller uses them in Path (typically expanded), with the
// core member names (type, value, object, languageMap, observedAt, ...) compacted
// as in the core @context. It is the reference implementation of Entity, used by
// this package's tests and benchmarks and usable by any store that keeps entities
// in that shape.
type MapEntity map[string]any

var _ Entity = MapEntity(nil)

// Values implements Entity.
func (m MapEntity) Values(p Path) []any {
	if len(p.Attrs) == 0 {
		return nil
	}
	insts := instances(m[p.Attrs[0]])
	last := len(p.Attrs) - 1
	for i := 1; i < len(p.Attrs) && len(insts) > 0; i++ {
		name := p.Attrs[i]
		if i == last && metadataNames[name] {
			var out []any
			for _, in := range insts {
				if v, ok := in[name]; ok {
					out = append(out, v)
				}
			}
			return out
		}
		var next []map[string]any
		for _, in := range insts {
			next = append(next, instances(in[name])...)
		}
		insts = next
	}
	var out []any
	for _, in := range insts {
		v, ok := attributeValue(in)
		if !ok {
			continue
		}
		if len(p.Keys) > 0 {
			if v, ok = lookupKeys(v, p.Keys); !ok {
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// instances returns the attribute instances held under one name: one object, or
// an array of them when the attribute has several datasetIds.
func instances(v any) []map[string]any {
	switch a := v.(type) {
	case map[string]any:
		return []map[string]any{a}
	case []any:
		out := make([]map[string]any, 0, len(a))
		for _, el := range a {
			if m, ok := el.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

// valueMember maps an attribute type (last IRI segment, so the expanded form works
// too) to the member that holds what a query compares.
var valueMember = map[string]string{
	"Property":         "value",
	"GeoProperty":      "value",
	"Relationship":     "object",
	"LanguageProperty": "languageMap",
	"VocabProperty":    "vocab",
	"ListProperty":     "valueList",
	"ListRelationship": "objectList",
	"JsonProperty":     "json",
}

func attributeValue(in map[string]any) (any, bool) {
	if typ, ok := in["type"].(string); ok {
		member, ok := valueMember[typ]
		if !ok {
			if i := strings.LastIndexAny(typ, "/#"); i >= 0 {
				member, ok = valueMember[typ[i+1:]]
			}
		}
		if ok {
			v, ok := in[member]
			return v, ok
		}
	}
	// Concise form leaves the type out; the member present says what it is.
	for _, member := range []string{"value", "object", "languageMap", "vocab", "valueList", "objectList", "json"} {
		if v, ok := in[member]; ok {
			return v, true
		}
	}
	return nil, false
}

// LookupKeys walks keys into a compound (JSON object) value, as a[k1.k2] asks;
// ok is false when a key is missing or a step is not an object. Entity
// implementations use it for Path.Keys.
func LookupKeys(v any, keys []string) (any, bool) { return lookupKeys(v, keys) }

func lookupKeys(v any, keys []string) (any, bool) {
	for _, k := range keys {
		m, ok := unwrap(v).(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}
