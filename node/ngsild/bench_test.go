package ngsild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node/store"
)

const envContext = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"

// aqoEntity builds an entity shaped like the AirQualityObserved example
// (normalized, 20 attributes), station i of a city-sized grid around Madrid.
func aqoEntity(rng *rand.Rand, i int) map[string]any {
	prop := func(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }
	unit := func(v any, u string) map[string]any {
		return map[string]any{"type": "Property", "value": v, "unitCode": u, "observedAt": "2026-03-15T11:00:00Z"}
	}
	return map[string]any{
		"id":   fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:Madrid-%07d", i),
		"type": "AirQualityObserved",
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{
			"type": "Point", "coordinates": []any{-3.9 + rng.Float64()*0.5, 40.3 + rng.Float64()*0.3},
		}},
		"address": prop(map[string]any{
			"addressCountry": "ES", "addressLocality": "Madrid", "streetAddress": fmt.Sprintf("Calle %d", i%500), "type": "PostalAddress",
		}),
		"stationCode":      prop(fmt.Sprintf("S%07d", i)),
		"dateObserved":     prop(map[string]any{"@type": "DateTime", "@value": "2026-03-15T11:00:00Z"}),
		"co":               unit(float64(rng.IntN(1000)), "GP"),
		"no":               unit(float64(rng.IntN(100)), "GQ"),
		"no2":              unit(float64(rng.IntN(200)), "GQ"),
		"nox":              unit(float64(rng.IntN(300)), "GQ"),
		"so2":              unit(float64(rng.IntN(50)), "GQ"),
		"airQualityIndex":  prop(float64(rng.IntN(100))),
		"airQualityLevel":  prop([]string{"good", "moderate", "unhealthy"}[rng.IntN(3)]),
		"temperature":      prop(float64(rng.IntN(400)) / 10),
		"relativeHumidity": prop(rng.Float64()),
		"windDirection":    prop(float64(rng.IntN(361) - 180)),
		"windSpeed":        prop(rng.Float64() * 10),
		"precipitation":    prop(0.0),
		"reliability":      prop(0.7),
		"source":           prop("http://datos.madrid.es"),
		"refPointOfInterest": map[string]any{
			"type": "Relationship", "object": fmt.Sprintf("urn:ngsi-ld:PointOfInterest:%d", i%1000),
		},
	}
}

// batchBodies returns JSON upsert bodies of size entities each.
func batchBodies(b testing.TB, total, size int, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out [][]byte
	for start := 0; start < total; start += size {
		list := make([]any, 0, size)
		for i := start; i < start+size && i < total; i++ {
			list = append(list, aqoEntity(rng, i))
		}
		body, err := json.Marshal(list)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}

func openDisk(b testing.TB) *store.DB {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkBatchUpsert measures POST /entityOperations/upsert of
// AirQualityObserved-shaped entities, 1,000 per request, on a disk store
// with synchronous writes (target: 20,000 entities/s).
//
// Value indexes are per attribute (see valueIndexes): "validated" has none
// yet, as on a node no query has filtered on anything; "3-indexed" keeps
// three (what a dashboard typically filters on); "all-indexed" keeps every
// attribute of the entity, the worst case.
func BenchmarkBatchUpsert(b *testing.B) {
	b.Run("validated", func(b *testing.B) { benchUpsert(b, nil) })
	b.Run("validated-3-indexed", func(b *testing.B) {
		benchUpsert(b, func(o *Options) { o.IndexedAttributes = benchIndexed })
	})
	b.Run("validated-all-indexed", func(b *testing.B) {
		var all []string
		for name := range aqoEntity(rand.New(rand.NewPCG(1, 1)), 0) {
			if name != "id" && name != "type" && name != "location" {
				all = append(all, envVocab+name)
			}
		}
		benchUpsert(b, func(o *Options) { o.IndexedAttributes = all })
	})
	b.Run("unvalidated", func(b *testing.B) { benchUpsert(b, func(o *Options) { o.SkipValidation = true }) })
}

const envVocab = "https://smartdatamodels.org/dataModel.Environment/"

// benchIndexed are the attributes the query benchmark filters on.
var benchIndexed = []string{envVocab + "no2", envVocab + "airQualityLevel", envVocab + "temperature"}

func benchUpsert(b *testing.B, mod func(*Options)) {
	n := newTestNodeOn(b, openDisk(b), mod)
	const per = 1000
	bodies := batchBodies(b, 20*per, per, 7)
	b.ResetTimer()
	start, cpu0 := time.Now(), osstat.ProcessCPU()
	for i := 0; i < b.N; i++ {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", bodies[i%len(bodies)], link(envContext)...)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
			b.Fatalf("upsert: %d %s", rec.Code, rec.Body.String())
		}
	}
	el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
	b.ReportMetric(float64(b.N*per)/el.Seconds(), "entities/s")

	// On a shared machine wall time depends on the neighbours; CPU time
	// per entity (all threads, including badger's) does not.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*per), "cpu-µs/entity")
}

// BenchmarkBatchUpsertConcurrent measures batch upserts of new
// AirQualityObserved-shaped entities, 1,000 per request, with two requests
// in flight as the testnet ingest measurement sends them: the second
// request's decoding, validation and encoding should use the core the
// first one's write leaves free. Every request creates 1,000 entities no
// earlier one wrote. Run it with -cpu 2 to see the machine class of issue
// #3.
func BenchmarkBatchUpsertConcurrent(b *testing.B) {
	const per, inFlight = 1000, 2
	n := newTestNodeOn(b, openDisk(b), nil)
	bodies := batchBodies(b, b.N*per, per, 7)
	h := link(envContext)
	var next atomic.Int64
	errs := make(chan error, inFlight)
	b.ResetTimer()
	start, cpu0 := time.Now(), osstat.ProcessCPU()
	for g := 0; g < inFlight; g++ {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					errs <- nil
					return
				}
				rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", bodies[i], h...)
				if rec.Code != http.StatusCreated {
					errs <- fmt.Errorf("upsert: %d %s", rec.Code, rec.Body.String())
					return
				}
			}
		}()
	}
	for g := 0; g < inFlight; g++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
	b.ReportMetric(float64(b.N*per)/el.Seconds(), "entities/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*per), "cpu-µs/entity")
}

// BenchmarkBatchUpsertHTTP is BenchmarkBatchUpsert/validated over a real
// HTTP server on loopback: the request is read from a socket, as on a
// node. CPU time includes the client's side of the connection.
func BenchmarkBatchUpsertHTTP(b *testing.B) {
	n := newTestNodeOn(b, openDisk(b), nil)
	srv := httptest.NewServer(n.mux)
	b.Cleanup(srv.Close)
	const per = 1000
	bodies := batchBodies(b, 20*per, per, 7)
	h := link(envContext)
	url := srv.URL + "/ngsi-ld/v1/entityOperations/upsert"
	b.ResetTimer()
	start, cpu0 := time.Now(), osstat.ProcessCPU()
	for i := 0; i < b.N; i++ {
		req, err := http.NewRequest("POST", url, bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(h[0], h[1])
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
			b.Fatalf("upsert: %d %s", resp.StatusCode, msg)
		}
	}
	el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
	b.ReportMetric(float64(b.N*per)/el.Seconds(), "entities/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*per), "cpu-µs/entity")
}

// loaded100k is a disk store holding 100,000 AirQualityObserved-shaped
// entities, shared by the query benchmarks.
func load(b *testing.B, total int) (*testNode, string) {
	b.Helper()
	dir := b.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	n := newTestNodeOn(b, db, func(o *Options) { o.IndexedAttributes = benchIndexed })
	for _, body := range batchBodies(b, total, 1000, 11) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", body, link(envContext)...)
		if rec.Code != http.StatusCreated {
			b.Fatalf("load: %d %s", rec.Code, rec.Body.String())
		}
	}
	if err := n.svc.waitIndexes(context.Background()); err != nil {
		b.Fatal(err)
	}
	return n, dir
}

// benchQueries runs queries and reports p50/p95 latency.
func benchQueries(b *testing.B, n *testNode, target func(i int) string) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	results := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		rec := n.do("GET", target(i), nil, link(envContext)...)
		lat = append(lat, time.Since(t0))
		if rec.Code != http.StatusOK {
			b.Fatalf("query: %d %s", rec.Code, rec.Body.String())
		}
		var list []any
		_ = json.Unmarshal(rec.Body.Bytes(), &list)
		results += len(list)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(results)/float64(b.N), "results/op")
}

// BenchmarkQuery100k measures queries over 100,000 stored entities
// (target: p95 under 20 ms) and the store size per entity.
func BenchmarkQuery100k(b *testing.B) {
	const total = 100_000
	n, dir := load(b, total)
	b.Run("type+q", func(b *testing.B) {
		benchQueries(b, n, func(i int) string {
			q := fmt.Sprintf("no2==%d;airQualityLevel==\"moderate\"", i%200)
			return "/ngsi-ld/v1/entities?type=AirQualityObserved&q=" + url.QueryEscape(q)
		})
	})
	b.Run("type+q-range", func(b *testing.B) {
		benchQueries(b, n, func(i int) string {
			q := fmt.Sprintf("temperature>=%d.0;temperature<%d.2", i%40, i%40)
			return "/ngsi-ld/v1/entities?type=AirQualityObserved&q=" + url.QueryEscape(q)
		})
	})
	b.Run("near", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 3))
		benchQueries(b, n, func(int) string {
			pt := fmt.Sprintf("[%f,%f]", -3.9+rng.Float64()*0.5, 40.3+rng.Float64()*0.3)
			return "/ngsi-ld/v1/entities?type=AirQualityObserved&georel=" + url.QueryEscape("near;maxDistance==300") +
				"&geometry=Point&coordinates=" + url.QueryEscape(pt)
		})
	})
	b.Run("store-size", func(b *testing.B) {
		// Files on disk (LSM tables, value log, WAL), change feed included.
		for i := 0; i < b.N; i++ {
			size, _ := osstat.DirAllocated(dir, nil) // badger's logs are sparse: blocks, not lengths
			b.ReportMetric(float64(size)/total, "bytes/entity")
		}
	})
}
