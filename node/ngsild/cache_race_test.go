package ngsild

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"testing"
)

// cacheModels are entity shapes that share the process-wide decoder and
// encoder caches (lastAttrCount, attrNames, lastAttrOrder) and the
// observedAt shortcut: two with as many attributes but other names, one
// overlapping them, and one of several instances (datasetId) with
// sub-attributes, cut from the record decoder's shared array.
var cacheModels = [][]string{
	{"a0", "a1", "a2", "a3", "a4"},
	{"b0", "b1", "b2", "b3", "b4"},
	{"a0", "a1", "a2", "a3", "c"},
	{"m0", "m1", "m2"},
}

// cacheBody is the normalized body of entity id of model k at round r of
// writer w: every value names all four, so a value read back from
// another entity, round or writer shows.
func cacheBody(id string, k, w, r int) map[string]any {
	e := map[string]any{"id": id, "type": fmt.Sprintf("K%d", k)}
	obs := fmt.Sprintf("2024-01-%02dT10:%02d:00Z", 1+w, r%60)
	for i, name := range cacheModels[k] {
		val := fmt.Sprintf("%s/%s/w%d/r%d", id, name, w, r)
		if k != 3 {
			a := map[string]any{"type": "Property", "value": val, "observedAt": obs}
			if i == 1 {
				a["observedAt"] = fmt.Sprintf("2023-06-%02dT08:00:00Z", 1+r%28)
			}
			e[name] = a
			continue
		}
		var insts []any
		for d := 0; d < 2+i%2; d++ {
			a := map[string]any{"type": "Property", "value": fmt.Sprintf("%s/d%d", val, d), "observedAt": obs,
				"sub": map[string]any{"type": "Property", "value": fmt.Sprintf("%s/d%d/sub", val, d)}}
			if d > 0 {
				a["datasetId"] = fmt.Sprintf("urn:ds:%d", d)
			}
			insts = append(insts, a)
		}
		e[name] = insts
	}
	return e
}

// cacheView keeps of a normalized entity what cacheBody wrote: per
// attribute, per datasetId, the value, observedAt and sub-attribute value.
func cacheView(t testing.TB, e map[string]any) map[string]map[string][3]any {
	out := map[string]map[string][3]any{}
	for name, v := range e {
		if name == "id" || name == "type" || name == "@context" {
			continue
		}
		insts, ok := v.([]any)
		if !ok {
			insts = []any{v}
		}
		m := map[string][3]any{}
		for _, in := range insts {
			a, _ := in.(map[string]any)
			ds, _ := a["datasetId"].(string)
			var sub any
			if s, ok := a["sub"].(map[string]any); ok {
				sub = s["value"]
			}
			m[ds] = [3]any{a["value"], a["observedAt"], sub}
		}
		out[name] = m
	}
	return out
}

// TestCachesUnderConcurrentWrites writes entities of every cacheModels
// shape from several goroutines at once, batch upserts (which read the
// records they replace) alongside single creates and attribute patches,
// with queries decoding records meanwhile, then reads every entity back
// and wants exactly what its last write said.
func TestCachesUnderConcurrentWrites(t *testing.T) {
	n := newTestNode(t, nil)
	const writers, rounds, perModel = 4, 12, 2
	var mu sync.Mutex
	want := map[string]map[string]any{} // id -> last body written
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func(w int) { // batch upserts of every model, each round
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				var batch []any
				var bodies []map[string]any
				for k := range cacheModels {
					for i := 0; i < perModel; i++ {
						b := cacheBody(fmt.Sprintf("urn:ngsi-ld:K%d:b%d-%d", k, w, i), k, w, r)
						batch, bodies = append(batch, b), append(bodies, b)
					}
				}
				rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", batch)
				if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
					t.Errorf("upsert: %d %s", rec.Code, rec.Body.String())
					return
				}
				mu.Lock()
				for _, b := range bodies {
					want[b["id"].(string)] = b
				}
				mu.Unlock()
			}
		}(w)
		go func(w int) { // single creates, then patches of all attributes
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				for k := 0; k < 3; k++ {
					id := fmt.Sprintf("urn:ngsi-ld:K%d:s%d", k, w)
					b := cacheBody(id, k, w, r)
					if r == 0 {
						rr := n.do("POST", "/ngsi-ld/v1/entities", b)
						if rr.Code != http.StatusCreated {
							t.Errorf("create %s: %d %s", id, rr.Code, rr.Body.String())
							return
						}
					} else {
						attrs := map[string]any{}
						for name, v := range b {
							if name != "id" && name != "type" {
								attrs[name] = v
							}
						}
						rr := n.do("PATCH", "/ngsi-ld/v1/entities/"+id+"/attrs", attrs)
						if rr.Code != http.StatusNoContent {
							t.Errorf("patch %s: %d %s", id, rr.Code, rr.Body.String())
							return
						}
					}
					mu.Lock()
					want[id] = b
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() { // readers decode records while the writers write
		defer wg.Done()
		for r := 0; r < rounds*2; r++ {
			for k := range cacheModels {
				rec := n.do("GET", fmt.Sprintf("/ngsi-ld/v1/entities?type=K%d&limit=100", k), nil)
				if rec.Code != http.StatusOK {
					t.Errorf("query: %d %s", rec.Code, rec.Body.String())
					return
				}
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	for id, b := range want {
		got := cacheView(t, fetch(t, n, id, ""))
		j, _ := json.Marshal(b)
		var norm map[string]any
		if err := json.Unmarshal(j, &norm); err != nil {
			t.Fatal(err)
		}
		if exp := cacheView(t, norm); !reflect.DeepEqual(got, exp) {
			t.Errorf("%s reads back\n%v\nwant\n%v", id, got, exp)
		}
	}
	t.Logf("%d entities read back", len(want))
}
