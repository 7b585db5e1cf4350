package ngsild

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node/store"
	"golang.org/x/sync/errgroup"
)

// BenchmarkIngestFresh is the testnet harness's ingest row, once per
// iteration on a fresh node: 20,000 new AirQualityObserved-shaped
// entities, 1,000 per batch upsert over HTTP on loopback, 2 requests in
// flight, timed from the first request to the last answer. The harness
// times only about a second, so whatever happens once in it (a memtable
// flush, a collection) moves its number; this shows the spread of such
// runs (min, median, max entities/s), and tables/run counts the LSM
// tables on disk after each run: the memtable flushes that fell in it
// (each about 0.2 cpu-s at 16 MiB memtables, an eighth of the run's CPU).
func BenchmarkIngestFresh(b *testing.B) {
	for _, mib := range []int{0, 12} {
		b.Run(fmt.Sprintf("prefill=%dMiB", mib), func(b *testing.B) { benchIngestFresh(b, mib) })
	}
}

// benchIngestFresh is BenchmarkIngestFresh on a node whose store took
// prefillMiB of other writes first, as a testnet node's store holds what
// joining the federation wrote: where the memtable stands decides how
// many flushes fall in the timed second.
func benchIngestFresh(b *testing.B, prefillMiB int) {
	const per, total, inFlight = 1000, 20_000, 2
	bodies := batchBodies(b, total, per, 7)
	h := link(envContext)
	var rates []float64
	var cpuSum time.Duration
	tables := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := prefill(db, prefillMiB); err != nil {
			b.Fatal(err)
		}
		n := newTestNodeOn(b, db, nil)
		srv := httptest.NewServer(n.mux)
		url := srv.URL + "/ngsi-ld/v1/entityOperations/upsert"
		b.StartTimer()
		start, cpu0 := time.Now(), osstat.ProcessCPU()
		var g errgroup.Group
		g.SetLimit(inFlight)
		for _, body := range bodies {
			g.Go(func() error {
				req, err := http.NewRequest("POST", url, bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(h[0], h[1])
				resp, err := srv.Client().Do(req)
				if err != nil {
					return err
				}
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("upsert: %d %s", resp.StatusCode, msg)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
		b.StopTimer()
		rates = append(rates, total/el.Seconds())
		cpuSum += cpu
		tables += countFiles(dir, ".sst")
		if testing.Verbose() {
			b.Logf("run %d: %.0f entities/s, %.1f cpu-µs/entity, files %s", i, total/el.Seconds(),
				float64(cpu.Microseconds())/total, storeFiles(dir))
		}
		srv.Close()
		n.svc.Close()
		db.Close()
		b.StartTimer()
	}
	slices.Sort(rates)
	b.ReportMetric(rates[0], "min-entities/s")
	b.ReportMetric(rates[len(rates)/2], "med-entities/s")
	b.ReportMetric(rates[len(rates)-1], "max-entities/s")
	b.ReportMetric(float64(cpuSum.Microseconds())/float64(b.N*total), "cpu-µs/entity")
	b.ReportMetric(float64(tables)/float64(b.N), "tables/run")
}

// countFiles counts the files in dir whose names end in ext.
func countFiles(dir, ext string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ext {
			n++
		}
	}
	return n
}

// storeFiles lists how many files of each kind a badger directory holds.
func storeFiles(dir string) string {
	ents, _ := os.ReadDir(dir)
	kinds := map[string]int{}
	for _, e := range ents {
		kinds[filepath.Ext(e.Name())]++
	}
	var out []string
	for k, n := range kinds {
		out = append(out, fmt.Sprintf("%s:%d", strings.TrimPrefix(k, "."), n))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// prefill writes about mib MiB of 1 KiB values under keys outside the
// NGSI-LD prefix.
func prefill(db *store.DB, mib int) error {
	val := bytes.Repeat([]byte{'x'}, 1024)
	batch := db.NewBatch()
	for i := 0; i < mib<<10; i++ {
		if err := batch.Set([]byte(fmt.Sprintf("zz/prefill/%08d", i)), val); err != nil {
			batch.Cancel()
			return err
		}
	}
	return batch.Flush()
}
