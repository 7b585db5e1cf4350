package contract_test

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// BenchmarkNegotiationLoopback measures one negotiation from the
// consumer's request to FINALIZED on the consumer, between two real nodes
// on loopback (TCP, Noise, yamux; every transition synced to badger on
// both sides before its message leaves). It reports p50 and p95.
func BenchmarkNegotiationLoopback(b *testing.B) {
	prov := startAt(b, initDir(b, "Environment"))
	res := startAt(b, initDir(b, "University"))
	federate(b, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(b, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	// Warm the connection and the caches.
	request(b, res, prov, dsNoise, offer, policy.PurposeResearch)
	var lat []time.Duration
	b.ResetTimer()
	cpu, written := osstat.ProcessCPU(), processWritten()
	for b.Loop() {
		start := time.Now()
		got := request(b, res, prov, dsNoise, offer, policy.PurposeResearch)
		lat = append(lat, time.Since(start))
		if got.State != negotiation.Finalized {
			b.Fatalf("ended %s %v", got.State, got.Reasons)
		}
	}
	reportPercentiles(b, lat)
	b.ReportMetric(float64((osstat.ProcessCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/negotiation")
	b.ReportMetric(float64(processWritten()-written)/1024/float64(b.N), "dirtied-KB/negotiation")
}

// BenchmarkNegotiationThroughput8Consumers measures completed
// negotiations per second against one provider from 8 consumer nodes,
// each running negotiations back to back.
func BenchmarkNegotiationThroughput8Consumers(b *testing.B) {
	prov := startAt(b, initDir(b, "Environment"))
	nodes := []*node.Node{prov}
	roles := []federation.Role{}
	for i := 0; i < 8; i++ {
		nodes = append(nodes, startAt(b, initDir(b, "Researcher")))
		roles = append(roles, federation.RoleResearcher)
	}
	federate(b, nodes, roles)
	offer := addOffer(b, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	for _, c := range nodes[1:] {
		request(b, c, prov, dsNoise, offer, policy.PurposeResearch)
	}
	b.ResetTimer()
	start := time.Now()
	cpu, written := osstat.ProcessCPU(), processWritten()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	for _, c := range nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				got := request(b, c, prov, dsNoise, offer, policy.PurposeResearch)
				if got.State != negotiation.Finalized {
					b.Errorf("ended %s %v", got.State, got.Reasons)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "negotiations/s")
	b.ReportMetric(float64((osstat.ProcessCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/negotiation")
	b.ReportMetric(float64(processWritten()-written)/1024/float64(b.N), "dirtied-KB/negotiation")
}

// processWritten is the number of bytes the test process has caused to be
// written to storage, as Linux counts them (write_bytes in /proc/self/io:
// each page of a file dirtied, the memory-mapped write-ahead logs
// included, once until it is written back); 0 where there is no such
// file. Every byte a negotiation stores costs a share of page faults,
// memtable space and syncs; this counts it where CPU time is too noisy
// to tell.
func processWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.95), "p95-ms")
}
