package negotiation

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mimnode/mimnode/protocol"
)

func TestNewRejectsIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func() (*Negotiation, error)
	}{
		{"consumer without pid", func() (*Negotiation, error) {
			return NewConsumer(Config{Peer: "p", CallbackAddress: "/p2p/c"})
		}},
		{"consumer without peer", func() (*Negotiation, error) {
			return NewConsumer(Config{Pid: "c", CallbackAddress: "/p2p/c"})
		}},
		{"consumer without callback", func() (*Negotiation, error) { return NewConsumer(Config{Pid: "c", Peer: "p"}) }},
		{"provider without pid", func() (*Negotiation, error) { return NewProvider(Config{Peer: "c"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := tc.new(); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("got %v, %v; want ErrBadConfig", n, err)
			}
		})
	}
}

// TestLocalInputErrors: local inputs that make no sense are errors for the
// driver and change nothing.
func TestLocalInputErrors(t *testing.T) {
	now := epoch
	consumer := func() *Negotiation {
		n, err := NewConsumer(Config{Pid: "urn:c", Peer: "P", CallbackAddress: "/p2p/C"})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	provider := func() *Negotiation {
		n, err := NewProvider(Config{Pid: "urn:p", Peer: "C"})
		if err != nil {
			t.Fatal(err)
		}
		req := &protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:c"}, Offer: json.RawMessage(fixtures["O1"]), CallbackAddress: "/p2p/C"}
		if err := n.Step(Msg{Type: MsgReceive, Now: now, From: "C", Body: req}); err != nil {
			t.Fatal(err)
		}
		n.Advance()
		return n
	}
	for _, tc := range []struct {
		name string
		n    func() *Negotiation
		msg  Msg
		want error
	}{
		{"no time", consumer, Msg{Type: MsgRequest, Offer: json.RawMessage(fixtures["O1"])}, ErrBadInput},
		{"request without offer", consumer, Msg{Type: MsgRequest, Now: now}, ErrBadInput},
		{"accept before any offer", consumer, Msg{Type: MsgAccept, Now: now}, ErrNotAllowed},
		{"terminate before starting", consumer, Msg{Type: MsgTerminate, Now: now}, ErrNotAllowed},
		{"consumer decides", consumer, Msg{Type: MsgDecide, Now: now, Verdict: Queue}, ErrNotAllowed},
		{"receive nil", consumer, Msg{Type: MsgReceive, Now: now, From: "P"}, ErrBadInput},
		{"unknown input", consumer, Msg{Type: MsgType(99), Now: now}, ErrBadInput},
		{"agree without agreement", provider, Msg{Type: MsgDecide, Now: now, Verdict: Agree}, ErrBadInput},
		{"counter-offer without offer", provider, Msg{Type: MsgDecide, Now: now, Verdict: CounterOffer}, ErrBadInput},
		{"unknown verdict", provider, Msg{Type: MsgDecide, Now: now, Verdict: Verdict(7)}, ErrBadInput},
		{"provider requests", provider, Msg{Type: MsgRequest, Now: now, Offer: json.RawMessage(fixtures["O1"])}, ErrNotAllowed},
		{"finalize before verified", provider, Msg{Type: MsgFinalize, Now: now}, ErrNotAllowed},
		{"verify as provider", provider, Msg{Type: MsgVerify, Now: now, Agreement: json.RawMessage(fixtures["A1"])}, ErrNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n()
			before, _ := n.Marshal()
			err := n.Step(tc.msg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Step(%s) = %v, want %v", tc.msg.Type, err, tc.want)
			}
			after, _ := n.Marshal()
			if string(before) != string(after) || n.HasReady() {
				t.Fatalf("Step(%s) failed but changed the negotiation", tc.msg.Type)
			}
		})
	}
}

func TestReplyPending(t *testing.T) {
	n, _ := NewProvider(Config{Pid: "urn:p", Peer: "C"})
	req := &protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:c"}, Offer: json.RawMessage(fixtures["O1"]), CallbackAddress: "/p2p/C"}
	if err := n.Step(Msg{Type: MsgReceive, Now: epoch, From: "C", Body: req}); err != nil {
		t.Fatal(err)
	}
	if err := n.Step(Msg{Type: MsgReceive, Now: epoch, From: "C", Body: req}); !errors.Is(err, ErrReplyPending) {
		t.Fatalf("second receive without Advance = %v, want ErrReplyPending", err)
	}
}

func TestUnmarshalRejectsCorrupt(t *testing.T) {
	n, _ := NewConsumer(Config{Pid: "urn:c", Peer: "P", CallbackAddress: "/p2p/C"})
	if err := n.Step(Msg{Type: MsgRequest, Now: epoch, Offer: json.RawMessage(fixtures["O1"])}); err != nil {
		t.Fatal(err)
	}
	good, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var base map[string]any
	if err := json.Unmarshal(good, &base); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
	}{
		{"future version", func(m map[string]any) { m["v"] = persistVersion + 1 }},
		{"offer in no message", func(m map[string]any) { delete(m, "out") }},
		{"unknown role", func(m map[string]any) { m["role"] = "broker" }},
		{"unknown state", func(m map[string]any) { m["state"] = "PAUSED" }},
		{"no peer", func(m map[string]any) { delete(m, "peer") }},
		{"no own pid", func(m map[string]any) { m["pids"] = map[string]any{"providerPid": "x"} }},
		{"outgoing message garbled", func(m map[string]any) { m["out"].(map[string]any)["msg"] = map[string]any{"@type": "Nope"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			_ = json.Unmarshal(good, &m)
			tc.mutate(m)
			b, _ := json.Marshal(m)
			if _, err := Unmarshal(b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Unmarshal(%s) = %v, want ErrCorrupt", b, err)
			}
		})
	}
	if _, err := Unmarshal([]byte("not json")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Unmarshal(garbage) = %v, want ErrCorrupt", err)
	}
}

func TestRoute(t *testing.T) {
	both := protocol.Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}
	for _, tc := range []struct {
		name  string
		msg   protocol.Message
		want  []Key
		isNew bool
	}{
		{"first request", &protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:c"}}, nil, true},
		{"counter request", &protocol.ContractRequestMessage{Pids: both}, []Key{{Provider, "urn:p"}}, false},
		{"offer", &protocol.ContractOfferMessage{Pids: both}, []Key{{Consumer, "urn:c"}}, false},
		{"accepted", &protocol.ContractNegotiationEventMessage{Pids: both, EventType: protocol.EventAccepted}, []Key{{Provider, "urn:p"}}, false},
		{"finalized", &protocol.ContractNegotiationEventMessage{Pids: both, EventType: protocol.EventFinalized}, []Key{{Consumer, "urn:c"}}, false},
		{"termination", &protocol.ContractNegotiationTerminationMessage{Pids: both}, []Key{{Provider, "urn:p"}, {Consumer, "urn:c"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, isNew := Route(tc.msg)
			if isNew != tc.isNew || len(got) != len(tc.want) {
				t.Fatalf("Route = %v, %v; want %v, %v", got, isNew, tc.want, tc.isNew)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Route = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// FuzzStep feeds arbitrary frame bodies to negotiations in every state of
// both roles. Whatever the bytes, Step must not panic, a refused message
// must change nothing, and every answer must be a valid DSP message.
func FuzzStep(f *testing.F) {
	for _, s := range []string{
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractNegotiationEventMessage","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","eventType":"ACCEPTED"}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractNegotiationTerminationMessage","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","code":"MIM-603"}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractAgreementVerificationMessage","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c"}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractOfferMessage","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","offer":` + fixtures["O2"] + `}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractAgreementMessage","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","agreement":` + fixtures["A1"] + `}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractNegotiation","providerPid":"urn:uuid:p","consumerPid":"urn:uuid:c","state":"AGREED"}`,
	} {
		for stop := uint8(0); stop < 6; stop++ {
			f.Add([]byte(s), stop, true)
			f.Add([]byte(s), stop, false)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, stop uint8, toConsumer bool) {
		m, err := protocol.Decode(body)
		if err != nil {
			return
		}
		// Bring a pair part of the way through a negotiation, then hit one
		// side with the fuzzed message.
		pr := newPair(t, RetryPolicy{})
		pr.stopAfter = int(stop % 6)
		pr.run(0)
		n, from := pr.c, peerP
		if !toConsumer && pr.p != nil {
			n, from = pr.p, peerC
		}
		before, err := n.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		err = n.Step(Msg{Type: MsgReceive, Now: pr.now, From: from, Body: m})
		rd := n.Ready()
		if err != nil {
			after, _ := n.Marshal()
			if string(after) != string(before) || len(rd.Transitions) > 0 || len(rd.Messages) > 0 {
				t.Fatalf("refused message %s changed the negotiation", body)
			}
		}
		if rd.Reply != nil {
			if _, err := protocol.Encode(rd.Reply); err != nil {
				t.Fatalf("answer does not encode: %v", err)
			}
		}
		for _, out := range rd.Messages {
			if _, err := protocol.Encode(out); err != nil {
				t.Fatalf("outgoing %s does not encode: %v", out.MessageType(), err)
			}
		}
	})
}

// TestStoredOnceInTheMessage checks that an offer or agreement the
// unanswered message carries is stored once, in the message, and comes
// back from it; and that a version 1 record, which stores it twice, is
// still read.
func TestStoredOnceInTheMessage(t *testing.T) {
	consumer, _ := NewConsumer(Config{Pid: "urn:c", Peer: "P", CallbackAddress: "/p2p/C"})
	if err := consumer.Step(Msg{Type: MsgRequest, Now: epoch, Offer: json.RawMessage(fixtures["O1"])}); err != nil {
		t.Fatal(err)
	}
	provider, _ := NewProvider(Config{Pid: "urn:p", Peer: "C"})
	req := &protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:c"}, Offer: json.RawMessage(fixtures["O1"]), CallbackAddress: "/p2p/C"}
	if err := provider.Step(Msg{Type: MsgReceive, Now: epoch, From: "C", Body: req}); err != nil {
		t.Fatal(err)
	}
	provider.Advance()
	if err := provider.Step(Msg{Type: MsgDecide, Now: epoch, Verdict: Agree, Agreement: json.RawMessage(fixtures["A1"])}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, flag, member string
		n                  *Negotiation
		want               func(*Negotiation) json.RawMessage
	}{
		{"consumer's request", "offerInOut", "offer", consumer, (*Negotiation).Offer},
		{"provider's agreement", "agreementInOut", "agreement", provider, (*Negotiation).Agreement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.n.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m[tc.member]; ok || string(m[tc.flag]) != "true" {
				t.Fatalf("Marshal stored %s = %s, %s = %s; want it only in the message", tc.member, m[tc.member], tc.flag, m[tc.flag])
			}
			back, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tc.want(back), tc.want(tc.n); string(got) != string(want) {
				t.Fatalf("restored %s = %s, want %s", tc.member, got, want)
			}
			// Version 1: the member stored as well, no flag.
			m["v"], m[tc.member] = json.RawMessage("1"), tc.want(tc.n)
			delete(m, tc.flag)
			v1, _ := json.Marshal(m)
			back, err = Unmarshal(v1)
			if err != nil {
				t.Fatalf("Unmarshal(version 1) = %v", err)
			}
			if got, want := tc.want(back), tc.want(tc.n); string(got) != string(want) {
				t.Fatalf("restored %s from version 1 = %s, want %s", tc.member, got, want)
			}
		})
	}
}
