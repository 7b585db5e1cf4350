package ngsild

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentWrites runs writers on overlapping entities alongside
// readers, then checks the indexes, counters and feed agree with the
// entities: no lost index update, no gap in the sequence.
func TestConcurrentWrites(t *testing.T) {
	n := newTestNode(t, nil)
	const writers, rounds, pool = 4, 40, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				id := fmt.Sprintf("urn:x:%d", (w*7+i)%pool)
				body := fmt.Sprintf(`[{"id": %q, "type": "T", "p": %d, "w": %d}]`, id, w*1000+i, w)
				rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", body)
				if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
					t.Errorf("upsert: %d %s", rec.Code, rec.Body.String())
					return
				}
			}
		}(w)
	}
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				rec := n.do("GET", "/ngsi-ld/v1/entities?type=T&q=p>=0&limit=100", nil)
				if rec.Code != http.StatusOK {
					t.Errorf("query: %d %s", rec.Code, rec.Body.String())
					return
				}
			}
		}()
	}
	wg.Wait()

	all := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=T&limit=100", nil))
	if len(all) != pool {
		t.Fatalf("%d entities of type T, want %d", len(all), pool)
	}
	for _, id := range all {
		e := fetch(t, n, id, "?options=keyValues")
		q := fmt.Sprintf("p==%v;w==%v", e["p"], e["w"])
		if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?q="+q, nil)); len(got) != 1 || got[0] != id {
			t.Errorf("q=%s found %v, want [%s]", q, got, id)
		}
	}
	info := decode(t, n.do("GET", "/ngsi-ld/v1/types/T", nil)).(map[string]any)
	if info["entityCount"] != float64(pool) {
		t.Errorf("entityCount %v, want %d", info["entityCount"], pool)
	}
	changes, err := n.svc.Changes(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != writers*rounds {
		t.Errorf("%d changes, want %d", len(changes), writers*rounds)
	}
	for i, c := range changes {
		if c.Seq != uint64(i+1) {
			t.Fatalf("change %d has seq %d", i, c.Seq)
		}
	}
}

// TestIndexReadyDuringQuery completes a value index after a query's
// snapshot opened and before it plans: the query must not read the index
// its snapshot predates, or it finds nothing.
func TestIndexReadyDuringQuery(t *testing.T) {
	n := newTestNode(t, nil)
	body := `[{"id": "urn:x:1", "type": "T", "p": 1}, {"id": "urn:x:2", "type": "T", "p": 2}]`
	if rec := n.do("POST", "/ngsi-ld/v1/entityOperations/create", body); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	const p = "https://uri.etsi.org/ngsi-ld/default-context/p"
	testHookQuerySnapshot = func() {
		testHookQuerySnapshot = nil
		n.svc.requestIndex(p)
		if err := n.svc.waitIndexes(context.Background()); err != nil {
			t.Error(err)
		}
		if !n.svc.vidx.isReady(p) {
			t.Error("index not built")
		}
	}
	t.Cleanup(func() { testHookQuerySnapshot = nil })
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=T&q=p==2", nil)); len(got) != 1 || got[0] != "urn:x:2" {
		t.Errorf("q=p==2 while its index completed found %v, want [urn:x:2]", got)
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=T&q=p==2", nil)); len(got) != 1 || got[0] != "urn:x:2" {
		t.Errorf("q=p==2 on the index found %v, want [urn:x:2]", got)
	}
}
