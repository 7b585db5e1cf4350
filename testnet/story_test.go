package testnet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// TestStory tells the whole story of issue 10: two cities federate; a
// transport agency publishes traffic flow under a research-only policy and an
// environment agency publishes air quality as open data; a researcher
// searches, negotiates both, fetches both, follows the air quality live feed;
// the audit logs of all three nodes verify.
func TestStory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	net := New(t, Shape{Cities: 2, AgenciesPerCity: 2, Researchers: 1}, Options{EntitiesPerModel: 10}).Federate().Seed().Publish()
	env := net.Member("Aarhus environment")
	transport := net.Member("Aarhus transport")
	lab := net.Researchers()[0]
	if env == nil || transport == nil {
		t.Fatal("shape has no Aarhus environment or transport agency")
	}
	airQuality := DatasetID(env, "AirQualityObserved")
	traffic := DatasetID(transport, "TrafficFlowObserved")

	// The researcher finds both in its own index.
	researcher := lab.Node()
	for _, q := range []catalog.Query{
		{Text: "airqualityobserved Aarhus", Theme: "ENVI"},
		{Type: "TrafficFlowObserved", Publisher: transport.Node().ID().String()},
	} {
		net.WaitFor(10*time.Second, fmt.Sprintf("researcher finds %+v", q), func() bool {
			res, err := researcher.Catalog().Search(q)
			return err == nil && res.Total > 0
		})
	}

	// It negotiates both.
	agree := func(holder *Member, dataset string) string {
		t.Helper()
		id, err := researcher.Contracts().Request(ctx, contract.RequestOptions{Provider: holder.Node().ID(), Dataset: dataset, Purpose: "research"})
		if err != nil {
			t.Fatalf("request %s: %v", dataset, err)
		}
		in, err := researcher.Contracts().Wait(ctx, id)
		if err != nil || in.State != negotiation.Finalized {
			t.Fatalf("negotiation for %s ended %s (%v): %v", dataset, in.State, in.Reasons, err)
		}
		return in.AgreementID
	}
	aqAgreement := agree(env, airQuality)
	trafficAgreement := agree(transport, traffic)

	// It fetches both: the entities land in its own store and its NGSI-LD API
	// returns them exactly as the provider's does.
	for _, f := range []struct {
		agreement, model string
		holder           *Member
	}{{trafficAgreement, "TrafficFlowObserved", transport}, {aqAgreement, "AirQualityObserved", env}} {
		in, err := researcher.Transfers().Fetch(ctx, f.agreement, transfer.FetchOptions{})
		if err != nil {
			t.Fatalf("fetch %s: %v", f.model, err)
		}
		if in.Usage.Entities != 10 {
			t.Fatalf("fetch %s landed %d entities, want 10", f.model, in.Usage.Entities)
		}
		id := EntityID(f.model, f.holder, 3)
		if got, want := getEntity(t, researcher, id), getEntity(t, f.holder.Node(), id); got != want {
			t.Fatalf("%s differs on the researcher:\n got %s\nwant %s", id, got, want)
		}
	}

	// It follows the air quality live feed: a new reading at the agency
	// arrives at the researcher.
	var changes atomic.Int64
	liveCtx, stopLive := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- researcher.Transfers().Live(liveCtx, aqAgreement, transfer.LiveOptions{
			Started:  func(transfer.Info) { close(started) },
			OnChange: func(transfer.LiveChange) { changes.Add(1) },
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("live feed ended before it started: %v", err)
	case <-ctx.Done():
		t.Fatal("live feed did not start")
	}
	ents, err := net.Entities(env, "AirQualityObserved", 11)
	if err != nil {
		t.Fatal(err)
	}
	if err := Upsert(ctx, env.Node().APIURL(), ents[10:]); err != nil {
		t.Fatal(err)
	}
	newID := EntityID("AirQualityObserved", env, 10)
	net.WaitFor(20*time.Second, "the new reading reaches the researcher", func() bool {
		return changes.Load() > 0 && getEntity(t, researcher, newID) != ""
	})
	stopLive()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("live feed: %v", err)
	}

	// Every side's transaction log verifies.
	for _, m := range []*Member{env, transport, lab} {
		rep, err := m.Node().Audit().Verify()
		if err != nil {
			t.Errorf("%s: audit log: %v", m.Name, err)
		}
		if rep.Entries == 0 {
			t.Errorf("%s: audit log is empty", m.Name)
		}
	}
}

// getEntity returns the entity as the node's NGSI-LD API renders it in
// keyValues form, "" when absent.
func getEntity(t *testing.T, n *node.Node, id string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", n.APIURL()+"/ngsi-ld/v1/entities/"+id+"?options=keyValues", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return ""
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	return b.String()
}
