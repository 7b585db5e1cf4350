package testnet

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/paulmach/orb"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/policy"
)

// benchStartup times a node from start to its API answering. With a
// binary it is `mimnode run` as a subprocess, which also gives the idle
// RSS; the baseline is a bare libp2p host on loopback, started in-process.
func benchStartup(ctx context.Context, b *bench) error {
	dir, err := os.MkdirTemp("", "mimnode-bench-start-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var ready, bare []time.Duration
	var rssMiB float64
	for i := 0; i < b.sz.Startups; i++ {
		cfg, err := node.Init(filepath.Join(dir, strconv.Itoa(i)), node.InitOptions{Name: "Bench agency",
			Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, API: "127.0.0.1:0"})
		if err != nil {
			return fmt.Errorf("init a data directory: %w", err)
		}
		var d time.Duration
		if b.o.Binary != "" {
			d, err = startBinary(ctx, b.o.Binary, cfg.DataDir, i == 0, &rssMiB)
		} else {
			d, err = startInProcess(ctx, cfg)
		}
		if err != nil {
			return err
		}
		ready = append(ready, d)

		t0 := time.Now()
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"))
		if err != nil {
			return fmt.Errorf("start a bare libp2p host: %w", err)
		}
		bare = append(bare, time.Since(t0))
		h.Close()
	}
	how := "in-process node.New+Start"
	if b.o.Binary != "" {
		how = "`mimnode run` subprocess"
	}
	b.set("node.ready", percentile(ready, 0.5), percentile(bare, 0.5), "bare libp2p host start",
		fmt.Sprintf("p50 of %d starts, %s, until GET /api/v1/status answers", len(ready), how))
	if b.o.Binary != "" {
		b.set("node.rss", rssMiB, 0, "", "VmRSS of `mimnode run` 3 s after its API answered, no data")
	} else {
		b.skip("needs the mimnode binary (BenchOptions.Binary); in one process the RSS is the whole testnet's", "node.rss")
	}
	return nil
}

func startInProcess(ctx context.Context, cfg node.Config) (time.Duration, error) {
	t0 := time.Now()
	nd, err := node.New(ctx, cfg, nil)
	if err != nil {
		return 0, fmt.Errorf("start a node: %w", err)
	}
	defer nd.Close()
	if err := nd.Start(ctx); err != nil {
		return 0, fmt.Errorf("start a node: %w", err)
	}
	if err := waitAPI(ctx, nd.APIURL(), 30*time.Second); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// startBinary runs `mimnode run`, times it until the API answers and, if
// measureRSS, reads its resident memory once start-up work has settled.
func startBinary(ctx context.Context, bin, dir string, measureRSS bool, rssMiB *float64) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, "run", "--data", dir)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run %s: %w", bin, err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	var url string
	for url == "" {
		if raw, err := os.ReadFile(filepath.Join(dir, "api")); err == nil && len(strings.TrimSpace(string(raw))) > 0 {
			url = strings.TrimSpace(string(raw))
			if !strings.HasPrefix(url, "http") {
				url = "http://" + url
			}
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("`mimnode run` wrote no api file within 30 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := waitAPI(ctx, url, time.Until(deadline)); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if measureRSS {
		select {
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		kib, err := vmRSS(cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		*rssMiB = float64(kib) / 1024
	}
	return d, nil
}

// waitAPI polls GET /api/v1/status until it answers 200.
func waitAPI(ctx context.Context, base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/status", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("API at %s not ready within %s", base, within)
		}
		time.Sleep(time.Millisecond)
	}
}

func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the daemon's RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("read the daemon's RSS: no VmRSS in /proc/%d/status", pid)
}

// benchPolicy counts evaluations per second of a 10-constraint policy in
// the transfer scope on one goroutine (one core).
func benchPolicy(_ context.Context, b *bench) error {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	amsterdam := orb.Polygon{{{4.7, 52.3}, {5.1, 52.3}, {5.1, 52.45}, {4.7, 52.45}, {4.7, 52.3}}}
	p := policy.Policy{Type: policy.TypeAgreement, Assigner: "peer-P", Assignee: "peer-A", Permissions: []policy.Rule{{
		Action: policy.ActionUse,
		Constraints: []policy.Constraint{
			policy.Atomic(policy.LeftRecipient, policy.OpIsNoneOf, policy.Lit("peer-X", "peer-Y")),
			policy.Atomic(policy.LeftRole, policy.OpIsAnyOf, policy.Lit(policy.RoleAgency, policy.RoleResearcher)),
			policy.Atomic(policy.LeftFederation, policy.OpEq, policy.Lit("fed-nl")),
			policy.Atomic(policy.LeftPurpose, policy.OpIsAnyOf, policy.Lit("research", "education", "public-health")),
			policy.Atomic(policy.LeftDateTime, policy.OpLt, policy.DateTimeOp(t0.AddDate(1, 0, 0))),
			policy.Atomic(policy.LeftElapsedTime, policy.OpLteq, policy.DurationOp("P30D")),
			policy.Atomic(policy.LeftCount, policy.OpLteq, policy.Num(100)),
			policy.Atomic(policy.LeftSpatial, policy.OpIsPartOf, policy.Area(amsterdam)),
			policy.Atomic(policy.LeftSpatial, policy.OpIsNoneOf, policy.Lit("US", "CN")),
			policy.Atomic(policy.LeftPayAmount, policy.OpGteq, policy.Num(5)),
		},
	}}}
	p.Compile()
	req := policy.Request{Now: t0, Action: policy.ActionUse, PeerID: "peer-A", Role: policy.RoleAgency,
		Federations: []string{"fed-nl"}, Purpose: "research", Location: orb.Point{4.9, 52.37},
		Places: []string{"urn:place:amsterdam", "NL", "EU"}, PayAmount: 10, Currency: "EUR",
		Usage: policy.Usage{Count: 2, AgreementStart: t0.AddDate(0, 0, -10)}}
	if d := policy.Evaluate(p, req, policy.ScopeTransfer); !d.Permit {
		return fmt.Errorf("the benchmark policy denies the request:\n%s", d)
	}
	start := time.Now()
	for i := 0; i < b.sz.Evals; i++ {
		policy.Evaluate(p, req, policy.ScopeTransfer)
	}
	el := time.Since(start)
	b.set("policy.evaluate", float64(b.sz.Evals)/el.Seconds(), 0, "",
		fmt.Sprintf("%d evaluations, transfer scope, permit", b.sz.Evals))
	return nil
}

// benchContent builds a version from AirQualityObserved-shaped entities;
// the baseline is hashing the same bytes with the hash blocks are named
// with (content.BlockCID, BLAKE3), the floor of any content addressing.
func benchContent(_ context.Context, b *bench) error {
	rng := rand.New(rand.NewPCG(5, 5))
	var ids []string
	var docs [][]byte
	total := 0
	for i := 0; total < b.sz.ContentBytes; i++ {
		e := aqoEntity(rng, i, "Bench")
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		ids, docs = append(ids, e["id"].(string)), append(docs, raw)
		total += len(raw)
	}
	start := time.Now()
	bl := content.NewEntityBuilder(func(content.Block) error { return nil })
	for i := range docs {
		if err := bl.Add(ids[i], docs[i]); err != nil {
			return fmt.Errorf("build a version: %w", err)
		}
	}
	m, err := bl.Finish()
	if err != nil {
		return fmt.Errorf("build a version: %w", err)
	}
	if _, err := m.CID(); err != nil {
		return fmt.Errorf("build a version: %w", err)
	}
	build := time.Since(start)
	all := make([]byte, 0, total)
	for _, d := range docs {
		all = append(all, d...)
	}
	start = time.Now()
	content.BlockCID(all)
	hash := time.Since(start)
	mb := float64(total) / 1e6
	b.set("content.build", mb/build.Seconds(), mb/hash.Seconds(), "BLAKE3 of the same bytes, as blocks are named",
		fmt.Sprintf("%d entities, %.0f MB of JSON", len(docs), mb))
	return nil
}

// benchSearch times searches over an index of Datasets datasets shaped like
// a federation's (publishers, topics, places, a Zipf vocabulary); the
// baseline is the same queries over an index of 1,000.
func benchSearch(_ context.Context, b *bench) error {
	queries := searchQueries()
	p95 := func(n int) (float64, error) {
		x := searchCorpus(n)
		if x.Len() != n {
			return 0, fmt.Errorf("index holds %d of %d datasets", x.Len(), n)
		}
		var lat []time.Duration
		for i := 0; i < b.sz.Searches; i++ {
			t0 := time.Now()
			if _, err := x.Search(queries[i%len(queries)]); err != nil {
				return 0, fmt.Errorf("search %+v: %w", queries[i%len(queries)], err)
			}
			lat = append(lat, time.Since(t0))
		}
		return percentile(lat, 0.95), nil
	}
	small, err := p95(min(1000, b.sz.Datasets))
	if err != nil {
		return err
	}
	big, err := p95(b.sz.Datasets)
	if err != nil {
		return err
	}
	b.set("catalog.search", big, small, fmt.Sprintf("%d datasets", min(1000, b.sz.Datasets)),
		fmt.Sprintf("%d datasets, %d searches of %d kinds (text, type, theme+bbox, publisher, combined)", b.sz.Datasets, b.sz.Searches, len(queries)))
	return nil
}

func searchQueries() []catalog.Query {
	aarhus := orb.Bound{Min: orb.Point{10.0, 56.0}, Max: orb.Point{10.4, 56.3}}
	europe := orb.Bound{Min: orb.Point{-10, 35}, Max: orb.Point{30, 62}}
	return []catalog.Query{
		{Text: "air quality"},
		{Text: "parking aarhus"},
		{Text: "hourly sensor station"},
		{Type: "AirQualityObserved"},
		{Theme: "TRAN", BBox: &aarhus},
		{Text: "noise", BBox: &europe},
		{Publisher: "12D3KooWbench007"},
		{Text: "traffic flow", Theme: "TRAN", License: "CC-BY-4.0"},
		{BBox: &aarhus},
	}
}

// searchCorpus builds an index of n datasets. Records are not signed: the
// index takes what the catalogue service verified, and search does not
// look at signatures.
func searchCorpus(n int) *catalog.Index {
	rng := rand.New(rand.NewPCG(42, 6))
	topics := []string{"air quality", "noise", "traffic flow", "parking", "weather", "street lights",
		"water quality", "waste containers", "bicycle counts", "bus arrivals", "energy use", "footfall"}
	types := []string{"AirQualityObserved", "NoiseLevelObserved", "TrafficFlowObserved", "ParkingSpot",
		"OffStreetParking", "WeatherObserved", "Streetlight", "WaterQualityObserved", "WasteContainer"}
	vocab := make([]string, 5000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	copy(vocab, []string{"hourly", "daily", "sensor", "station", "city", "observation", "measurement",
		"open", "real", "time", "historic", "district", "network", "average", "count", "level"})
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocab)-1))
	themeCodes := []string{"ENVI", "TRAN", "REGI", "ENER", "HEAL"}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	x := catalog.NewIndex()
	var desc strings.Builder
	for i := 0; i < n; i++ {
		c := cities[rng.IntN(len(cities))]
		topic := topics[rng.IntN(len(topics))]
		desc.Reset()
		for j := 0; j < 25; j++ {
			desc.WriteString(vocab[zipf.Uint64()])
			desc.WriteByte(' ')
		}
		lon := c.MinLon + rng.Float64()*(c.MaxLon-c.MinLon)
		lat := c.MinLat + rng.Float64()*(c.MaxLat-c.MinLat)
		pub := fmt.Sprintf("12D3KooWbench%03d", rng.IntN(300))
		d := catalog.Dataset{
			ID: fmt.Sprintf("urn:mim:dataset:bench:%d", i), Title: fmt.Sprintf("%s, %s (%d)", topic, c.Name, i),
			Description: desc.String(), Keywords: []string{topic, strings.ToLower(c.Name)},
			Themes:      []string{themeCodes[rng.IntN(len(themeCodes))]},
			EntityTypes: []string{"https://smartdatamodels.org/dataModel.X/" + types[rng.IntN(len(types))]},
			Spatial: orb.Polygon{orb.Ring{{lon - 0.05, lat - 0.05}, {lon + 0.05, lat - 0.05}, {lon + 0.05, lat + 0.05},
				{lon - 0.05, lat + 0.05}, {lon - 0.05, lat - 0.05}}},
			License: "CC-BY-4.0", Publisher: catalog.Publisher{PeerID: pub, Name: c.Name + " agency"},
			Dissemination: catalog.Federation, Modified: t0.Add(time.Duration(i) * time.Minute),
		}
		x.Put(catalog.Record{Dataset: d, Publisher: pub, Seq: uint64(i + 1)})
	}
	return x
}

// aqoEntity builds an entity shaped like the Smart Data Models
// AirQualityObserved example (normalized, 20 attributes), station i of a
// city, located inside the first testnet city.
func aqoEntity(rng *rand.Rand, i int, city string) map[string]any {
	prop := func(v any) map[string]any { return map[string]any{"type": "Property", "value": v} }
	unit := func(v any, u string) map[string]any {
		return map[string]any{"type": "Property", "value": v, "unitCode": u, "observedAt": "2026-03-15T11:00:00Z"}
	}
	c := cities[0]
	return map[string]any{
		"id":   fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:%s-%07d", city, i),
		"type": "AirQualityObserved",
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{
			"type": "Point", "coordinates": []any{c.MinLon + rng.Float64()*(c.MaxLon-c.MinLon), c.MinLat + rng.Float64()*(c.MaxLat-c.MinLat)},
		}},
		"address": prop(map[string]any{
			"addressCountry": "DK", "addressLocality": c.Name, "streetAddress": fmt.Sprintf("Gade %d", i%500), "type": "PostalAddress",
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
		"source":           prop("https://www.aarhus.dk"),
		"refPointOfInterest": map[string]any{
			"type": "Relationship", "object": fmt.Sprintf("urn:ngsi-ld:PointOfInterest:%d", i%1000),
		},
	}
}
