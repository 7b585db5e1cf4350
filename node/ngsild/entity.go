package ngsild

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/paulmach/orb"
)

// AttrType is the NGSI-LD type of an attribute instance.
type AttrType string

// Attribute types (clause 4.5).
const (
	Property         AttrType = "Property"
	GeoProperty      AttrType = "GeoProperty"
	Relationship     AttrType = "Relationship"
	LanguageProperty AttrType = "LanguageProperty"
)

// Entity is an entity as stored: attribute names and types are expanded IRIs,
// so the same entity reads back under any client's @context. Values are kept
// as the client sent them (compound values are not expanded), which is what
// makes a read-back identical to the write.
type Entity struct {
	ID         string                  `json:"id"`
	Types      []string                `json:"t"`
	Scope      []string                `json:"sc,omitempty"` // clause 4.18; scope.go
	Attrs      map[string][]*Attribute `json:"a,omitempty"`
	CreatedAt  time.Time               `json:"c"`
	ModifiedAt time.Time               `json:"m"`
}

// Attribute is one instance of an attribute (one datasetId) or of a
// sub-attribute.
type Attribute struct {
	Type AttrType `json:"t"`
	// Value is a Property's value (decoded JSON) or a GeoProperty's GeoJSON
	// geometry object.
	Value any `json:"v,omitempty"`
	// Object is a Relationship's target: a string IRI or a list of them.
	Object      any                     `json:"o,omitempty"`
	LanguageMap map[string]any          `json:"l,omitempty"`
	DatasetID   string                  `json:"d,omitempty"`
	ObservedAt  string                  `json:"oa,omitempty"`
	UnitCode    string                  `json:"u,omitempty"`
	CreatedAt   time.Time               `json:"c,omitzero"`
	ModifiedAt  time.Time               `json:"m,omitzero"`
	Sub         map[string][]*Attribute `json:"s,omitempty"`
}

// attribute member names that are not sub-attributes (clause 4.5 and 5.2).
var attrReserved = map[string]bool{
	"type": true, "value": true, "object": true, "languageMap": true,
	"observedAt": true, "unitCode": true, "datasetId": true,
	"createdAt": true, "modifiedAt": true, "instanceId": true, "deletedAt": true,
	"objectType": true, "@context": true,
	"valueList": true, "objectList": true, "json": true, "vocab": true, "valueType": true,
}

// entity members that are not attributes.
var entityReserved = map[string]bool{
	"id": true, "@id": true, "type": true, "@type": true, "@context": true,
	"createdAt": true, "modifiedAt": true, "deletedAt": true, "scope": true,
}

// maxBodyBytes caps a request body.
const maxBodyBytes = 8 << 20

// ParseEntity decodes one entity in normalized, concise or keyValues form
// (clause 4.5) as sent in a request body. It checks the body's shape only;
// term expansion happens when the entity is written. It is the entry point
// the fuzz target exercises.
func ParseEntity(body []byte) (map[string]any, error) {
	if len(body) > maxBodyBytes {
		return nil, newError(BadRequestData, "entity too large", "the body exceeds %d bytes", maxBodyBytes)
	}
	v, err := parseJSON(body)
	if err != nil {
		return nil, newError(InvalidRequest, "invalid JSON", "the body is not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, newError(BadRequestData, "invalid entity", "the body must be a JSON object")
	}
	return m, nil
}

// decodeEntity converts a parsed entity body into the stored form, expanding
// names with tc. needIDType is false for fragments (append/update attributes).
func decodeEntity(m map[string]any, tc *termContext, now time.Time, needIDType bool) (*Entity, error) {
	e := &Entity{Attrs: make(map[string][]*Attribute, len(m)), CreatedAt: now, ModifiedAt: now}
	id, hasID := m["id"]
	if !hasID {
		id, hasID = m["@id"]
	}
	if hasID {
		s, ok := id.(string)
		if !ok || !isURI(s) {
			return nil, newError(BadRequestData, "invalid entity id", "id must be a URI, got %v", id)
		}
		e.ID = s
	}
	typ, hasType := m["type"]
	if !hasType {
		typ, hasType = m["@type"]
	}
	if hasType {
		types, err := decodeTypes(typ, tc)
		if err != nil {
			return nil, err
		}
		e.Types = types
	}
	if sc, ok := m["scope"]; ok {
		var err error
		if e.Scope, err = decodeScope(sc); err != nil {
			return nil, err
		}
	}
	if needIDType && (e.ID == "" || len(e.Types) == 0) {
		return nil, newError(BadRequestData, "invalid entity", "an entity needs an id and a type")
	}
	for name, v := range m {
		if entityReserved[name] {
			continue
		}
		if err := checkName(name); err != nil {
			return nil, err
		}
		insts, err := decodeAttr(name, v, tc, now)
		if err != nil {
			return nil, err
		}
		iri := tc.expand(name)
		e.Attrs[iri] = append(e.Attrs[iri], insts...)
		if err := checkDatasets(name, e.Attrs[iri]); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func decodeTypes(v any, tc *termContext) ([]string, error) {
	var names []string
	switch t := v.(type) {
	case string:
		names = []string{t}
	case []any:
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, newError(BadRequestData, "invalid entity type", "type list entries must be strings")
			}
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return nil, newError(BadRequestData, "invalid entity type", "type must be a string or a non-empty list of strings")
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if err := checkName(n); err != nil {
			return nil, err
		}
		iri := tc.expand(n)
		if !contains(out, iri) {
			out = append(out, iri)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkName rejects attribute and type names with characters NGSI-LD forbids
// (clause 4.6.2), which would also break the q language and URLs.
func checkName(n string) error {
	if n == "" {
		return newError(BadRequestData, "invalid name", "attribute and type names must not be empty")
	}
	for _, r := range n {
		if r < 0x20 || strings.ContainsRune("<>\"'=;()\\ ", r) {
			return newError(BadRequestData, "invalid name", "%q contains a forbidden character %q", n, r)
		}
	}
	return nil
}

// isURI reports whether s is an absolute URI, as entity ids must be.
func isURI(s string) bool {
	if s == "" || strings.ContainsAny(s, " <>\"{}|\\^`") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}

func checkDatasets(name string, insts []*Attribute) error {
	if len(insts) < 2 {
		return nil
	}
	seen := map[string]bool{}
	for _, a := range insts {
		if seen[a.DatasetID] {
			if a.DatasetID == "" {
				return newError(BadRequestData, "duplicate attribute instance", "attribute %q has more than one default instance", name)
			}
			return newError(BadRequestData, "duplicate attribute instance", "attribute %q has datasetId %q twice", name, a.DatasetID)
		}
		seen[a.DatasetID] = true
	}
	return nil
}

var explicitTypes = map[string]AttrType{
	"Property": Property, "GeoProperty": GeoProperty, "Relationship": Relationship, "LanguageProperty": LanguageProperty,
	"ListProperty": ListProperty, "ListRelationship": ListRelationship, "JsonProperty": JsonProperty, "VocabProperty": VocabProperty,
}

// isExplicitAttr reports whether v is written as an attribute object
// (normalized or concise) rather than as a bare value.
func isExplicitAttr(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	if t, ok := m["type"].(string); ok {
		if _, ok := explicitTypes[t]; ok {
			return true
		}
	}
	_, hv := m["value"]
	_, ho := m["object"]
	_, hl := m["languageMap"]
	_, he := extendedMember(m)
	return hv || ho || hl || he
}

// decodeAttr decodes an attribute value: an attribute object, a list of
// instances (multi-attribute, clause 4.5.5), or a bare keyValues/concise
// value.
func decodeAttr(name string, v any, tc *termContext, now time.Time) ([]*Attribute, error) {
	if list, ok := v.([]any); ok && len(list) > 0 {
		all := true
		for _, x := range list {
			if !isExplicitAttr(x) {
				all = false
				break
			}
		}
		if all {
			out := make([]*Attribute, 0, len(list))
			for _, x := range list {
				a, err := decodeInstance(name, x, tc, now)
				if err != nil {
					return nil, err
				}
				out = append(out, a)
			}
			return out, nil
		}
	}
	a, err := decodeInstance(name, v, tc, now)
	if err != nil {
		return nil, err
	}
	return []*Attribute{a}, nil
}

func decodeInstance(name string, v any, tc *termContext, now time.Time) (*Attribute, error) {
	a := &Attribute{CreatedAt: now, ModifiedAt: now}
	if v == nil {
		return nil, newError(BadRequestData, "invalid attribute", "attribute %q is null", name)
	}
	m, isMap := v.(map[string]any)
	if !isMap || !isExplicitAttr(v) {
		// A bare value: GeoJSON geometries become GeoProperties (concise
		// form, clause 4.5.1), everything else a Property.
		if isMap && looksLikeGeometry(m) {
			if _, err := geometryFromJSON(m); err != nil {
				return nil, newError(BadRequestData, "invalid GeoProperty", "attribute %q: %v", name, err)
			}
			a.Type, a.Value = GeoProperty, v
			return a, nil
		}
		a.Type, a.Value = Property, v
		return a, nil
	}
	t, _ := m["type"].(string)
	at, known := explicitTypes[t]
	if !known && m["type"] != nil {
		// Concise attributes leave the type out; one given must be an
		// NGSI-LD attribute type, not guessed over.
		return nil, newError(BadRequestData, "invalid attribute", "attribute %q has type %v, which is no NGSI-LD attribute type (Property, Relationship, GeoProperty, LanguageProperty, VocabProperty, JsonProperty, ListProperty, ListRelationship)", name, m["type"])
	}
	if !known {
		switch et, extended := extendedMember(m); {
		case extended:
			at = et
		case m["value"] != nil:
			at = Property
			if vm, ok := m["value"].(map[string]any); ok && looksLikeGeometry(vm) {
				at = GeoProperty
			}
		case m["object"] != nil:
			at = Relationship
		default:
			at = LanguageProperty
		}
	}
	a.Type = at
	switch at {
	case Property:
		a.Value = m["value"]
		if a.Value == nil {
			return nil, newError(BadRequestData, "invalid Property", "attribute %q has no value", name)
		}
	case GeoProperty:
		g, ok := m["value"].(map[string]any)
		if !ok {
			return nil, newError(BadRequestData, "invalid GeoProperty", "attribute %q: value must be a GeoJSON geometry", name)
		}
		if _, err := geometryFromJSON(g); err != nil {
			return nil, newError(BadRequestData, "invalid GeoProperty", "attribute %q: %v", name, err)
		}
		a.Value = g
	case Relationship:
		switch o := m["object"].(type) {
		case string:
			if !isURI(o) {
				return nil, newError(BadRequestData, "invalid Relationship", "attribute %q: object %q is not a URI", name, o)
			}
		case []any:
			if len(o) == 0 {
				return nil, newError(BadRequestData, "invalid Relationship", "attribute %q: object list is empty", name)
			}
			for _, x := range o {
				if s, ok := x.(string); !ok || !isURI(s) {
					return nil, newError(BadRequestData, "invalid Relationship", "attribute %q: object %v is not a URI", name, x)
				}
			}
		default:
			return nil, newError(BadRequestData, "invalid Relationship", "attribute %q needs an object URI", name)
		}
		a.Object = m["object"]
	case LanguageProperty:
		lm, ok := m["languageMap"].(map[string]any)
		if !ok || len(lm) == 0 {
			return nil, newError(BadRequestData, "invalid LanguageProperty", "attribute %q needs a languageMap object", name)
		}
		for lang, s := range lm {
			switch s.(type) {
			case string, []any:
			default:
				return nil, newError(BadRequestData, "invalid LanguageProperty", "attribute %q: languageMap[%q] must be a string", name, lang)
			}
		}
		a.LanguageMap = lm
	default: // attrtypes.go
		if err := decodeExtended(a, name, m, tc); err != nil {
			return nil, err
		}
	}
	for k, x := range m {
		switch k {
		case "type", "value", "object", "languageMap", "createdAt", "modifiedAt", "instanceId", "deletedAt", "objectType", "@context",
			"valueList", "objectList", "json", "vocab", "valueType":
		case "observedAt":
			s, ok := x.(string)
			if !ok || !isDateTime(s) {
				return nil, newError(BadRequestData, "invalid observedAt", "attribute %q: observedAt must be an ISO 8601 date-time, got %v", name, x)
			}
			a.ObservedAt = s
		case "unitCode":
			s, ok := x.(string)
			if !ok || s == "" {
				return nil, newError(BadRequestData, "invalid unitCode", "attribute %q: unitCode must be a string", name)
			}
			a.UnitCode = s
		case "datasetId":
			s, ok := x.(string)
			if !ok || !isURI(s) {
				return nil, newError(BadRequestData, "invalid datasetId", "attribute %q: datasetId must be a URI", name)
			}
			a.DatasetID = s
		default:
			if err := checkName(k); err != nil {
				return nil, err
			}
			subs, err := decodeAttr(name+"."+k, x, tc, now)
			if err != nil {
				return nil, err
			}
			if a.Sub == nil {
				a.Sub = map[string][]*Attribute{}
			}
			iri := tc.expand(k)
			a.Sub[iri] = append(a.Sub[iri], subs...)
		}
	}
	return a, nil
}

func isDateTime(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

var geometryTypes = map[string]bool{
	"Point": true, "MultiPoint": true, "LineString": true, "MultiLineString": true,
	"Polygon": true, "MultiPolygon": true,
}

func looksLikeGeometry(m map[string]any) bool {
	t, _ := m["type"].(string)
	_, hasCoords := m["coordinates"]
	return geometryTypes[t] && hasCoords
}

// geometryFromJSON converts a decoded GeoJSON geometry to orb, checking the
// coordinates are WGS84 longitude/latitude pairs.
func geometryFromJSON(m map[string]any) (orb.Geometry, error) {
	t, _ := m["type"].(string)
	c := m["coordinates"]
	switch t {
	case "Point":
		return toPoint(c)
	case "MultiPoint":
		ps, err := toPoints(c, 1)
		return orb.MultiPoint(ps), err
	case "LineString":
		ps, err := toPoints(c, 2)
		return orb.LineString(ps), err
	case "MultiLineString":
		list, ok := c.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("MultiLineString coordinates must be a non-empty array")
		}
		var ml orb.MultiLineString
		for _, x := range list {
			ps, err := toPoints(x, 2)
			if err != nil {
				return nil, err
			}
			ml = append(ml, ps)
		}
		return ml, nil
	case "Polygon":
		return toPolygon(c)
	case "MultiPolygon":
		list, ok := c.([]any)
		if !ok || len(list) == 0 {
			return nil, fmt.Errorf("MultiPolygon coordinates must be a non-empty array")
		}
		var mp orb.MultiPolygon
		for _, x := range list {
			p, err := toPolygon(x)
			if err != nil {
				return nil, err
			}
			mp = append(mp, p)
		}
		return mp, nil
	}
	return nil, fmt.Errorf("unsupported geometry type %q", t)
}

func toPoint(c any) (orb.Point, error) {
	xs, ok := c.([]any)
	if !ok || len(xs) < 2 || len(xs) > 3 {
		return orb.Point{}, fmt.Errorf("a position must be [longitude, latitude]")
	}
	lon, ok1 := xs[0].(float64)
	lat, ok2 := xs[1].(float64)
	if !ok1 || !ok2 {
		return orb.Point{}, fmt.Errorf("a position must hold numbers")
	}
	if lon < -180 || lon > 180 || lat < -90 || lat > 90 {
		return orb.Point{}, fmt.Errorf("position [%v, %v] is outside WGS84 longitude/latitude", lon, lat)
	}
	return orb.Point{lon, lat}, nil
}

func toPoints(c any, min int) ([]orb.Point, error) {
	list, ok := c.([]any)
	if !ok || len(list) < min {
		return nil, fmt.Errorf("need an array of at least %d positions", min)
	}
	out := make([]orb.Point, 0, len(list))
	for _, x := range list {
		p, err := toPoint(x)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func toPolygon(c any) (orb.Polygon, error) {
	list, ok := c.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("polygon coordinates must be a non-empty array of rings")
	}
	var poly orb.Polygon
	for _, x := range list {
		ps, err := toPoints(x, 4)
		if err != nil {
			return nil, fmt.Errorf("polygon ring: %w", err)
		}
		if ps[0] != ps[len(ps)-1] {
			return nil, fmt.Errorf("polygon ring is not closed")
		}
		poly = append(poly, ps)
	}
	return poly, nil
}
