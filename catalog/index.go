package catalog

import (
	"cmp"
	"container/heap"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mathbits "math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/paulmach/orb"
)

// Index is a node's federated index: the latest record of every dataset the
// node may see, from every publisher, searchable by text and filters. It
// lives in memory; the node persists the records it feeds in (Put) and
// feeds them all in again on start.
//
// Search may run concurrently with other Searches; Put and Remove need
// exclusive access (the node guards the Index with a sync.RWMutex).
type Index struct {
	// One slot per dataset; slots of removed datasets are reused. The
	// per-slot columns below are kept apart from the records so that a
	// scan over 100,000 datasets touches a few compact arrays only.
	recs   []Record
	terms  [][]string // per slot: distinct terms, to count its postings dead again
	gen    []uint32   // per slot: bumped when the slot is emptied, which kills its postings
	facets [][]string // per slot: facet keys, to clear its bits again
	lens   []float32  // per slot: weighted number of terms
	bounds []orb.Bound
	spat   bitset  // slots with a spatial coverage
	mod    []int64 // per slot: Modified, Unix nanoseconds, for ordering
	alive  bitset

	byKey    map[Key]uint32
	byID     map[string][]uint32 // dataset id → its slots (one per publisher that uses the id)
	retired  map[Key]uint64      // seq of the retirement, so that an older live record arriving late is ignored
	free     []uint32
	postings map[string]*postingList
	facet    map[string]bitset // typeFacet, "h:"+theme, "p:"+peer, "n:"+name, licenceFacet
	live     int
	totalLen float64 // sum of the weighted lengths of live slots

	scratch sync.Pool // *[]float32, one score per slot
}

type posting struct {
	doc uint32
	gen uint32  // the slot's gen when the posting was made; stale once it differs
	tf  float32 // weighted term frequency
}

// postingList is one term's postings. Removing a dataset does not search
// the lists of its terms (some hold most of the index): its postings go
// stale with the slot's generation and are dropped when stale ones make up
// half of a list.
type postingList struct {
	ps   []posting
	dead int
}

// bitset is a set of slots.
type bitset []uint64

func (b *bitset) set(i uint32) {
	w := int(i / 64)
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (i % 64)
}

func (b bitset) clear(i uint32) {
	if w := int(i / 64); w < len(b) {
		b[w] &^= 1 << (i % 64)
	}
}

func (b bitset) has(i uint32) bool {
	w := int(i / 64)
	return w < len(b) && b[w]&(1<<(i%64)) != 0
}

// Field weights in the text score: a word in the title counts three times,
// a keyword twice, a word of the description, entity type or theme once.
const (
	weightTitle   = 3
	weightKeyword = 2
	weightOther   = 1
)

// BM25 parameters (the usual Robertson/Zaragoza values).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{byKey: map[Key]uint32{}, byID: map[string][]uint32{}, retired: map[Key]uint64{}, postings: map[string]*postingList{}, facet: map[string]bitset{}}
}

// Len returns the number of datasets in the index.
func (x *Index) Len() int { return x.live }

// Seq returns the sequence number of the record held for key (a retired
// dataset's retirement included); ok is false if none was ever put.
func (x *Index) Seq(k Key) (seq uint64, ok bool) {
	if i, ok := x.byKey[k]; ok {
		return x.recs[i].Seq, true
	}
	seq, ok = x.retired[k]
	return seq, ok
}

// Get returns the record held for key.
func (x *Index) Get(k Key) (Record, bool) {
	if i, ok := x.byKey[k]; ok {
		return x.recs[i], true
	}
	return Record{}, false
}

// ByID returns the live records of every publisher whose dataset has this
// id, ordered by publisher; usually one. It takes time independent of the
// size of the index.
func (x *Index) ByID(id string) []Record {
	slots := x.byID[id]
	out := make([]Record, 0, len(slots))
	for _, i := range slots {
		out = append(out, x.recs[i])
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Publisher, b.Publisher) })
	return out
}

// Put adds a record the node has verified (Record.Verify) or replaces the
// one it holds for the same dataset when r's Seq is higher; a retired record
// removes the dataset. It reports whether the index changed: false for a
// record that is not newer than the one held.
func (x *Index) Put(r Record) bool {
	k := r.Key()
	if seq, ok := x.Seq(k); ok && seq >= r.Seq {
		return false
	}
	x.remove(k)
	if r.Retired {
		x.retired[k] = r.Seq
		return true
	}
	delete(x.retired, k)
	x.add(r)
	return true
}

// Remove drops a dataset (e.g. its publisher left the federation) and
// forgets its sequence number, so any later record of it is taken.
func (x *Index) Remove(k Key) bool {
	delete(x.retired, k)
	return x.remove(k)
}

// Replace makes the index hold exactly the given records of publisher:
// every one is Put, and the publisher's other datasets are removed. The
// node calls it with the complete answer to ChangesRequest{Since: 0} (all
// pages): datasets the publisher has since hidden from this node (made
// restricted or private, or whose offers it may no longer see) are not in
// any changes answer, and this is how they leave the index. It returns the
// keys of the datasets removed, for the node to forget them too.
func (x *Index) Replace(publisher string, records []Record) (removed []Key) {
	keep := make(map[Key]bool, len(records))
	for _, r := range records {
		if r.Publisher == publisher {
			x.Put(r)
			keep[r.Key()] = true
		}
	}
	var drop []Key
	for w, bits := range x.facet["p:"+publisher] {
		for bits != 0 {
			i := uint32(w*64 + mathbits.TrailingZeros64(bits))
			bits &= bits - 1
			if k := x.recs[i].Key(); !keep[k] {
				drop = append(drop, k)
			}
		}
	}
	for _, k := range drop {
		x.remove(k)
	}
	return drop
}

func (x *Index) remove(k Key) bool {
	i, ok := x.byKey[k]
	if !ok {
		return false
	}
	x.gen[i]++
	for _, t := range x.terms[i] {
		pl := x.postings[t]
		pl.dead++
		if pl.dead*2 < len(pl.ps) {
			continue
		}
		pl.ps = slices.DeleteFunc(pl.ps, func(p posting) bool { return p.gen != x.gen[p.doc] })
		pl.dead = 0
		if len(pl.ps) == 0 {
			delete(x.postings, t)
		}
	}
	for _, f := range x.facets[i] {
		x.facet[f].clear(i)
	}
	x.totalLen -= float64(x.lens[i])
	x.live--
	x.recs[i], x.terms[i], x.facets[i], x.lens[i], x.mod[i] = Record{}, nil, nil, 0, 0
	x.alive.clear(i)
	x.spat.clear(i)
	delete(x.byKey, k)
	if rest := slices.DeleteFunc(x.byID[k.ID], func(j uint32) bool { return j == i }); len(rest) > 0 {
		x.byID[k.ID] = rest
	} else {
		delete(x.byID, k.ID)
	}
	x.free = append(x.free, i)
	return true
}

// typeFacet and licenceFacet are the index keys of an entity type (an
// IRI or its short name) and a licence (an SPDX id or an IRI): in lower
// case, as themes and publisher names are matched, so that a search for
// airqualityobserved or cc-by-4.0 finds what AirQualityObserved and
// CC-BY-4.0 find.
func typeFacet(t string) string { return "t:" + strings.ToLower(t) }

func licenceFacet(l string) string {
	if id, ok := spdxByLower[strings.ToLower(l)]; ok {
		l = id
	}
	return "l:" + strings.ToLower(LicenceIRI(l))
}

// spdxByLower maps the licences' SPDX ids in lower case to their spelling.
var spdxByLower = func() map[string]string {
	m := make(map[string]string, len(licences))
	for id := range licences {
		m[strings.ToLower(id)] = id
	}
	return m
}()

func themeCode(t string) string {
	return strings.ToUpper(strings.TrimPrefix(t, ThemeIRI))
}

func (x *Index) add(r Record) {
	tf := map[string]float32{}
	var length float32
	addText := func(s string, w float32) {
		for _, t := range tokens(s) {
			tf[t] += w
			length += w
		}
	}
	ds := r.Dataset
	addText(ds.Title, weightTitle)
	for _, kw := range ds.Keywords {
		addText(kw, weightKeyword)
	}
	addText(ds.Description, weightOther)
	facets := []string{"p:" + r.Publisher, licenceFacet(ds.License)}
	if ds.Publisher.Name != "" {
		facets = append(facets, "n:"+strings.ToLower(ds.Publisher.Name))
	}
	for _, t := range ds.EntityTypes {
		short := ShortType(t)
		facets = append(facets, typeFacet(t), typeFacet(short))
		addText(splitCamel(short), weightOther)
	}
	for _, th := range ds.Themes {
		facets = append(facets, "h:"+themeCode(th))
		addText(Themes[th], weightOther)
	}
	slices.Sort(facets)
	facets = slices.Compact(facets)
	terms := make([]string, 0, len(tf))
	for t := range tf {
		terms = append(terms, t)
	}
	slices.Sort(terms)

	var i uint32
	if n := len(x.free); n > 0 {
		i = x.free[n-1]
		x.free = x.free[:n-1]
	} else {
		i = uint32(len(x.recs))
		x.recs = append(x.recs, Record{})
		x.terms = append(x.terms, nil)
		x.facets = append(x.facets, nil)
		x.lens = append(x.lens, 0)
		x.gen = append(x.gen, 0)
		x.bounds = append(x.bounds, orb.Bound{})
		x.mod = append(x.mod, 0)
	}
	x.recs[i], x.terms[i], x.facets[i], x.lens[i] = r, terms, facets, length
	x.mod[i] = ds.Modified.UnixNano()
	if b, ok := ds.Bound(); ok {
		x.bounds[i] = b
		x.spat.set(i)
	}
	x.alive.set(i)
	for _, f := range facets {
		b := x.facet[f]
		b.set(i)
		x.facet[f] = b
	}
	for _, t := range terms {
		pl := x.postings[t]
		if pl == nil {
			pl = &postingList{}
			x.postings[t] = pl
		}
		pl.ps = append(pl.ps, posting{doc: i, gen: x.gen[i], tf: tf[t]})
	}
	x.byKey[r.Key()] = i
	x.byID[r.Dataset.ID] = append(x.byID[r.Dataset.ID], i)
	x.live++
	x.totalLen += float64(length)
}

// Query is a catalogue search. Every non-empty filter must match; Text
// ranks the results (BM25 over title, keywords, description, entity types
// and themes) and at least one of its words must occur.
type Query struct {
	Text      string     `json:"text,omitempty"`
	Type      string     `json:"type,omitempty"`      // entity type IRI or its short name (AirQualityObserved)
	Theme     string     `json:"theme,omitempty"`     // DCAT-AP theme code (ENVI)
	Publisher string     `json:"publisher,omitempty"` // peer ID or publisher name
	License   string     `json:"license,omitempty"`   // SPDX id or licence IRI
	BBox      *orb.Bound `json:"-"`                   // spatial coverage must intersect it
	Limit     int        `json:"limit,omitempty"`     // 0: DefaultLimit
	Offset    int        `json:"offset,omitempty"`
}

type queryJSON struct {
	Text      string      `json:"text,omitempty"`
	Type      string      `json:"type,omitempty"`
	Theme     string      `json:"theme,omitempty"`
	Publisher string      `json:"publisher,omitempty"`
	License   string      `json:"license,omitempty"`
	BBox      *[4]float64 `json:"bbox,omitempty"` // minLon, minLat, maxLon, maxLat
	Limit     int         `json:"limit,omitempty"`
	Offset    int         `json:"offset,omitempty"`
}

// MarshalJSON writes the query as a DSP catalogue filter item, the bbox as
// [minLon, minLat, maxLon, maxLat].
func (q Query) MarshalJSON() ([]byte, error) {
	w := queryJSON{Text: q.Text, Type: q.Type, Theme: q.Theme, Publisher: q.Publisher, License: q.License, Limit: q.Limit, Offset: q.Offset}
	if q.BBox != nil {
		w.BBox = &[4]float64{q.BBox.Min[0], q.BBox.Min[1], q.BBox.Max[0], q.BBox.Max[1]}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes; unknown fields are errors.
func (q *Query) UnmarshalJSON(b []byte) error {
	var w queryJSON
	if err := strictUnmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrBadQuery, err)
	}
	*q = Query{Text: w.Text, Type: w.Type, Theme: w.Theme, Publisher: w.Publisher, License: w.License, Limit: w.Limit, Offset: w.Offset}
	if w.BBox != nil {
		q.BBox = &orb.Bound{Min: orb.Point{w.BBox[0], w.BBox[1]}, Max: orb.Point{w.BBox[2], w.BBox[3]}}
	}
	return nil
}

// Result limits.
const (
	DefaultLimit = 20
	MaxLimit     = 1000
)

// ErrBadQuery means a query's limit, offset or bbox is out of range.
var ErrBadQuery = errors.New("catalog: bad search query")

// Hit is one search result. Its Record shares memory with the index: read
// it, do not modify it.
type Hit struct {
	Record Record
	Score  float64 // text relevance; 0 without text
}

// Result is a page of search results.
type Result struct {
	Total int // datasets matching, over all pages
	Hits  []Hit
}

// ParseBBox reads "minLon,minLat,maxLon,maxLat" (EPSG:4326).
func ParseBBox(s string) (orb.Bound, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return orb.Bound{}, fmt.Errorf("%w: bbox %q is not minLon,minLat,maxLon,maxLat", ErrBadQuery, s)
	}
	var v [4]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return orb.Bound{}, fmt.Errorf("%w: bbox %q: %q is not a number", ErrBadQuery, s, p)
		}
		v[i] = f
	}
	b := orb.Bound{Min: orb.Point{v[0], v[1]}, Max: orb.Point{v[2], v[3]}}
	if err := checkBBox(b); err != nil {
		return orb.Bound{}, err
	}
	return b, nil
}

func checkBBox(b orb.Bound) error {
	in := func(p orb.Point) bool { return p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90 }
	if !in(b.Min) || !in(b.Max) {
		return fmt.Errorf("%w: bbox %v is outside EPSG:4326", ErrBadQuery, b)
	}
	if b.Min[0] > b.Max[0] || b.Min[1] > b.Max[1] {
		return fmt.Errorf("%w: bbox minimum %v is above its maximum %v", ErrBadQuery, b.Min, b.Max)
	}
	return nil
}

func (q Query) check() (Query, error) {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return q, fmt.Errorf("%w: limit %d is not between 0 and %d", ErrBadQuery, q.Limit, MaxLimit)
	}
	if q.Offset < 0 {
		return q, fmt.Errorf("%w: offset %d is negative", ErrBadQuery, q.Offset)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.BBox != nil {
		if err := checkBBox(*q.BBox); err != nil {
			return q, err
		}
	}
	return q, nil
}

// filter returns the slots that pass the exact filters other than the bbox
// (nil: no such filter, every live slot passes).
func (x *Index) filter(q *Query) (bitset, bool) {
	var sets []bitset
	if q.Type != "" {
		sets = append(sets, x.facet[typeFacet(q.Type)])
	}
	if q.Theme != "" {
		sets = append(sets, x.facet["h:"+themeCode(q.Theme)])
	}
	if q.License != "" {
		sets = append(sets, x.facet[licenceFacet(q.License)])
	}
	if q.Publisher != "" {
		byID, byName := x.facet["p:"+q.Publisher], x.facet["n:"+strings.ToLower(q.Publisher)]
		u := make(bitset, max(len(byID), len(byName)))
		for w := range u {
			if w < len(byID) {
				u[w] |= byID[w]
			}
			if w < len(byName) {
				u[w] |= byName[w]
			}
		}
		sets = append(sets, u)
	}
	if len(sets) == 0 {
		return nil, false
	}
	out := slices.Clone(sets[0])
	for _, s := range sets[1:] {
		out = out[:min(len(out), len(s))]
		for w := range out {
			out[w] &= s[w]
		}
	}
	return out, true
}

func (x *Index) inBBox(q *Query, i uint32) bool {
	if q.BBox == nil {
		return true
	}
	b, r := &x.bounds[i], q.BBox
	return x.spat.has(i) && b.Min[0] <= r.Max[0] && b.Max[0] >= r.Min[0] && b.Min[1] <= r.Max[1] && b.Max[1] >= r.Min[1]
}

// Search answers a query from the index alone.
func (x *Index) Search(q Query) (Result, error) {
	q, err := q.check()
	if err != nil {
		return Result{}, err
	}
	k := q.Offset + q.Limit
	h := &hitHeap{x: x}
	total := 0
	consider := func(i uint32, score float32) {
		total++
		c := cand{doc: i, score: score}
		if h.Len() < k {
			heap.Push(h, c)
		} else if x.better(c, h.c[0]) {
			h.c[0] = c
			heap.Fix(h, 0)
		}
	}
	terms := queryTerms(q.Text)
	if len(terms) == 0 && strings.TrimSpace(q.Text) != "" {
		return Result{}, nil // only stop words or punctuation: nothing can match
	}
	allowed, filtered := x.filter(&q)
	if len(terms) == 0 {
		set := x.alive
		if filtered {
			set = allowed
		}
		for w, bits := range set {
			for bits != 0 {
				i := uint32(w*64 + mathbits.TrailingZeros64(bits))
				bits &= bits - 1
				if x.inBBox(&q, i) {
					consider(i, 0)
				}
			}
		}
	} else {
		sp, _ := x.scratch.Get().(*[]float32)
		if sp == nil {
			sp = new([]float32)
		}
		scores := *sp
		if len(scores) < len(x.recs) {
			scores = make([]float32, len(x.recs))
		}
		var touched []uint32
		n := float64(x.live)
		avg := x.totalLen / max(n, 1)
		for _, t := range terms {
			pl := x.postings[t]
			if pl == nil {
				continue
			}
			df := float64(len(pl.ps) - pl.dead)
			idf := float32(math.Log(1 + (n-df+0.5)/(df+0.5)))
			c1 := float32(bm25K1 * (1 - bm25B))
			c2 := float32(bm25K1 * bm25B / avg)
			for _, p := range pl.ps {
				if p.gen != x.gen[p.doc] || (filtered && !allowed.has(p.doc)) {
					continue
				}
				if scores[p.doc] == 0 {
					touched = append(touched, p.doc)
				}
				scores[p.doc] += idf * p.tf * (bm25K1 + 1) / (p.tf + c1 + c2*x.lens[p.doc])
			}
		}
		for _, i := range touched {
			if x.inBBox(&q, i) {
				consider(i, scores[i])
			}
			scores[i] = 0
		}
		*sp = scores
		x.scratch.Put(sp)
	}
	out := make([]cand, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(cand)
	}
	res := Result{Total: total}
	for i := q.Offset; i < len(out); i++ {
		res.Hits = append(res.Hits, Hit{Record: x.recs[out[i].doc], Score: float64(out[i].score)})
	}
	return res, nil
}

type cand struct {
	doc   uint32
	score float32
}

// better orders results: higher score, then more recently modified, then by
// publisher and id, so that equal queries give equal pages.
func (x *Index) better(a, b cand) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	if ma, mb := x.mod[a.doc], x.mod[b.doc]; ma != mb {
		return ma > mb
	}
	da, db := &x.recs[a.doc], &x.recs[b.doc]
	if c := cmp.Compare(da.Dataset.ID, db.Dataset.ID); c != 0 {
		return c < 0
	}
	return da.Publisher < db.Publisher
}

// hitHeap is a min-heap by x.better: the root is the worst of the best k.
type hitHeap struct {
	x *Index
	c []cand
}

func (h *hitHeap) Len() int           { return len(h.c) }
func (h *hitHeap) Less(i, j int) bool { return h.x.better(h.c[j], h.c[i]) }
func (h *hitHeap) Swap(i, j int)      { h.c[i], h.c[j] = h.c[j], h.c[i] }
func (h *hitHeap) Push(v any)         { h.c = append(h.c, v.(cand)) }
func (h *hitHeap) Pop() any {
	v := h.c[len(h.c)-1]
	h.c = h.c[:len(h.c)-1]
	return v
}

// stopWords carry no meaning in a catalogue search; leaving them out keeps
// the postings small.
var stopWords = map[string]bool{
	"a": true, "an": true, "and": true, "the": true, "of": true, "in": true, "on": true,
	"for": true, "from": true, "to": true, "with": true, "by": true, "at": true, "or": true,
}

// tokens splits text into index terms: lower-case letter/digit runs, stop
// words dropped, a plural "s" folded ("observations" finds "observation").
func tokens(s string) []string {
	fields := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := fields[:0]
	for _, f := range fields {
		if stopWords[f] {
			continue
		}
		if len(f) > 3 && strings.HasSuffix(f, "s") && !strings.HasSuffix(f, "ss") {
			f = f[:len(f)-1]
		}
		out = append(out, f)
	}
	return out
}

func queryTerms(s string) []string {
	ts := tokens(s)
	slices.Sort(ts)
	return slices.Compact(ts)
}

// ShortType is the local name of a type IRI (what follows its last '/',
// '#' or ':'), or t itself when it has none: a short type name such as
// AirQualityObserved stands for the types with that local name.
func ShortType(t string) string {
	if i := strings.LastIndexAny(t, "/#:"); i >= 0 && i < len(t)-1 {
		return t[i+1:]
	}
	return t
}

// splitCamel turns "AirQualityObserved" into "Air Quality Observed" so the
// type's words are searchable.
func splitCamel(s string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range s {
		if unicode.IsUpper(r) && prevLower {
			b.WriteByte(' ')
		}
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		b.WriteRune(r)
	}
	return b.String()
}
