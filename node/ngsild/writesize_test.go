package ngsild

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

// TestBytesPerEntity logs the bytes (keys and values) an AirQualityObserved
// upsert leaves in the store per entity, by key prefix: after the
// entities are created, and what replacing them all once adds. It checks
// nothing; run it with -v to see where the bytes of a write go.
func TestBytesPerEntity(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 2,000 entities")
	}
	const total = 2000
	n := newTestNodeOn(t, openDisk(t), nil)
	bodies := batchBodies(t, total, 1000, 7)
	sizes := func() map[string][2]int {
		out := map[string][2]int{}
		err := n.svc.db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{}, func(k, v []byte) error {
				// The key space up to its second '/' (n/h/, n/ha/, ...).
				p := string(k)
				if i := strings.IndexByte(p, '/'); i >= 0 {
					if j := strings.IndexByte(p[i+1:], '/'); j >= 0 {
						p = p[:i+1+j+1]
					}
				}
				c := out[p]
				c[0] += len(k)
				c[1] += len(v)
				out[p] = c
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	upsert := func() {
		for _, b := range bodies {
			rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", b, link(envContext)...)
			if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
				t.Fatalf("upsert: %d %s", rec.Code, rec.Body.String())
			}
		}
	}
	report := func(what string, before, after map[string][2]int) {
		var prefixes []string
		for p := range after {
			prefixes = append(prefixes, p)
		}
		sort.Strings(prefixes)
		var sumK, sumV int
		for _, p := range prefixes {
			dk, dv := after[p][0]-before[p][0], after[p][1]-before[p][1]
			if dk == 0 && dv == 0 {
				continue
			}
			sumK, sumV = sumK+dk, sumV+dv
			t.Logf("%s %-5q keys %7.1f B/entity, values %7.1f B/entity", what, p, float64(dk)/total, float64(dv)/total)
		}
		t.Logf("%s total keys %.1f + values %.1f = %.1f B/entity", what, float64(sumK)/total, float64(sumV)/total, float64(sumK+sumV)/total)
	}
	s0 := sizes()
	upsert()
	s1 := sizes()
	report("create ", s0, s1)
	upsert()
	report("replace", s1, sizes())
}
