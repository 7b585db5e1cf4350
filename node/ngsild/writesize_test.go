package ngsild

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

// BenchmarkBytesPerEntity measures the bytes (keys and values) an
// AirQualityObserved upsert leaves in the store per entity: after the
// entities are created, and what replacing them all once adds. It is a
// measurement, not a check, so it is a benchmark: run it with
// -benchtime 1x -v to see the bytes by key prefix as well.
func BenchmarkBytesPerEntity(b *testing.B) {
	const total = 2000
	n := newTestNodeOn(b, openDisk(b), nil)
	bodies := batchBodies(b, total, 1000, 7)
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
			b.Fatal(err)
		}
		return out
	}
	upsert := func() {
		for _, body := range bodies {
			rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", body, link(envContext)...)
			if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
				b.Fatalf("upsert: %d %s", rec.Code, rec.Body.String())
			}
		}
	}
	report := func(what string, before, after map[string][2]int) float64 {
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
			b.Logf("%s %-5q keys %7.1f B/entity, values %7.1f B/entity", what, p, float64(dk)/total, float64(dv)/total)
		}
		b.Logf("%s total keys %.1f + values %.1f = %.1f B/entity", what, float64(sumK)/total, float64(sumV)/total, float64(sumK+sumV)/total)
		return float64(sumK+sumV) / total
	}
	// The sizes do not depend on b.N: one round is measured whatever it is.
	s0 := sizes()
	upsert()
	s1 := sizes()
	created := report("create ", s0, s1)
	upsert()
	replaced := report("replace", s1, sizes())
	b.ReportMetric(created, "create-B/entity")
	b.ReportMetric(replaced, "replace-B/entity")
}
