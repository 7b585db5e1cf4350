package ngsild

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// temporalQuery is the temporal part of a GET /temporal/entities request
// (clause 6.18.3.2 and 4.11).
type temporalQuery struct {
	r            timeRange
	timeProperty string // observedAt (the key order), modifiedAt or createdAt
	lastN        int
	values       bool // options=temporalValues
	aggr         []string
	period       isoDuration
	anchor       time.Time // timeAt of timerel after or between: where aggregation periods start
	sysAttrs     bool
}

var aggrMethods = map[string]bool{
	"totalCount": true, "distinctCount": true, "sum": true, "avg": true, "min": true, "max": true,
	"stddev": true, "sumsq": true,
}

func parseTemporalQuery(q url.Values) (*temporalQuery, error) {
	tq := &temporalQuery{timeProperty: "observedAt"}
	parseTime := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, newError(BadRequestData, "invalid temporal query", "timerel needs %s", name)
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, newError(BadRequestData, "invalid temporal query", "%s %q is not an ISO 8601 date-time", name, v)
		}
		return t, nil
	}
	switch rel := q.Get("timerel"); rel {
	case "":
		if q.Get("timeAt") != "" || q.Get("endTimeAt") != "" {
			return nil, newError(BadRequestData, "invalid temporal query", "timeAt needs timerel")
		}
	case "before", "after", "between":
		at, err := parseTime("timeAt")
		if err != nil {
			return nil, err
		}
		switch rel {
		case "before":
			tq.r.to = at
		case "after":
			tq.r.from = at.Add(time.Nanosecond)
			tq.anchor = at
		case "between":
			end, err := parseTime("endTimeAt")
			if err != nil {
				return nil, err
			}
			if !end.After(at) {
				return nil, newError(BadRequestData, "invalid temporal query", "endTimeAt must be after timeAt")
			}
			tq.r.from, tq.r.to = at, end
			tq.anchor = at
		}
	default:
		return nil, newError(BadRequestData, "invalid temporal query", "timerel must be before, after or between, not %q", rel)
	}
	switch tp := q.Get("timeproperty"); tp {
	case "", "observedAt":
	case "modifiedAt", "createdAt":
		tq.timeProperty = tp
	default:
		return nil, newError(BadRequestData, "invalid temporal query", "timeproperty must be observedAt, modifiedAt or createdAt, not %q", tp)
	}
	if l := q.Get("lastN"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return nil, newError(BadRequestData, "invalid temporal query", "lastN must be a positive integer, got %q", l)
		}
		tq.lastN = n
	}
	aggregated := false
	opts := splitList(q.Get("options"))
	if f := q.Get("format"); f != "" {
		opts = append(opts, f) // format= names one representation, as options= does
	}
	for _, o := range opts {
		switch o {
		case "temporalValues", "simplified":
			tq.values = true
		case "sysAttrs":
			tq.sysAttrs = true
		case "aggregatedValues":
			aggregated = true
		case "normalized":
		default:
			return nil, newError(BadRequestData, "invalid temporal query",
				"unknown or unsupported option or format %q (normalized, temporalValues, simplified, aggregatedValues, sysAttrs)", o)
		}
	}
	for _, m := range splitList(q.Get("aggrMethods")) {
		if !aggrMethods[m] {
			return nil, newError(BadRequestData, "invalid temporal query", "unknown aggrMethods %q (totalCount, distinctCount, sum, avg, min, max, stddev, sumsq)", m)
		}
		tq.aggr = append(tq.aggr, m)
	}
	if aggregated && tq.aggr == nil {
		return nil, newError(BadRequestData, "invalid temporal query", "options=aggregatedValues needs aggrMethods")
	}
	if p := q.Get("aggrPeriodDuration"); p != "" {
		if tq.aggr == nil {
			return nil, newError(BadRequestData, "invalid temporal query", "aggrPeriodDuration needs aggrMethods")
		}
		d, err := parseISODuration(p)
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid temporal query", Detail: err.Error(), Err: err}
		}
		tq.period = d
	}
	if tq.values && tq.aggr != nil {
		return nil, newError(BadRequestData, "invalid temporal query", "options=temporalValues and aggrMethods exclude each other")
	}
	return tq, nil
}

// instances reads one attribute's history as tq selects it, oldest first.
func (s *Service) instances(tx *store.Txn, tq *temporalQuery, id, attr string) ([]Instance, error) {
	var out []Instance
	r := tq.r
	byKey := tq.timeProperty == "observedAt"
	if !byKey {
		r = timeRange{} // the key order is by instant, not by system time
	}
	code, ok := s.codes.lookup(attr)
	if !ok {
		return nil, nil
	}
	err := s.scanInstances(tx, id, code, r, func(in Instance) (bool, error) {
		if !byKey {
			t := in.Attr.ModifiedAt
			if tq.timeProperty == "createdAt" {
				t = in.Attr.CreatedAt
			}
			if (!tq.r.from.IsZero() && t.Before(tq.r.from)) || (!tq.r.to.IsZero() && !t.Before(tq.r.to)) {
				return true, nil
			}
			in.At = t
		}
		out = append(out, in)
		return tq.lastN <= 0 || len(out) < tq.lastN, nil
	})
	if !byKey {
		// System times are not the key order: sort, then keep the newest.
		sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// renderTemporal builds the temporal representation of one entity (clause
// 4.5.7; 4.5.9 simplified with temporalValues; 4.5.19 aggregated).
func (s *Service) renderTemporal(tx *store.Txn, id string, types []string, attrs map[string]bool, tq *temporalQuery, tc *termContext) (map[string]any, error) {
	out := map[string]any{"id": id}
	if len(types) > 0 {
		out["type"] = compactTypes(types, tc)
	}
	names, err := s.historyAttrs(tx, id)
	if err != nil {
		return nil, err
	}
	ro := renderOpts{sysAttrs: tq.sysAttrs}
	for _, attr := range names {
		if attrs != nil && !attrs[attr] {
			continue
		}
		insts, err := s.instances(tx, tq, id, attr)
		if err != nil {
			return nil, err
		}
		if len(insts) == 0 {
			continue
		}
		name := tc.compact(attr)
		switch {
		case tq.aggr != nil:
			out[name] = aggregate(insts, tq)
		case tq.values:
			out[name] = simplifiedTemporal(insts, tc)
		default:
			list := make([]any, len(insts))
			for i, in := range insts {
				m, _ := in.Attr.render(tc, ro).(map[string]any)
				m["instanceId"] = in.InstanceID
				list[i] = m
			}
			out[name] = list
		}
	}
	return out, nil
}

// simplifiedTemporal is the temporalValues form of an attribute's
// instances (clause 4.5.9): its content and time in pairs, under the
// plural of the member the content has ("values", "objects",
// "languageMaps", and for the types of clause 4.5.18 "vocabs",
// "valueLists", "objectLists", "jsons"), terms compacted with tc.
func simplifiedTemporal(insts []Instance, tc *termContext) map[string]any {
	typ := insts[len(insts)-1].Attr.Type
	key := "values"
	switch {
	case typ == Relationship:
		key = "objects"
	case typ == LanguageProperty:
		key = "languageMaps"
	case isExtended(typ):
		key = memberOf(typ) + "s"
	}
	pairs := make([]any, len(insts))
	for i, in := range insts {
		var v any
		switch {
		case typ == Relationship:
			v = in.Attr.Object
		case typ == LanguageProperty:
			v = in.Attr.LanguageMap
		case isExtended(typ) && in.Attr.Type == typ:
			_, v = in.Attr.renderContent(tc, true)
		default:
			v = in.Attr.Value
		}
		pairs[i] = []any{v, fmtTime(in.At)}
	}
	return map[string]any{"type": string(typ), key: pairs}
}

// aggregate computes tq.aggr over insts (oldest first) per period: the
// periods start at the query's timeAt (or the first instance) and each is
// aggrPeriodDuration long; without one, the whole range is one period.
// Periods without instances are left out.
func aggregate(insts []Instance, tq *temporalQuery) map[string]any {
	out := map[string]any{"type": string(insts[len(insts)-1].Attr.Type)}
	// timerel=after leaves an instance at timeAt out, but its periods
	// still start at timeAt, not a nanosecond later.
	start := tq.anchor
	if start.IsZero() || start.After(insts[0].At) {
		start = insts[0].At
	}
	results := map[string][]any{}
	for _, m := range tq.aggr {
		results[m] = []any{}
	}
	for i := 0; i < len(insts); {
		var end time.Time
		if tq.period.zero() {
			end = tq.r.to
			if end.IsZero() {
				end = insts[len(insts)-1].At.Add(time.Nanosecond)
			}
		} else {
			end = tq.period.addTo(start)
			if !end.After(start) {
				end = start.Add(time.Nanosecond)
			}
		}
		j := i
		for j < len(insts) && insts[j].At.Before(end) {
			j++
		}
		if j > i {
			for _, m := range tq.aggr {
				if v, ok := aggrValue(m, insts[i:j]); ok {
					results[m] = append(results[m], []any{v, fmtTime(start), fmtTime(end)})
				}
			}
		}
		i = j
		if i < len(insts) && !tq.period.zero() {
			// Jump straight to the period holding the next instance.
			if d := tq.period; d.years == 0 && d.months == 0 && d.days == 0 {
				// Fixed length: compute the period rather than stepping
				// through a long gap one tiny period at a time.
				k := insts[i].At.Sub(start) / d.clock
				start = start.Add(k * d.clock)
				continue
			}
			for !insts[i].At.Before(end) {
				start, end = end, tq.period.addTo(end)
			}
			continue
		}
		start = end
	}
	for m, list := range results {
		out[m] = list
	}
	return out
}

func aggrValue(method string, insts []Instance) (any, bool) {
	switch method {
	case "totalCount":
		return float64(len(insts)), true
	case "distinctCount":
		seen := map[string]bool{}
		for _, in := range insts {
			seen[string(appendValue(nil, instanceValue(in.Attr)))] = true
		}
		return float64(len(seen)), true
	}
	var sum, sumsq float64
	lo, hi := math.Inf(1), math.Inf(-1)
	n := 0
	for _, in := range insts {
		f, ok := in.Attr.Value.(float64)
		if !ok {
			continue
		}
		n++
		sum += f
		sumsq += f * f
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if n == 0 {
		return nil, false
	}
	switch method {
	case "sum":
		return sum, true
	case "sumsq":
		return sumsq, true
	case "avg":
		return sum / float64(n), true
	case "stddev":
		return stddev(insts, sum/float64(n), n), true
	case "min":
		return lo, true
	default:
		return hi, true
	}
}

// stddev is the sample standard deviation of the n numeric values of
// insts around their mean (as SQL's stddev, which temporal brokers built
// on PostgreSQL return), 0 for one value; computed from the deviations,
// not from sumsq, which loses the digits that matter when the values are
// large and close together.
func stddev(insts []Instance, mean float64, n int) float64 {
	if n < 2 {
		return 0
	}
	var ss float64
	for _, in := range insts {
		if f, ok := in.Attr.Value.(float64); ok {
			ss += (f - mean) * (f - mean)
		}
	}
	return math.Sqrt(ss / float64(n-1))
}

func instanceValue(a *Attribute) any {
	switch a.Type {
	case Relationship:
		return a.Object
	case LanguageProperty:
		return a.LanguageMap
	}
	return a.Value
}

// queryTemporal is GET /temporal/entities (clause 6.18.3.2): the entity
// restrictions (type, id, idPattern, attrs, q, geo-query) select entities
// by their current state, then each one's history is read.
func (s *Service) queryTemporal(w http.ResponseWriter, r *http.Request) error {
	acc, err := negotiate(r, false)
	if err != nil {
		return err
	}
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	return s.answerTemporal(w, queryParams(r), tc, acc, r.URL)
}

// postTemporalQuery is POST /temporal/entityOperations/query (clause
// 6.24.3.1): GET /temporal/entities with the restrictions and the
// temporalQ in the body (a Query, as POST /entityOperations/query takes);
// limit, offset, count, lastN and options stay in the URL.
func (s *Service) postTemporalQuery(w http.ResponseWriter, r *http.Request) error {
	acc, err := negotiate(r, false)
	if err != nil {
		return err
	}
	params, qb, tc, err := s.queryBodyParams(r)
	if err == nil {
		tc, err = s.linkable(tc, acc)
	}
	if err != nil {
		return err
	}
	for _, k := range []string{"timerel", "timeAt", "endTimeAt", "timeproperty"} {
		delete(params, k)
	}
	if t := qb.TemporalQ; t != nil {
		for k, v := range map[string]string{"timerel": t.Timerel, "timeAt": t.TimeAt, "endTimeAt": t.EndTimeAt, "timeproperty": t.Timeproperty} {
			if v != "" {
				params.Set(k, v)
			}
		}
	}
	return s.answerTemporal(w, params, tc, acc, nil)
}

// answerTemporal runs a temporal query given as GET /temporal/entities
// parameters and writes the result; with self (a GET's URL) its pages
// carry next and prev links.
func (s *Service) answerTemporal(w http.ResponseWriter, params url.Values, tc *termContext, acc accepted, self *url.URL) error {
	tq, err := parseTemporalQuery(params)
	if err != nil {
		return err
	}
	eq, err := s.parseEntityQuery(params, tc)
	if err != nil {
		return err
	}
	page, err := s.runPage(w.Header(), eq, self)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(page))
	err = s.db.View(func(tx *store.Txn) error {
		for _, e := range page {
			m, err := s.renderTemporal(tx, e.ID, e.Types, eq.attrs, tq, tc)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out, acc, tc)
	return nil
}

// retrieveTemporal is GET /temporal/entities/{id} (clause 6.19.3.1). The
// history of a deleted entity stays readable here (without its type) until
// DELETE /temporal/entities/{id}.
func (s *Service) retrieveTemporal(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	acc, err := negotiate(r, false)
	if err != nil {
		return err
	}
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	params := queryParams(r)
	tq, err := parseTemporalQuery(params)
	if err != nil {
		return err
	}
	var attrs map[string]bool
	if a := params.Get("attrs"); a != "" {
		attrs = map[string]bool{}
		for _, name := range splitList(a) {
			if err := checkName(name); err != nil {
				return err
			}
			attrs[tc.expand(name)] = true
		}
	}
	var out map[string]any
	err = s.db.View(func(tx *store.Txn) error {
		e, err := getEntity(tx, id)
		if err != nil {
			return err
		}
		var types []string
		if e != nil {
			types = e.Types
		} else if names, err := s.historyAttrs(tx, id); err != nil {
			return err
		} else if len(names) == 0 {
			return errNotFound(id)
		}
		out, err = s.renderTemporal(tx, id, types, attrs, tq, tc)
		if err == nil && e == nil && attrs == nil && len(out) <= 1 {
			// Marks of history that was deleted, and no entity: there is
			// no temporal representation left (only the id to show).
			return errNotFound(id)
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out, acc, tc)
	return nil
}

// createTemporal is POST /temporal/entities (clause 6.18.3.1): the body is
// an entity in temporal representation (each attribute a list of
// instances, usually with observedAt). Every instance goes into the
// history; the newest instance of each attribute (and datasetId) becomes
// the entity's current value, creating the entity when it is new (201) or
// updating it (204).
func (s *Service) createTemporal(w http.ResponseWriter, r *http.Request) error {
	return s.writeTemporal(w, r, "")
}

// appendTemporalAttrs is POST /temporal/entities/{id}/attrs (clause
// 6.20.3.1): the body's attribute instances are added to the history of
// an entity that exists (ResourceNotFound otherwise), as a POST of the
// whole entity to /temporal/entities adds them.
func (s *Service) appendTemporalAttrs(w http.ResponseWriter, r *http.Request) error {
	return s.writeTemporal(w, r, r.PathValue("id"))
}

// writeTemporal adds a temporal entity body's instances to its history
// and makes each attribute's newest instance its current value: for
// POST /temporal/entities (pathID empty: created if new), or for POST
// /temporal/entities/{pathID}/attrs (the entity must exist).
func (s *Service) writeTemporal(w http.ResponseWriter, r *http.Request, pathID string) error {
	body, ldJSON, err := readBody(r)
	if err != nil {
		return err
	}
	m, err := ParseEntity(body)
	if err != nil {
		return err
	}
	tc, err := s.bodyContext(r, m, ldJSON)
	if err != nil {
		return err
	}
	now := s.now()
	head := map[string]any{}
	if pathID != "" {
		if v, ok := m["id"]; ok && v != pathID {
			return newError(BadRequestData, "id mismatch", "the body's id %v differs from the URL's %q", v, pathID)
		}
		head["id"] = pathID
	} else {
		for _, k := range []string{"id", "@id", "type", "@type"} {
			if v, ok := m[k]; ok {
				head[k] = v
			}
		}
	}
	frag, err := decodeEntity(head, tc, now, pathID == "")
	if err != nil {
		return err
	}
	history := map[string][]*Attribute{}
	for name, v := range m {
		if entityReserved[name] {
			continue
		}
		if err := checkName(name); err != nil {
			return err
		}
		insts, err := decodeAttr(name, v, tc, now)
		if err != nil {
			return err
		}
		iri := tc.expand(name)
		history[iri] = append(history[iri], insts...)
		latest := map[string]*Attribute{}
		for _, a := range insts {
			if cur := latest[a.DatasetID]; cur == nil || !instantOf(a).Before(instantOf(cur)) {
				latest[a.DatasetID] = a
			}
		}
		for _, a := range latest {
			frag.Attrs[iri] = append(frag.Attrs[iri], a)
		}
	}
	ch := s.mergeChange(frag, mergeAppend, pathID == "", nil)
	ch.history = history
	// The history takes every instance; the current state only those
	// newer than what it holds (by observedAt, else modifiedAt): late
	// readings, back-filled history, must not replace the latest value.
	merge := ch.apply
	ch.apply = func(old *Entity) (*Entity, error) {
		if old != nil {
			dropOlderInstances(frag, old)
		}
		return merge(old)
	}
	out, err := s.commitOne(ch)
	if err != nil {
		return err
	}
	if out.created {
		w.Header().Set("Location", "/ngsi-ld/v1/temporal/entities/"+url.PathEscape(frag.ID))
		w.WriteHeader(http.StatusCreated)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dropOlderInstances removes from frag each attribute instance older than
// the instance of the same attribute and datasetId that cur holds.
func dropOlderInstances(frag, cur *Entity) {
	for iri, insts := range frag.Attrs {
		kept := insts[:0]
		for _, a := range insts {
			if held := findInstance(cur.Attrs[iri], a.DatasetID); held == nil || !instantOf(a).Before(instantOf(held)) {
				kept = append(kept, a)
			}
		}
		if len(kept) == 0 {
			delete(frag.Attrs, iri)
		} else {
			frag.Attrs[iri] = kept
		}
	}
}

// deleteTemporal is DELETE /temporal/entities/{id} (clause 6.19.3.2): it
// removes the entity's whole history (the current entity stays; DELETE
// /entities/{id} removes that).
func (s *Service) deleteTemporal(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	n, err := s.editHistory(r.Context(), id, time.Time{}, func(uint32, time.Time, int) bool { return false })
	if err != nil {
		return err
	}
	if n == 0 {
		// No history to delete (never any, or deleted before): a second
		// DELETE is not found, as for an entity.
		return newError(ResourceNotFound, "temporal representation not found", "entity %q has no history", id)
	}
	e, err := s.Entity(id)
	if err != nil {
		return err
	}
	if e == nil {
		// Nothing is left to list; a new entity with this id starts over.
		if err := s.deleteMarks(id); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteTemporalAttr is DELETE /temporal/entities/{id}/attrs/{attr}
// (clause 6.21.3.1): every instance of the attribute.
func (s *Service) deleteTemporalAttr(w http.ResponseWriter, r *http.Request) error {
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	id, attr := r.PathValue("id"), tc.expand(r.PathValue("attr"))
	n := 0
	if code, ok := s.codes.lookup(attr); ok {
		if n, err = s.editHistory(r.Context(), id, time.Time{}, func(c uint32, _ time.Time, _ int) bool { return c != code }); err != nil {
			return err
		}
	}
	if n == 0 {
		return newError(ResourceNotFound, "attribute not found", "entity %q has no history of %q", id, r.PathValue("attr"))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteTemporalInstance is DELETE
// /temporal/entities/{id}/attrs/{attr}/{instanceId} (clause 6.22.3.2).
func (s *Service) deleteTemporalInstance(w http.ResponseWriter, r *http.Request) error {
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	if err := s.editPathInstance(r, tc.expand(r.PathValue("attr")), dropInstance); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// editPathInstance runs edit (editInstance) on the instance a temporal
// instance operation names in its URL: instanceId of attribute attr
// (expanded) of entity id. An instanceId this node did not give out is
// BadRequestData, an instance that is not there ResourceNotFound.
func (s *Service) editPathInstance(r *http.Request, attr string, edit func(inst []byte, at time.Time) ([]byte, error)) error {
	id, instanceID := r.PathValue("id"), r.PathValue("instanceId")
	ref, ok := parseInstanceID(instanceID)
	if !ok {
		return newError(BadRequestData, "invalid instanceId", "%q is not an instanceId this node gave out", instanceID)
	}
	found := false
	if code, known := s.codes.lookup(attr); known && code == ref.code {
		var err error
		if found, err = s.editInstance(id, ref, edit); err != nil {
			return err
		}
	}
	if !found {
		return newError(ResourceNotFound, "instance not found", "no instance %q of %q in entity %q", instanceID, r.PathValue("attr"), id)
	}
	return nil
}

// patchTemporalInstance is PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}
// (clause 5.6.14): it corrects one instance of an attribute's history.
// The body is the instance's members, as for PATCH
// /entities/{id}/attrs/{attr}, or an entity fragment holding the
// attribute with one instance. The members given replace the instance's
// (patchInstance: sub-attributes not named stay). The instance keeps its
// place in time: an observedAt other than its instant, or another
// datasetId, is refused. Its modifiedAt becomes now when it is filed by
// observedAt; an instance filed by its modifiedAt keeps it. The entity's
// current value is not touched.
func (s *Service) patchTemporalInstance(w http.ResponseWriter, r *http.Request) error {
	attr, raw, tc, err := s.attrFragment(r)
	if err != nil {
		return err
	}
	if raw, err = instanceMembers(raw, attr, r.PathValue("id"), tc); err != nil {
		return err
	}
	if len(raw) == 0 {
		return newError(BadRequestData, "nothing to patch", "the body gives no member of the instance")
	}
	now := s.now()
	err = s.editPathInstance(r, attr, func(inst []byte, at time.Time) ([]byte, error) {
		old, err := decodeInstanceBytes(inst, at)
		if err != nil {
			return nil, err
		}
		n, err := patchInstance(old, tc.compact(attr), raw, tc, now)
		if err != nil {
			return nil, err
		}
		if n.DatasetID != old.DatasetID {
			return nil, newError(BadRequestData, "datasetId differs", "the instance has datasetId %q, the body %q; an instance keeps its dataset", old.DatasetID, n.DatasetID)
		}
		if n.ObservedAt != "" {
			if t, err := time.Parse(time.RFC3339Nano, n.ObservedAt); err != nil || !t.Equal(at) {
				return nil, newError(BadRequestData, "observedAt differs", "the instance is at %s, the body says %s: delete it and add one at the other time instead",
					at.Format(time.RFC3339Nano), n.ObservedAt)
			}
		} else {
			n.ModifiedAt = old.ModifiedAt // filed by it
		}
		return appendInstance(nil, n, at, true), nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// instanceMembers returns the members of the one instance a PATCH of a
// temporal instance gives: raw itself, or, when raw is an entity fragment
// holding attribute attr, that attribute's instance.
func instanceMembers(raw map[string]any, attr, id string, tc *termContext) (map[string]any, error) {
	var frag any
	for k, v := range raw {
		if k != "type" && !attrReserved[k] && tc.expand(k) == attr {
			frag = v
		}
	}
	if frag == nil {
		return raw, nil
	}
	for k, v := range raw {
		switch {
		case k == "id" || k == "@id":
			if v != id {
				return nil, newError(BadRequestData, "id mismatch", "the body's id %v differs from the URL's %q", v, id)
			}
		case entityReserved[k] || tc.expand(k) == attr:
		default:
			return nil, newError(BadRequestData, "other attribute", "the body gives %q besides the instance patched", k)
		}
	}
	if list, ok := frag.([]any); ok {
		if len(list) != 1 {
			return nil, newError(BadRequestData, "one instance", "the body gives %d instances; one instance is patched", len(list))
		}
		frag = list[0]
	}
	m, ok := frag.(map[string]any)
	if !ok {
		return nil, newError(BadRequestData, "invalid instance", "the attribute's instance must be a JSON object")
	}
	return m, nil
}

// startRetention trims history every RetentionInterval until ctx ends.
func (s *Service) startRetention(ctx context.Context) {
	if len(s.opts.Retention) == 0 {
		return
	}
	every := s.opts.RetentionInterval
	if every <= 0 {
		every = time.Hour
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := s.TrimHistory(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Error("trim attribute history", "err", err)
			} else if n > 0 {
				s.log.Info("trimmed attribute history", "instances", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
