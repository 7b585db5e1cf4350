package contract_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// conversations returns the /mim/negotiation/1.1.0 streams n has open to p.
func conversations(n *node.Node, p peer.ID) []network.Stream {
	var out []network.Stream
	for _, c := range n.Host().Network().ConnsToPeer(p) {
		for _, st := range c.GetStreams() {
			if string(st.Protocol()) == protocol.NegotiationConversationProtocol {
				out = append(out, st)
			}
		}
	}
	return out
}

// oneConversation waits until n has exactly one conversation stream it
// opened to p, and keeps it for its next messages, and returns it. Streams
// p opened to n are not counted: p keeps those on its side, and whether p
// had to open one (after a reset, for its answer) depends on timing.
//
// Waiting until the stream is kept, not only open, matters: n's Wait
// returns once FINALIZED is stored, a moment before n has written its
// acknowledgement and kept the stream, and a request made in that moment
// finds no kept stream and opens a second one (both are then kept).
func oneConversation(t *testing.T, n *node.Node, p peer.ID) network.Stream {
	t.Helper()
	var st network.Stream
	seen := -1
	eventually(t, 10*time.Second, "one conversation stream kept", func() bool {
		var opened []network.Stream
		for _, s := range conversations(n, p) {
			if s.Stat().Direction == network.DirOutbound {
				opened = append(opened, s)
			}
		}
		if len(opened) != 1 {
			if len(opened) != seen {
				t.Logf("%d conversation streams kept", len(opened))
				seen = len(opened)
			}
			return false
		}
		if kept := n.Contracts().KeptStreams(p); len(kept) != 1 || kept[0].ID() != opened[0].ID() {
			return false
		}
		st = opened[0]
		return true
	})
	return st
}

// noResends gives the nodes' next negotiations a resend schedule no test
// run reaches. The tests here count streams: a message resent because its
// answer took longer than the default 500 ms (as it can in a loaded run
// with the race detector) goes on a stream of its own, which is then kept
// too, and the count depends on timing.
func noResends(nodes ...*node.Node) {
	for _, n := range nodes {
		n.Contracts().SetRetry(negotiation.RetryPolicy{Initial: time.Minute, Max: time.Minute, Timeout: 5 * time.Minute})
	}
}

// docs/protocol.md 6.8: the side that opened a conversation keeps it for
// its next messages to the same peer; negotiations one after another use
// one stream.
func TestConversationKeptForTheNextNegotiation(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	noResends(prov, res)
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	var first network.Stream
	for i := range 3 {
		if got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch); got.State != negotiation.Finalized {
			t.Fatalf("negotiation %d ended %s %v", i, got.State, got.Reasons)
		}
		st := oneConversation(t, res, prov.ID())
		if first == nil {
			first = st
		} else if st.ID() != first.ID() {
			t.Fatalf("negotiation %d kept stream %s, want %s reused", i, st.ID(), first.ID())
		}
	}
}

// A kept stream the peer has reset (its read deadline, a restart) is not
// the end of the messages sent on it: they go on a new stream.
func TestKeptConversationResetByThePeer(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	noResends(prov, res)
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	kept := oneConversation(t, res, prov.ID())
	eventually(t, 10*time.Second, "the provider reading the kept stream", func() bool {
		return len(conversations(prov, res.ID())) == 1
	})
	for _, st := range conversations(prov, res.ID()) {
		st.Reset()
	}
	if got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch); got.State != negotiation.Finalized {
		t.Fatalf("ended %s %v", got.State, got.Reasons)
	}
	if st := oneConversation(t, res, prov.ID()); st.ID() == kept.ID() {
		t.Fatalf("the reset stream %s is still kept", st.ID())
	}
}

// gatedMembers is a node's membership with a switch that refuses every
// peer, both when a stream is opened (Guard) and when a negotiation
// starts on a kept stream (Authorize, the check converse makes again).
// Turning it on revokes nothing, so the connection and the kept stream
// stay open: a real revocation closes the connection first, and the check
// on the kept stream is never reached.
type gatedMembers struct {
	*federation.Service
	refuse  atomic.Bool
	refused atomic.Int64 // Authorize calls answered false
}

func (g *gatedMembers) Guard(proto p2pproto.ID, h network.StreamHandler) network.StreamHandler {
	admitted := g.Service.Guard(proto, h)
	return func(st network.Stream) {
		if g.refuse.Load() {
			st.Reset()
			return
		}
		admitted(st)
	}
}

func (g *gatedMembers) Authorize(proto p2pproto.ID, p peer.ID) bool {
	if g.refuse.Load() {
		g.refused.Add(1)
		return false
	}
	return g.Service.Authorize(proto, p)
}

// withMembers replaces n's contract service by one consulting m (it takes
// over n's negotiation protocols); call it before n negotiates.
func withMembers(t *testing.T, n *node.Node, m contract.Membership) *contract.Service {
	t.Helper()
	signer, err := node.NewKeySigner(n.Host().Peerstore().PrivKey(n.ID()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := contract.New(contract.Options{Host: n.Host(), Store: n.Store(), Audit: n.Audit(), Members: m,
		Signer: signer, Verifier: node.PeerIDVerifier{}, Offers: n.Offers()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// docs/protocol.md 6.8: a message starting a negotiation on a kept
// stream is authorised again; a peer no longer admitted has its stream
// reset and gets no negotiation, though the stream was admitted when it
// was opened.
func TestKeptConversationCheckedAgain(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	gate := &gatedMembers{Service: prov.Federations()}
	withMembers(t, prov, gate)
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	if got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch); got.State != negotiation.Finalized {
		t.Fatalf("first negotiation ended %s %v", got.State, got.Reasons)
	}
	oneConversation(t, res, prov.ID())
	gate.refuse.Store(true)
	res.Contracts().SetRetry(negotiation.RetryPolicy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, Timeout: time.Second})
	got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	if got.State != negotiation.Terminated || got.Code != protocol.CodeTimeout {
		t.Fatalf("ended %s %s %v, want TERMINATED %s", got.State, got.Code, got.Reasons, protocol.CodeTimeout)
	}
	if gate.refused.Load() == 0 {
		t.Fatal("the provider never authorised the negotiation on the kept stream again")
	}
}

// A consumer no longer in any federation with the provider cannot start
// a negotiation, though it had kept a conversation stream open (the
// revocation closes the connection, and the stream with it).
func TestRevokedConsumerCannotNegotiate(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	fed := federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	oneConversation(t, res, prov.ID())
	if _, applied, err := prov.Federations().Change(ctx, fed, federation.Change{Op: "revoke", PeerID: res.ID().String()}); err != nil || !applied {
		t.Fatalf("revoke: applied=%v err=%v", applied, err)
	}
	eventually(t, 10*time.Second, "the provider no longer sharing a federation with the consumer", func() bool {
		return len(prov.Federations().SharedFederations(res.ID())) == 0
	})
	res.Contracts().SetRetry(negotiation.RetryPolicy{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond, Timeout: time.Second})
	got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	if got.State != negotiation.Terminated || got.Code != protocol.CodeTimeout {
		t.Fatalf("ended %s %s %v, want TERMINATED %s", got.State, got.Code, got.Reasons, protocol.CodeTimeout)
	}
}
