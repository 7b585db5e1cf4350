package ngsild

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
)

// EntitySelector picks entities a subscription is about (clause 5.2.33):
// every field that is set must hold.
type EntitySelector struct {
	ID        string
	IDPattern *regexp.Regexp
	Type      string // expanded
}

func (es EntitySelector) matches(id string, types []string) bool {
	if es.ID != "" && es.ID != id {
		return false
	}
	if es.IDPattern != nil && !es.IDPattern.MatchString(id) {
		return false
	}
	return es.Type == "" || contains(types, es.Type)
}

// Subscription is what decides whether a change fires a notification: the
// matching half of an NGSI-LD subscription (clause 5.2.12), with names
// expanded. It knows nothing of HTTP, so the live transfers to other nodes
// use the same type with their own delivery. Build one with
// Service.CompileSubscription from a client's JSON, or directly.
type Subscription struct {
	ID string
	// Entities: a change matches when any selector does; none means any
	// entity (then WatchedAttributes must be set).
	Entities []EntitySelector
	// WatchedAttributes: a change matches only when it changed one of
	// these (added, updated or removed); none means any change.
	WatchedAttributes []string
	// Q and Geo filter on the entity's new state; GeoProperty is the
	// expanded geoproperty Geo applies to.
	Q           *query.Q
	Geo         *query.Geo
	GeoProperty string
	// ScopeQ filters on the entity's scopes (clause 4.18).
	ScopeQ   *query.ScopeQuery
	IsActive bool
	// ExpiresAt, when set, ends the subscription.
	ExpiresAt time.Time
	// Throttling is the least time between two notifications; matches
	// within it are dropped (clause 5.2.12).
	Throttling time.Duration
	// TimeInterval makes the subscription periodic: it fires every
	// TimeInterval (see Matcher.Due) and never on changes.
	TimeInterval time.Duration
	// Triggers are the kinds of change that fire it; 0 means
	// DefaultTriggers.
	Triggers Trigger
}

// Active reports whether the subscription can fire at now.
func (sub *Subscription) Active(now time.Time) bool {
	return sub.IsActive && (sub.ExpiresAt.IsZero() || now.Before(sub.ExpiresAt))
}

// selects reports whether the entity selectors admit an entity; it needs
// no entity body, so the dispatcher decodes only changes some subscription
// selects.
func (sub *Subscription) selects(id string, types []string) bool {
	if len(sub.Entities) == 0 {
		return true
	}
	for _, es := range sub.Entities {
		if es.matches(id, types) {
			return true
		}
	}
	return false
}

// filter applies Q and Geo to an entity state.
func (sub *Subscription) filter(e *Entity) bool {
	eq := entityQuery{q: sub.Q, geo: sub.Geo, geoIRI: sub.GeoProperty, scopeQ: sub.ScopeQ}
	return eq.match(e)
}

// Trigger is a kind of change that can fire a subscription (NGSI-LD 1.8
// notificationTrigger, clause 5.2.12). Triggers combine as a bit set.
type Trigger uint8

// The notification triggers. A subscription without notificationTrigger
// fires on DefaultTriggers; entityUpdated is EntityUpdated, the three
// attribute triggers together.
const (
	EntityCreated Trigger = 1 << iota
	EntityDeleted
	AttributeCreated
	AttributeUpdated
	AttributeDeleted

	EntityUpdated   = AttributeCreated | AttributeUpdated | AttributeDeleted
	DefaultTriggers = AttributeCreated | AttributeUpdated
)

// triggerNames maps notificationTrigger members to triggers.
var triggerNames = map[string]Trigger{
	"entityCreated": EntityCreated, "entityUpdated": EntityUpdated, "entityDeleted": EntityDeleted,
	"attributeCreated": AttributeCreated, "attributeUpdated": AttributeUpdated, "attributeDeleted": AttributeDeleted,
}

func (sub *Subscription) triggers() Trigger {
	if sub.Triggers == 0 {
		return DefaultTriggers
	}
	return sub.Triggers
}

// fires is the change-driven test without throttling. prev is the entity
// before the change when the caller knows it (nil for a create, or for a
// change replayed from the store). A created entity counts as
// entityCreated and as attributeCreated of each of its attributes; a
// deleted one only as entityDeleted. Q and Geo test the new state, and for
// a deletion the state before it (when prev is unknown they are not
// tested: the deletion is notified rather than lost).
func (sub *Subscription) fires(now time.Time, c *Change, prev *Entity) bool {
	if sub.TimeInterval > 0 || !sub.Active(now) || !sub.selects(c.ID, c.Types) {
		return false
	}
	trig := sub.triggers()
	if c.Entity == nil {
		if c.Op != OpDelete || trig&EntityDeleted == 0 {
			return false
		}
		if prev == nil {
			return true
		}
		return (len(sub.WatchedAttributes) == 0 || hasAny(prev, sub.WatchedAttributes)) && sub.filter(prev)
	}
	if c.Op == OpCreate && trig&EntityCreated != 0 && (len(sub.WatchedAttributes) == 0 || hasAny(c.Entity, sub.WatchedAttributes)) {
		return sub.filter(c.Entity)
	}
	return trig&changeKinds(c, sub.WatchedAttributes) != 0 && sub.filter(c.Entity)
}

// changeKinds is what c did to the attributes in watched (all of them when
// watched is empty): attributeCreated, attributeUpdated, attributeDeleted.
// A change to no attribute at all (a new entity without attributes, a new
// type) counts as an attribute created or updated, so subscriptions
// watching everything see it.
func changeKinds(c *Change, watched []string) Trigger {
	var k Trigger
	if len(watched) == 0 {
		for _, insts := range c.Entity.Attrs {
			k |= instanceChange(c.Entity, insts)
		}
		if len(c.Removed) > 0 {
			k |= AttributeDeleted
		}
		if k == 0 {
			if c.Op == OpCreate {
				return AttributeCreated
			}
			return AttributeUpdated
		}
		return k
	}
	for _, a := range watched {
		k |= instanceChange(c.Entity, c.Entity.Attrs[a])
		if contains(c.Removed, a) {
			k |= AttributeDeleted
		}
	}
	return k
}

// instanceChange tells from the timestamps whether the write that made e
// created or updated an attribute's instances: a write stamps what it
// touches with the entity's modifiedAt, and a new instance's createdAt
// with the same instant.
func instanceChange(e *Entity, insts []*Attribute) Trigger {
	var k Trigger
	for _, a := range insts {
		if !a.ModifiedAt.Equal(e.ModifiedAt) {
			continue
		}
		if a.CreatedAt.Equal(a.ModifiedAt) {
			k |= AttributeCreated
		} else {
			k |= AttributeUpdated
		}
	}
	return k
}

// subscriptionBody is the client's view of a subscription (clause
// 5.2.12), as sent and as stored.
type subscriptionBody struct {
	ID                string          `json:"id,omitempty"`
	Type              string          `json:"type"`
	Name              string          `json:"subscriptionName,omitempty"`
	Description       string          `json:"description,omitempty"`
	Entities          []entitySel     `json:"entities,omitempty"`
	WatchedAttributes []string        `json:"watchedAttributes,omitempty"`
	TimeInterval      float64         `json:"timeInterval,omitempty"`
	Q                 string          `json:"q,omitempty"`
	GeoQ              *geoQ           `json:"geoQ,omitempty"`
	ScopeQ            string          `json:"scopeQ,omitempty"`
	Lang              string          `json:"lang,omitempty"`
	IsActive          *bool           `json:"isActive,omitempty"`
	ExpiresAt         string          `json:"expiresAt,omitempty"`
	Throttling        float64         `json:"throttling,omitempty"`
	Triggers          []string        `json:"notificationTrigger,omitempty"`
	Notification      notificationDef `json:"notification"`
	// JSONLDContext is the URL given in the Link header of notifications
	// sent as application/json (clause 5.2.12): the client's, or one the
	// node creates for a subscription whose @context is no single URL
	// (implicitContext).
	JSONLDContext string `json:"jsonldContext,omitempty"`
}

type entitySel struct {
	ID        string `json:"id,omitempty"`
	IDPattern string `json:"idPattern,omitempty"`
	Type      string `json:"type,omitempty"`
}

type geoQ struct {
	Geometry    string          `json:"geometry"`
	Coordinates json.RawMessage `json:"coordinates"`
	Georel      string          `json:"georel"`
	Geoproperty string          `json:"geoproperty,omitempty"`
}

type notificationDef struct {
	Attributes []string `json:"attributes,omitempty"`
	Format     string   `json:"format,omitempty"`
	SysAttrs   bool     `json:"sysAttrs,omitempty"`
	// ShowChanges adds each changed attribute's previous value
	// (previousValue, previousObject, previousLanguageMap).
	ShowChanges bool     `json:"showChanges,omitempty"`
	Endpoint    endpoint `json:"endpoint"`
}

type endpoint struct {
	URI          string       `json:"uri"`
	Accept       string       `json:"accept,omitempty"`
	ReceiverInfo []receiverKV `json:"receiverInfo,omitempty"`
}

type receiverKV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// checkEndpointURI refuses a notification endpoint that is not an http(s)
// URL with a host.
func checkEndpointURI(uri string) error {
	if u, err := url.Parse(uri); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return newError(BadRequestData, "invalid subscription", "notification.endpoint.uri must be an http or https URL, got %q", uri)
	}
	return nil
}

// compileSubscription checks a subscription body and builds its matching
// half with names expanded by tc.
func compileSubscription(b *subscriptionBody, tc *termContext) (*Subscription, error) {
	bad := func(format string, args ...any) error {
		return newError(BadRequestData, "invalid subscription", format, args...)
	}
	if b.Type != "Subscription" {
		return nil, bad(`type must be "Subscription"`)
	}
	if b.ID != "" && !isURI(b.ID) {
		return nil, bad("id %q is not a URI", b.ID)
	}
	sub := &Subscription{ID: b.ID, IsActive: b.IsActive == nil || *b.IsActive}
	// Present, each must list something (clause 5.2.12): an empty list
	// is no selection, and "every attribute" is said by leaving
	// watchedAttributes out.
	if b.Entities != nil && len(b.Entities) == 0 {
		return nil, bad("entities must not be an empty list")
	}
	if b.WatchedAttributes != nil && len(b.WatchedAttributes) == 0 {
		return nil, bad("watchedAttributes must not be an empty list; leave it out to watch every attribute")
	}
	if len(b.Entities) == 0 && len(b.WatchedAttributes) == 0 {
		return nil, bad("give entities or watchedAttributes")
	}
	for _, es := range b.Entities {
		sel := EntitySelector{ID: es.ID}
		if es.ID != "" && !isURI(es.ID) {
			return nil, bad("entity id %q is not a URI", es.ID)
		}
		if es.IDPattern != "" {
			re, err := regexp.Compile(es.IDPattern)
			if err != nil {
				return nil, bad("idPattern: %v", err)
			}
			sel.IDPattern = re
		}
		if es.Type != "" {
			if err := checkName(es.Type); err != nil {
				return nil, err
			}
			sel.Type = tc.expand(es.Type)
		}
		if sel.ID == "" && sel.IDPattern == nil && sel.Type == "" {
			return nil, bad("an entity selector needs id, idPattern or type")
		}
		sub.Entities = append(sub.Entities, sel)
	}
	for _, a := range b.WatchedAttributes {
		if err := checkName(a); err != nil {
			return nil, err
		}
		sub.WatchedAttributes = append(sub.WatchedAttributes, tc.expand(a))
	}
	if b.TimeInterval < 0 || b.Throttling < 0 {
		return nil, bad("timeInterval and throttling must not be negative")
	}
	sub.TimeInterval = time.Duration(b.TimeInterval * float64(time.Second))
	sub.Throttling = time.Duration(b.Throttling * float64(time.Second))
	if sub.TimeInterval > 0 && (len(b.WatchedAttributes) > 0 || sub.Throttling > 0) {
		return nil, bad("timeInterval excludes watchedAttributes and throttling")
	}
	if b.Q != "" {
		q, err := query.Parse(b.Q, tc.expand)
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid subscription q", Detail: err.Error(), Err: err}
		}
		sub.Q = q
	}
	if b.ScopeQ != "" {
		sq, err := query.ParseScopeQuery(plusLevels(b.ScopeQ))
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid subscription scopeQ", Detail: err.Error(), Err: err}
		}
		sub.ScopeQ = sq
	}
	if g := b.GeoQ; g != nil {
		coords := string(g.Coordinates)
		var asString string
		if json.Unmarshal(g.Coordinates, &asString) == nil {
			coords = asString
		}
		geo, err := query.ParseGeo(g.Georel, g.Geometry, coords, g.Geoproperty)
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid subscription geoQ", Detail: err.Error(), Err: err}
		}
		sub.Geo, sub.GeoProperty = geo, tc.expand(geo.Property())
	}
	if b.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, b.ExpiresAt)
		if err != nil {
			return nil, bad("expiresAt %q is not an ISO 8601 date-time", b.ExpiresAt)
		}
		sub.ExpiresAt = t
	}
	ep := b.Notification.Endpoint
	if err := checkEndpointURI(ep.URI); err != nil {
		return nil, err
	}
	switch ep.Accept {
	case "", "application/json", "application/ld+json", "application/geo+json":
	default:
		return nil, bad("notification.endpoint.accept must be application/json, application/ld+json or application/geo+json")
	}
	switch b.Notification.Format {
	case "", "normalized", "keyValues", "simplified", "concise":
	default:
		return nil, bad("notification.format must be normalized, keyValues (or simplified) or concise")
	}
	if b.Notification.ShowChanges && (b.Notification.Format == "keyValues" || b.Notification.Format == "simplified") {
		return nil, bad("notification.showChanges cannot be true with format %s", b.Notification.Format)
	}
	for _, t := range b.Triggers {
		k, ok := triggerNames[t]
		if !ok {
			return nil, bad("notificationTrigger %q is not one of entityCreated, entityUpdated, entityDeleted, attributeCreated, attributeUpdated, attributeDeleted", t)
		}
		sub.Triggers |= k
	}
	for _, a := range b.Notification.Attributes {
		if err := checkName(a); err != nil {
			return nil, err
		}
	}
	for _, kv := range b.Notification.Endpoint.ReceiverInfo {
		if kv.Key == "" {
			return nil, bad("receiverInfo entries need a key")
		}
	}
	return sub, nil
}

// CompileSubscription builds the matching half of a subscription from its
// NGSI-LD JSON body, expanding names with context (a URL, object or list;
// nil for the core context). It is how other features (live transfers)
// turn a client's subscription into a Subscription.
func (s *Service) CompileSubscription(body []byte, context any) (*Subscription, error) {
	var b subscriptionBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, newError(BadRequestData, "invalid subscription", "%v", err)
	}
	tc, err := s.ctx.resolve(context)
	if err != nil {
		return nil, fmt.Errorf("resolve subscription context: %w", err)
	}
	return compileSubscription(&b, tc)
}
