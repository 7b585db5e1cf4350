package testnet

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Status says how a report row compares with its target.
type Status string

// Row statuses.
const (
	StatusPass   Status = "pass"
	StatusFail   Status = "fail"
	StatusInfo   Status = "info"    // measured; the issue names no number to meet
	StatusNotRun Status = "not run" // Note says why
)

// Row is one metric of the benchmark report.
type Row struct {
	ID     string `json:"id"`    // stable key, e.g. "ngsild.upsert"
	Issue  int    `json:"issue"` // the issue that names the target
	Metric string `json:"metric"`
	Unit   string `json:"unit"`

	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline,omitempty"` // 0: no baseline
	// BaselineName says what the baseline measured, in the same unit.
	BaselineName string `json:"baselineName,omitempty"`

	// Target: Value (or Value/Baseline with OnRatio) Op Goal; Op empty
	// means the issue names the metric but no number.
	Op      string  `json:"op,omitempty"` // "<", ">", ">="
	Goal    float64 `json:"goal,omitempty"`
	OnRatio bool    `json:"onRatio,omitempty"`

	Status Status `json:"status"`
	Note   string `json:"note,omitempty"` // sizes measured over, or why not run
}

// Ratio is Value/Baseline, or NaN without a baseline.
func (r Row) Ratio() float64 {
	if r.Baseline == 0 || r.Status == StatusNotRun {
		return math.NaN()
	}
	return r.Value / r.Baseline
}

// judge sets Status from the value and target.
func (r *Row) judge() {
	if r.Status == StatusNotRun {
		return
	}
	if r.Op == "" {
		r.Status = StatusInfo
		return
	}
	v := r.Value
	if r.OnRatio {
		v = r.Ratio()
	}
	ok := false
	switch r.Op {
	case "<":
		ok = v < r.Goal
	case ">":
		ok = v > r.Goal
	case ">=":
		ok = v >= r.Goal
	}
	r.Status = StatusFail
	if ok && !math.IsNaN(v) {
		r.Status = StatusPass
	}
}

// TargetText renders the target, e.g. "< 20 ms" or "≥ 0.70 × baseline".
func (r Row) TargetText() string {
	if r.Op == "" {
		return "—"
	}
	op := map[string]string{"<": "<", ">": ">", ">=": "≥"}[r.Op]
	if r.OnRatio {
		return fmt.Sprintf("%s %s × baseline", op, num(r.Goal))
	}
	return fmt.Sprintf("%s %s %s", op, num(r.Goal), r.Unit)
}

// Machine describes where a report was measured.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryMiB int64  `json:"memoryMiB"`
	GoVersion string `json:"goVersion"`
	// Procs is GOMAXPROCS during the run (0 when not read): the CPUs Go
	// code ran on, fewer than Cores where a container or the GOMAXPROCS
	// variable limited it.
	Procs int       `json:"gomaxprocs,omitempty"`
	OS    string    `json:"os"`
	Date  time.Time `json:"date"`
	// Features are the CPU features, of those hot paths use when they are
	// there (hotFeatures), that the CPU has, as /proc/cpuinfo names them:
	// the same code gives different numbers with and without them.
	Features []string `json:"features,omitempty"`
	// Load is the 1-minute load average when the run started, nil where
	// unknown: above the number of cores, other work shared the CPU.
	Load *float64 `json:"load,omitempty"`
	// SyncMs is the median time in milliseconds to append 4 KiB to a file
	// and fsync it where the nodes store their data (0 when not measured):
	// every synced write, each negotiation step and each acknowledged
	// NGSI-LD write, waits for at least one.
	SyncMs float64 `json:"syncMs,omitempty"`
}

// hotFeatures are the CPU features whose absence slows a benchmark down
// by itself: AVX2 and AVX-512 for BLAKE3 (block names), SHA-NI for
// SHA-256 (manifests, audit chain), AES-NI for TLS.
var hotFeatures = []string{"avx2", "avx512f", "sha_ni", "aes"}

// ThisMachine reads the CPU model and memory from /proc where there is one.
func ThisMachine(date time.Time) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Procs: runtime.GOMAXPROCS(0), OS: runtime.GOOS + "/" + runtime.GOARCH, Date: date}
	scan := func(path string, fn func(key, val string) bool) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if ok && fn(strings.TrimSpace(k), strings.TrimSpace(v)) {
				return
			}
		}
	}
	scan("/proc/cpuinfo", func(k, v string) bool {
		switch k {
		case "model name":
			m.CPU = v
		case "flags":
			m.Features = cpuFeatures(v)
		}
		return m.CPU != "unknown" && m.Features != nil
	})
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if v, ok := loadAverage(string(b)); ok {
			m.Load = &v
		}
	}
	scan("/proc/meminfo", func(k, v string) bool {
		if k == "MemTotal" {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			m.MemoryMiB = kib / 1024
			return true
		}
		return false
	})
	return m
}

// cpuFeatures returns those of hotFeatures that a /proc/cpuinfo flags line
// lists, in hotFeatures' order (empty, not nil, for none).
func cpuFeatures(flags string) []string {
	have := strings.Fields(flags)
	out := []string{}
	for _, f := range hotFeatures {
		if slices.Contains(have, f) {
			out = append(out, f)
		}
	}
	return out
}

// loadAverage reads the 1-minute load average from /proc/loadavg's text;
// false if it is not there.
func loadAverage(text string) (float64, bool) {
	f := strings.Fields(text)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}

// measureSync returns the median of n times appending 4 KiB to a new file
// in dir and syncing it (File.Sync: fsync), which is what a synced write
// of the store waits for at least once. The file is removed.
func measureSync(dir string, n int) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "mimnode-bench-sync-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := f.Write(page); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	if len(lat) == 0 {
		return 0, errors.New("no syncs measured")
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// Report is the outcome of RunBench.
type Report struct {
	Machine  Machine       `json:"machine"`
	Quick    bool          `json:"quick"`
	Duration time.Duration `json:"durationNs"`
	Rows     []Row         `json:"rows"`
}

// Row returns the row with id, if any.
func (r *Report) Row(id string) (Row, bool) {
	for _, row := range r.Rows {
		if row.ID == id {
			return row, true
		}
	}
	return Row{}, false
}

// Markdown writes the report as a markdown section: the machine, then one
// table row per metric.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	mode := "full"
	if r.Quick {
		mode = "quick (`--quick`: smaller sizes, see the notes)"
	}
	date := "not given"
	if !r.Machine.Date.IsZero() {
		date = r.Machine.Date.UTC().Format("2006-01-02 15:04 UTC")
	}
	fmt.Fprintf(&b, "## Benchmark report\n\n")
	fmt.Fprintf(&b, "- Machine: %s, %d cores, %d MiB memory", r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryMiB)
	if r.Machine.Features != nil {
		var missing []string
		for _, f := range hotFeatures {
			if !slices.Contains(r.Machine.Features, f) {
				missing = append(missing, f)
			}
		}
		fmt.Fprintf(&b, "; CPU has %s", orNone(r.Machine.Features))
		if len(missing) > 0 {
			fmt.Fprintf(&b, ", not %s", strings.Join(missing, ", "))
		}
	}
	b.WriteString("\n")
	if r.Machine.Load != nil {
		fmt.Fprintf(&b, "- Load when the run started: %.2f (1-minute average; above %d, other work shared the CPU)\n", *r.Machine.Load, r.Machine.Cores)
	}
	if r.Machine.SyncMs > 0 {
		fmt.Fprintf(&b, "- Disk: 4 KiB append and fsync, p50 %s ms, where the nodes store their data\n", num(r.Machine.SyncMs))
	}
	fmt.Fprintf(&b, "- Go: %s, %s", r.Machine.GoVersion, r.Machine.OS)
	if r.Machine.Procs > 0 {
		fmt.Fprintf(&b, ", GOMAXPROCS %d", r.Machine.Procs)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- Date: %s\n", date)
	fmt.Fprintf(&b, "- Run: %s, took %s\n\n", mode, r.Duration.Round(time.Second))
	b.WriteString("| issue | metric | value | baseline | ratio | target | result | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		value, base, ratio := "—", "—", "—"
		if row.Status != StatusNotRun {
			value = num(row.Value) + " " + row.Unit
			if row.Baseline != 0 {
				base = num(row.Baseline) + " " + row.Unit
				if row.BaselineName != "" {
					base += " (" + row.BaselineName + ")"
				}
				ratio = fmt.Sprintf("%.2f", row.Ratio())
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", row.Issue, cell(row.Metric), cell(value),
			cell(base), ratio, cell(row.TargetText()), row.Status, cell(row.Note))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// orNone joins s with commas, or says none.
func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// cell keeps a table cell on one line and its pipes literal.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\n", " "), "|", `\|`)
}

// num formats a measurement with about three significant digits and
// thousands separators for large values.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case math.Abs(v) >= 1000:
		s := strconv.FormatInt(int64(math.Round(v)), 10)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var out []byte
		for i := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				out = append(out, ',')
			}
			out = append(out, s[i])
		}
		if neg {
			return "-" + string(out)
		}
		return string(out)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// targets are the rows of the report: one per target named in issues 2 to
// 9, in issue order. Scenarios fill in values by ID.
func targets() []Row {
	return []Row{
		{ID: "node.ready", Issue: 2, Metric: "node start to API ready", Unit: "ms", Op: "<", Goal: 1000},
		{ID: "node.rss", Issue: 2, Metric: "idle node RSS", Unit: "MiB", Op: "<", Goal: 80},
		{ID: "ngsild.upsert", Issue: 3, Metric: "NGSI-LD batch upsert, AirQualityObserved", Unit: "entities/s", Op: ">=", Goal: 20000},
		{ID: "ngsild.query.q", Issue: 3, Metric: "query by type + q, p95", Unit: "ms", Op: "<", Goal: 20},
		{ID: "ngsild.query.near", Issue: 3, Metric: "query by near, p95", Unit: "ms", Op: "<", Goal: 20},
		{ID: "ngsild.size", Issue: 3, Metric: "store size per entity", Unit: "bytes"},
		{ID: "ngsild.notify", Issue: 4, Metric: "notification latency write to delivery, p50", Unit: "ms", Op: "<", Goal: 5},
		{ID: "ngsild.upsert.subs", Issue: 4, Metric: "upsert with 100 active subscriptions", Unit: "entities/s", Op: ">=", Goal: 0.8, OnRatio: true},
		{ID: "ngsild.lastn", Issue: 4, Metric: "temporal lastN=100 over one attribute's history", Unit: "ms", Op: "<", Goal: 20},
		{ID: "federation.propagation", Issue: 5, Metric: "membership change to all members, p99", Unit: "ms", Op: "<", Goal: 1000},
		{ID: "catalog.propagation", Issue: 6, Metric: "publish to searchable on all members, p99", Unit: "ms", Op: "<", Goal: 1000},
		{ID: "catalog.search", Issue: 6, Metric: "catalogue search, p95", Unit: "ms", Op: "<", Goal: 10},
		{ID: "content.build", Issue: 6, Metric: "version building from entities", Unit: "MB/s"},
		{ID: "policy.evaluate", Issue: 7, Metric: "policy evaluations, 10 constraints, one core", Unit: "evals/s", Op: ">", Goal: 1_000_000},
		{ID: "contract.latency", Issue: 8, Metric: "negotiation request to FINALIZED, p50", Unit: "ms", Op: "<", Goal: 5},
		{ID: "contract.throughput", Issue: 8, Metric: "negotiations against one provider from 8 consumers", Unit: "negotiations/s", Op: ">", Goal: 500},
		{ID: "transfer.blocks", Issue: 9, Metric: "block transfer throughput", Unit: "MB/s", Op: ">=", Goal: 0.7, OnRatio: true},
		{ID: "transfer.entities", Issue: 9, Metric: "end-to-end entities provider store to consumer store", Unit: "entities/s", Op: ">", Goal: 50000},
		{ID: "transfer.delta", Issue: 9, Metric: "bytes moved for a version with 1% of entities changed", Unit: "bytes", Op: "<", Goal: 0.05, OnRatio: true},
		{ID: "transfer.live", Issue: 9, Metric: "live-feed latency provider write to consumer store, p50", Unit: "ms", Op: "<", Goal: 10},
	}
}
