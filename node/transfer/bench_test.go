package transfer_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/transfer"
)

// Sizes of the benchmark datasets; the benchmarks do their measured work
// once per run (use -benchtime=1x) and report it with ReportMetric.
var (
	benchEntities = flag.Int("transfer.entities", 100_000, "entities of the end-to-end and 1%-change benchmarks")
	benchMiB      = flag.Int("transfer.mib", 256, "MiB of entity data in the block throughput benchmark")
	benchStreams  = flag.Int("transfer.streams", 0, "consumer's parallel block streams (0: the default)")
	benchBatch    = flag.Int("transfer.batch", 0, "consumer's blocks per request (0: the default)")
	benchPlain    = flag.Bool("transfer.plain", false, "consumer asks for blocks uncompressed (transfer.Options.PlainBlocks)")
	blockProfile  = flag.String("transfer.blockprofile", "", "write a CPU profile of the block phase alone to this file (not with -cpuprofile)")
	blockTrace    = flag.String("transfer.blocktrace", "", "write an execution trace of the block phase alone to this file, for go tool trace (not with -trace)")
	phaseProfile  = flag.String("transfer.phaseprofile", "", "write a CPU profile of each phase of the end-to-end benchmark to this path prefix: PREFIX-build.prof, -request, -blocks, -landing (not with -cpuprofile)")
	heapProfile   = flag.String("transfer.heapprofile", "", "write a heap profile at the end of each phase of the end-to-end benchmark, and halfway through its landing, to this path prefix: PREFIX-build.heap, -request, -blocks, -landing-half, -landing (each after a collection, which the phase measured next then pays)")
)

// writeHeap writes a heap profile of the live heap (after a collection)
// to path, if one is asked for (path has the prefix).
func writeHeap(b *testing.B, path string) {
	if *heapProfile == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// consumerTune applies the benchmark flags to consumers made by pair.
func consumerTune(o *transfer.Options) {
	if *benchStreams > 0 {
		o.Streams = *benchStreams
	}
	if *benchBatch > 0 {
		o.BatchBlocks = *benchBatch
	}
	o.PlainBlocks = *benchPlain
}

// entityMaker returns a function making the i-th of the entities the
// benchmarks store, in stored form, derived from the Smart Data Models
// example as the provider's API stored it.
func entityMaker(b *testing.B, p *peer) func(i int) *ngsild.Entity {
	b.Helper()
	upsert(b, p.n, entities(b, 1, 0))
	tmpl, err := p.n.NGSILD().Entity("urn:ngsi-ld:AirQualityObserved:test-000000")
	if err != nil || tmpl == nil {
		b.Fatalf("template entity: %v", err)
	}
	raw, _ := json.Marshal(tmpl)
	no2 := ""
	for k := range tmpl.Attrs {
		if len(k) > 3 && k[len(k)-3:] == "no2" {
			no2 = k
		}
	}
	return func(i int) *ngsild.Entity {
		e := new(ngsild.Entity)
		if err := json.Unmarshal(raw, e); err != nil {
			b.Fatal(err)
		}
		e.ID = fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:bench-%08d", i)
		// Every reading and the station's place differ from entity to
		// entity, as from one station to the next: blocks compress
		// (EncodingS2) about as real ones do, not as copies would.
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		for _, as := range e.Attrs {
			for _, a := range as {
				switch v := a.Value.(type) {
				case float64:
					a.Value = math.Round(rng.Float64()*v*200) / 100
				case map[string]any:
					if c, ok := v["coordinates"].([]any); ok && len(c) == 2 {
						v["coordinates"] = []any{-3.9 + rng.Float64()*0.5, 40.3 + rng.Float64()*0.3}
					}
				}
			}
		}
		e.Attrs[no2][0].Value = float64(i % 997)
		return e
	}
}

// storedEntities makes the first n entities of entityMaker.
func storedEntities(b *testing.B, p *peer, n int) []*ngsild.Entity {
	b.Helper()
	mk := entityMaker(b, p)
	out := make([]*ngsild.Entity, n)
	for i := range out {
		out[i] = mk(i)
	}
	return out
}

// putStored stores the first n entities of entityMaker in chunks, never
// holding more than one chunk (a million entities in memory at once
// would be about 10 GB), then collects the garbage the set-up left, so
// that neither weighs on the phase measured next. It returns the maker.
func putStored(b *testing.B, p *peer, n int) func(i int) *ngsild.Entity {
	b.Helper()
	mk := entityMaker(b, p)
	chunk := make([]*ngsild.Entity, 0, putChunk)
	for i := 0; i < n; i++ {
		chunk = append(chunk, mk(i))
		if len(chunk) == putChunk || i == n-1 {
			put(b, p, chunk)
			clear(chunk)
			chunk = chunk[:0]
		}
	}
	runtime.GC()
	return mk
}

// putChunk is how many entities put gives ngsild.Service.Put at once.
const putChunk = 5000

// withNO2 returns a copy of e with its no2 reading set to v (the store
// owns the entities it was given).
func withNO2(b *testing.B, e *ngsild.Entity, v float64) *ngsild.Entity {
	b.Helper()
	raw, err := json.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	c := new(ngsild.Entity)
	if err := json.Unmarshal(raw, c); err != nil {
		b.Fatal(err)
	}
	for k, as := range c.Attrs {
		if strings.HasSuffix(k, "no2") {
			as[0].Value = v
		}
	}
	return c
}

func put(b *testing.B, p *peer, es []*ngsild.Entity) {
	b.Helper()
	for c := range slices.Chunk(es, putChunk) {
		errs, err := p.n.NGSILD().Put(c)
		if err != nil {
			b.Fatal(err)
		}
		for i, e := range errs {
			if e != nil {
				b.Fatalf("put %s: %v", c[i].ID, e)
			}
		}
	}
}

func benchPair(b *testing.B) (prov, cons *peer, agreement string) {
	prov, cons = pair(b)
	a, f := agreementFile(b, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, f)
	cons.shelf.put(a.ID, f)
	return prov, cons, a.ID
}

// BenchmarkBlockThroughput: the block phase of a snapshot pull versus one
// bare libp2p stream copying the same number of bytes between the same
// two hosts, in the same run. Blocks go compressed (EncodingS2) unless
// -transfer.plain is given; the rates count the blocks' own bytes either
// way, and %-on-wire says how much of that crossed the stream.
func BenchmarkBlockThroughput(b *testing.B) {
	prov, cons, agreement := benchPair(b)
	n := *benchMiB << 20 / 4600 // about 4.6 kB per stored entity line
	putStored(b, prov, n)
	var t0, t1 time.Time
	var c0, c1 time.Duration
	var total int64
	b.ResetTimer()
	in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{Progress: func(p transfer.Progress) {
		switch {
		case p.Phase == "manifest":
			startProfile(b, *blockProfile)
			startTrace(b, *blockTrace)
			t0, c0 = time.Now(), osstat.ProcessCPU()
		case p.Phase == "blocks" && p.Blocks == p.TotalBlocks:
			t1, c1, total = time.Now(), osstat.ProcessCPU(), p.TotalBytes
			if *blockProfile != "" {
				pprof.StopCPUProfile()
			}
			if *blockTrace != "" {
				trace.Stop()
			}
		}
	}})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	blocksRate := float64(total) / t1.Sub(t0).Seconds()

	wall, _ := bareCopy(b, prov, cons, total)
	bareRate := float64(total) / wall.Seconds()
	b.ReportMetric(float64(total)/(1<<20), "MiB")
	// What crossed the stream (blocks compressed unless -transfer.plain,
	// and the manifest), as a share of the blocks' bytes.
	b.ReportMetric(100*float64(in.Usage.Bytes)/float64(total), "%-on-wire")
	b.ReportMetric(float64(in.Usage.Blocks), "blocks")
	b.ReportMetric(blocksRate/1e6, "blocks-MB/s")
	// Both nodes run in this process: the CPU both sides spent per MiB
	// of blocks, which the other work on the machine does not change.
	b.ReportMetric(float64((c1-c0).Milliseconds())/(float64(total)/(1<<20)), "cpu-ms/MiB")
	b.ReportMetric(bareRate/1e6, "bare-MB/s")
	b.ReportMetric(100*blocksRate/bareRate, "%-of-bare")
}

// bareCopy copies total bytes from prov to cons over one bare libp2p
// stream between their hosts, the baseline the block phase is compared
// with, and returns the copy's wall time and the CPU this process (both
// hosts) spent on it.
func bareCopy(b *testing.B, prov, cons *peer, total int64) (wall, cpu time.Duration) {
	const bare = "/mim/bench/bare/1.0.0"
	chunk := make([]byte, 1<<20)
	prov.n.Host().SetStreamHandler(p2pproto.ID(bare), func(st network.Stream) {
		defer st.Close()
		for left := total; left > 0; left -= int64(len(chunk)) {
			if _, err := st.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				st.Reset()
				return
			}
		}
	})
	st, err := cons.n.Host().NewStream(context.Background(), prov.n.ID(), bare)
	if err != nil {
		b.Fatal(err)
	}
	s0, c0 := time.Now(), osstat.ProcessCPU()
	got, err := io.Copy(io.Discard, st)
	wall, cpu = time.Since(s0), osstat.ProcessCPU()-c0
	if err != nil || got != total {
		b.Fatalf("bare stream copied %d of %d bytes: %v", got, total, err)
	}
	return wall, cpu
}

// startProfile starts a CPU profile into path, if one is asked for.
func startProfile(b *testing.B, path string) { startInto(b, path, pprof.StartCPUProfile) }

// startTrace starts an execution trace into path, if one is asked for.
func startTrace(b *testing.B, path string) { startInto(b, path, trace.Start) }

// startInto creates path, if one is asked for, and starts writing a
// profile or trace into it.
func startInto(b *testing.B, path string, start func(io.Writer) error) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if err := start(f); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEndToEndEntities: entities per second from the provider's store
// into the consumer's (checks, blocks, landing, receipt), the provider
// having built the version after the entities were stored, as its version
// loop does (node.UpdateVersions): s-build and cpu-s-build are that build,
// entities/s counts from the request, entities/s-with-build from the
// build's start.
func BenchmarkEndToEndEntities(b *testing.B) {
	prov, cons, agreement := benchPair(b)
	p0 := time.Now()
	putStored(b, prov, *benchEntities)
	// The store's own write rate, for scale: landing goes through the
	// same ngsild.Service.Put. (It includes making the entities.)
	putRate := float64(*benchEntities) / time.Since(p0).Seconds()
	ds, err := transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	last := ""
	phase := func(name string) {
		if last != "" {
			writeHeap(b, *heapProfile+"-"+last+".heap")
		}
		last = name
		if *phaseProfile != "" {
			pprof.StopCPUProfile()
			if name != "done" {
				startProfile(b, *phaseProfile+"-"+name+".prof")
			}
		}
	}
	phase("build")
	tb, cb := time.Now(), osstat.ProcessCPU()
	if _, err := prov.svc.Build(ctx, ds); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	c0 := osstat.ProcessCPU()
	b.ReportMetric(t0.Sub(tb).Seconds(), "s-build")
	b.ReportMetric((c0 - cb).Seconds(), "cpu-s-build")
	phase("request")
	phases := map[string]time.Time{}
	cpu := map[string]time.Duration{}
	halfway := false
	in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{Progress: func(p transfer.Progress) {
		if p.Phase == "landing" && !halfway && p.Entities >= p.TotalEntities/2 {
			halfway = true
			writeHeap(b, *heapProfile+"-landing-half.heap")
		}
		if _, ok := phases[p.Phase]; !ok {
			phases[p.Phase], cpu[p.Phase] = time.Now(), osstat.ProcessCPU()
			switch p.Phase {
			case "manifest":
				phase("blocks")
			case "landing", "done":
				phase(p.Phase)
			}
		}
	}})
	d := time.Since(t0)
	b.ReportMetric(phases["manifest"].Sub(t0).Seconds(), "s-request")
	b.ReportMetric(phases["landing"].Sub(phases["manifest"]).Seconds(), "s-blocks")
	b.ReportMetric(phases["done"].Sub(phases["landing"]).Seconds(), "s-landing")
	// The CPU both nodes (this process) spent in each phase: less noisy
	// than the wall clock on a shared machine, though it does not show
	// time spent waiting for the disk.
	b.ReportMetric((cpu["manifest"] - c0).Seconds(), "cpu-s-request")
	b.ReportMetric((cpu["landing"] - cpu["manifest"]).Seconds(), "cpu-s-blocks")
	b.ReportMetric((cpu["done"] - cpu["landing"]).Seconds(), "cpu-s-landing")
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(in.Usage.Entities), "entities")
	b.ReportMetric(float64(in.Usage.Entities)/d.Seconds(), "entities/s")
	b.ReportMetric(float64(in.Usage.Entities)/(d+t0.Sub(tb)).Seconds(), "entities/s-with-build")
	b.ReportMetric(putRate, "provider-put-entities/s")
}

// BenchmarkOnePercentChanged: bytes moved for the next version after 1% of
// the entities changed, as a share of the full snapshot: once for a
// contiguous 1% (one station's or district's entities) and once for 1%
// scattered at random over the whole id range.
func BenchmarkOnePercentChanged(b *testing.B) {
	for _, c := range []struct {
		name string
		pick func(n int) []int
	}{
		{"contiguous", func(n int) []int {
			out := make([]int, n/100)
			for i := range out {
				out[i] = n/2 + i
			}
			return out
		}},
		{"scattered", func(n int) []int {
			r := rand.New(rand.NewPCG(1, 2))
			return r.Perm(n)[:n/100]
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			prov, cons, agreement := benchPair(b)
			n := *benchEntities
			mk := putStored(b, prov, n)
			ds, err := transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
			if err != nil {
				b.Fatal(err)
			}
			// The version builds, as the provider's version loop makes
			// them: the first reads every entity, the one after the
			// change starts from it.
			build := func(what string) {
				t0, c0 := time.Now(), osstat.ProcessCPU()
				if _, err := prov.svc.Build(ctx, ds); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(t0).Seconds(), "s-"+what)
				b.ReportMetric((osstat.ProcessCPU() - c0).Seconds(), "cpu-s-"+what)
			}
			build("build")
			first, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			var changed []*ngsild.Entity
			for _, i := range c.pick(n) {
				changed = append(changed, withNO2(b, mk(i), 5000.0+float64(i)))
			}
			put(b, prov, changed)
			build("rebuild")
			second, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(len(changed)), "changed")
			b.ReportMetric(float64(first.Usage.Bytes), "full-bytes")
			b.ReportMetric(float64(second.Usage.Bytes), "moved-bytes")
			b.ReportMetric(100*float64(second.Usage.Bytes)/float64(first.Usage.Bytes), "%-of-full")
		})
	}
}

// BenchmarkLiveLatency: time from a provider write (one entity through
// ngsild.Service.Put) until the change has landed in the consumer's store.
func BenchmarkLiveLatency(b *testing.B) {
	prov, cons, agreement := benchPair(b)
	es := storedEntities(b, prov, 100)
	put(b, prov, es)
	landed := make(chan struct{}, 1)
	started := make(chan struct{})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cons.svc.Live(lctx, agreement, transfer.LiveOptions{
		Started:  func(transfer.Info) { close(started) },
		OnChange: func(transfer.LiveChange) { landed <- struct{}{} }})
	<-started
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e := withNO2(b, es[i%len(es)], float64(10000+i))
		t0 := time.Now()
		put(b, prov, []*ngsild.Entity{e})
		<-landed
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
}
