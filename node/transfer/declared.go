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

// declared is the entity types received entities are checked against; a
// nil *declared lets every entity through.
type declared struct {
	dataset string
	iris    map[string]bool // type IRIs, and short names expanded with the core context
	short   map[string]bool // short names: stand for every IRI with that local name
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
	d := &declared{dataset: a.Dataset, iris: map[string]bool{}, short: map[string]bool{}}
	for _, t := range v.EntityTypes {
		d.iris[t] = true
		if iri, err := s.o.NGSILD.Expand(nil, t); err == nil {
			d.iris[iri] = true
		}
		// As in a catalogue search and a provider's build (filterFor),
		// a short name stands for each type with that local name.
		if catalog.ShortType(t) == t {
			d.short[t] = true
		}
	}
	return d
}

// signature names the declared types, the same for the same set.
func (d *declared) signature() string {
	if d == nil {
		return ""
	}
	ts := make([]string, 0, len(d.iris)+len(d.short))
	for t := range d.iris {
		ts = append(ts, t)
	}
	for t := range d.short {
		ts = append(ts, "short:"+t)
	}
	slices.Sort(ts)
	return strings.Join(ts, "\n")
}

// fits reports whether e has a type the dataset declares.
func (d *declared) fits(e *ngsild.Entity) bool {
	if d == nil {
		return true
	}
	for _, t := range e.Types {
		if d.iris[t] || d.short[catalog.ShortType(t)] {
			return true
		}
	}
	return false
}

// split returns those of ents that fit and the ids of those that do not.
func (d *declared) split(ents []*ngsild.Entity) (fit []*ngsild.Entity, misfit []string) {
	n := 0
	for _, e := range ents {
		if d.fits(e) {
			n++
		}
	}
	if n == len(ents) {
		return ents, nil
	}
	fit = make([]*ngsild.Entity, 0, n)
	for _, e := range ents {
		if d.fits(e) {
			fit = append(fit, e)
		} else {
			misfit = append(misfit, e.ID)
		}
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
