package contract_test

import (
	"bufio"
	"errors"
	"path"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// rawExchange writes raw bytes on a new negotiation stream from one node
// to another and reads one answer frame.
func rawExchange(t *testing.T, from *node.Node, to peer.ID, raw []byte) (protocol.Message, error) {
	t.Helper()
	return rawExchangeOn(t, protocol.NegotiationProtocol, from, to, raw)
}

// rawExchangeOn is rawExchange on protocol proto.
func rawExchangeOn(t *testing.T, proto string, from *node.Node, to peer.ID, raw []byte) (protocol.Message, error) {
	t.Helper()
	st, err := from.Host().NewStream(ctx, to, p2pproto.ID(proto))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := st.Write(raw); err != nil {
		return nil, err
	}
	st.CloseWrite()
	body, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxNegotiationFrame)
	if err != nil {
		return nil, err
	}
	return protocol.Decode(body)
}

func frame(t *testing.T, m protocol.Message) []byte {
	t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return rawFrame(t, b)
}

func rawFrame(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytesBuffer
	if err := protocol.WriteFrame(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.b
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// TestBadInputOnTheStream sends the provider what a broken or hostile
// peer might (docs/protocol.md 1.3): each gets the protocol error answer
// or a reset, and the provider negotiates normally afterwards.
func TestBadInputOnTheStream(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	other := startAt(t, initDir(t, "Police"))
	federate(t, []*node.Node{prov, res, other}, []federation.Role{federation.RoleResearcher, federation.RoleAgency})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only", Manual: true})
	cid, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: offer, Purpose: "research"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "request queued", func() bool { p, _ := prov.Contracts().Pending(); return len(p) == 1 })
	ppid := providerSide(t, prov, cid).ID

	for _, tc := range []struct {
		name string
		from *node.Node
		raw  []byte
		// code is the expected error answer; "" means the stream must be
		// reset without an answer.
		code protocol.Code
	}{
		{"garbage body", res, rawFrame(t, []byte("not json!!")), protocol.CodeMalformedMessage},
		{"JSON that is no DSP message", res, rawFrame(t, []byte(`{"@type":"x"}`)), protocol.CodeMalformedMessage},
		{"oversized length prefix", res, []byte{0x80, 0x80, 0x80, 0x01}, protocol.CodeFrameTooLarge},
		{"zero length frame", res, []byte{0x00}, ""},
		{"non-minimal varint", res, []byte{0x85, 0x00}, ""},
		{"truncated frame", res, []byte{0x40, '{'}, ""},
		{"CN_03 unknown negotiation", res, frame(t, &protocol.ContractAgreementVerificationMessage{
			Pids: protocol.Pids{ProviderPid: "urn:uuid:nope", ConsumerPid: cid}}), protocol.CodeUnknownNegotiation},
		{"CN_03 wrong party terminates someone else's negotiation", other, frame(t, &protocol.ContractNegotiationTerminationMessage{
			Pids: protocol.Pids{ProviderPid: ppid, ConsumerPid: cid}, Code: protocol.CodeCancelled}), protocol.CodeWrongParty},
		{"CN_03 verification while REQUESTED", res, frame(t, &protocol.ContractAgreementVerificationMessage{
			Pids: protocol.Pids{ProviderPid: ppid, ConsumerPid: cid}}), protocol.CodeInvalidTransition},
		{"first request with someone else's callback address", other, frame(t, &protocol.ContractRequestMessage{
			Pids: protocol.Pids{ConsumerPid: "urn:uuid:c2"}, Offer: offer, CallbackAddress: "/p2p/" + res.ID().String()}), protocol.CodeWrongParty},
	} {
		// Both forms of the protocol read the first frame the same way.
		for _, proto := range []string{protocol.NegotiationProtocol, protocol.NegotiationConversationProtocol} {
			t.Run(path.Base(proto)+"/"+tc.name, func(t *testing.T) {
				ans, err := rawExchangeOn(t, proto, tc.from, prov.ID(), tc.raw)
				if tc.code == "" {
					if err == nil {
						t.Fatalf("got answer %#v, want a reset", ans)
					}
					return
				}
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				e, ok := ans.(*protocol.ContractNegotiationError)
				if !ok || e.Code != tc.code {
					t.Fatalf("answer %#v, want a ContractNegotiationError %s", ans, tc.code)
				}
			})
		}
	}

	t.Run("slow loris is cut off at the read deadline", func(t *testing.T) {
		st, err := res.Host().NewStream(ctx, prov.ID(), p2pproto.ID(protocol.NegotiationProtocol))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.Write([]byte{0x85}) // the first byte of a prefix, and then nothing
		st.SetReadDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		_, err = st.Read(make([]byte, 1))
		if err == nil {
			t.Fatal("the provider answered a frame it never got")
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the provider kept the stream open for %s", time.Since(start))
		}
	})

	t.Run("a non-member is refused before the handler", func(t *testing.T) {
		outsider := startAt(t, initDir(t, "Outsider"))
		prov.Gater().AllowExplicit(outsider.ID())
		if err := outsider.Host().Connect(ctx, prov.AddrInfo()); err != nil {
			t.Skipf("cannot connect at all: %v", err)
		}
		for _, proto := range []string{protocol.NegotiationProtocol, protocol.NegotiationConversationProtocol} {
			ans, err := rawExchangeOn(t, proto, outsider, prov.ID(), frame(t, &protocol.ContractRequestMessage{
				Pids: protocol.Pids{ConsumerPid: "urn:uuid:c3"}, Offer: offer, CallbackAddress: "/p2p/" + outsider.ID().String()}))
			if err == nil {
				t.Fatalf("non-member got answer %#v on %s", ans, proto)
			}
		}
	})

	// Nothing above changed the negotiation; it still completes.
	if in, _ := prov.Contracts().Get(ppid); in.State != negotiation.Requested || !in.Pending {
		t.Fatalf("provider negotiation is %s pending=%v after bad input, want REQUESTED and pending", in.State, in.Pending)
	}
	if _, err := prov.Contracts().Approve(ctx, ppid); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, res, cid); got.State != negotiation.Finalized {
		t.Fatalf("consumer ended %s %v", got.State, got.Reasons)
	}
}

// TestResentFirstRequestGetsTheSameNegotiation: a consumer that lost the
// answer to its first request resends it; the provider answers it from
// the negotiation it already has instead of starting a second one
// (docs/protocol.md 6.2).
func TestResentFirstRequestGetsTheSameNegotiation(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only", Manual: true})
	req := &protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:uuid:consumer-1"}, Offer: offer,
		CallbackAddress: "/p2p/" + res.ID().String(), Purpose: policy.PurposeResearch}
	req.SetSeqNo(1)
	var pids []string
	for i := 0; i < 3; i++ {
		ans, err := rawExchange(t, res, prov.ID(), frame(t, req))
		if err != nil {
			t.Fatal(err)
		}
		cn, ok := ans.(*protocol.ContractNegotiation)
		if !ok || cn.State != "REQUESTED" {
			t.Fatalf("answer %d = %#v, want REQUESTED", i, ans)
		}
		pids = append(pids, cn.ProviderPid)
	}
	if pids[0] != pids[1] || pids[1] != pids[2] {
		t.Errorf("resends got provider pids %v, want one negotiation", pids)
	}
	list, _ := prov.Contracts().List()
	if len(list) != 1 {
		t.Errorf("provider has %d negotiations, want 1", len(list))
	}
}

// TestPeerWithoutConversations: a node that serves only the one-exchange
// form of the protocol (/mim/negotiation/1.0.0, as nodes did before
// conversations) still negotiates with one that prefers conversations.
func TestPeerWithoutConversations(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	conv := p2pproto.ID(protocol.NegotiationConversationProtocol)
	eventually(t, 10*time.Second, "the researcher knows the provider speaks conversations", func() bool {
		ok, _ := res.Host().Peerstore().SupportsProtocols(prov.ID(), conv)
		return len(ok) == 1
	})
	prov.Host().RemoveStreamHandler(conv)
	eventually(t, 10*time.Second, "the researcher learns the provider no longer does", func() bool {
		ok, _ := res.Host().Peerstore().SupportsProtocols(prov.ID(), conv)
		return len(ok) == 0
	})
	got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	if got.State != negotiation.Finalized {
		t.Fatalf("ended %s %v", got.State, got.Reasons)
	}
	if in := waitProvider(t, prov, got.ID); in.State != negotiation.Finalized || in.AgreementID != got.AgreementID {
		t.Fatalf("provider side %s agreement %q, consumer %q", in.State, in.AgreementID, got.AgreementID)
	}
	verifyAudit(t, prov, res)
}
