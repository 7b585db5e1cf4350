package contract_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

var ctx = context.Background()

func initDir(t testing.TB, name string) node.Config {
	t.Helper()
	c, err := node.Init(t.TempDir(), node.InitOptions{Name: name, API: "127.0.0.1:0",
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startAt starts a node on an existing data directory; closing it is the
// test's business (restart tests close it early), Cleanup closes it again
// harmlessly.
func startAt(t testing.TB, c node.Config) *node.Node {
	t.Helper()
	n, err := node.New(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// eventually waits up to d for cond; tests wait for events, never sleep a
// fixed time.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// federate makes nodes[0] create a federation and the others join it
// with the given roles, and waits until each sees every other member.
func federate(t testing.TB, nodes []*node.Node, roles []federation.Role) string {
	t.Helper()
	in, err := nodes[0].Federations().Create(ctx, "Region", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes[1:] {
		tok, applied, err := nodes[0].Federations().Change(ctx, in.ID, federation.Change{Op: "add",
			PeerID: n.ID().String(), Name: n.Config().Name, Role: roles[i]})
		if err != nil || !applied {
			t.Fatalf("invite %s: applied=%v err=%v", n.ID(), applied, err)
		}
		if _, err := n.Federations().Join(ctx, tok); err != nil {
			t.Fatalf("join %d: %v", i+1, err)
		}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			eventually(t, 20*time.Second, a.Config().Name+" knows "+b.Config().Name+" as a member", func() bool {
				return len(a.Federations().SharedFederations(b.ID())) > 0
			})
		}
	}
	return in.ID
}

// addOffer registers an offer on the provider's interim registry, as
// POST /api/v1/offers does, and returns it as the provider advertises it.
func addOffer(t testing.TB, provider *node.Node, o contract.OfferRequest) json.RawMessage {
	t.Helper()
	p, err := o.Build(provider.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.Offers().Add(p); err != nil {
		t.Fatal(err)
	}
	b, err := policy.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request asks provider for dataset under offer from consumer and waits
// for the outcome.
func request(t testing.TB, consumer, provider *node.Node, dataset string, offer json.RawMessage, purpose string) contract.Info {
	t.Helper()
	id, err := consumer.Contracts().Request(ctx, contract.RequestOptions{Provider: provider.ID(), Dataset: dataset, Offer: offer, Purpose: purpose})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	return wait(t, consumer, id)
}

func wait(t testing.TB, n *node.Node, id string) contract.Info {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	in, err := n.Contracts().Wait(c, id)
	if err != nil {
		t.Fatalf("Wait(%s): %v", id, err)
	}
	return in
}

// providerSide returns the provider's view of the consumer's negotiation.
func providerSide(t testing.TB, provider *node.Node, consumerPid string) contract.Info {
	t.Helper()
	list, err := provider.Contracts().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.ConsumerPid == consumerPid && in.Role == negotiation.Provider {
			return in
		}
	}
	t.Fatalf("provider has no negotiation for consumer pid %s", consumerPid)
	return contract.Info{}
}

// waitProvider waits until the provider's side of the negotiation is in
// a terminal state (it may finish a moment after the consumer's).
func waitProvider(t testing.TB, provider *node.Node, consumerPid string) contract.Info {
	t.Helper()
	in := providerSide(t, provider, consumerPid)
	return wait(t, provider, in.ID)
}

// verifyAudit checks both nodes' logs and returns the kinds each holds.
func verifyAudit(t testing.TB, nodes ...*node.Node) []map[string]int {
	t.Helper()
	var out []map[string]int
	for _, n := range nodes {
		if _, err := n.Audit().Verify(); err != nil {
			t.Errorf("%s audit log: %v", n.Config().Name, err)
		}
		es, err := n.Audit().List(1, 0)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		// Each negotiation's story starts with its request: no
		// decision or signature is logged before it.
		opened := map[string]bool{}
		for _, e := range es {
			kinds[e.Kind]++
			pid := e.Subject
			switch e.Kind {
			case audit.KindNegotiationRequested:
				opened[pid] = true
				continue
			case audit.KindAgreementSigned:
				var d struct{ Negotiation string }
				json.Unmarshal(e.Data, &d)
				pid = d.Negotiation
			case audit.KindDecision:
			default:
				continue
			}
			if !opened[pid] {
				t.Errorf("%s audit log: entry %d (%s) about negotiation %s comes before its %s entry",
					n.Config().Name, e.Seq, e.Kind, pid, audit.KindNegotiationRequested)
			}
		}
		out = append(out, kinds)
	}
	return out
}
