package ngsild

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

// A random sequence of writes of every kind, each followed by a check of
// what the writes keep besides the entities against a recount from the
// stored entities: the counters (GET /types, /attributes, count=true),
// the type, scope, value and spatial index keys, and the change feed
// (each write once, create only of an absent entity, update or delete
// only of a present one, the entity key pointing at its last record).
// The writes: batch create, upsert (replace and update), update and
// delete, POST/PUT/PATCH /entities, the attrs operations, Service.Put,
// Land and Delete, with ids repeating within a batch and across the
// chunks (commitChunk) and workers of a big one, multi-instance
// attributes (datasetId) with equal values or cells, LanguageProperty,
// GeoProperty, Relationship and scopes, and a Land of entities big
// enough that a chunk takes several transactions (txnFit).

// rvTypes are the types the random entities take, in random order.
var rvTypes = []string{"T", "U", "V"}

// rvAttrs are the attributes the random entities take; p has a value
// index.
var rvAttrs = []string{"p", "q", "r", "location", "name"}

// rvInstance is one random instance of attribute name in normalized
// JSON-LD: values and cells come from small sets, so two instances of an
// entity often have the same value index or spatial key.
func rvInstance(rng *rand.Rand, name string) map[string]any {
	geo := func() map[string]any {
		if rng.IntN(3) == 0 {
			return map[string]any{"type": "Polygon", "coordinates": []any{[]any{
				[]any{0.0, 0.0}, []any{1.0, 0.0}, []any{1.0, 1.0}, []any{0.0, 1.0}, []any{0.0, 0.0}}}}
		}
		return map[string]any{"type": "Point", "coordinates": []any{float64(rng.IntN(2)), float64(rng.IntN(2))}}
	}
	kind := rng.IntN(4)
	if name == "location" {
		kind = 2
		if rng.IntN(5) == 0 {
			kind = 0 // a location that is a plain Property
		}
	}
	if name == "name" && rng.IntN(2) == 0 {
		kind = 3
	}
	switch kind {
	case 0:
		var v any = float64(rng.IntN(3))
		switch rng.IntN(4) {
		case 0:
			v = []any{float64(rng.IntN(3)), "s"}
		case 1:
			v = "s"
		}
		return map[string]any{"type": "Property", "value": v}
	case 1:
		return map[string]any{"type": "Relationship", "object": fmt.Sprintf("urn:y:%d", rng.IntN(2))}
	case 2:
		return map[string]any{"type": "GeoProperty", "value": geo()}
	default:
		return map[string]any{"type": "LanguageProperty", "languageMap": map[string]any{"en": "x", "de": fmt.Sprint(rng.IntN(2))}}
	}
}

// rvAttr is a random attribute: one instance, or up to three with
// datasetIds (the first without one).
func rvAttr(rng *rand.Rand, name string) any {
	if rng.IntN(3) != 0 {
		return rvInstance(rng, name)
	}
	var insts []any
	for i := range 1 + rng.IntN(3) {
		in := rvInstance(rng, name)
		if i > 0 || rng.IntN(2) == 0 {
			in["datasetId"] = fmt.Sprintf("urn:d:%d", i)
		}
		insts = append(insts, in)
	}
	return insts
}

// rvEntity is a random entity (or fragment, with fewer attributes and no
// type at times) with id urn:x:<i>.
func rvEntity(rng *rand.Rand, i int, fragment bool) map[string]any {
	m := map[string]any{"id": fmt.Sprintf("urn:x:%d", i)}
	if !fragment || rng.IntN(3) == 0 {
		ts := slices.Clone(rvTypes)
		rng.Shuffle(len(ts), func(a, b int) { ts[a], ts[b] = ts[b], ts[a] })
		ts = ts[:1+rng.IntN(len(ts))]
		if len(ts) == 1 {
			m["type"] = ts[0]
		} else {
			m["type"] = ts
		}
	}
	switch rng.IntN(5) {
	case 0:
		m["scope"] = "/a/b"
	case 1:
		m["scope"] = []any{"/a", fmt.Sprintf("/c/%d", rng.IntN(2))}
	}
	for _, a := range rvAttrs {
		if rng.IntN(2) == 0 || (fragment && rng.IntN(2) == 0) {
			m[a] = rvAttr(rng, a)
		}
	}
	// Same-shape runs: most entities of a batch look alike.
	return m
}

// rvStored is m (rvEntity, with a type) in stored form, for Put and Land;
// pad, when not empty, is one more Property's value.
func rvStored(m map[string]any, pad string) *Entity {
	const vocab = "https://uri.etsi.org/ngsi-ld/default-context/"
	e := &Entity{ID: m["id"].(string), Attrs: map[string][]*Attribute{}}
	switch ts := m["type"].(type) {
	case string:
		e.Types = []string{expandTestType(ts)}
	case []string:
		for _, t := range ts {
			e.Types = append(e.Types, expandTestType(t))
		}
	}
	switch sc := m["scope"].(type) {
	case string:
		e.Scope = []string{sc}
	case []any:
		for _, s := range sc {
			e.Scope = append(e.Scope, s.(string))
		}
	}
	for _, name := range rvAttrs {
		v, ok := m[name]
		if !ok {
			continue
		}
		insts, ok := v.([]any)
		if !ok {
			insts = []any{v}
		}
		iri := vocab + name
		if name == "location" {
			iri = "https://uri.etsi.org/ngsi-ld/location"
		}
		for _, x := range insts {
			in := x.(map[string]any)
			a := &Attribute{Type: AttrType(in["type"].(string)), Value: in["value"], Object: in["object"]}
			if lm, ok := in["languageMap"].(map[string]any); ok {
				a.LanguageMap = lm
			}
			if ds, ok := in["datasetId"].(string); ok {
				a.DatasetID = ds
			}
			e.Attrs[iri] = append(e.Attrs[iri], a)
		}
	}
	if pad != "" {
		e.Attrs[vocab+"pad"] = []*Attribute{{Type: Property, Value: pad}}
	}
	return e
}

// checkAgainstRecount compares the counters, the index keys and the
// change feed (from seq from on; it returns where the next check starts)
// with what the stored entities say they should be.
func checkAgainstRecount(t *testing.T, n *testNode, what string, feed *rvFeed) {
	t.Helper()
	if got, want := storedCounts(t, n), recount(t, n); !maps.Equal(got, want) {
		t.Errorf("%s: counters\n%v\nwant (recount)\n%v", what, got, want)
	}
	s := n.svc
	want := map[string]struct{}{}
	ptrs := map[string]uint64{}
	err := s.EachOfType(context.Background(), nil, func(e *Entity) error {
		maps.Copy(want, indexKeys(e, s.codes.codeOf, nil, 0, s.vidx.isWritten))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]struct{}{}
	err = s.db.View(func(tx *store.Txn) error {
		for _, pre := range []string{keyType, keyScope, keyValue, keyGeo} {
			err := tx.Iterate(store.IterOptions{Prefix: []byte(pre)}, func(k, _ []byte) error {
				got[string(k)] = struct{}{}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyEntity)}, func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("entity key %q holds %d bytes", k, len(v))
			}
			ptrs[string(k[len(keyEntity):])] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: index key %q of no stored entity", what, k)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("%s: index key %q missing", what, k)
		}
	}
	feed.check(t, n, what, ptrs)
}

// rvFeed replays the change feed as it grows.
type rvFeed struct {
	next uint64            // the next Seq expected
	last map[string]uint64 // the Seq of each present entity's last change
	ops  map[Op]int        // changes replayed, by Op
}

func (f *rvFeed) check(t *testing.T, n *testNode, what string, ptrs map[string]uint64) {
	t.Helper()
	for {
		chs, err := n.svc.Changes(context.Background(), f.next, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(chs) == 0 {
			break
		}
		for _, c := range chs {
			if c.Seq != f.next {
				t.Fatalf("%s: change %d where %d comes next", what, c.Seq, f.next)
			}
			f.next++
			f.ops[c.Op]++
			_, present := f.last[c.ID]
			switch {
			case c.Op == OpCreate && !present, c.Op == OpUpdate && present:
				if c.Entity == nil || c.Entity.ID != c.ID || !slices.Equal(c.Types, c.Entity.Types) {
					t.Errorf("%s: change %d (%s %s): entity %+v, types %v", what, c.Seq, c.Op, c.ID, c.Entity, c.Types)
				}
				f.last[c.ID] = c.Seq
			case c.Op == OpDelete && present:
				delete(f.last, c.ID)
			default:
				t.Errorf("%s: change %d is %s of %s, present %v", what, c.Seq, c.Op, c.ID, present)
			}
		}
	}
	if !maps.Equal(f.last, ptrs) {
		t.Errorf("%s: entities as the feed replays them (id: last change)\n%v\nstored\n%v", what, f.last, ptrs)
	}
}

// rvWrite does one random write (or a few at once, when concurrent)
// and says what it was.
func rvWrite(t *testing.T, n *testNode, rng *rand.Rand, nIDs int) string {
	t.Helper()
	id := func() int { return rng.IntN(nIDs) }
	batch := func(fragment bool) ([]any, int) {
		size := []int{1, 3, 8, 40, 300, 600}[rng.IntN(6)]
		ents := make([]any, size)
		// Runs of one shape, as a batch of one model has.
		base := rvEntity(rng, 0, fragment)
		for i := range ents {
			if rng.IntN(4) == 0 {
				base = rvEntity(rng, 0, fragment)
			}
			m := maps.Clone(base)
			m["id"] = fmt.Sprintf("urn:x:%d", id())
			ents[i] = m
		}
		return ents, size
	}
	// send makes one request and returns what, failing the test on an
	// answer no such write may give.
	send := func(what, method, path string, body any) string {
		t.Helper()
		rec := n.do(method, path, body)
		if code := rec.Code; code >= 300 && code != http.StatusMultiStatus && code != http.StatusNotFound && code != http.StatusConflict {
			t.Fatalf("%s: %d %s", what, code, rec.Body.String())
		}
		return what
	}
	entityPath := func(i int) string { return "/ngsi-ld/v1/entities/" + url.PathEscape(fmt.Sprintf("urn:x:%d", i)) }
	stored := func(ents []any) []*Entity {
		out := make([]*Entity, len(ents))
		for i, e := range ents {
			out[i] = rvStored(e.(map[string]any), "")
		}
		return out
	}
	switch op := rng.IntN(15); op {
	case 0, 1, 2, 3:
		opts := ""
		if op >= 2 {
			opts = "?options=update"
		}
		ents, size := batch(op == 3)
		if op == 3 {
			for _, e := range ents { // upsert creates need a type
				if _, ok := e.(map[string]any)["type"]; !ok {
					e.(map[string]any)["type"] = "T"
				}
			}
		}
		return send(fmt.Sprintf("upsert%s of %d", opts, size), "POST", "/ngsi-ld/v1/entityOperations/upsert"+opts, ents)
	case 4:
		ents, size := batch(false)
		return send(fmt.Sprintf("create batch of %d", size), "POST", "/ngsi-ld/v1/entityOperations/create", ents)
	case 5:
		ents, size := batch(true)
		return send(fmt.Sprintf("update batch of %d", size), "POST", "/ngsi-ld/v1/entityOperations/update", ents)
	case 6, 13:
		var ids []string
		for range 1 + rng.IntN(nIDs) {
			ids = append(ids, fmt.Sprintf("urn:x:%d", id()))
		}
		if rng.IntN(2) == 0 {
			return send(fmt.Sprintf("delete batch of %d", len(ids)), "POST", "/ngsi-ld/v1/entityOperations/delete", ids)
		}
		if _, err := n.svc.Delete(context.Background(), ids); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("Service.Delete of %d", len(ids))
	case 7:
		i := id()
		if rng.IntN(2) == 0 {
			return send("POST /entities", "POST", "/ngsi-ld/v1/entities", rvEntity(rng, i, false))
		}
		m := rvEntity(rng, i, false)
		delete(m, "id")
		return send("PUT /entities/{id}", "PUT", entityPath(i), m)
	case 8:
		i := id()
		m := rvEntity(rng, i, true)
		delete(m, "id")
		if rng.IntN(2) == 0 {
			m[rvAttrs[rng.IntN(len(rvAttrs))]] = map[string]any{"type": "Property", "value": ngsiNull}
		}
		return send("PATCH /entities/{id}", "PATCH", entityPath(i), m)
	case 9:
		i := id()
		m := rvEntity(rng, i, true)
		delete(m, "id")
		delete(m, "type")
		path := entityPath(i) + "/attrs"
		method := []string{"POST", "PATCH"}[rng.IntN(2)]
		if method == "POST" && rng.IntN(2) == 0 {
			path += "?options=noOverwrite"
		}
		return send(method+" "+path, method, path, m)
	case 10:
		i, name := id(), rvAttrs[rng.IntN(len(rvAttrs))]
		path := entityPath(i) + "/attrs/" + name
		switch rng.IntN(3) {
		case 0: // PATCH an instance, possibly into another attribute type
			body := rvInstance(rng, name)
			if rng.IntN(2) == 0 {
				body["datasetId"] = fmt.Sprintf("urn:d:%d", rng.IntN(3))
			}
			return send("PATCH "+path, "PATCH", path, body)
		case 1:
			return send("PUT "+path, "PUT", path, rvInstance(rng, name))
		default:
			q := []string{"", "?datasetId=urn:d:1", "?deleteAll=true"}[rng.IntN(3)]
			return send("DELETE "+path+q, "DELETE", path+q, nil)
		}
	case 11, 12:
		ents, size := batch(false)
		if op == 11 {
			if _, err := n.svc.Put(stored(ents)); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("Put of %d", size)
		}
		if _, err := n.svc.Land(context.Background(), stored(ents)); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("Land of %d", size)
	default:
		// Writers at once: commits wait for the write lock and work
		// ahead.
		var wg sync.WaitGroup
		var whats []string
		errs := make([]error, 3)
		for w := range 3 {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			ents, _ := batch(false)
			es := stored(ents)
			whats = append(whats, fmt.Sprint(len(ents)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch w {
				case 0:
					_, errs[w] = n.svc.Put(es)
				case 1:
					_, errs[w] = n.svc.Land(context.Background(), es)
				default:
					var ids []string
					for range 5 {
						ids = append(ids, fmt.Sprintf("urn:x:%d", wrng.IntN(nIDs)))
					}
					_, errs[w] = n.svc.Delete(context.Background(), ids)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return "Put, Land and Delete at once (" + strings.Join(whats, ", ") + ")"
	}
}

// TestCountersAndIndexesOfRandomWrites: see the top of this file. Seeds 2
// and 3 have a subscription, so the notification dispatcher reads each
// written chunk while the commit prepares and writes the next.
func TestCountersAndIndexesOfRandomWrites(t *testing.T) {
	steps := 40
	if testing.Short() {
		steps = 20
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			n := newTestNode(t, func(o *Options) {
				o.Notify.Allow, o.Notify.Retries = []string{"127.0.0.0/8"}, -1
			})
			// A query on p gives it a value index.
			if rec := n.do("GET", "/ngsi-ld/v1/entities?type=T&q=p==1", nil); rec.Code != http.StatusOK {
				t.Fatalf("query: %d %s", rec.Code, rec.Body.String())
			}
			if err := n.svc.waitIndexes(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !n.svc.vidx.isWritten(expandTestType("p")) {
				t.Fatal("p has no value index")
			}
			if seed != 1 {
				// A subscription: the dispatcher matches and renders the
				// entities of a commit's first chunks while it writes
				// the next (recentChanges), where shapes are still used.
				rec := n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{
					"type": "Subscription", "entities": []any{map[string]any{"type": "T"}},
					"notification": map[string]any{"format": "keyValues", "endpoint": map[string]any{"uri": "http://127.0.0.1:9/n"}},
				})
				if rec.Code != http.StatusCreated {
					t.Fatalf("subscription: %d %s", rec.Code, rec.Body.String())
				}
			}
			rng := rand.New(rand.NewPCG(seed, 0))
			feed := &rvFeed{next: 1, last: map[string]uint64{}, ops: map[Op]int{}}
			for step := range steps {
				what := rvWrite(t, n, rng, 150)
				checkAgainstRecount(t, n, fmt.Sprintf("step %d, %s", step, what), feed)
				if t.Failed() {
					t.FailNow()
				}
			}
			t.Logf("changes by op: %v; %d entities", feed.ops, len(feed.last))
		})
	}
}

// TestCountersOfSplitLand lands chunks too big for one transaction
// (txnFit splits them), creates and replaces of the same few shapes with
// ids repeating, and checks the counters, indexes and feed as
// TestCountersAndIndexesOfRandomWrites does.
func TestCountersOfSplitLand(t *testing.T) {
	n := newTestNode(t, nil)
	maxBytes, _ := n.svc.db.TxnLimits()
	// A chunk (commitChunk entities) is about three transactions.
	// Random letters: an entity is stored compressed.
	rng := rand.New(rand.NewPCG(7, 0))
	padOf := func() string {
		b := make([]byte, maxBytes/commitChunk*3)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return string(b)
	}
	feed := &rvFeed{next: 1, last: map[string]uint64{}, ops: map[Op]int{}}
	shapes := []map[string]any{rvEntity(rng, 0, false), rvEntity(rng, 0, false), rvEntity(rng, 0, false)}
	for round := range 2 {
		var ents []*Entity
		for i := range 2*commitChunk + 10 {
			m := maps.Clone(shapes[(i/7)%len(shapes)])
			m["id"] = fmt.Sprintf("urn:x:%d", rng.IntN(400))
			ents = append(ents, rvStored(m, padOf()))
		}
		if n := n.svc.txnFit(rvPrepared(n.svc, ents)); n >= commitChunk {
			t.Fatalf("txnFit fits %d entities in a transaction: the test no longer splits a chunk", n)
		}
		landAll(t, n, ents)
		checkAgainstRecount(t, n, fmt.Sprintf("round %d", round), feed)
	}
}

// rvPrepared is about what prepare makes of creates of ents, for txnFit.
func rvPrepared(s *Service, ents []*Entity) []prepared {
	ps := make([]prepared, len(ents))
	for i, e := range ents {
		ps[i] = prepared{write: true, id: e.ID, body: packEntity(e), countAs: e}
		eachIndexKey(e, func(string) uint32 { return 1 }, func(string) bool { return false }, func(k []byte) { ps[i].set = append(ps[i].set, k) })
	}
	return ps
}
