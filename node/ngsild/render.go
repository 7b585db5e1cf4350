package ngsild

import (
	"strings"
	"time"
)

// format is a representation of entities in responses (clause 4.5).
type format int

const (
	normalized format = iota
	keyValues
	concise
)

// renderOpts selects what a response shows of an entity.
type renderOpts struct {
	format   format
	sysAttrs bool
	// attrs keeps only these expanded attribute names; nil keeps all.
	attrs map[string]bool
	// lang, when set, shows LanguageProperties as Properties holding the
	// string in that language (clause 4.15).
	lang string
	// pick keeps only these members, omit drops these (projection.go);
	// nil does neither.
	pick, omit projection
	// defaultOnly shows, in keyValues, one value per attribute (the
	// default instance's) even when it has instances with datasetIds:
	// the form a data model's schema checks (validationFormInto).
	defaultOnly bool
}

const timeLayout = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// render compacts e with tc into the requested representation.
func (e *Entity) render(tc *termContext, o renderOpts) map[string]any {
	out := make(map[string]any, len(e.Attrs)+4)
	e.renderInto(out, tc, o)
	return out
}

// renderInto is render into out (empty), for a caller that reuses maps.
func (e *Entity) renderInto(out map[string]any, tc *termContext, o renderOpts) {
	if o.keeps("id") {
		out["id"] = e.ID
	}
	if o.keeps("type") {
		out["type"] = compactTypes(e.Types, tc)
	}
	if len(e.Scope) > 0 && o.keeps("scope") {
		out["scope"] = renderScope(e.Scope)
	}
	if o.sysAttrs && o.format != keyValues {
		out["createdAt"] = fmtTime(e.CreatedAt)
		out["modifiedAt"] = fmtTime(e.ModifiedAt)
	}
	for iri, insts := range e.Attrs {
		if (o.attrs != nil && !o.attrs[iri]) || !o.keeps(iri) {
			continue
		}
		out[tc.compact(iri)] = renderInstances(insts, tc, o)
	}
}

func compactTypes(types []string, tc *termContext) any {
	if len(types) == 1 {
		return tc.compact(types[0])
	}
	out := make([]any, len(types))
	for i, t := range types {
		out[i] = tc.compact(t)
	}
	return out
}

func renderInstances(insts []*Attribute, tc *termContext, o renderOpts) any {
	if o.format == keyValues {
		if !o.defaultOnly && hasDatasets(insts) {
			// A multi-attribute (clause 4.5.5) in keyValues (clause
			// 4.5.4, NGSI-LD 1.7 and later): {"dataset": {datasetId:
			// value, ...}}, the default instance under "@none".
			ds := make(map[string]any, len(insts))
			for _, a := range insts {
				key := a.DatasetID
				if key == "" {
					key = "@none"
				}
				ds[key] = a.keyValue(tc, o.lang)
			}
			return map[string]any{"dataset": ds}
		}
		// One value per attribute: the default instance when there is
		// one.
		pick := insts[0]
		for _, a := range insts {
			if a.DatasetID == "" {
				pick = a
				break
			}
		}
		return pick.keyValue(tc, o.lang)
	}
	if len(insts) == 1 {
		return insts[0].render(tc, o)
	}
	list := make([]any, len(insts))
	for i, a := range insts {
		list[i] = a.render(tc, o)
	}
	return list
}

// hasDatasets reports whether an attribute has an instance with a
// datasetId.
func hasDatasets(insts []*Attribute) bool {
	for _, a := range insts {
		if a.DatasetID != "" {
			return true
		}
	}
	return false
}

// keyValue is the keyValues form of an attribute (clause 4.5.4): a
// Property's value, a Relationship's object; the types whose content a bare
// value could not tell apart keep their member: {"languageMap": ...} (or
// the string in the requested language), {"valueList": ...}, {"json": ...},
// {"vocab": ...}, {"objectList": [URI, ...]}.
func (a *Attribute) keyValue(tc *termContext, lang string) any {
	switch {
	case a.Type == LanguageProperty && lang != "":
		v, _ := pickLanguage(a.LanguageMap, lang)
		return v
	case a.Type == LanguageProperty:
		return map[string]any{"languageMap": a.LanguageMap}
	case isExtended(a.Type):
		member, v := a.renderContent(tc, true)
		return map[string]any{member: v}
	}
	return a.simpleValue()
}

// simpleValue is the content of an attribute as stored: a Property's value,
// a Relationship's object, a LanguageProperty's languageMap, a
// ListRelationship's list of objects, the Value of the other types.
func (a *Attribute) simpleValue() any {
	switch a.Type {
	case Relationship, ListRelationship:
		return a.Object
	case LanguageProperty:
		return a.LanguageMap
	default:
		return a.Value
	}
}

// readsAsAttr reports whether a bare value would be read back as attribute
// instances (an attribute object, or a list of them) rather than as a value.
func readsAsAttr(v any) bool {
	if list, ok := v.([]any); ok && len(list) > 0 {
		for _, x := range list {
			if !isExplicitAttr(x) {
				return false
			}
		}
		return true
	}
	return isExplicitAttr(v)
}

func (a *Attribute) hasMeta() bool {
	return a.ObservedAt != "" || a.UnitCode != "" || a.DatasetID != "" || len(a.Sub) > 0
}

func (a *Attribute) render(tc *termContext, o renderOpts) any {
	if o.format == concise && !o.sysAttrs && !a.hasMeta() && (a.Type == Property || a.Type == GeoProperty) {
		// concise form drops the wrapper when nothing else is attached;
		// an object value would then read as an attribute, so keep the
		// wrapper for values that look like one.
		if !readsAsAttr(a.Value) {
			if m, ok := a.Value.(map[string]any); !ok || a.Type == GeoProperty || !looksLikeGeometry(m) {
				return a.Value
			}
		}
	}
	m := make(map[string]any, 4+len(a.Sub))
	if o.format != concise {
		m["type"] = string(a.Type)
	}
	switch {
	case a.Type == Relationship:
		m["object"] = a.Object
	case a.Type == LanguageProperty && o.lang != "":
		v, tag := pickLanguage(a.LanguageMap, o.lang)
		m["value"], m["lang"] = v, tag
		if o.format != concise {
			m["type"] = string(Property)
		}
	case a.Type == LanguageProperty:
		m["languageMap"] = a.LanguageMap
	case isExtended(a.Type):
		member, v := a.renderContent(tc, false)
		m[member] = v
	default:
		m["value"] = a.Value
	}
	if a.ObservedAt != "" {
		m["observedAt"] = a.ObservedAt
	}
	if a.UnitCode != "" {
		m["unitCode"] = a.UnitCode
	}
	if a.DatasetID != "" {
		m["datasetId"] = a.DatasetID
	}
	if o.sysAttrs {
		m["createdAt"] = fmtTime(a.CreatedAt)
		m["modifiedAt"] = fmtTime(a.ModifiedAt)
	}
	sub := o
	sub.attrs, sub.pick, sub.omit = nil, nil, nil
	for iri, insts := range a.Sub {
		m[tc.compact(iri)] = renderInstances(insts, tc, sub)
	}
	return m
}

// geometry returns the GeoJSON value of the named GeoProperty's default (or
// first) instance, nil when absent.
func (e *Entity) geometry(iri string) map[string]any {
	insts := e.Attrs[iri]
	var pick *Attribute
	for _, a := range insts {
		if a.Type != GeoProperty {
			continue
		}
		if pick == nil || a.DatasetID == "" {
			pick = a
		}
	}
	if pick == nil {
		return nil
	}
	g, _ := pick.Value.(map[string]any)
	return g
}

// renderFeature is the GeoJSON form of an entity (clause 4.5.16, MIM7).
func (e *Entity) renderFeature(tc *termContext, o renderOpts, geoIRI string) map[string]any {
	return feature(e.ID, e, geoIRI, e.render(tc, o))
}

// feature is the GeoJSON Feature of entity id, rendered as props (whose
// id member it takes for its own): its geometry is e's GeoProperty geoIRI,
// null when e (nil for a deleted entity) has none.
func feature(id string, e *Entity, geoIRI string, props map[string]any) map[string]any {
	delete(props, "id")
	var geom any
	if e != nil {
		if g := e.geometry(geoIRI); g != nil {
			geom = g
		}
	}
	return map[string]any{"id": id, "type": "Feature", "geometry": geom, "properties": props}
}

// pickLanguage chooses the string for lang from a languageMap: the exact
// tag, then its primary language, then "@none", then the alphabetically
// first tag, so the choice is stable (clause 4.15).
func pickLanguage(lm map[string]any, lang string) (any, string) {
	for _, want := range strings.Split(lang, ",") {
		want = strings.TrimSpace(strings.SplitN(want, ";", 2)[0])
		if v, ok := lm[want]; ok {
			return v, want
		}
		if primary, _, found := strings.Cut(want, "-"); found {
			if v, ok := lm[primary]; ok {
				return v, primary
			}
		}
	}
	if v, ok := lm["@none"]; ok {
		return v, "@none"
	}
	keys := sortedKeys(lm)
	if len(keys) == 0 {
		return nil, ""
	}
	return lm[keys[0]], keys[0]
}

// RenderOptions selects how Render shows an entity.
type RenderOptions struct {
	// Context is the @context whose terms the output uses: a URL, an
	// object or a list of them, as in a request; nil means the core
	// context alone.
	Context any
	// Format is "normalized" (the default), "keyValues" or "concise".
	Format string
	// Attrs keeps only these attributes (terms of Context); empty keeps
	// all.
	Attrs    []string
	SysAttrs bool
	// Lang picks one language of LanguageProperties (clause 4.15).
	Lang string
}

// Render shows a stored entity (from Entity, Changes or Follow) the way the
// API would answer a client using o.Context, for features that send
// entities themselves, such as notifications.
func (s *Service) Render(e *Entity, o RenderOptions) (map[string]any, error) {
	tc, err := s.ctx.resolve(o.Context)
	if err != nil {
		return nil, err
	}
	ro := renderOpts{sysAttrs: o.SysAttrs, lang: o.Lang}
	switch o.Format {
	case "", "normalized":
	case "keyValues", "simplified":
		ro.format = keyValues
	case "concise":
		ro.format = concise
	default:
		return nil, newError(BadRequestData, "invalid format", "unknown format %q", o.Format)
	}
	if len(o.Attrs) > 0 {
		ro.attrs = map[string]bool{}
		for _, a := range o.Attrs {
			ro.attrs[tc.expand(a)] = true
		}
	}
	return e.render(tc, ro), nil
}

// Expand returns the IRI a term stands for under the given @context (nil:
// the core context), for features that take names from clients, such as a
// subscription's watched attributes.
func (s *Service) Expand(context any, term string) (string, error) {
	tc, err := s.ctx.resolve(context)
	if err != nil {
		return "", err
	}
	return tc.expand(term), nil
}
