package ngsild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkAheadConcurrentSameIDs: writers commit batch creates, upserts,
// Puts, replaces and deletes of the same few ids at once, so commits wait
// for the write lock and work ahead (absent guesses, verdicts, history
// records, encodings) while others create, replace and delete those ids.
// The change feed gives the order the commits took; replayed serially it
// (merges of upsert?options=update among them, which do not work ahead)
// must agree with every write: a create only of an absent entity, an
// update or delete only of a present one, createdAt the creating write's
// throughout an entity's life (entity and attribute), each successful
// write once in the feed and each refused one never, then the final
// states, the type and q query answers and the history of each entity.
func TestWorkAheadConcurrentSameIDs(t *testing.T) {
	n := newTestNode(t, nil)
	s := n.svc
	const (
		writers = 6
		rounds  = 120
		nIDs    = 16
		typ1    = "https://city.example/T1"
		typ2    = "https://city.example/T2"
		wAttr   = coreVocab + "w"
	)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	stamp := func(tag int) time.Time { return t0.Add(time.Duration(tag) * time.Millisecond) }
	typeOf := func(tag int) string {
		if tag%2 == 0 {
			return typ1
		}
		return typ2
	}
	id := func(i int) string { return fmt.Sprintf("urn:ngsi-ld:T:%d", i) }
	var nextTag atomic.Int64
	// entity is the write tagged tag: w holds the tag, the stamps say
	// which write made them (Put stamps again, with the node's clock).
	entity := func(i int) (*Entity, int) {
		tag := int(nextTag.Add(1))
		e := &Entity{ID: id(i), Types: []string{typeOf(tag)}, Attrs: map[string][]*Attribute{
			wAttr: {{Type: Property, Value: float64(tag)}},
		}}
		stampNew(e, stamp(tag), stamp(tag))
		return e, tag
	}
	type result struct {
		tag    int
		create bool // a create: success means OpCreate
		err    error
	}
	var mu sync.Mutex
	var results []result
	var aheadAbsent, aheadChecked atomic.Int64
	record := func(chs []change, tags []int, creates bool, outs []outcome) {
		mu.Lock()
		defer mu.Unlock()
		for i, o := range outs {
			results = append(results, result{tag: tags[i], create: creates, err: o.err})
			if a := chs[i].ahead; a != nil {
				if a.absent {
					aheadAbsent.Add(1)
				}
				if a.checked {
					aheadChecked.Add(1)
				}
			}
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for r := 0; r < rounds; r++ {
				k := 2 + rng.IntN(4) // a batch may name an id twice
				op := rng.IntN(8)
				if op == 5 || op == 7 { // delete: absent guesses then hold, and fail
					ids := make([]string, k)
					for j := range ids {
						ids[j] = id(rng.IntN(nIDs))
					}
					errs, err := s.Delete(context.Background(), ids)
					if err != nil {
						errc <- err
						return
					}
					for j, e := range errs {
						var de *Error
						if e != nil && (!errors.As(e, &de) || de.Type != ResourceNotFound) {
							errc <- fmt.Errorf("delete %s: %v, want nil or ResourceNotFound", ids[j], e)
							return
						}
					}
					continue
				}
				chs, tags := make([]change, 0, k), make([]int, 0, k)
				ents := make([]*Entity, 0, k)
				for j := 0; j < k; j++ {
					e, tag := entity(rng.IntN(nIDs))
					ents, tags = append(ents, e), append(tags, tag)
					switch op {
					case 0, 1:
						chs = append(chs, s.createChange(e))
					case 2:
						chs = append(chs, s.replaceChange(e, false)) // batch upsert
					case 3:
						chs = append(chs, s.replaceChange(e, true)) // replace
					case 6:
						chs = append(chs, s.mergeChange(e, mergeAppend, true, nil)) // upsert?options=update
					}
				}
				if op == 4 { // Put (Land with validation)
					errs, err := s.Put(ents)
					if err != nil {
						errc <- err
						return
					}
					outs := make([]outcome, len(errs))
					for j := range errs {
						outs[j].err = errs[j]
					}
					record(make([]change, len(errs)), tags, false, outs)
					continue
				}
				outs, err := s.commit(chs)
				if err != nil {
					errc <- err
					return
				}
				record(chs, tags, op <= 1, outs)
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	t.Logf("changes that took workAhead's absent finding: %d, its verdict: %d", aheadAbsent.Load(), aheadChecked.Load())

	// Replay the feed in commit order.
	type state struct {
		present bool
		created int       // tag of the create
		at      time.Time // its createdAt (Put stamps its own)
		last    int       // tag of the last write
		types   []string  // its types (a merge adds to them)
		written []int     // tags written, in order, over every life
	}
	model := map[string]*state{}
	inFeed := map[int]Op{}
	for from := uint64(1); ; {
		chg, err := s.Changes(context.Background(), from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(chg) == 0 {
			break
		}
		for _, c := range chg {
			from = c.Seq + 1
			st := model[c.ID]
			if st == nil {
				st = &state{}
				model[c.ID] = st
			}
			if c.Op == OpDelete {
				if !st.present {
					t.Errorf("seq %d: delete of absent %s", c.Seq, c.ID)
				}
				st.present = false
				continue
			}
			tag := int(c.Entity.Attrs[wAttr][0].Value.(float64))
			if op, dup := inFeed[tag]; dup {
				t.Errorf("seq %d: write %d in the feed twice (%s before)", c.Seq, tag, op)
			}
			inFeed[tag] = c.Op
			switch {
			case c.Op == OpCreate && st.present:
				t.Errorf("seq %d: create (write %d) of %s, which exists (created by %d)", c.Seq, tag, c.ID, st.created)
			case c.Op == OpUpdate && !st.present:
				t.Errorf("seq %d: update (write %d) of absent %s", c.Seq, tag, c.ID)
			}
			if c.Op == OpCreate {
				st.created, st.at = tag, c.Entity.CreatedAt
			}
			st.present, st.last, st.types = true, tag, c.Entity.Types
			st.written = append(st.written, tag)
			want := st.at
			if !c.Entity.CreatedAt.Equal(want) || !c.Entity.Attrs[wAttr][0].CreatedAt.Equal(want) {
				t.Errorf("seq %d: %s (write %d) createdAt %v, attribute %v; want %v (write %d)", c.Seq, c.ID, tag,
					c.Entity.CreatedAt, c.Entity.Attrs[wAttr][0].CreatedAt, want, st.created)
			}
		}
	}
	for _, r := range results {
		op, ok := inFeed[r.tag]
		switch {
		case r.err == nil && !ok:
			t.Errorf("write %d succeeded but is not in the feed", r.tag)
		case r.err != nil && ok:
			t.Errorf("write %d failed (%v) but is in the feed", r.tag, r.err)
		case r.err == nil && r.create && op != OpCreate:
			t.Errorf("create %d succeeded as %s", r.tag, op)
		}
		var de *Error
		if r.err != nil && (!errors.As(r.err, &de) || (de.Type != AlreadyExists && de.Type != ResourceNotFound)) {
			t.Errorf("write %d: %v, want AlreadyExists or ResourceNotFound", r.tag, r.err)
		}
	}

	// Final states, queries and history against the model.
	byType := map[string][]string{}
	for i := 0; i < nIDs; i++ {
		eid := id(i)
		st := model[eid]
		e, err := s.Entity(eid)
		if err != nil {
			t.Fatal(err)
		}
		if st == nil || !st.present {
			if e != nil {
				t.Errorf("%s exists, the feed deleted it", eid)
			}
		} else {
			switch {
			case e == nil:
				t.Errorf("%s absent, the feed has it (write %d)", eid, st.last)
			case int(e.Attrs[wAttr][0].Value.(float64)) != st.last || fmt.Sprint(e.Types) != fmt.Sprint(st.types):
				t.Errorf("%s holds %v (%v), want write %d", eid, e.Attrs[wAttr][0].Value, e.Types, st.last)
			case !e.CreatedAt.Equal(st.at) || !e.Attrs[wAttr][0].CreatedAt.Equal(st.at):
				t.Errorf("%s createdAt %v, want %v", eid, e.CreatedAt, st.at)
			}
			for _, typ := range st.types {
				byType[typ] = append(byType[typ], eid)
			}
			rec := n.do("GET", "/ngsi-ld/v1/entities?type="+url.QueryEscape(st.types[0])+"&q="+url.QueryEscape(fmt.Sprintf("w==%d", st.last)), nil)
			if got := queryIDs(t, rec); len(got) != 1 || got[0] != eid {
				t.Errorf("q w==%d: %v, want [%s]", st.last, got, eid)
			}
		}
		if st == nil {
			continue
		}
		insts, err := s.History(eid, wAttr, time.Time{}, time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, in := range insts {
			got = append(got, int(in.Attr.Value.(float64)))
		}
		sort.Ints(got)
		want := append([]int(nil), st.written...)
		sort.Ints(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("history of %s: %v, want %v", eid, got, want)
		}
	}
	for _, typ := range []string{typ1, typ2} {
		got := queryIDs(t, n.do("GET", "/ngsi-ld/v1/entities?limit=1000&type="+url.QueryEscape(typ), nil))
		want := byType[typ]
		sort.Strings(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("type %s: %v, want %v", typ, got, want)
		}
	}
}

// queryIDs returns the sorted ids a query answered.
func queryIDs(t *testing.T, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("query: %d %s", rec.Code, rec.Body.String())
	}
	var list []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(list))
	for _, m := range list {
		ids = append(ids, m["id"].(string))
	}
	sort.Strings(ids)
	return ids
}
