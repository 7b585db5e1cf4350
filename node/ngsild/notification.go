package ngsild

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Notification documents (clause 5.3.1).
//
// What a subscription's notifications look like is worked out once, when
// the subscription is created, changed or loaded (notifySpec): its term
// context, render options, headers and the @context member. The
// dispatcher then renders each entity once per distinct look (spec.key)
// and reuses the bytes for every subscription that shares it, and joins
// the entities one subscription matched in a dispatch round into one
// Notification (data holds them in change order).

// ngsiNull stands for a deleted attribute's value in notifications
// (clause 5.2.1: "urn:ngsi-ld:null").
const ngsiNullIRI = "urn:ngsi-ld:null"

// maxNotifyEntities caps the entities in one Notification.
const maxNotifyEntities = 1000

// notifySpec is a subscription's notification format, compiled.
type notifySpec struct {
	uri     string
	tc      *termContext
	ro      renderOpts
	show    bool // showChanges
	deleted bool // attributeDeleted fires it: removed attributes are shown as NGSI-LD Null
	// key is equal for specs that render an entity to the same bytes.
	key    string
	header http.Header
	// context is the encoded "@context" member (ld+json), or nil.
	context []byte
	// geoIRI is set for an endpoint that accepts application/geo+json:
	// data is a FeatureCollection, each entity a Feature whose geometry
	// is this GeoProperty's (location).
	geoIRI string
}

// compileSpec builds the notification format of a subscription body whose
// names tc expands; ctxVal is the @context as the client gave it.
func compileSpec(b *subscriptionBody, sub *Subscription, tc *termContext, ctxVal any) *notifySpec {
	nd := b.Notification
	sp := &notifySpec{uri: nd.Endpoint.URI, tc: tc, show: nd.ShowChanges,
		deleted: sub.triggers()&AttributeDeleted != 0, header: http.Header{}}
	sp.ro.sysAttrs = nd.SysAttrs
	sp.ro.lang = b.Lang // clause 4.15: languageMaps shown in one language
	switch nd.Format {
	case "keyValues", "simplified": // simplified is keyValues' name since 1.6
		sp.ro.format = keyValues
	case "concise":
		sp.ro.format = concise
	}
	var attrs []string
	if len(nd.Attributes) > 0 {
		sp.ro.attrs = map[string]bool{}
		for _, a := range nd.Attributes {
			iri := tc.expand(a)
			sp.ro.attrs[iri] = true
			attrs = append(attrs, iri)
		}
		sort.Strings(attrs)
	}
	if nd.Endpoint.Accept == "application/geo+json" {
		sp.geoIRI = tc.expand("location")
	}
	sp.key = fmt.Sprintf("%p|%d|%t|%t|%t|%s|%s|%s", tc, sp.ro.format, sp.ro.sysAttrs, sp.show, sp.deleted, sp.geoIRI, sp.ro.lang, strings.Join(attrs, " "))
	if nd.Endpoint.Accept == "application/ld+json" {
		sp.header.Set("Content-Type", "application/ld+json")
		c := ctxVal
		if c == nil {
			c = CoreContextURL
		}
		sp.context = appendValue(nil, c)
	} else {
		sp.header.Set("Content-Type", "application/json")
		if sp.geoIRI != "" {
			sp.header.Set("Content-Type", "application/geo+json")
		}
		link := CoreContextURL
		if u, ok := ctxVal.(string); ok {
			link = u
		}
		if b.JSONLDContext != "" {
			link = b.JSONLDContext
		}
		sp.header.Set("Link", "<"+link+`>; rel="`+jsonldContextRel+`"; type="application/ld+json"`)
	}
	for _, kv := range nd.Endpoint.ReceiverInfo {
		sp.header.Add(kv.Key, kv.Value)
	}
	return sp
}

// event is a change as the dispatcher matches and shows it: with the
// entity before the change when it is known (changes matched from memory;
// not those replayed from the store).
type event struct {
	Change
	prev *Entity
}

// shows reports whether the spec shows attribute iri.
func (sp *notifySpec) shows(iri string) bool { return sp.ro.attrs == nil || sp.ro.attrs[iri] }

// item renders one event's entity as a Notification data member: the
// entity, or for a geo+json endpoint its Feature.
func (sp *notifySpec) item(ev *event) []byte {
	m := sp.entityItem(ev)
	if sp.geoIRI == "" {
		return appendValue(nil, m)
	}
	return appendValue(nil, feature(ev.ID, ev.Entity, sp.geoIRI, m))
}

// entityItem renders one event's entity as the Notification shows it.
func (sp *notifySpec) entityItem(ev *event) map[string]any {
	var m map[string]any
	if ev.Entity == nil {
		// entityDeleted: the entity's id and type; with showChanges, the
		// attributes it had, as NGSI-LD Null with their last values.
		m = map[string]any{"id": ev.ID, "type": compactTypes(ev.Types, sp.tc)}
		if sp.ro.sysAttrs && sp.ro.format != keyValues {
			m["deletedAt"] = fmtTime(ev.At)
		}
		if sp.show && ev.prev != nil {
			for iri, insts := range ev.prev.Attrs {
				if sp.shows(iri) {
					m[sp.tc.compact(iri)] = sp.nullAttr(insts, ev.At)
				}
			}
		}
		return m
	}
	m = ev.Entity.render(sp.tc, sp.ro)
	if sp.deleted {
		for _, iri := range ev.Removed {
			if !sp.shows(iri) {
				continue
			}
			var was []*Attribute
			if ev.prev != nil {
				was = ev.prev.Attrs[iri]
			}
			m[sp.tc.compact(iri)] = sp.nullAttr(was, ev.At)
		}
	}
	if sp.show && ev.prev != nil {
		for iri, insts := range ev.Entity.Attrs {
			was := ev.prev.Attrs[iri]
			if len(was) == 0 || !sp.shows(iri) {
				continue
			}
			name := sp.tc.compact(iri)
			if len(insts) == 1 {
				m[name] = withPrevious(m[name], insts[0], ev.Entity, was)
				continue
			}
			if list, ok := m[name].([]any); ok {
				for i, a := range insts {
					list[i] = withPrevious(list[i], a, ev.Entity, was)
				}
			}
		}
	}
	return m
}

// withPrevious adds the previous value of a changed instance to its
// rendered form r (clause 5.2.14 showChanges): previousValue of a
// Property or GeoProperty, previousObject of a Relationship,
// previousLanguageMap of a LanguageProperty.
func withPrevious(r any, a *Attribute, e *Entity, was []*Attribute) any {
	if !a.ModifiedAt.Equal(e.ModifiedAt) {
		return r // not changed by this write
	}
	old := findInstance(was, a.DatasetID)
	if old == nil {
		return r // created by this write: nothing before it
	}
	m, ok := r.(map[string]any)
	if !ok || sameMap(m, a.Value) {
		m = map[string]any{"value": r} // concise form of a bare value
	}
	m[previousMember(old.Type)] = old.simpleValue()
	return m
}

// sameMap reports whether v is the map m itself (not a copy): the concise
// form shows a bare object value as the value itself.
func sameMap(m map[string]any, v any) bool {
	vm, ok := v.(map[string]any)
	return ok && reflect.ValueOf(vm).UnsafePointer() == reflect.ValueOf(m).UnsafePointer()
}

func previousMember(t AttrType) string {
	switch t {
	case Relationship:
		return "previousObject"
	case LanguageProperty:
		return "previousLanguageMap"
	}
	return "previousValue"
}

// nullAttr shows a deleted attribute (was: its instances before, nil when
// unknown) as NGSI-LD Null, with deletedAt under sysAttrs and the previous
// value under showChanges.
func (sp *notifySpec) nullAttr(was []*Attribute, at time.Time) any {
	if len(was) == 0 {
		was = []*Attribute{{Type: Property}}
	}
	out := make([]any, 0, len(was))
	for _, old := range was {
		if sp.ro.format == keyValues {
			return ngsiNullIRI
		}
		m := map[string]any{}
		if sp.ro.format != concise {
			m["type"] = string(old.Type)
		}
		switch old.Type {
		case Relationship:
			m["object"] = ngsiNullIRI
		case LanguageProperty:
			m["languageMap"] = map[string]any{"@none": ngsiNullIRI}
		default:
			m["value"] = ngsiNullIRI
		}
		if old.DatasetID != "" {
			m["datasetId"] = old.DatasetID
		}
		if sp.ro.sysAttrs {
			m["deletedAt"] = fmtTime(at)
		}
		if sp.show && !old.CreatedAt.IsZero() {
			m[previousMember(old.Type)] = old.simpleValue()
		}
		out = append(out, m)
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

// renderCache keeps the rendered entities of one dispatch round, so
// subscriptions that show an entity the same way render it once.
type renderCache map[renderKey][]byte

type renderKey struct {
	ev   *event
	spec string
}

func (rc renderCache) item(sp *notifySpec, ev *event) []byte {
	k := renderKey{ev, sp.key}
	b, ok := rc[k]
	if !ok {
		b = sp.item(ev)
		rc[k] = b
	}
	return b
}

// notification encodes a Notification for subscription subID holding
// items (rendered entities).
func (sp *notifySpec) notification(subID string, now time.Time, items [][]byte) []byte {
	n := 200 + len(subID) + len(sp.context)
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"id":"urn:ngsi-ld:Notification:`...)
	b = append(b, randomID()...)
	b = append(b, `","type":"Notification","subscriptionId":`...)
	b = appendString(b, subID)
	b = append(b, `,"notifiedAt":"`...)
	b = append(b, fmtTime(now)...)
	if sp.geoIRI != "" {
		b = append(b, `","data":{"type":"FeatureCollection","features":[`...)
	} else {
		b = append(b, `","data":[`...)
	}
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, ']')
	if sp.geoIRI != "" {
		b = append(b, '}')
	}
	if sp.context != nil {
		b = append(b, `,"@context":`...)
		b = append(b, sp.context...)
	}
	return append(b, '}')
}
