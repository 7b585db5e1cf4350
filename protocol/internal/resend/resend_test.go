package resend

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimnode/mimnode/protocol"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestScheduleBacksOffThenGivesUp(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 4 * time.Second, Timeout: 20 * time.Second}.WithDefaults()
	msg := &protocol.TransferCompletionMessage{Pids: protocol.Pids{ProviderPid: "p", ConsumerPid: "c"}}
	for _, tc := range []struct {
		name  string
		final bool
		// resends lists the offsets (from the first send) at which Tick,
		// called every 250ms, asks for a resend; giveUp when it gives up.
		resends []time.Duration
		giveUp  time.Duration
	}{
		{"ordinary message", false, []time.Duration{1 * time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second, 15 * time.Second, 19 * time.Second}, 20 * time.Second},
		{"final message outlives the timeout", true, []time.Duration{1 * time.Second, 3 * time.Second, 7 * time.Second, 11 * time.Second, 15 * time.Second, 19 * time.Second, 23 * time.Second}, p.FinalTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Start(t0, p, msg, "COMPLETED", tc.final)
			var resends []time.Duration
			var gaveUp time.Duration
			for at := 250 * time.Millisecond; at <= 25*time.Second || (tc.final && at <= p.FinalTimeout); at += 250 * time.Millisecond {
				if tc.final && at > 25*time.Second {
					// Only check that it is still alive up to the final timeout.
					if a := o.Tick(t0.Add(at), p); a == GiveUp {
						gaveUp = at
						break
					}
					continue
				}
				switch o.Tick(t0.Add(at), p) {
				case Resend:
					resends = append(resends, at)
				case GiveUp:
					gaveUp = at
				}
				if gaveUp != 0 {
					break
				}
			}
			if len(resends) < len(tc.resends) {
				t.Fatalf("resends at %v, want %v", resends, tc.resends)
			}
			for i, want := range tc.resends {
				if resends[i] != want {
					t.Fatalf("resends at %v, want %v", resends, tc.resends)
				}
			}
			if gaveUp != tc.giveUp {
				t.Fatalf("gave up at %v, want %v", gaveUp, tc.giveUp)
			}
		})
	}
}

func TestPendingRoundTrip(t *testing.T) {
	p := Policy{}.WithDefaults()
	msg := &protocol.TransferStartMessage{Pids: protocol.Pids{ProviderPid: "p", ConsumerPid: "c"}, Seq: protocol.Seq{N: 2}}
	o := Start(t0, p, msg, "STARTED", true)
	o.Tick(t0.Add(time.Second), p)
	b, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got Pending
	if err := got.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 2 || !got.Final || got.Expect != "STARTED" || !got.NextAttempt.Equal(o.NextAttempt) ||
		got.Msg.(protocol.Sequenced).SeqNo() != 2 {
		t.Fatalf("round trip gave %+v, want %+v", got, *o)
	}
}

// MarshalJSON writes by hand what json.Marshal of its stored form wrote
// before; records stored by either read the same.
func TestPendingMarshalAsEncodingJSON(t *testing.T) {
	p := Policy{}.WithDefaults()
	offer := `{"@id":"urn:o<1>&","@type":"Offer","permission":[{"action":"use"}],"target":"urn:d"}`
	for _, tc := range []struct {
		name  string
		msg   protocol.Message
		final bool
		tick  bool
	}{
		{"request with HTML-escaped characters", &protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:c"},
			Seq: protocol.Seq{N: 1}, Offer: []byte(offer), CallbackAddress: "/p2p/x", Purpose: "research & <b>"}, false, false},
		{"final termination, resent", &protocol.ContractNegotiationTerminationMessage{Pids: protocol.Pids{ProviderPid: "p", ConsumerPid: "c"},
			Code: "MIM-601", Reason: protocol.Reasons{"a \"quoted\" reason\n", "\u2028"}}, true, true},
	} {
		for _, expect := range []string{"TERMINATED", `a<b>&"c\`} {
			t.Run(tc.name+" "+expect, func(t *testing.T) {
				o := Start(t0.Add(123456789*time.Nanosecond), p, tc.msg, expect, tc.final)
				if tc.tick {
					o.Tick(t0.Add(time.Second), p)
				}
				got, err := o.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				w, err := protocol.Encode(tc.msg)
				if err != nil {
					t.Fatal(err)
				}
				want, err := json.Marshal(pendingJSON{Msg: w, Expect: o.Expect, Attempts: o.Attempts, FirstSent: o.FirstSent, NextAttempt: o.NextAttempt, Final: o.Final})
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Fatalf("MarshalJSON = %s\nwant %s", got, want)
				}
				if again, _ := o.MarshalJSON(); string(again) != string(want) {
					t.Fatalf("second MarshalJSON = %s\nwant %s", again, want)
				}
			})
		}
	}
	// A time MarshalJSON refuses fails as it did.
	o := Start(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), p, &protocol.ContractNegotiationTerminationMessage{Pids: protocol.Pids{ProviderPid: "p", ConsumerPid: "c"}, Code: "MIM-601"}, "TERMINATED", true)
	_, tErr := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC).MarshalJSON()
	if _, err := o.MarshalJSON(); err == nil || err.Error() != "persisting pending message: "+tErr.Error() {
		t.Errorf("MarshalJSON in year 10000: %v, want the error of time.Time.MarshalJSON", err)
	}
}

func TestSeenKeepsTheNewest(t *testing.T) {
	var s Seen
	for i := 0; i < MaxSeen+5; i++ {
		s = s.Add(string(rune('a'+i%26))+string(rune('0'+i/26)), "S")
	}
	if len(s) != MaxSeen {
		t.Fatalf("len = %d, want %d", len(s), MaxSeen)
	}
	if _, ok := s.Lookup("a0"); ok {
		t.Fatal("the oldest entry survived")
	}
	if _, ok := s.Lookup(s[len(s)-1].Digest); !ok {
		t.Fatal("the newest entry is missing")
	}
}

// TestDigestIsEncodeHash: Digest is the first half of SHA-256 over the
// message's Encode form, whatever the messages digested before it in a
// reused buffer (a long agreement, then short ones).
func TestDigestIsEncodeHash(t *testing.T) {
	pids := protocol.Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}
	long := `{"@id":"urn:a","@type":"Agreement","assignee":"b","assigner":"a","permission":[` + strings.Repeat(`{"action":"use"},`, 300) + `{"action":"use"}],"target":"urn:d"}`
	msgs := []protocol.Message{
		&protocol.ContractAgreementMessage{Pids: pids, Agreement: json.RawMessage(long)},
		&protocol.ContractNegotiationEventMessage{Pids: pids, EventType: "FINALIZED"},
		&protocol.ContractAgreementVerificationMessage{Pids: pids},
		&protocol.ContractAgreementMessage{Pids: pids, Agreement: json.RawMessage(long)},
		&protocol.ContractNegotiationEventMessage{Pids: pids, EventType: "ACCEPTED"},
	}
	for i := 0; i < 3; i++ {
		for _, m := range msgs {
			b, err := protocol.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if got, err := Digest(m); err != nil || got != hex.EncodeToString(sum[:16]) {
				t.Fatalf("Digest(%T) = %q, %v, want %x", m, got, err, sum[:16])
			}
		}
	}
	if _, err := Digest(&protocol.ContractAgreementMessage{Pids: pids}); err == nil {
		t.Fatal("Digest of an agreement message without agreement: no error")
	}
}

// TestDigestConcurrent: Digests computed at once, each in a buffer of
// the pool, are each the hash of their own message's Encode form.
func TestDigestConcurrent(t *testing.T) {
	pids := protocol.Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}
	var msgs []protocol.Message
	for _, n := range []int{0, 1, 40, 300} {
		agreement := `{"@id":"urn:a","@type":"Agreement","assignee":"b","assigner":"a","permission":[` + strings.Repeat(`{"action":"use"},`, n) + `{"action":"use"}],"target":"urn:d"}`
		msgs = append(msgs, &protocol.ContractAgreementMessage{Pids: pids, Agreement: json.RawMessage(agreement)},
			&protocol.ContractNegotiationEventMessage{Pids: pids, EventType: "FINALIZED"})
	}
	want := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := protocol.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		want[i] = hex.EncodeToString(sum[:16])
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 500 {
				i := (k + g) % len(msgs)
				if got, err := Digest(msgs[i]); err != nil || got != want[i] {
					t.Errorf("Digest(message %d), 4 at once = %q, %v, want %q", i, got, err, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}
