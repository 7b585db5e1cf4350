package negotiation

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

// TestAppendOpenIsMarshal: appendOpen writes what json.Marshal writes of
// a stored negotiation's members (without the closing brace), or
// declines: strings json.Marshal escapes, times it refuses.
func TestAppendOpenIsMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "urn:uuid:6f8d9d44-8026-4776-9194-1a50c77a431c", "AGREED", "12D3KooWGeyaH1bXQjr3hi5WtWQhf4AhrFyvmFRLfx8Qwrnn3pFN",
		"a<b", "a&b", "q\"q", "back\\slash", "tab\t", "é", "\u2028", "\xff", "~ !#$%'()*+,-./:;=?@[]^_`{|}"}
	// Mostly plain strings (the first four), so that most values are
	// written by hand; now and then one json.Marshal escapes.
	str := func() string {
		if rng.IntN(40) == 0 {
			return strs[rng.IntN(len(strs))]
		}
		if rng.IntN(10) == 0 {
			return strs[len(strs)-1]
		}
		return strs[rng.IntN(4)]
	}
	times := []time.Time{{}, time.Date(2026, 12, 5, 2, 10, 54, 391300713, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)), time.Unix(0, 1)}
	durs := []time.Duration{0, 1, 500 * time.Millisecond, -3, 1<<63 - 1}
	seqs := []uint64{0, 1, 1e18, 1<<64 - 1}
	quick := 0
	for i := 0; i < 20000; i++ {
		p := persisted{Version: rng.IntN(3), Role: Role(str()), State: State(str()), Pids: protocol.Pids{ProviderPid: str(), ConsumerPid: str()},
			Peer: str(), Callback: str(), Purpose: str(), OfferInOut: rng.IntN(2) == 0, AgreementInOut: rng.IntN(2) == 0,
			Pending: rng.IntN(2) == 0, Code: protocol.Code(str()), Seq: seqs[rng.IntN(len(seqs))], LastProgress: times[rng.IntN(len(times))],
			Retry: persistedRetry{Initial: durs[rng.IntN(len(durs))], Max: durs[rng.IntN(len(durs))], Timeout: durs[rng.IntN(len(durs))],
				Idle: durs[rng.IntN(len(durs))], Final: durs[rng.IntN(len(durs))]}}
		for range rng.IntN(3) {
			p.Reasons = append(p.Reasons, str())
		}
		if rng.IntN(4) == 0 {
			p.Reasons = []string{}
		}
		for range rng.IntN(3) {
			p.Seen = append(p.Seen, resend.Entry{Digest: str(), State: str()})
		}
		want, err := json.Marshal(p)
		got, ok := p.appendOpen([]byte("prefix"))
		if !ok {
			continue
		}
		quick++
		if err != nil {
			t.Fatalf("appendOpen wrote %s; json.Marshal refuses %+v: %v", got, p, err)
		}
		if string(got) != "prefix"+string(want[:len(want)-1]) {
			t.Fatalf("appendOpen(%+v) =\n%s\njson.Marshal:\n%s", p, got, want)
		}
	}
	if quick < 100 {
		t.Fatalf("appendOpen wrote only %d of 20000", quick)
	}
	t.Logf("appendOpen wrote %d of 20000, declined the rest", quick)
	// Not written by hand: a stored offer, agreement or message.
	if _, ok := (&persisted{Offer: json.RawMessage(`{}`)}).appendOpen(nil); ok {
		t.Error("appendOpen wrote a negotiation with its offer")
	}
}

// TestInvalidTermsNotStored: an offer that is not JSON is refused when
// the negotiation is stored, whether it is spliced in as it is or stored
// in the unanswered message, whose wire form checks it.
func TestInvalidTermsNotStored(t *testing.T) {
	n, err := NewConsumer(Config{Pid: "urn:uuid:c", Peer: "p", CallbackAddress: "/p2p/me"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Step(Msg{Type: MsgRequest, Now: time.Unix(1, 0), Offer: json.RawMessage(`{"@id":`)}); err != nil {
		t.Fatal(err)
	}
	if b, err := n.Marshal(); err == nil {
		t.Fatalf("stored an offer that is not JSON: %s", b)
	}
	n.out = nil // the offer is now spliced in as it is
	if b, err := n.Marshal(); err == nil {
		t.Fatalf("stored an offer that is not JSON: %s", b)
	}
}
