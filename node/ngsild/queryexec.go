package ngsild

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"sort"

	"github.com/golang/geo/s2"

	"github.com/mimnode/mimnode/node/ngsild/query"
	"github.com/mimnode/mimnode/node/store"
)

// entityQuery is a parsed GET /entities request (clause 5.7.2) with names
// expanded.
type entityQuery struct {
	ids       map[string]bool
	idPattern *regexp.Regexp
	types     []string             // any of these (for a type selection: its Any)
	typeSel   *query.TypeSelection // set when types alone do not say it (A;B)
	scopeQ    *query.ScopeQuery
	attrs     map[string]bool
	q         *query.Q
	geo       *query.Geo
	geoIRI    string
	limit     int
	offset    int
	count     bool
}

// match reports whether e satisfies every restriction of eq.
func (eq *entityQuery) match(e *Entity) bool {
	if eq.ids != nil && !eq.ids[e.ID] {
		return false
	}
	if eq.idPattern != nil && !eq.idPattern.MatchString(e.ID) {
		return false
	}
	if len(eq.types) > 0 {
		ok := false
		for _, t := range eq.types {
			if contains(e.Types, t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if eq.typeSel != nil && !eq.typeSel.Match(e.Types) {
		return false
	}
	if eq.scopeQ != nil && !eq.scopeQ.Match(e.Scope) {
		return false
	}
	if eq.attrs != nil {
		// Entities with none of the requested attributes do not match
		// (clause 6.4.3.2, attrs).
		ok := false
		for a := range eq.attrs {
			if _, has := e.Attrs[a]; has {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if eq.q != nil && !eq.q.Match(e) {
		return false
	}
	if eq.geo != nil {
		ok := false
		for _, a := range e.Attrs[eq.geoIRI] {
			if a.Type != GeoProperty {
				continue
			}
			m, _ := a.Value.(map[string]any)
			g, err := geometryFromJSON(m)
			if err == nil && eq.geo.Match(g) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// candidateCap bounds how many ids a source collects while the planner
// looks for the most selective one.
const candidateCap = 4096

// maxProbed bounds how many candidates the planner intersects with the
// other sources by key probes when the query does not count its matches.
const maxProbed = 1024

// source yields candidate entity ids from one index.
type source struct {
	// scan lists the ids; max < 0 means no limit, complete is false when it
	// stopped at max.
	scan func(tx *store.Txn, max int) (ids []string, complete bool, err error)
	// probe, when set, tells whether one entity is in this source by key
	// lookups, which is far cheaper than loading the entity: the planner
	// intersects the smallest source with the others this way.
	probe func(tx *store.Txn, id string) (bool, error)
}

// plan lists the index sources that can answer eq, most selective kinds
// first; nil means a full scan.
// useValues says whether an attribute's value index is complete; plan
// passes the others to requestIndex. code gives the codes of type and
// GeoProperty IRIs in index keys (attrCodes.codeOf).
func (eq *entityQuery) plan(useValues func(string) bool, request func(string), code func(iri string) uint32) []source {
	var srcs []source
	if eq.q != nil {
		// Bounds on the same attribute (a>=1;a<5) narrow one range scan.
		ranges := map[string]*query.Term{}
		var order []string
		for _, t := range eq.q.IndexTerms() {
			if !useValues(t.Path.Attrs[0]) {
				request(t.Path.Attrs[0])
				continue
			}
			if t.Op == "==" {
				if src := valueSource(t, code); src != nil {
					srcs = append(srcs, *src)
				}
				continue
			}
			lo, loOK := t.Min.(float64)
			hi, hiOK := t.Max.(float64)
			if (t.Min != nil && !loOK) || (t.Max != nil && !hiOK) {
				continue
			}
			attr := t.Path.Attrs[0]
			r := ranges[attr]
			if r == nil {
				r = &query.Term{Path: t.Path, Op: ".."}
				ranges[attr] = r
				order = append(order, attr)
			}
			if loOK {
				if cur, ok := r.Min.(float64); !ok || lo > cur {
					r.Min = lo
				}
			}
			if hiOK {
				if cur, ok := r.Max.(float64); !ok || hi < cur {
					r.Max = hi
				}
			}
		}
		for _, attr := range order {
			if src := valueSource(*ranges[attr], code); src != nil {
				srcs = append(srcs, *src)
			}
		}
	}
	if eq.scopeQ != nil {
		srcs = append(srcs, scopeSource(eq.scopeQ))
	}
	if eq.geo != nil {
		if b, ok := eq.geo.Bound(); ok {
			rc := &s2.RegionCoverer{MinLevel: 0, MaxLevel: geoMaxLevel, MaxCells: 12}
			cells := rc.Covering(boundToRect(b))
			srcs = append(srcs, source{scan: geoSource(code(eq.geoIRI), cells)})
		}
	}
	if len(eq.types) > 0 {
		types := eq.types
		probe := func(tx *store.Txn, id string) (bool, error) {
			for _, t := range types {
				if ok, err := tx.Has(typeKey(code(t), id)); ok || err != nil {
					return ok, err
				}
			}
			return false, nil
		}
		prefixes := make([][]byte, len(types))
		for i, t := range types {
			prefixes[i] = typePrefix(code(t))
		}
		srcs = append(srcs, source{probe: probe, scan: func(tx *store.Txn, max int) ([]string, bool, error) {
			return prefixScan(tx, prefixes, max, func(i int, k []byte) (string, []byte) { return string(k[len(prefixes[i]):]), nil })
		}})
	}
	return srcs
}

// errCapped stops an index scan that reached its cap.
var errCapped = store.ErrStop

// prefixScan lists the ids of the index keys under each prefix in turn.
// visit gives the id of key k found under prefixes[i] ("" skips the key),
// or a key to go on from instead (seek, after k: an index scan that knows
// where its next match can be). max < 0 means no limit; complete is false
// when the scan stopped at max.
func prefixScan(tx *store.Txn, prefixes [][]byte, max int, visit func(i int, k []byte) (id string, seek []byte)) (ids []string, complete bool, err error) {
	for i, pre := range prefixes {
		for from := pre; from != nil; {
			start, capped := from, false // Iterate reports a stop as success
			from = nil
			err := tx.Iterate(store.IterOptions{Prefix: pre, Start: start, KeysOnly: true}, func(k, _ []byte) error {
				x, seek := visit(i, k)
				switch {
				case seek != nil:
					from = seek
					return store.ErrStop
				case x == "":
					return nil
				case max >= 0 && len(ids) >= max:
					capped = true
					return errCapped
				}
				ids = append(ids, x)
				return nil
			})
			if err != nil {
				return nil, false, err
			}
			if capped {
				return ids, false, nil
			}
		}
	}
	return ids, true, nil
}

// valueSource answers one q index term from the value index.
// code gives attribute codes (attrCodes.codeOf).
func valueSource(t query.Term, code func(iri string) uint32) *source {
	attr := t.Path.Attrs[0]
	pre := valuePrefix(code(attr))
	type span struct{ from, to []byte } // to is exclusive
	var spans []span
	var exact [][]byte // for probing: the full key but the id, when every value is exact
	switch t.Op {
	case "==":
		for _, v := range t.Values {
			switch v.(type) {
			case float64, string, bool:
			default:
				return nil
			}
			k, ok := encodeIndexValue(bytes.Clone(pre), v)
			if !ok {
				return nil
			}
			if s, isStr := v.(string); !isStr || len(s) <= maxIndexedString {
				k = append(k, 0) // exact value, not a prefix
				exact = append(exact, k)
			}
			spans = append(spans, span{k, prefixEnd(k)})
		}
	case "..", ">", ">=", "<", "<=":
		lo, hi := t.Min, t.Max
		from := append(bytes.Clone(pre), 'n')
		to := append(bytes.Clone(pre), 'n'+1)
		if lo != nil {
			f, ok := lo.(float64)
			if !ok {
				return nil
			}
			from = binary.BigEndian.AppendUint64(append(bytes.Clone(pre), 'n'), sortableFloat(f))
		}
		if hi != nil {
			f, ok := hi.(float64)
			if !ok {
				return nil
			}
			to = prefixEnd(binary.BigEndian.AppendUint64(append(bytes.Clone(pre), 'n'), sortableFloat(f)))
		}
		spans = append(spans, span{from, to})
	default:
		return nil
	}
	src := &source{}
	if len(exact) == len(spans) && t.Op == "==" {
		src.probe = func(tx *store.Txn, id string) (bool, error) {
			for _, k := range exact {
				if ok, err := tx.Has(append(bytes.Clone(k), id...)); ok || err != nil {
					return ok, err
				}
			}
			return false, nil
		}
	}
	src.scan = func(tx *store.Txn, max int) ([]string, bool, error) {
		var ids []string
		for _, sp := range spans {
			err := tx.Iterate(store.IterOptions{Prefix: pre, Start: sp.from, KeysOnly: true}, func(k, _ []byte) error {
				if bytes.Compare(k, sp.to) >= 0 {
					return store.ErrStop
				}
				if max >= 0 && len(ids) >= max {
					return errCapped
				}
				ids = append(ids, idAfterLastNUL(k))
				return nil
			})
			if err != nil {
				return nil, false, err
			}
			if max >= 0 && len(ids) >= max {
				return ids, false, nil
			}
		}
		return ids, true, nil
	}
	return src
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return append(end, 0xff)
}

// geoSource finds entities whose indexed cells intersect the query cells:
// stored cells inside a query cell by range scan, stored (coarser) cells
// containing it by exact lookup of its ancestors.
func geoSource(attr uint32, cells s2.CellUnion) func(*store.Txn, int) ([]string, bool, error) {
	pre := geoPrefix(attr)
	return func(tx *store.Txn, max int) ([]string, bool, error) {
		var ids []string
		add := func(k []byte) error {
			if max >= 0 && len(ids) >= max {
				return errCapped
			}
			ids = append(ids, string(k[len(pre)+8:]))
			return nil
		}
		ancestors := map[s2.CellID]bool{}
		for _, c := range cells {
			from := binary.BigEndian.AppendUint64(bytes.Clone(pre), uint64(c.RangeMin()))
			to := binary.BigEndian.AppendUint64(bytes.Clone(pre), uint64(c.RangeMax()))
			err := tx.Iterate(store.IterOptions{Prefix: pre, Start: from, KeysOnly: true}, func(k, _ []byte) error {
				if len(k) < len(pre)+8 || bytes.Compare(k[:len(pre)+8], to) > 0 {
					return store.ErrStop
				}
				return add(k)
			})
			if err != nil {
				return nil, false, err
			}
			for l := geoMinLevel; l < c.Level(); l++ {
				ancestors[c.Parent(l)] = true
			}
		}
		for a := range ancestors {
			if cells.ContainsCellID(a) {
				continue // already scanned as part of a range
			}
			p := binary.BigEndian.AppendUint64(bytes.Clone(pre), uint64(a))
			err := tx.Iterate(store.IterOptions{Prefix: p, KeysOnly: true}, func(k, _ []byte) error { return add(k) })
			if err != nil {
				return nil, false, err
			}
		}
		if max >= 0 && len(ids) >= max {
			return ids, false, nil
		}
		return ids, true, nil
	}
}

// testHookQuerySnapshot, when set by a test, runs in run once its
// snapshot is open.
var testHookQuerySnapshot func()

// run executes eq: it picks the most selective index, loads the candidates
// in id order and filters them. total counts every match (when eq.count, or
// when every candidate had to be checked anyway); otherwise it is -1.
func (s *Service) run(eq *entityQuery) (page []*Entity, total int, err error) {
	total = -1
	// The value indexes complete before the snapshot opens: one marked
	// ready while View starts may miss keys its backfill wrote after.
	ready := s.vidx.ready.Load()
	err = s.db.View(func(tx *store.Txn) error {
		if testHookQuerySnapshot != nil {
			testHookQuerySnapshot()
		}
		ids, err := s.candidates(tx, eq, func(attr string) bool { return (*ready)[attr] })
		if err != nil {
			return err
		}
		matched := 0
		want := eq.offset + eq.limit
		visit := func(e *Entity) bool {
			if !eq.match(e) {
				return true
			}
			if matched >= eq.offset && matched < want {
				page = append(page, e)
			}
			matched++
			return eq.count || matched < want
		}
		if ids == nil {
			done := true
			err := tx.Iterate(store.IterOptions{Prefix: []byte(keyEntity)}, func(k, v []byte) error {
				e, err := entityAt(tx, string(k[len(keyEntity):]), v)
				if err != nil {
					return err
				}
				if !visit(e) {
					done = false
					return store.ErrStop
				}
				return nil
			})
			if err != nil {
				return err
			}
			if done || eq.count {
				total = matched
			}
			return nil
		}
		for i, id := range ids {
			if i > 0 && ids[i-1] == id {
				continue
			}
			e, err := getEntity(tx, id)
			if err != nil {
				return err
			}
			if e == nil {
				continue
			}
			if !visit(e) {
				if eq.count {
					total = matched
				}
				return nil
			}
		}
		total = matched
		return nil
	})
	return page, total, err
}

// candidates returns the sorted candidate ids, or nil for a full scan.
// ready says whether an attribute's value index was complete before tx
// began.
func (s *Service) candidates(tx *store.Txn, eq *entityQuery, ready func(string) bool) ([]string, error) {
	if eq.ids != nil {
		ids := make([]string, 0, len(eq.ids))
		for id := range eq.ids {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return ids, nil
	}
	srcs := eq.plan(ready, s.requestIndex, s.codes.codeOf)
	if len(srcs) == 0 {
		return nil, nil
	}
	var best []string
	bestIdx := -1
	for i, src := range srcs {
		ids, complete, err := src.scan(tx, candidateCap)
		if err != nil {
			return nil, err
		}
		if complete && (bestIdx < 0 || len(ids) < len(best)) {
			best, bestIdx = ids, i
			if len(best) <= 64 {
				break
			}
		}
	}
	if bestIdx < 0 {
		bestIdx = 0
		ids, _, err := srcs[0].scan(tx, -1)
		if err != nil {
			return nil, err
		}
		best = ids
	}
	for i, src := range srcs {
		if i == bestIdx || src.probe == nil {
			continue
		}
		if len(best) > maxProbed && !eq.count {
			// Loading stops at the page's end, and match checks every
			// restriction: probing thousands of candidates first costs
			// more than it saves.
			break
		}
		kept := best[:0]
		for _, id := range best {
			ok, err := src.probe(tx, id)
			if err != nil {
				return nil, err
			}
			if ok {
				kept = append(kept, id)
			}
		}
		best = kept
	}
	if best == nil {
		best = []string{}
	}
	sort.Strings(best)
	return best, nil
}

var _ query.Entity = (*Entity)(nil)

// Values implements query.Entity, so a q expression parsed with expanded
// names (query.Parse) can be matched against a stored entity, as the
// subscription feature does with each Change.
func (e *Entity) Values(p query.Path) []any {
	if len(p.Attrs) == 0 {
		return nil
	}
	insts := e.Attrs[p.Attrs[0]]
	last := len(p.Attrs) - 1
	for i := 1; i <= last && len(insts) > 0; i++ {
		name := p.Attrs[i]
		if i == last {
			if meta, ok := metadataValues(insts, name); ok {
				return meta
			}
		}
		var next []*Attribute
		for _, a := range insts {
			next = append(next, a.Sub[name]...)
		}
		insts = next
	}
	var out []any
	for _, a := range insts {
		v := a.simpleValue()
		if list, ok := v.([]any); ok && (a.Type == Relationship || a.Type == ListRelationship) {
			out = append(out, list...)
			continue
		}
		if m, ok := v.(map[string]any); ok && a.Type == Property {
			if inner, ok := m["@value"]; ok {
				v = inner
			}
		}
		if len(p.Keys) > 0 {
			var ok bool
			if v, ok = query.LookupKeys(v, p.Keys); !ok {
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

func metadataValues(insts []*Attribute, name string) ([]any, bool) {
	var out []any
	for _, a := range insts {
		switch name {
		case "observedAt":
			if a.ObservedAt != "" {
				out = append(out, a.ObservedAt)
			}
		case "unitCode":
			if a.UnitCode != "" {
				out = append(out, a.UnitCode)
			}
		case "datasetId":
			if a.DatasetID != "" {
				out = append(out, a.DatasetID)
			}
		case "createdAt":
			out = append(out, fmtTime(a.CreatedAt))
		case "modifiedAt":
			out = append(out, fmtTime(a.ModifiedAt))
		default:
			return nil, false
		}
	}
	return out, true
}
