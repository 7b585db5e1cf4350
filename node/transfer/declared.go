package transfer

import (
	"slices"
	"strings"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/policy"
)

// A consumer lands only what the dataset it agreed to holds: entities of
// the entity types the provider's description of the dataset declares in
// the federation's catalogue, where the consumer chose it. A provider's
// other data (a parking dataset's node sending air-quality readings) is
// not landed, as ids the dataset does not own are not (ownership, land.go):
// a snapshot counts each among the entities not landed, and both a
// snapshot and a live feed log them. When this node has not indexed the
// description (it asked by peer ID and dataset id alone, say), the
// entities land unchecked.
//
// The description this node indexed may be older than the provider's (a
// type added a moment ago). A landing that left entities out records the
// description it checked against (misfitKey), and the next landing under
// a different one lands the whole version (as fetch --full does) instead
// of the blocks that changed, so that what was left out lands once it is
// declared. A live feed reads the description for each change.

// typeMatch is how a dataset's entity types (IRIs or short names) select
// entity types: a version build takes the entities it matches
// (filterFor), a consumer lands only those (declared).
type typeMatch struct {
	iris  map[string]bool // the types, and short names expanded with the core context
	short map[string]bool // short names: stand for every IRI with that local name
}

// typesOf returns the match of types. A short name (AirQualityObserved)
// stands for each type with that local name, as in a catalogue search:
// expanded with the core context alone it names the default-context IRI,
// which misses entities written under a Smart Data Models context.
func (s *Service) typesOf(types []string) typeMatch {
	m := typeMatch{iris: map[string]bool{}, short: map[string]bool{}}
	for _, t := range types {
		m.iris[t] = true
		if iri, err := s.o.NGSILD.Expand(nil, t); err == nil {
			m.iris[iri] = true
		}
		if catalog.ShortType(t) == t {
			m.short[t] = true
		}
	}
	return m
}

// TypeMatch returns whether an entity type is one that a dataset declaring
// types holds, as a version build selects them (for a publisher's checks
// of its datasets).
func (s *Service) TypeMatch(types []string) func(entityType string) bool {
	return s.typesOf(types).has
}

// has reports whether entity type t is one m selects.
func (m typeMatch) has(t string) bool { return m.iris[t] || m.short[catalog.ShortType(t)] }

// declared is the entity types received entities are checked against; a
// nil *declared lets every entity through.
type declared struct {
	typeMatch
	sig string // the declared types, sorted (signature)
}

// declaredFor returns what entities received under a may be, or nil when
// this node does not know the dataset's description.
func (s *Service) declaredFor(a policy.Agreement) *declared {
	if s.o.Described == nil {
		return nil
	}
	ds, ok := s.o.Described(a.Provider, a.Dataset)
	if !ok {
		return nil
	}
	v, ok := ds.EffectiveView()
	if !ok {
		return nil
	}
	types := slices.Sorted(slices.Values(v.EntityTypes))
	return &declared{typeMatch: s.typesOf(types), sig: strings.Join(types, "\n")}
}

// signature names the declared types, the same for the same set.
func (d *declared) signature() string {
	if d == nil {
		return ""
	}
	return d.sig
}

// fits reports whether e has a type the dataset declares.
func (d *declared) fits(e *ngsild.Entity) bool {
	return d == nil || slices.ContainsFunc(e.Types, d.has)
}

// split returns those of ents that fit and the ids of those that do not;
// ents itself when all fit.
func (d *declared) split(ents []*ngsild.Entity) (fit []*ngsild.Entity, misfit []string) {
	for i, e := range ents {
		switch {
		case !d.fits(e):
			if misfit == nil {
				fit = slices.Clone(ents[:i])
			}
			misfit = append(misfit, e.ID)
		case misfit != nil:
			fit = append(fit, e)
		}
	}
	if misfit == nil {
		return ents, nil
	}
	return fit, misfit
}

// noteMisfits logs received entities not landed because their types are
// not the dataset's, naming a few.
func (s *Service) noteMisfits(a policy.Agreement, ids []string) {
	if len(ids) == 0 {
		return
	}
	s.log.Warn("received entities not landed: their entity types are not among those the dataset's catalogue description declares",
		"agreement", a.ID, "provider", a.Provider, "dataset", a.Dataset, "count", len(ids), "ids", ids[:min(len(ids), 5)])
}
