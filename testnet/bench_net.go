package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/sync/errgroup"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// envContext is the Smart Data Models Environment context, embedded in the
// node, under which AirQualityObserved terms expand.
const envContext = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"

// step runs one measurement of the federation scenario; its failure marks
// only its own rows as not run.
func (b *bench) step(ctx context.Context, name string, rows []string, fn func() error) {
	if ctx.Err() != nil {
		b.skip("run cancelled", rows...)
		return
	}
	t0 := time.Now()
	stop := b.profile(name)
	err := fn()
	stop()
	if err != nil {
		b.skip(fmt.Sprintf("%s: %v", name, err), rows...)
		b.logf("  %s failed after %s: %v", name, time.Since(t0).Round(time.Millisecond), err)
		return
	}
	b.logf("  %s done in %s", name, time.Since(t0).Round(time.Millisecond))
}

// benchFederation starts the testnet (20 nodes at the issues' sizes),
// federates, seeds and publishes, and runs every measurement that needs
// nodes: NGSI-LD on one agency, propagation across all, negotiation and
// transfer between pairs.
func benchFederation(ctx context.Context, b *bench) error {
	t0 := time.Now()
	net, err := Start(ctx, b.sz.Shape, Options{EntitiesPerModel: 5})
	if err != nil {
		return err
	}
	defer net.Close()
	if err := net.federate(ctx); err != nil {
		return fmt.Errorf("federate %d nodes: %w", len(net.Members), err)
	}
	if err := net.seed(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := net.publish(ctx); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	b.logf("  %d nodes started, federated, seeded and published in %s", len(net.Members), time.Since(t0).Round(time.Millisecond))
	agencies := net.Agencies()
	if len(agencies) < 2 {
		return fmt.Errorf("shape %+v has fewer than 2 agencies", b.sz.Shape)
	}
	ngsi := agencies[len(agencies)-1]

	b.step(ctx, "membership propagation", []string{"federation.propagation"}, func() error { return benchMembership(ctx, b, net) })
	b.step(ctx, "catalogue propagation", []string{"catalog.propagation"}, func() error { return benchCatalogPropagation(ctx, b, net) })
	b.step(ctx, "NGSI-LD ingest and queries", []string{"ngsild.upsert", "ngsild.query.q", "ngsild.query.near", "ngsild.size"},
		func() error { return benchIngest(ctx, b, ngsi) })
	b.step(ctx, "NGSI-LD lastN", []string{"ngsild.lastn"}, func() error { return benchLastN(ctx, b, ngsi) })
	b.step(ctx, "NGSI-LD subscriptions", []string{"ngsild.notify", "ngsild.upsert.subs"}, func() error { return benchSubscriptions(ctx, b, ngsi) })
	b.step(ctx, "negotiation", []string{"contract.latency", "contract.throughput"}, func() error { return benchNegotiation(ctx, b, net) })
	b.step(ctx, "transfer", []string{"transfer.blocks", "transfer.entities", "transfer.delta", "transfer.live"},
		func() error { return benchTransfer(ctx, b, net) })
	return nil
}

// echoProto is the baseline's bare stream: one byte there and back.
const echoProto = "/mim/bench/echo/1.0.0"

// streamRTT times opening a fresh stream from a to z, writing one byte and
// reading it back: the floor of any request/answer over the network.
func streamRTT(ctx context.Context, a, z host.Host, n int) ([]time.Duration, error) {
	z.SetStreamHandler(p2pproto.ID(echoProto), func(st network.Stream) {
		defer st.Close()
		var buf [1]byte
		if _, err := io.ReadFull(st, buf[:]); err == nil {
			st.Write(buf[:])
		}
	})
	defer z.RemoveStreamHandler(p2pproto.ID(echoProto))
	var lat []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		st, err := a.NewStream(ctx, z.ID(), p2pproto.ID(echoProto))
		if err != nil {
			return nil, fmt.Errorf("open an echo stream: %w", err)
		}
		var buf [1]byte
		_, err = st.Write([]byte{byte(i)})
		if err == nil {
			_, err = io.ReadFull(st, buf[:])
		}
		st.Close()
		if err != nil {
			return nil, fmt.Errorf("echo round trip: %w", err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// benchMembership times a membership change on the admin until every
// member applied it; baseline: one stream round trip admin to member.
func benchMembership(ctx context.Context, b *bench, net *Net) error {
	admin := net.Members[0].Node()
	var lat []time.Duration
	for i := 0; i < b.sz.Changes; i++ {
		// Flip one member's role and put it back on the next change, so the
		// federation ends as it began.
		m := net.Members[1+(i/2)%(len(net.Members)-1)]
		role := federation.RoleResearcher
		if m.Role == federation.RoleResearcher {
			role = federation.RoleAgency
		}
		if i%2 == 1 {
			role = m.Role
		}
		t0 := time.Now()
		if _, _, err := admin.Federations().Change(ctx, net.Fed, federation.Change{Op: "role", PeerID: m.Node().ID().String(), Role: role}); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
		want, err := admin.Federations().Show(net.Fed)
		if err != nil {
			return err
		}
		err = net.WaitFor(10*time.Second, "change reached every member", func() bool {
			for _, o := range net.Members {
				in, err := o.Node().Federations().Show(net.Fed)
				if err != nil || in.Seq < want.Seq {
					return false
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	rtt, err := streamRTT(ctx, admin.Host(), net.Members[len(net.Members)-1].Node().Host(), b.sz.RTTs)
	if err != nil {
		return err
	}
	b.set("federation.propagation", percentile(lat, 0.99), percentile(rtt, 0.99), "one stream round trip, p99",
		fmt.Sprintf("p50 %.1f ms; %d changes, %d members, polled every 5 ms", percentile(lat, 0.5), len(lat), len(net.Members)))
	return nil
}

// benchCatalogPropagation times publishing a dataset until it is
// searchable on every member.
func benchCatalogPropagation(ctx context.Context, b *bench, net *Net) error {
	agencies := net.Agencies()
	var lat []time.Duration
	for i := 0; i < b.sz.Publishes; i++ {
		pub := agencies[i%len(agencies)]
		d := catalog.Dataset{ID: fmt.Sprintf("urn:mim:dataset:bench:propagation-%d", i), Title: "Propagation probe",
			Description: "A dataset published to time its way through the federation.", License: "CC-BY-4.0",
			Offers: []catalog.Offer{{Template: "open-data"}}, Dissemination: catalog.Federation}
		t0 := time.Now()
		if _, err := pub.Node().Catalog().Publish(ctx, d); err != nil {
			return fmt.Errorf("publish %s: %w", d.ID, err)
		}
		pid := pub.Node().ID().String()
		err := net.WaitFor(10*time.Second, d.ID+" searchable on every member", func() bool {
			for _, m := range net.Members {
				res, err := m.Node().Catalog().Search(catalog.Query{Publisher: pid, Limit: 1000})
				if err != nil {
					return false
				}
				found := false
				for _, h := range res.Hits {
					found = found || h.Record.Dataset.ID == d.ID
				}
				if !found {
					return false
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	rtt, err := streamRTT(ctx, agencies[0].Node().Host(), net.Members[len(net.Members)-1].Node().Host(), b.sz.RTTs)
	if err != nil {
		return err
	}
	b.set("catalog.propagation", percentile(lat, 0.99), percentile(rtt, 0.99), "one stream round trip, p99",
		fmt.Sprintf("p50 %.1f ms; %d publishes, %d members, polled every 5 ms", percentile(lat, 0.5), len(lat), len(net.Members)))
	return nil
}

// ngsiClient speaks a node's NGSI-LD API with the Environment context.
type ngsiClient struct {
	base string
	c    *http.Client
}

func newNGSIClient(base string) *ngsiClient {
	return &ngsiClient{base: base, c: &http.Client{Timeout: 2 * time.Minute}}
}

// do sends body (JSON-encoded unless it is already bytes) and returns the
// status and up to 16 MiB of the answer.
func (c *ngsiClient) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Link", `<`+envContext+`>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`)
	resp, err := c.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, out, err
}

// want checks an answer's status.
func want(code int, out []byte, err error, what string, ok ...int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, c := range ok {
		if code == c {
			return nil
		}
	}
	return fmt.Errorf("%s: answered %d: %.300s", what, code, out)
}

// upsertBodies returns batch upsert bodies of 1,000 entities for entities
// from..to, values drawn from seed.
func upsertBodies(from, to int, seed uint64) ([][]byte, error) {
	ids := make([]int, 0, max(0, to-from))
	for i := from; i < to; i++ {
		ids = append(ids, i)
	}
	return upsertBodiesOf(ids, seed)
}

// upsertBodiesOf is upsertBodies for the entities numbered ids.
func upsertBodiesOf(ids []int, seed uint64) ([][]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out [][]byte
	for chunk := range slices.Chunk(ids, 1000) {
		list := make([]any, 0, len(chunk))
		for _, i := range chunk {
			list = append(list, aqoEntity(rng, i, "Bench"))
		}
		raw, err := json.Marshal(list)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

func (c *ngsiClient) upsert(ctx context.Context, bodies [][]byte) error {
	return c.upsertInFlight(ctx, bodies, 1)
}

// upsertInFlight sends bodies as batch upserts with up to n requests in
// flight at once, as an IoT agent or a loader with several connections
// does; it stops at the first failure.
func (c *ngsiClient) upsertInFlight(ctx context.Context, bodies [][]byte, n int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, body := range bodies {
		g.Go(func() error {
			code, out, err := c.do(ctx, "POST", "/ngsi-ld/v1/entityOperations/upsert", body)
			return want(code, out, err, "batch upsert", http.StatusCreated, http.StatusNoContent)
		})
	}
	return g.Wait()
}

// ingestInFlight is how many batch upserts the ingest measurement keeps
// in flight: one per core of this machine class, so that one request's
// fsync and HTTP round trip overlap the next one's work.
const ingestInFlight = 2

// benchIngest times batch upserts through the node's API (baseline: the
// same entities' JSON written to a bare store in synced batches of the
// same size), then queries over Stored entities.
func benchIngest(ctx context.Context, b *bench, m *Member) error {
	c := newNGSIClient(m.Node().APIURL())
	bodies, err := upsertBodies(0, b.sz.Upserts, 7)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := c.upsertInFlight(ctx, bodies, ingestInFlight); err != nil {
		return err
	}
	rate := float64(b.sz.Upserts) / time.Since(t0).Seconds()
	raw, err := rawStoreRate(bodies)
	if err != nil {
		return err
	}
	b.set("ngsild.upsert", rate, raw, "same JSON, bare store batches",
		fmt.Sprintf("%d new entities, 1,000 per request over HTTP, %d requests in flight, synced", b.sz.Upserts, ingestInFlight))

	qTarget := func(i int) string {
		q := fmt.Sprintf("no2==%d;airQualityLevel==\"moderate\"", i%200)
		return "/ngsi-ld/v1/entities?type=AirQualityObserved&q=" + url.QueryEscape(q)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	city := cities[0]
	nearTarget := func(int) string {
		pt := fmt.Sprintf("[%f,%f]", city.MinLon+rng.Float64()*(city.MaxLon-city.MinLon), city.MinLat+rng.Float64()*(city.MaxLat-city.MinLat))
		return "/ngsi-ld/v1/entities?type=AirQualityObserved&georel=" + url.QueryEscape("near;maxDistance==300") +
			"&geometry=Point&coordinates=" + url.QueryEscape(pt)
	}
	// A node indexes an attribute once a query filters on it, building the
	// index in the background, and the API does not say when it is done.
	// So the first queries are asked before the rest of the entities are
	// loaded: the build covers only the entities stored so far and is over
	// long before loading ends, and later writes keep the index.
	for i := 0; i < 5; i++ {
		for _, target := range []func(int) string{qTarget, nearTarget} {
			code, out, err := c.do(ctx, "GET", target(i), nil)
			if err := want(code, out, err, "warm-up query", http.StatusOK); err != nil {
				return err
			}
		}
	}
	if b.sz.Stored > b.sz.Upserts {
		rest, err := upsertBodies(b.sz.Upserts, b.sz.Stored, 8)
		if err != nil {
			return err
		}
		if err := c.upsert(ctx, rest); err != nil {
			return err
		}
	}
	stored := max(b.sz.Stored, b.sz.Upserts)
	var qLat, nearLat []time.Duration
	for _, k := range []struct {
		target func(int) string
		lat    *[]time.Duration
	}{{qTarget, &qLat}, {nearTarget, &nearLat}} {
		for i := 0; i < b.sz.Queries; i++ {
			t0 := time.Now()
			code, out, err := c.do(ctx, "GET", k.target(i), nil)
			*k.lat = append(*k.lat, time.Since(t0))
			if err := want(code, out, err, "query", http.StatusOK); err != nil {
				return err
			}
		}
	}
	note := fmt.Sprintf("%d queries over %d stored entities, HTTP on loopback; indexes asked for after %d entities", b.sz.Queries, stored, b.sz.Upserts)
	b.set("ngsild.query.q", percentile(qLat, 0.95), 0, "", note)
	b.set("ngsild.query.near", percentile(nearLat, 0.95), 0, "", note+", maxDistance 300 m")
	// Blocks are not entities: only the database counts. Its memtable log
	// holds the newest writes uncompressed until badger flushes them into
	// a table, so the total swings with when that happened; the note says
	// how much of it was in the log.
	size, inLog := dirSize(filepath.Join(m.DataDir(), node.StoreDir))
	b.set("ngsild.size", float64(size)/float64(stored), 0, "",
		fmt.Sprintf("disk blocks of the node's whole store over %d entities (history, indexes, change feed included; %.0f B/entity of it in the memtable log, not yet compacted)",
			stored, float64(inLog)/float64(stored)))
	return nil
}

// rawStoreRate writes each entity's JSON under its own key into a fresh
// store opened as a node opens it (synced writes), one batch per request
// body, and returns entities/s: what the disk allows without parsing,
// validation, expansion or indexes.
func rawStoreRate(bodies [][]byte) (float64, error) {
	dir, err := os.MkdirTemp("", "mimnode-bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var docs [][][]byte
	for _, body := range bodies {
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err != nil {
			return 0, err
		}
		var d [][]byte
		for _, e := range list {
			d = append(d, e)
		}
		docs = append(docs, d)
	}
	n := 0
	t0 := time.Now()
	for _, d := range docs {
		batch := db.NewBatch()
		for _, e := range d {
			if err := batch.Set(store.Key("bench", strconv.Itoa(n)), e); err != nil {
				batch.Cancel()
				return 0, fmt.Errorf("raw batch write: %w", err)
			}
			n++
		}
		if err := batch.Flush(); err != nil {
			return 0, fmt.Errorf("raw batch write: %w", err)
		}
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

// dirSize sums the disk blocks used by the files under dir (badger
// preallocates its log files sparsely, so their length overstates it),
// and those of its memtable logs (*.mem) among them.
func dirSize(dir string) (total, memLogs int64) {
	return osstat.DirAllocated(dir, func(name string) bool { return strings.HasSuffix(name, ".mem") })
}

// benchLastN writes History instances of one attribute through the
// temporal API and times lastN=100 on it.
func benchLastN(ctx context.Context, b *bench, m *Member) error {
	c := newNGSIClient(m.Node().APIURL())
	id := "urn:ngsi-ld:AirQualityObserved:bench-history"
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const per = 5000
	for start := 0; start < b.sz.History; start += per {
		insts := make([]any, 0, per)
		for i := start; i < min(start+per, b.sz.History); i++ {
			insts = append(insts, map[string]any{"type": "Property", "value": float64(i % 1000),
				"observedAt": t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339)})
		}
		// The data model requires a location and dateObserved.
		e := aqoEntity(rand.New(rand.NewPCG(9, 9)), 0, "Bench")
		code, out, err := c.do(ctx, "POST", "/ngsi-ld/v1/temporal/entities", map[string]any{
			"id": id, "type": "AirQualityObserved", "location": e["location"], "dateObserved": e["dateObserved"], "no2": insts})
		if err := want(code, out, err, "write history", http.StatusCreated, http.StatusNoContent); err != nil {
			return err
		}
	}
	var lat []time.Duration
	for i := 0; i < b.sz.Queries; i++ {
		s := time.Now()
		code, out, err := c.do(ctx, "GET", "/ngsi-ld/v1/temporal/entities/"+url.PathEscape(id)+"?attrs=no2&lastN=100", nil)
		lat = append(lat, time.Since(s))
		if err := want(code, out, err, "lastN query", http.StatusOK); err != nil {
			return err
		}
		if i == 0 {
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				return fmt.Errorf("lastN answer: %w", err)
			}
			if list, _ := got["no2"].([]any); len(list) != min(100, b.sz.History) {
				return fmt.Errorf("lastN=100 gave %d instances", len(list))
			}
		}
	}
	b.set("ngsild.lastn", percentile(lat, 0.95), 0, "",
		fmt.Sprintf("p95 of %d queries over %d instances (the target names 1,000,000)", len(lat), b.sz.History))
	return nil
}

// benchSubscriptions times notifications from write to delivery at a
// receiver on loopback, then upsert throughput with 100 subscriptions
// against the same upserts without (both update the same entities with
// new values).
func benchSubscriptions(ctx context.Context, b *bench, m *Member) error {
	// node.Start does not start the NGSI-LD notifier yet; Start is
	// idempotent, so this stays right once it does.
	if err := m.Node().NGSILD().Start(ctx); err != nil {
		return fmt.Errorf("start the notifier: %w", err)
	}
	c := newNGSIClient(m.Node().APIURL())
	arrived := make(chan time.Time, 1)
	var notified atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		notified.Add(1)
		select {
		case arrived <- time.Now():
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	rcv := "http://" + ln.Addr().String() + "/notify"

	id := "urn:ngsi-ld:AirQualityObserved:bench-notify"
	e := aqoEntity(rand.New(rand.NewPCG(9, 9)), 0, "Bench")
	e["id"] = id
	code, out, err := c.do(ctx, "POST", "/ngsi-ld/v1/entityOperations/upsert", []any{e})
	if err := want(code, out, err, "create the notified entity", http.StatusCreated, http.StatusNoContent); err != nil {
		return err
	}
	code, out, err = c.do(ctx, "POST", "/ngsi-ld/v1/subscriptions", map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"id": id, "type": "AirQualityObserved"}},
		"watchedAttributes": []any{"no2"}, "notification": map[string]any{"endpoint": map[string]any{"uri": rcv}}})
	if err := want(code, out, err, "subscribe", http.StatusCreated); err != nil {
		return err
	}
	// Drop a notification the subscription may send on creation.
	select {
	case <-arrived:
	case <-time.After(200 * time.Millisecond):
	}
	var lat []time.Duration
	for i := 1; i <= b.sz.Notify; i++ {
		t0 := time.Now()
		code, out, err := c.do(ctx, "PATCH", "/ngsi-ld/v1/entities/"+url.PathEscape(id)+"/attrs",
			map[string]any{"no2": map[string]any{"type": "Property", "value": i}})
		if err := want(code, out, err, "update", http.StatusNoContent); err != nil {
			return err
		}
		select {
		case at := <-arrived:
			lat = append(lat, at.Sub(t0))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("no notification within 10 s of update %d", i)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.set("ngsild.notify", percentile(lat, 0.5), 0, "",
		fmt.Sprintf("%d updates (PATCH, synced) to arrival at an HTTP receiver on loopback", len(lat)))

	// Each side is the best of two runs of n updates: one run takes about
	// a second, and on a shared machine a single run of either side moved
	// the ratio by ±30%.
	n := min(10_000, max(b.sz.Upserts, b.sz.Stored))
	rateOf := func(seeds ...uint64) (float64, error) {
		best := 0.0
		for _, seed := range seeds {
			bodies, err := upsertBodies(0, n, seed)
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			if err := c.upsert(ctx, bodies); err != nil {
				return 0, err
			}
			best = max(best, float64(n)/time.Since(t0).Seconds())
		}
		return best, nil
	}
	base, err := rateOf(21, 22)
	if err != nil {
		return err
	}
	for i := 0; i < 100; i++ {
		code, out, err := c.do(ctx, "POST", "/ngsi-ld/v1/subscriptions", map[string]any{
			"type": "Subscription", "entities": []any{map[string]any{"type": "AirQualityObserved"}},
			"watchedAttributes": []any{"no2"}, "q": fmt.Sprintf("no2==%d", i),
			"notification": map[string]any{"format": "keyValues", "attributes": []any{"no2"}, "endpoint": map[string]any{"uri": rcv}}})
		if err := want(code, out, err, "subscribe", http.StatusCreated); err != nil {
			return err
		}
	}
	before := notified.Load()
	rate, err := rateOf(23, 24)
	if err != nil {
		return err
	}
	b.set("ngsild.upsert.subs", rate, base, "same upserts, no subscription",
		fmt.Sprintf("%d entity updates, best of 2 runs each; %d notifications arrived meanwhile", n, notified.Load()-before))
	return nil
}

// benchNegotiation times negotiations of a researcher with a transport
// agency for its research-only dataset (baseline: one stream round trip
// between the same two nodes), then negotiations/s against that provider
// from 8 consumers at once.
func benchNegotiation(ctx context.Context, b *bench, net *Net) error {
	var prov *Member
	for _, m := range net.Agencies() {
		if m.Kind == "transport" {
			prov = m
			break
		}
	}
	if prov == nil {
		prov = net.Agencies()[0]
	}
	dataset := DatasetID(prov, ModelsOf(prov.Kind)[0])
	var consumers []*Member
	consumers = append(consumers, net.Researchers()...)
	for _, m := range net.Agencies() {
		if m != prov {
			consumers = append(consumers, m)
		}
	}
	if len(consumers) == 0 {
		return fmt.Errorf("no consumer besides the provider")
	}
	consumers = consumers[:min(8, len(consumers))]
	for _, c := range consumers {
		if err := net.WaitFor(20*time.Second, c.Name+" indexes "+dataset, func() bool {
			_, err := c.Node().Catalog().Offer(dataset, "")
			return err == nil
		}); err != nil {
			return err
		}
	}
	negotiate := func(c *Member) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		id, err := c.Node().Contracts().Request(cctx, contract.RequestOptions{Provider: prov.Node().ID(), Dataset: dataset, Purpose: policy.PurposeResearch})
		if err != nil {
			return fmt.Errorf("request: %w", err)
		}
		in, err := c.Node().Contracts().Wait(cctx, id)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", id, err)
		}
		if in.State != negotiation.Finalized {
			return fmt.Errorf("negotiation %s ended %s: %v", id, in.State, in.Reasons)
		}
		return nil
	}
	res := consumers[0]
	if err := negotiate(res); err != nil { // warms the connection
		return err
	}
	var lat []time.Duration
	for i := 0; i < b.sz.Negotiations; i++ {
		t0 := time.Now()
		if err := negotiate(res); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	rtt, err := streamRTT(ctx, res.Node().Host(), prov.Node().Host(), b.sz.RTTs)
	if err != nil {
		return err
	}
	b.set("contract.latency", percentile(lat, 0.5), percentile(rtt, 0.5), "one stream round trip, p50",
		fmt.Sprintf("%d negotiations %s → %s, research-only, synced on both sides", len(lat), res.Name, prov.Name))

	var left atomic.Int64
	left.Store(int64(b.sz.Concurrent))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	t0 := time.Now()
	for _, c := range consumers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := negotiate(c); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	b.set("contract.throughput", float64(b.sz.Concurrent)/time.Since(t0).Seconds(), 0, "",
		fmt.Sprintf("%d negotiations from %d consumers at once", b.sz.Concurrent, len(consumers)))
	return nil
}
