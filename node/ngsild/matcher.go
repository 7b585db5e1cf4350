package ngsild

import (
	"sort"
	"sync"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
)

// Matcher holds subscriptions and decides which of them a change fires.
// It is pure (time is an argument) and safe for concurrent use. It keeps
// the throttling and timeInterval state: when it reports a subscription as
// firing, it records that instant.
//
// A change is only tested against the subscriptions that can match it: the
// Matcher indexes subscriptions by the entity types and ids they select,
// and within those by the value their q requires of an attribute
// (q=no2==5, or no2==5;..., or no2==5,6), so a write looks at the
// subscriptions for its type and its values rather than at all of them.
type Matcher struct {
	mu    sync.Mutex
	subs  map[string]*Subscription // guarded by mu
	fired map[string]time.Time     // last time each fired; guarded by mu
	idx   *subIndex                // nil when subs changed since it was built; guarded by mu
}

// NewMatcher returns an empty Matcher.
func NewMatcher() *Matcher {
	return &Matcher{subs: map[string]*Subscription{}, fired: map[string]time.Time{}}
}

// Put adds or replaces a subscription (keeping its throttling state).
func (m *Matcher) Put(sub *Subscription) {
	m.mu.Lock()
	m.subs[sub.ID] = sub
	m.idx = nil
	m.mu.Unlock()
}

// Remove drops a subscription.
func (m *Matcher) Remove(id string) {
	m.mu.Lock()
	delete(m.subs, id)
	delete(m.fired, id)
	m.idx = nil
	m.mu.Unlock()
}

// Len is the number of subscriptions held.
func (m *Matcher) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.subs)
}

// index returns the index, rebuilding it after Put or Remove (once per
// burst of changes to the subscriptions, not once per change). mu is held.
func (m *Matcher) index() *subIndex {
	if m.idx == nil {
		m.idx = buildIndex(m.subs)
	}
	return m.idx
}

// Selects reports whether any active subscription could be about the
// entity (by id and type alone): when none is, the change needs no
// further look.
func (m *Matcher) Selects(now time.Time, id string, types []string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	found := false
	m.index().each(id, types, func(b *bucket) bool {
		found = b.selects(now, id, types)
		return !found
	})
	return found
}

// Match returns the subscriptions c fires at now, sorted by id, and
// records them as fired (for throttling). It is MatchPrev without the
// state before the change.
func (m *Matcher) Match(now time.Time, c Change) []*Subscription {
	return m.MatchPrev(now, c, nil)
}

// MatchPrev is Match for a change whose previous entity state is known
// (nil for a create): a deletion is then tested with q and watched
// attributes against the entity it removed.
func (m *Matcher) MatchPrev(now time.Time, c Change, prev *Entity) []*Subscription {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cand []*Subscription
	m.index().each(c.ID, c.Types, func(b *bucket) bool {
		cand = b.candidates(cand, c.Entity)
		return true
	})
	sort.Slice(cand, func(i, j int) bool { return cand[i].ID < cand[j].ID })
	out := cand[:0]
	for i, sub := range cand {
		if i > 0 && cand[i-1] == sub {
			continue // selected through two selectors or two values
		}
		if !sub.fires(now, &c, prev) {
			continue
		}
		if last, ok := m.fired[sub.ID]; ok && sub.Throttling > 0 && now.Sub(last) < sub.Throttling {
			continue
		}
		m.fired[sub.ID] = now
		out = append(out, sub)
	}
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

// subIndex files change-driven subscriptions by what their entity
// selectors name: a type, else an id; the rest (idPattern alone, or no
// selector) are in any. A subscription with several selectors is filed
// under each.
type subIndex struct {
	byType map[string]*bucket
	byID   map[string]*bucket
	any    *bucket
}

// bucket holds subscriptions filed under one key, split by whether their q
// pins an attribute to a few values.
type bucket struct {
	all  []*Subscription
	scan []*Subscription // tested one by one
	// eq files a subscription whose q requires attr == v under each v;
	// only changes whose entity has such a value reach it.
	eq    map[eqKey][]*Subscription
	attrs []string // the attributes eq uses
}

type eqKey struct {
	attr string
	v    any // float64, string or bool
}

func buildIndex(subs map[string]*Subscription) *subIndex {
	x := &subIndex{byType: map[string]*bucket{}, byID: map[string]*bucket{}, any: &bucket{}}
	get := func(m map[string]*bucket, k string) *bucket {
		b := m[k]
		if b == nil {
			b = &bucket{}
			m[k] = b
		}
		return b
	}
	for _, sub := range subs {
		if sub.TimeInterval > 0 {
			continue // never fires on changes
		}
		if len(sub.Entities) == 0 {
			x.any.add(sub)
			continue
		}
		for _, es := range sub.Entities {
			switch {
			case es.Type != "":
				get(x.byType, es.Type).add(sub)
			case es.ID != "":
				get(x.byID, es.ID).add(sub)
			default:
				x.any.add(sub)
			}
		}
	}
	return x
}

// each calls fn with every bucket an entity with id and types is filed
// under, until fn returns false.
func (x *subIndex) each(id string, types []string, fn func(*bucket) bool) {
	if !fn(x.any) {
		return
	}
	if b := x.byID[id]; b != nil && !fn(b) {
		return
	}
	for _, t := range types {
		if b := x.byType[t]; b != nil && !fn(b) {
			return
		}
	}
}

func (b *bucket) add(sub *Subscription) {
	b.all = append(b.all, sub)
	attr, vals := eqTerm(sub)
	if vals == nil {
		b.scan = append(b.scan, sub)
		return
	}
	if b.eq == nil {
		b.eq = map[eqKey][]*Subscription{}
	}
	if !contains(b.attrs, attr) {
		b.attrs = append(b.attrs, attr)
	}
	for _, v := range vals {
		k := eqKey{attr, v}
		b.eq[k] = append(b.eq[k], sub)
	}
}

// eqTerm finds a top-level "attribute == values" term of sub's q whose
// values can be map keys. Every entity sub's q admits has one of those
// values, but a deletion is matched against the state before it, which a
// caller may not have: subscriptions that fire on deletions are not filed
// by value.
func eqTerm(sub *Subscription) (string, []any) {
	if sub.Q == nil || sub.triggers()&EntityDeleted != 0 {
		return "", nil
	}
	for _, t := range sub.Q.IndexTerms() {
		if t.Op != "==" || len(t.Path.Keys) != 0 || len(t.Path.Attrs) != 1 {
			continue
		}
		vals := make([]any, 0, len(t.Values))
		for _, v := range t.Values {
			if k, ok := eqValue(v); ok {
				vals = append(vals, k)
			}
		}
		if len(vals) == len(t.Values) {
			return t.Path.Attrs[0], vals
		}
	}
	return "", nil
}

// eqValue is the map key form of an entity value or q literal, as q's ==
// compares them; ok is false for values an equality cannot be keyed on.
func eqValue(v any) (any, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string, bool:
		return x, true
	}
	return nil, false
}

// selects reports whether an active subscription in b selects the entity.
func (b *bucket) selects(now time.Time, id string, types []string) bool {
	for _, sub := range b.all {
		if sub.Active(now) && sub.selects(id, types) {
			return true
		}
	}
	return false
}

// candidates appends the subscriptions of b that e (nil: deleted) can
// fire: all of scan, and those of eq whose value e has.
func (b *bucket) candidates(out []*Subscription, e *Entity) []*Subscription {
	out = append(out, b.scan...)
	if e == nil {
		return out
	}
	for _, attr := range b.attrs {
		for _, v := range e.Values(query.Path{Attrs: []string{attr}}) {
			out = b.appendEq(out, attr, v)
		}
	}
	return out
}

func (b *bucket) appendEq(out []*Subscription, attr string, v any) []*Subscription {
	if m, ok := v.(map[string]any); ok {
		if inner, ok := m["@value"]; ok {
			v = inner
		}
	}
	if arr, ok := v.([]any); ok {
		for _, el := range arr {
			out = b.appendEq(out, attr, el)
		}
		return out
	}
	if k, ok := eqValue(v); ok {
		out = append(out, b.eq[eqKey{attr, k}]...)
	}
	return out
}
