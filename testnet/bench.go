package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
	"unicode"
)

// BenchSizes say how much work each benchmark scenario does. Quick and
// full runs use QuickSizes and FullSizes; tests pass tiny ones.
type BenchSizes struct {
	Shape        Shape // federation for propagation, negotiation and transfer (20 nodes for the targets)
	Startups     int   // node starts timed
	Upserts      int   // entities written in the upsert measurement (1,000 per request)
	Stored       int   // entities stored for the query measurement (100,000 for the target)
	Queries      int   // queries per kind
	Notify       int   // notifications timed
	History      int   // instances of one attribute for lastN (1,000,000 for the target)
	Changes      int   // membership changes timed (even: roles are put back)
	Publishes    int   // datasets published and awaited on every member
	Datasets     int   // catalogue search index size (100,000 for the target)
	Searches     int   // catalogue searches timed
	ContentBytes int   // bytes of entity JSON for version building
	Evals        int   // policy evaluations timed
	Negotiations int   // negotiations timed one at a time
	Concurrent   int   // negotiations in the 8-consumer throughput run
	Transfer     int   // entities of the end-to-end transfer (1,000,000 for the target)
	Live         int   // live-feed changes timed
	RTTs         int   // stream round trips for baselines
}

// QuickSizes finish a whole run in under three minutes on a 2-core machine.
func QuickSizes() BenchSizes {
	return BenchSizes{Shape: Shape{Cities: 4, AgenciesPerCity: 4, Researchers: 4}, Startups: 3,
		Upserts: 20_000, Stored: 20_000, Queries: 100, Notify: 100, History: 20_000, Changes: 20,
		Publishes: 20, Datasets: 100_000, Searches: 500, ContentBytes: 16 << 20, Evals: 500_000,
		Negotiations: 50, Concurrent: 1000, Transfer: 10_000, Live: 50, RTTs: 50}
}

// FullSizes are the sizes the issues name.
func FullSizes() BenchSizes {
	return BenchSizes{Shape: Shape{Cities: 4, AgenciesPerCity: 4, Researchers: 4}, Startups: 10,
		Upserts: 50_000, Stored: 100_000, Queries: 500, Notify: 500, History: 1_000_000, Changes: 100,
		Publishes: 100, Datasets: 100_000, Searches: 5000, ContentBytes: 128 << 20, Evals: 5_000_000,
		Negotiations: 300, Concurrent: 2000, Transfer: 1_000_000, Live: 300, RTTs: 300}
}

// BenchOptions configure RunBench.
type BenchOptions struct {
	// Quick sizes everything down (QuickSizes); otherwise FullSizes.
	Quick bool
	// Sizes, when not nil, replaces the sizes Quick picks (tests use tiny ones).
	Sizes *BenchSizes
	// Progress receives one line per scenario as it starts and ends; nil
	// discards them.
	Progress io.Writer
	// Binary is a mimnode executable; with it, start to ready and idle RSS
	// are measured on `mimnode run` as a subprocess. Without it start to
	// ready is measured in-process and RSS is not measured.
	Binary string
	// Date is the report's date (the caller's clock).
	Date time.Time
	// ProfileDir, when set, receives a CPU profile of the whole process
	// for each scenario and each step of the federation scenario, named
	// after it (e.g. "ngsi-ld-ingest-and-queries.pprof"), for finding where
	// a row's time goes, other nodes' background work included.
	ProfileDir string
}

// ErrBenchCancelled is returned when the context ends a run early; the
// report holds what was measured until then.
var ErrBenchCancelled = errors.New("benchmark run cancelled")

// bench is one run: the sizes and the rows being filled in.
type bench struct {
	sz       BenchSizes
	o        BenchOptions
	rows     []Row
	progress io.Writer
}

// set records a measurement for row id.
func (b *bench) set(id string, value, baseline float64, baselineName, note string) {
	for i := range b.rows {
		if b.rows[i].ID == id {
			r := &b.rows[i]
			r.Value, r.Baseline, r.BaselineName, r.Note, r.Status = value, baseline, baselineName, note, ""
			if math.IsNaN(value) || math.IsInf(value, 0) {
				r.Status, r.Note = StatusNotRun, "not run: measurement gave no finite value"
			}
			if math.IsNaN(baseline) || math.IsInf(baseline, 0) {
				r.Baseline = 0
			}
			r.judge()
			return
		}
	}
	panic("testnet: bench row " + id + " is not in targets()") // a scenario names a row that does not exist: a bug
}

// skip marks rows not measured, with the reason; the first reason given
// for a row is the one kept, as it is the most specific.
func (b *bench) skip(reason string, ids ...string) {
	for i := range b.rows {
		if slices.Contains(ids, b.rows[i].ID) && b.rows[i].Status == StatusNotRun && b.rows[i].Note == "" {
			b.rows[i].Note = "not run: " + reason
		}
	}
}

// profile starts a CPU profile of name into BenchOptions.ProfileDir and
// returns what stops it; without ProfileDir it does nothing. A profile
// that cannot be written is reported in the progress lines and does not
// stop the run.
func (b *bench) profile(name string) (stop func()) {
	if b.o.ProfileDir == "" {
		return func() {}
	}
	path := filepath.Join(b.o.ProfileDir, profileName(name)+".pprof")
	f, err := os.Create(path)
	if err != nil {
		b.logf("  no profile for %s: %v", name, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.logf("  no profile for %s: %v", name, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.logf("  profile for %s: %v", name, err)
		}
	}
}

// profileName is name as a file name: lower case, runs of anything but
// letters and digits as one '-'.
func profileName(name string) string {
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && sb.Len() > 0 {
				sb.WriteByte('-')
			}
			sb.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return sb.String()
}

func (b *bench) logf(format string, args ...any) {
	if b.progress != nil {
		fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
	}
}

// scenario is one group of measurements; the rows it fills are listed so
// that a failure marks exactly those as not run, with the error.
type scenario struct {
	name string
	rows []string
	run  func(ctx context.Context, b *bench) error
	// stepped scenarios profile each of their steps themselves
	// (BenchOptions.ProfileDir) instead of being profiled whole.
	stepped bool
}

// RunBench runs every benchmark scenario, each with its baseline measured
// in the same run, and returns the report: a row per target of issues 2 to
// 9. A scenario that fails leaves its rows "not run" with the error; only a
// cancelled context makes RunBench return an error (ErrBenchCancelled, with
// the report of what was measured until then).
//
// `mimnode bench` is a thin shell around it:
//
//	rep, err := testnet.RunBench(ctx, testnet.BenchOptions{Quick: true,
//		Progress: os.Stderr, Binary: exe, Date: time.Now()})
//	rep.Markdown(os.Stdout) // the README's performance section
//
// The scenarios without a network run first (node start against a bare
// libp2p host, policy evaluation, version building against BLAKE3,
// catalogue search over an index of Datasets against one of 1,000). Then
// one testnet of Sizes.Shape is started, federated, seeded and published,
// and everything else runs on it, one measurement after another so that
// none competes with another for the CPU: NGSI-LD on the last agency
// through its HTTP API, membership and catalogue propagation across all
// members, negotiation between a researcher and the transport agency, and
// transfer between the environment agency and a researcher. Latencies are
// wall time from the request until the effect is seen where it matters
// (every member, the consumer's store, the receiver), and the harness
// waits for events with deadlines, never fixed sleeps.
func RunBench(ctx context.Context, o BenchOptions) (Report, error) {
	sz := FullSizes()
	if o.Quick {
		sz = QuickSizes()
	}
	if o.Sizes != nil {
		sz = *o.Sizes
	}
	b := &bench{sz: sz, o: o, rows: targets(), progress: o.Progress}
	for i := range b.rows {
		b.rows[i].Status = StatusNotRun
	}
	start := time.Now()
	rep := Report{Machine: ThisMachine(o.Date), Quick: o.Quick}
	if d, err := measureSync(os.TempDir(), 50); err == nil {
		rep.Machine.SyncMs = float64(d.Nanoseconds()) / 1e6
	} else {
		b.logf("measuring the disk's sync time: %v", err)
	}
	var err error
	for _, s := range scenarios() {
		if ctx.Err() != nil {
			b.skip("run cancelled", s.rows...)
			err = fmt.Errorf("%w: %w", ErrBenchCancelled, ctx.Err())
			continue
		}
		b.logf("%s ...", s.name)
		t0 := time.Now()
		stop := func() {}
		if !s.stepped {
			stop = b.profile(s.name)
		}
		serr := s.run(ctx, b)
		stop()
		if serr != nil {
			b.skip(fmt.Sprintf("%s: %v", s.name, serr), s.rows...)
			b.logf("%s failed after %s: %v", s.name, time.Since(t0).Round(time.Millisecond), serr)
			continue
		}
		b.skip(s.name+" measured nothing for this row", s.rows...)
		b.logf("%s done in %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	if err == nil && ctx.Err() != nil { // the last scenario was cut short
		err = fmt.Errorf("%w: %w", ErrBenchCancelled, ctx.Err())
	}
	rep.Rows, rep.Duration = b.rows, time.Since(start)
	return rep, err
}

// scenarios lists the runs in order: the ones without a network first, then
// everything that shares the federation.
func scenarios() []scenario {
	return []scenario{
		{"node start", []string{"node.ready", "node.rss"}, benchStartup, false},
		{"policy evaluation", []string{"policy.evaluate"}, benchPolicy, false},
		{"version building", []string{"content.build"}, benchContent, false},
		{"catalogue search", []string{"catalog.search"}, benchSearch, false},
		{"federation", []string{"ngsild.upsert", "ngsild.query.q", "ngsild.query.near", "ngsild.size",
			"ngsild.notify", "ngsild.upsert.subs", "ngsild.lastn", "federation.propagation", "catalog.propagation",
			"contract.latency", "contract.throughput", "transfer.blocks", "transfer.entities", "transfer.delta",
			"transfer.live"}, benchFederation, true},
	}
}

// percentile returns the p-th percentile (0..1) of lat in milliseconds,
// nearest rank; NaN for no samples.
func percentile(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return math.NaN()
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Nanoseconds()) / 1e6
}
