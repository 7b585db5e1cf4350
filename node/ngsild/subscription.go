package ngsild

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"sync"
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
	IsActive    bool
	// ExpiresAt, when set, ends the subscription.
	ExpiresAt time.Time
	// Throttling is the least time between two notifications; matches
	// within it are dropped (clause 5.2.12).
	Throttling time.Duration
	// TimeInterval makes the subscription periodic: it fires every
	// TimeInterval (see Matcher.Due) and never on changes.
	TimeInterval time.Duration
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
	eq := entityQuery{q: sub.Q, geo: sub.Geo, geoIRI: sub.GeoProperty}
	return eq.match(e)
}

// matches is the change-driven test without throttling.
func (sub *Subscription) matches(now time.Time, c *Change) bool {
	if sub.TimeInterval > 0 || !sub.Active(now) || c.Entity == nil || !sub.selects(c.ID, c.Types) {
		return false
	}
	if len(sub.WatchedAttributes) > 0 {
		hit := false
		for _, a := range sub.WatchedAttributes {
			if contains(c.Removed, a) || touched(c.Entity, a) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return sub.filter(c.Entity)
}

func touched(e *Entity, attr string) bool {
	for _, a := range e.Attrs[attr] {
		if a.ModifiedAt.Equal(e.ModifiedAt) {
			return true
		}
	}
	return false
}

// Matcher holds subscriptions and decides which of them a change fires.
// It is pure (time is an argument) and safe for concurrent use. It keeps
// the throttling and timeInterval state: when it reports a subscription as
// firing, it records that instant.
type Matcher struct {
	mu    sync.Mutex
	subs  map[string]*Subscription // guarded by mu
	fired map[string]time.Time     // last time each fired; guarded by mu
}

// NewMatcher returns an empty Matcher.
func NewMatcher() *Matcher {
	return &Matcher{subs: map[string]*Subscription{}, fired: map[string]time.Time{}}
}

// Put adds or replaces a subscription (keeping its throttling state).
func (m *Matcher) Put(sub *Subscription) {
	m.mu.Lock()
	m.subs[sub.ID] = sub
	m.mu.Unlock()
}

// Remove drops a subscription.
func (m *Matcher) Remove(id string) {
	m.mu.Lock()
	delete(m.subs, id)
	delete(m.fired, id)
	m.mu.Unlock()
}

// Len is the number of subscriptions held.
func (m *Matcher) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}

// Selects reports whether any active subscription could be about the
// entity (by id and type alone): when none is, the change needs no
// further look.
func (m *Matcher) Selects(now time.Time, id string, types []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sub := range m.subs {
		if sub.TimeInterval == 0 && sub.Active(now) && sub.selects(id, types) {
			return true
		}
	}
	return false
}

// Match returns the subscriptions c fires at now, sorted by id, and
// records them as fired (for throttling).
func (m *Matcher) Match(now time.Time, c Change) []*Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Subscription
	for id, sub := range m.subs {
		if !sub.matches(now, &c) {
			continue
		}
		if last, ok := m.fired[id]; ok && sub.Throttling > 0 && now.Sub(last) < sub.Throttling {
			continue
		}
		m.fired[id] = now
		out = append(out, sub)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Due returns the periodic subscriptions whose timeInterval has passed
// since they last fired (or that never fired), and records them as fired.
func (m *Matcher) Due(now time.Time) []*Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Subscription
	for id, sub := range m.subs {
		if sub.TimeInterval <= 0 || !sub.Active(now) {
			continue
		}
		if last, ok := m.fired[id]; ok && now.Sub(last) < sub.TimeInterval {
			continue
		}
		m.fired[id] = now
		out = append(out, sub)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
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
	IsActive          *bool           `json:"isActive,omitempty"`
	ExpiresAt         string          `json:"expiresAt,omitempty"`
	Throttling        float64         `json:"throttling,omitempty"`
	Notification      notificationDef `json:"notification"`
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
	Endpoint   endpoint `json:"endpoint"`
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
	u, err := url.Parse(ep.URI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, bad("notification.endpoint.uri must be an http or https URL, got %q", ep.URI)
	}
	switch ep.Accept {
	case "", "application/json", "application/ld+json":
	default:
		return nil, bad("notification.endpoint.accept must be application/json or application/ld+json")
	}
	switch b.Notification.Format {
	case "", "normalized", "keyValues", "concise":
	default:
		return nil, bad("notification.format must be normalized, keyValues or concise")
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
