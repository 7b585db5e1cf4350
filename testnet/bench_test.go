package testnet

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tinySizes run every scenario on three nodes in seconds.
func tinySizes() BenchSizes {
	return BenchSizes{Shape: Shape{Cities: 1, AgenciesPerCity: 2, Researchers: 1}, Startups: 1,
		Upserts: 1000, Stored: 1500, Queries: 5, Notify: 3, History: 300, Changes: 2, Publishes: 2,
		Datasets: 3000, Searches: 20, ContentBytes: 256 << 10, Evals: 2000, Negotiations: 3, Concurrent: 4,
		Transfer: 1000, Live: 3, RTTs: 5}
}

// TestRunBenchTiny runs the whole harness on tiny sizes: the report has a
// row per target of issues 2 to 9, and every row that ran has a finite,
// positive value and a verdict consistent with its target.
func TestRunBenchTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes")
	}
	var progress bytes.Buffer
	date := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	profiles := t.TempDir()
	rep, err := RunBench(context.Background(), BenchOptions{Sizes: func() *BenchSizes { s := tinySizes(); return &s }(), Progress: &progress, Date: date,
		ProfileDir: profiles})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("RunBench: %v", err)
	}
	want := targets()
	if len(rep.Rows) != len(want) {
		t.Fatalf("report has %d rows, want %d (one per target)", len(rep.Rows), len(want))
	}
	issues := map[int]bool{}
	for i, r := range rep.Rows {
		issues[r.Issue] = true
		if r.ID != want[i].ID {
			t.Errorf("row %d is %s, want %s", i, r.ID, want[i].ID)
		}
		switch {
		case r.ID == "node.rss":
			// Without a binary the RSS of one node cannot be told apart
			// from the test process's.
			if r.Status != StatusNotRun || !strings.Contains(r.Note, "binary") {
				t.Errorf("node.rss without a binary: %s %q, want not run saying it needs the binary", r.Status, r.Note)
			}
		case r.Status == StatusNotRun:
			t.Errorf("%s not run: %s", r.ID, r.Note)
		case math.IsNaN(r.Value) || math.IsInf(r.Value, 0) || r.Value <= 0:
			t.Errorf("%s = %v %s, want a finite positive value", r.ID, r.Value, r.Unit)
		case r.Baseline < 0 || math.IsNaN(r.Baseline):
			t.Errorf("%s baseline = %v", r.ID, r.Baseline)
		case r.Op == "" && r.Status != StatusInfo, r.Op != "" && r.Status != StatusPass && r.Status != StatusFail:
			t.Errorf("%s status %s with target %q", r.ID, r.Status, r.TargetText())
		}
	}
	for issue := 2; issue <= 9; issue++ {
		if !issues[issue] {
			t.Errorf("no row for issue %d", issue)
		}
	}
	// Rows with a baseline measured it in the same run.
	for _, id := range []string{"node.ready", "ngsild.upsert", "ngsild.upsert.subs", "federation.propagation",
		"catalog.propagation", "catalog.search", "content.build", "contract.latency", "transfer.blocks", "transfer.delta"} {
		if r, _ := rep.Row(id); r.Status != StatusNotRun && r.Baseline <= 0 {
			t.Errorf("%s has no baseline", id)
		}
	}
	// A 1% change moves less than the full snapshot.
	if r, _ := rep.Row("transfer.delta"); r.Status != StatusNotRun && r.Ratio() >= 1 {
		t.Errorf("1%% change moved %v bytes of a %v-byte snapshot", r.Value, r.Baseline)
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(md.String(), "\n| "); got != len(want)+1 {
		t.Errorf("markdown has %d table lines, want %d:\n%s", got, len(want)+1, md.String())
	}
	t.Logf("\n%s", md.String())
	// A CPU profile of each scenario, and of each federation step rather
	// than of the federation as a whole.
	for _, name := range []string{"node-start", "catalogue-search", "ngsi-ld-ingest-and-queries", "negotiation", "transfer"} {
		st, err := os.Stat(filepath.Join(profiles, name+".pprof"))
		if err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(profiles, "federation.pprof")); err == nil {
		t.Errorf("the federation scenario was profiled whole as well as by steps")
	}
}

func TestProfileName(t *testing.T) {
	for in, want := range map[string]string{
		"NGSI-LD ingest and queries": "ngsi-ld-ingest-and-queries",
		"node start":                 "node-start",
		"  x/y  ":                    "x-y",
	} {
		if got := profileName(in); got != want {
			t.Errorf("profileName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRowJudge(t *testing.T) {
	for _, c := range []struct {
		name string
		row  Row
		want Status
	}{
		{"below a latency target", Row{Value: 3, Op: "<", Goal: 5}, StatusPass},
		{"at a strict latency target", Row{Value: 5, Op: "<", Goal: 5}, StatusFail},
		{"above a throughput target", Row{Value: 600, Op: ">", Goal: 500}, StatusPass},
		{"at an inclusive throughput target", Row{Value: 20000, Op: ">=", Goal: 20000}, StatusPass},
		{"below an inclusive throughput target", Row{Value: 19999, Op: ">=", Goal: 20000}, StatusFail},
		{"ratio to baseline met", Row{Value: 90, Baseline: 100, Op: ">=", Goal: 0.8, OnRatio: true}, StatusPass},
		{"ratio to baseline missed", Row{Value: 70, Baseline: 100, Op: ">=", Goal: 0.8, OnRatio: true}, StatusFail},
		{"ratio without a baseline fails", Row{Value: 70, Op: ">=", Goal: 0.8, OnRatio: true}, StatusFail},
		{"no target is information", Row{Value: 7}, StatusInfo},
		{"not run stays not run", Row{Value: 0, Op: "<", Goal: 5, Status: StatusNotRun}, StatusNotRun},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.row
			r.judge()
			if r.Status != c.want {
				t.Errorf("judge(%+v) = %s, want %s", c.row, r.Status, c.want)
			}
		})
	}
}

func TestBenchSetRejectsNaN(t *testing.T) {
	b := &bench{rows: targets()}
	b.set("node.ready", math.NaN(), 1, "bare", "")
	if r := b.rows[0]; r.Status != StatusNotRun || !strings.HasPrefix(r.Note, "not run") {
		t.Errorf("NaN measurement gave %s %q, want not run", r.Status, r.Note)
	}
	b.set("node.ready", 120, math.Inf(1), "bare", "")
	if r := b.rows[0]; r.Status != StatusPass || r.Baseline != 0 {
		t.Errorf("infinite baseline gave %s baseline %v, want pass without a baseline", r.Status, r.Baseline)
	}
}

func TestMarkdown(t *testing.T) {
	load := 0.41
	rep := Report{
		Machine: Machine{CPU: "Test CPU @ 2.00GHz", Cores: 2, MemoryMiB: 7951, GoVersion: "go1.26.8", Procs: 4, OS: "linux/amd64", Date: time.Date(2026, 11, 27, 7, 5, 0, 0, time.UTC),
			Features: []string{"avx2", "sha_ni"}, Load: &load, SyncMs: 2.345},
		Quick:    true,
		Duration: 95 * time.Second,
		Rows: []Row{
			{ID: "a", Issue: 3, Metric: "batch upsert", Unit: "entities/s", Value: 23456.7, Baseline: 98765, BaselineName: "bare store", Op: ">=", Goal: 20000, Status: StatusPass},
			{ID: "b", Issue: 8, Metric: "negotiation p50", Unit: "ms", Value: 7.25, Baseline: 0.5, BaselineName: "stream round trip", Op: "<", Goal: 5, Status: StatusFail, Note: "50 | negotiations"},
			{ID: "c", Issue: 9, Metric: "1% change", Unit: "bytes", Value: 1200, Baseline: 100000, BaselineName: "full snapshot", Op: "<", Goal: 0.05, OnRatio: true, Status: StatusPass},
			{ID: "d", Issue: 6, Metric: "version building", Unit: "MB/s", Value: 0.123, Status: StatusInfo},
			{ID: "e", Issue: 2, Metric: "idle RSS", Unit: "MiB", Op: "<", Goal: 80, Status: StatusNotRun, Note: "not run: needs the binary"},
		},
	}
	var out bytes.Buffer
	if err := rep.Markdown(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, line := range []string{
		"- Machine: Test CPU @ 2.00GHz, 2 cores, 7951 MiB memory; CPU has avx2, sha_ni, not avx512f, aes\n",
		"- Load when the run started: 0.41 (1-minute average; above 2, other work shared the CPU)\n",
		"- Disk: 4 KiB append and fsync, p50 2.35 ms, where the nodes store their data\n",
		"- Go: go1.26.8, linux/amd64, GOMAXPROCS 4\n",
		"- Date: 2026-11-27 07:05 UTC\n",
		"| issue | metric | value | baseline | ratio | target | result | notes |\n",
		"| 3 | batch upsert | 23,457 entities/s | 98,765 entities/s (bare store) | 0.24 | ≥ 20,000 entities/s | pass |  |\n",
		"| 8 | negotiation p50 | 7.25 ms | 0.5 ms (stream round trip) | 14.50 | < 5.00 ms | fail | 50 \\| negotiations |\n",
		"| 9 | 1% change | 1,200 bytes | 100,000 bytes (full snapshot) | 0.01 | < 0.05 × baseline | pass |  |\n",
		"| 6 | version building | 0.123 MB/s | — | — | — | info |  |\n",
		"| 2 | idle RSS | — | — | — | < 80.0 MiB | not run | not run: needs the binary |\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("markdown lacks %q; got:\n%s", line, got)
		}
	}
}

// A report of a machine whose features, load and disk were not read says
// nothing about them, rather than "none" or zero.
func TestMarkdownWithoutMachineReadings(t *testing.T) {
	var out bytes.Buffer
	if err := (&Report{Machine: Machine{CPU: "unknown", Cores: 2}}).Markdown(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "- Machine: unknown, 2 cores, 0 MiB memory\n") {
		t.Errorf("machine line missing or decorated:\n%s", got)
	}
	for _, no := range []string{"CPU has", "Load when", "Disk:", "GOMAXPROCS"} {
		if strings.Contains(got, no) {
			t.Errorf("report of unread machine says %q:\n%s", no, got)
		}
	}
	if err := (&Report{Machine: Machine{Cores: 2, Features: []string{}}}).Markdown(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "; CPU has none, not avx2, avx512f, sha_ni, aes\n") {
		t.Errorf("CPU with none of the features:\n%s", out.String())
	}
}

func TestCPUFeaturesAndLoad(t *testing.T) {
	flags := "fpu vme de pse tsc msr pae mce cx8 apic sse2 aes avx avx2 sha_ni avx512fx"
	if got := cpuFeatures(flags); !slices.Equal(got, []string{"avx2", "sha_ni", "aes"}) {
		t.Errorf("cpuFeatures = %q, want avx2 sha_ni aes (avx512fx is not avx512f)", got)
	}
	if got := cpuFeatures(""); got == nil || len(got) != 0 {
		t.Errorf("cpuFeatures of no flags = %#v, want empty and not nil", got)
	}
	for text, want := range map[string]float64{"0.41 0.12 0.04 1/70 999\n": 0.41, "11.22 6.42 3.14 3/200 1234": 11.22} {
		if got, ok := loadAverage(text); !ok || got != want {
			t.Errorf("loadAverage(%q) = %v, %v; want %v", text, got, ok, want)
		}
	}
	for _, text := range []string{"", "x 1 2", "-1 0 0", "NaN 0 0"} {
		if got, ok := loadAverage(text); ok {
			t.Errorf("loadAverage(%q) = %v, want not there", text, got)
		}
	}
}

func TestMeasureSync(t *testing.T) {
	dir := t.TempDir()
	d, err := measureSync(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 {
		t.Errorf("sync took %v", d)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("measureSync left %d files in %s", len(left), dir)
	}
	if _, err := measureSync(filepath.Join(dir, "missing"), 5); err == nil {
		t.Error("measureSync in a directory that does not exist: no error")
	}
}

// A cancelled run returns ErrBenchCancelled and a report in which every
// row says it was not run and why.
func TestRunBenchCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := tinySizes()
	rep, err := RunBench(ctx, BenchOptions{Sizes: &s})
	if !errors.Is(err, ErrBenchCancelled) {
		t.Fatalf("RunBench with a cancelled context: %v, want ErrBenchCancelled", err)
	}
	if len(rep.Rows) != len(targets()) {
		t.Fatalf("%d rows, want %d", len(rep.Rows), len(targets()))
	}
	for _, r := range rep.Rows {
		if r.Status != StatusNotRun || !strings.Contains(r.Note, "cancelled") {
			t.Errorf("%s: %s %q, want not run because cancelled", r.ID, r.Status, r.Note)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose
	}
	for _, c := range []struct {
		name string
		lat  []time.Duration
		p    float64
		want float64
	}{
		{"median of an odd count", ms(5, 1, 3), 0.5, 3},
		{"median of an even count is the lower middle", ms(4, 1, 3, 2), 0.5, 2},
		{"p95 of 1..100", ms(hundred...), 0.95, 95},
		{"p99 of 1..100", ms(hundred...), 0.99, 99},
		{"p99 of few samples is the largest", ms(7, 9, 8), 0.99, 9},
		{"one sample", ms(42), 0.5, 42},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := percentile(c.lat, c.p); got != c.want {
				t.Errorf("percentile(%v, %v) = %v ms, want %v", c.lat, c.p, got, c.want)
			}
		})
	}
	if got := percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("percentile of no samples = %v, want NaN", got)
	}
}
