package negotiation

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mimnode/mimnode/protocol"
)

// pair runs a consumer and a provider negotiation against each other in
// memory, with a driver for each side that decides automatically: the
// provider agrees to any request (or refuses, if refuse is set), the
// consumer accepts any offer. Messages go through Encode/Decode as on the
// wire. With a non-nil rng, each message and each answer is lost with
// probability loss, and either side may restart (Marshal/Unmarshal)
// between steps.
type pair struct {
	tb      testing.TB
	now     time.Time
	c, p    *Negotiation
	rng     *rand.Rand
	loss    float64
	restart float64
	refuse  bool
	sent    int
	// stopAfter, if positive, stops the automatic decisions after that
	// many, leaving the negotiation in a middle state (for fuzzing).
	stopAfter int
	decided   int
}

const (
	peerC = "12D3KooWConsumer"
	peerP = "12D3KooWProvider"
)

func newPair(tb testing.TB, retry RetryPolicy) *pair {
	c, err := NewConsumer(Config{Pid: "urn:uuid:c", Peer: peerP, CallbackAddress: "/p2p/" + peerC, Retry: retry})
	if err != nil {
		tb.Fatal(err)
	}
	return &pair{tb: tb, now: epoch, c: c}
}

func (pr *pair) lost() bool { return pr.rng != nil && pr.rng.Float64() < pr.loss }

// wire sends m through the wire format.
func (pr *pair) wire(m protocol.Message) protocol.Message {
	b, err := protocol.Encode(m)
	if err != nil {
		pr.tb.Fatalf("encoding %s: %v", m.MessageType(), err)
	}
	out, err := protocol.Decode(b)
	if err != nil {
		pr.tb.Fatalf("decoding %s: %v", m.MessageType(), err)
	}
	return out
}

// deliver carries m from one side to the other and its answer back.
func (pr *pair) deliver(fromConsumer bool, m protocol.Message) {
	pr.sent++
	if pr.lost() {
		return
	}
	m = pr.wire(m)
	to, from, sender, responder := pr.p, peerC, pr.c, peerP
	if !fromConsumer {
		to, from, sender, responder = pr.c, peerP, pr.p, peerC
	}
	if to == nil && fromConsumer {
		if _, isNew := Route(m); !isNew {
			// A driver answers 404 for a negotiation it does not have.
			if !pr.lost() {
				_ = sender.Step(Msg{Type: MsgReceive, Now: pr.now, From: responder, Body: pr.wire(UnknownNegotiation(m))})
				srd := sender.Ready()
				sender.Advance()
				pr.act(sender, srd)
			}
			return
		}
		p, err := NewProvider(Config{Pid: "urn:uuid:p", Peer: peerC, Retry: pr.c.retry})
		if err != nil {
			pr.tb.Fatal(err)
		}
		pr.p, to = p, p
	}
	_ = to.Step(Msg{Type: MsgReceive, Now: pr.now, From: from, Body: m})
	rd := to.Ready()
	to.Advance()
	pr.act(to, rd)
	if rd.Reply == nil || pr.lost() {
		return
	}
	_ = sender.Step(Msg{Type: MsgReceive, Now: pr.now, From: responder, Body: pr.wire(rd.Reply)})
	srd := sender.Ready()
	sender.Advance()
	pr.act(sender, srd)
}

// act plays the driver after Ready: send the messages, make the decision
// the negotiation waits for.
func (pr *pair) act(n *Negotiation, rd Ready) {
	for _, m := range rd.Messages {
		pr.deliver(n.Role() == Consumer, m)
	}
	var in Msg
	switch n.Todo() {
	case TodoDecide:
		in = Msg{Type: MsgDecide, Verdict: Agree, Agreement: json.RawMessage(fixtures["A1"])}
		if pr.refuse {
			in = Msg{Type: MsgDecide, Verdict: Refuse, Reasons: []string{"purpose: research required"}}
		}
	case TodoChoose:
		in = Msg{Type: MsgAccept}
	case TodoVerify:
		in = Msg{Type: MsgVerify, Agreement: json.RawMessage(fixtures["A1c"])}
	case TodoFinalize:
		in = Msg{Type: MsgFinalize}
	default:
		return
	}
	if pr.stopAfter > 0 && pr.decided >= pr.stopAfter {
		return
	}
	pr.decided++
	in.Now = pr.now
	if err := n.Step(in); err != nil {
		pr.tb.Fatalf("%s: %v", n.Role(), err)
	}
	next := n.Ready()
	n.Advance()
	pr.act(n, next)
}

func (pr *pair) maybeRestart(n **Negotiation) {
	if *n == nil || pr.rng == nil || pr.rng.Float64() >= pr.restart {
		return
	}
	b, err := (*n).Marshal()
	if err != nil {
		pr.tb.Fatal(err)
	}
	if *n, err = Unmarshal(b); err != nil {
		pr.tb.Fatal(err)
	}
	// After a restart the driver acts on whatever the negotiation waits
	// for, as it would for every stored negotiation.
	pr.act(*n, Ready{})
}

// settled reports whether both sides are terminal and nothing is left to
// resend.
func (pr *pair) settled() bool {
	done := func(n *Negotiation) bool { return n != nil && n.State().Terminal() && n.NextTick().IsZero() }
	return done(pr.c) && (done(pr.p) || pr.p == nil)
}

// run starts the negotiation and ticks both sides until they settle.
func (pr *pair) run(maxRounds int) {
	if err := pr.c.Step(Msg{Type: MsgRequest, Now: pr.now, Offer: json.RawMessage(fixtures["O1"])}); err != nil {
		pr.tb.Fatal(err)
	}
	rd := pr.c.Ready()
	pr.c.Advance()
	pr.act(pr.c, rd)
	for round := 0; round < maxRounds && !pr.settled(); round++ {
		pr.maybeRestart(&pr.c)
		pr.maybeRestart(&pr.p)
		next := pr.c.NextTick()
		if pr.p != nil {
			if t := pr.p.NextTick(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if next.IsZero() {
			return
		}
		pr.now = next
		for _, n := range []*Negotiation{pr.c, pr.p} {
			if n == nil {
				continue
			}
			if err := n.Step(Msg{Type: MsgTick, Now: pr.now}); err != nil {
				pr.tb.Fatal(err)
			}
			rd := n.Ready()
			n.Advance()
			pr.act(n, rd)
		}
	}
}

// TestPairHappyPath: DSP 2025-1 "Contract Negotiation Protocol", the
// consumer-initiated flow request -> agreed -> verified -> finalized, both
// sides driven against each other, no loss.
func TestPairHappyPath(t *testing.T) {
	pr := newPair(t, RetryPolicy{})
	pr.run(10)
	if pr.c.State() != Finalized || pr.p.State() != Finalized {
		t.Fatalf("states after a lossless run = consumer %s, provider %s; want both FINALIZED", pr.c.State(), pr.p.State())
	}
	if string(pr.p.Agreement()) != fixtures["A1c"] {
		t.Fatalf("provider stored agreement %s, want the countersigned one", pr.p.Agreement())
	}
	if pr.sent != 4 {
		t.Fatalf("a lossless negotiation sent %d messages, want 4 (request, agreement, verification, finalized)", pr.sent)
	}
}

func TestPairRefusal(t *testing.T) {
	pr := newPair(t, RetryPolicy{})
	pr.refuse = true
	pr.run(10)
	code, reasons := pr.c.Termination()
	if pr.c.State() != Terminated || pr.p.State() != Terminated || code != protocol.CodeRefused || len(reasons) != 1 {
		t.Fatalf("after a refusal: consumer %s (%s %q), provider %s; want both TERMINATED with the refusal reason",
			pr.c.State(), code, reasons, pr.p.State())
	}
}

// TestPairConverges: whatever is lost and whoever restarts, both sides end
// in the same terminal state.
func TestPairConverges(t *testing.T) {
	const seeds = 500
	outcomes := map[string]int{}
	for seed := uint64(0); seed < seeds; seed++ {
		pr := newPair(t, RetryPolicy{Initial: time.Second, Max: 8 * time.Second, Timeout: 30 * time.Second, Idle: 5 * time.Minute})
		pr.rng = rand.New(rand.NewPCG(seed, 42))
		pr.loss = []float64{0, 0.1, 0.3, 0.6}[seed%4]
		pr.restart = 0.2
		pr.run(10000)
		cs, ps := pr.c.State(), State("none")
		if pr.p != nil {
			ps = pr.p.State()
		}
		if !pr.settled() {
			t.Fatalf("seed %d (loss %.1f): not settled: consumer %s, provider %s", seed, pr.loss, cs, ps)
		}
		if pr.p != nil && cs != ps {
			t.Fatalf("seed %d (loss %.1f): consumer ended %s, provider %s", seed, pr.loss, cs, ps)
		}
		outcomes[fmt.Sprintf("loss %.1f: %s", pr.loss, cs)]++
	}
	if outcomes["loss 0.0: FINALIZED"] != seeds/4 {
		t.Errorf("without loss every run must finalize: %v", outcomes)
	}
	t.Logf("outcomes: %v", outcomes)
}

// BenchmarkNegotiationHappyPath: one negotiation from request to FINALIZED
// on both sides, state machines driven against each other in memory, every
// message through Encode/Decode.
func BenchmarkNegotiationHappyPath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		pr := newPair(b, RetryPolicy{})
		pr.run(10)
		if pr.p.State() != Finalized {
			b.Fatal(pr.p.State())
		}
	}
}
