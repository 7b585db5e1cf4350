package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// TestAgreementFileAfterReload: a consumer that countersigned and was
// reloaded since (a restart, a failed write) has lost the file it made;
// at FINALIZED it stores the one its agreement carries, byte for byte
// what MarshalJSON makes.
func TestAgreementFileAfterReload(t *testing.T) {
	prov, cons := newKeySigner(t), newKeySigner(t)
	tpl, _ := policy.LookupTemplate("research-only")
	offer, err := tpl.New(policy.Params{ID: "urn:offer:1", Target: "urn:ds:noise", Assigner: prov.PeerID()})
	if err != nil {
		t.Fatal(err)
	}
	offerJSON, _ := policy.Marshal(offer)
	a, err := policy.NewAgreement(policy.Agreement{ID: "urn:uuid:a1", Dataset: "urn:ds:noise", Provider: prov.PeerID(),
		Consumer: cons.PeerID(), Policy: offer, Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	a.Sign(prov)
	provSigned, _ := agreementJSON(a)
	a.Sign(cons)
	bothSigned, _ := agreementJSON(a)
	want, _ := a.MarshalJSON()

	now := time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC)
	n, err := negotiation.NewConsumer(negotiation.Config{Pid: "urn:uuid:c", Peer: prov.PeerID(), CallbackAddress: "/p2p/" + cons.PeerID()})
	if err != nil {
		t.Fatal(err)
	}
	steps := []negotiation.Msg{
		{Type: negotiation.MsgRequest, Now: now, Offer: offerJSON},
		{Type: negotiation.MsgReceive, Now: now, From: prov.PeerID(), Body: &protocol.ContractAgreementMessage{
			Pids: protocol.Pids{ProviderPid: "urn:uuid:p", ConsumerPid: "urn:uuid:c"}, Agreement: provSigned}},
		{Type: negotiation.MsgVerify, Now: now, Agreement: bothSigned},
	}
	for _, m := range steps {
		if err := n.Step(m); err != nil {
			t.Fatalf("Step(%s): %v", m.Type, err)
		}
		n.Advance()
	}
	s := &Service{log: slog.New(slog.DiscardHandler)}
	e := &entry{key: negotiation.Key{Role: negotiation.Consumer, Pid: n.Pid()}, n: n, meta: meta{AgreementID: a.ID}}
	if got := s.agreementFile(e); !bytes.Equal(got, want) {
		t.Fatalf("agreementFile = %s\nwant %s", got, want)
	}
	e.meta.AgreementID = "urn:uuid:other"
	if got := s.agreementFile(e); got != nil {
		t.Fatalf("agreementFile of an agreement with another id = %s, want nil", got)
	}
}

// TestAuditDataIsCanonical: the data of the driver's own audit entries is
// written in canonical form, which the log then hashes as it is.
func TestAuditDataIsCanonical(t *testing.T) {
	prov, cons := newKeySigner(t), newKeySigner(t)
	n, err := negotiation.NewProvider(negotiation.Config{Pid: "urn:uuid:p", Peer: cons.PeerID()})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: slog.New(slog.DiscardHandler)}
	e := &entry{key: negotiation.Key{Role: negotiation.Provider, Pid: n.Pid()}, n: n, meta: meta{Dataset: "urn:ngsi-ld:Dataset:noise"}}
	a := policy.Agreement{ID: "urn:uuid:a1", Dataset: "urn:ngsi-ld:Dataset:noise", Provider: prov.PeerID(), Consumer: cons.PeerID()}
	now := time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC)
	for _, en := range []audit.Entry{
		s.transitionEntry(e, negotiation.Transition{From: negotiation.Initial, To: negotiation.Requested, Cause: "consumer requested offer"}, now),
		s.transitionEntry(e, negotiation.Transition{From: negotiation.Requested, To: negotiation.Terminated, Cause: "provider refused",
			Code: protocol.CodeRefused, Reasons: []string{"the purpose is not research"}}, now),
		*s.signedEntry(e, a, sha256.Sum256([]byte("terms")), policy.RoleProvider, now),
	} {
		canon, err := jcs.Transform(en.Data)
		if err != nil || !bytes.Equal(canon, en.Data) {
			t.Errorf("%s data %s is not canonical (%s, %v)", en.Kind, en.Data, canon, err)
		}
	}
}

// The agreement.signed entry's data is what json.Marshal wrote from a
// map of its members before, escapes included: entries of both kinds
// read and verify alike.
func TestSignedEntryDataIsMapForm(t *testing.T) {
	n, err := negotiation.NewProvider(negotiation.Config{Pid: "urn:uuid:p<1>", Peer: "12D3KooWConsumer"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{log: slog.New(slog.DiscardHandler)}
	e := &entry{key: negotiation.Key{Role: negotiation.Provider, Pid: n.Pid()}, n: n}
	a := policy.Agreement{ID: "urn:uuid:a1", Dataset: "urn:ds:\"noise\" & é", Provider: "12D3KooWProvider", Consumer: "12D3KooWConsumer"}
	sum := sha256.Sum256([]byte("terms"))
	want, _ := json.Marshal(map[string]string{
		"negotiation": e.key.Pid, "dataset": a.Dataset, "provider": a.Provider, "consumer": a.Consumer,
		"signedAs": policy.RoleProvider, "terms": hex.EncodeToString(sum[:]),
	})
	if got := s.signedEntry(e, a, sum, policy.RoleProvider, time.Now()).Data; !bytes.Equal(got, want) {
		t.Errorf("signedEntry data = %s\nwant %s", got, want)
	}
}

// TestRecordsArePacked: records are stored packed, read back, and records
// stored as plain JSON before are still read.
func TestRecordsArePacked(t *testing.T) {
	prov := newKeySigner(t)
	tpl, _ := policy.LookupTemplate("research-only")
	offer, _ := tpl.New(policy.Params{ID: "urn:offer:1", Target: "urn:ds:noise", Assigner: prov.PeerID()})
	offerJSON, _ := policy.Marshal(offer)
	n, err := negotiation.NewConsumer(negotiation.Config{Pid: "urn:uuid:c", Peer: prov.PeerID(), CallbackAddress: "/p2p/me"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC)
	if err := n.Step(negotiation.Msg{Type: negotiation.MsgRequest, Now: now, Offer: offerJSON}); err != nil {
		t.Fatal(err)
	}
	e := &entry{key: negotiation.Key{Role: negotiation.Consumer, Pid: n.Pid()}, n: n, meta: meta{Dataset: "urn:ds:noise"}}
	b, err := recordOf(e, now)
	if err != nil {
		t.Fatal(err)
	}
	js, err := unpackRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != store.PackedMarker || len(b) >= len(js) {
		t.Fatalf("record of %d bytes packed to %d (first byte %#x)", len(js), len(b), b[0])
	}
	for name, stored := range map[string][]byte{"packed": b, "plain JSON": js} {
		got, err := decodeEntry(stored)
		if err != nil {
			t.Fatalf("decodeEntry(%s) = %v", name, err)
		}
		if got.key != e.key || got.n.State() != n.State() || !bytes.Equal(got.n.Offer(), n.Offer()) || got.meta.Dataset != e.meta.Dataset {
			t.Fatalf("decodeEntry(%s) = %+v, want %+v", name, got, e)
		}
	}
	if _, err := decodeEntry(append([]byte{store.PackedMarker}, "garbage"...)); !errors.Is(err, negotiation.ErrCorrupt) {
		t.Fatalf("decodeEntry(bad packing) = %v, want ErrCorrupt", err)
	}
}

// TestLegacySignedTermsBecomeTheirSum: a record stored when it kept the
// signed terms themselves loads with their SHA-256, which finalizing
// compares.
func TestLegacySignedTermsBecomeTheirSum(t *testing.T) {
	n, err := negotiation.NewConsumer(negotiation.Config{Pid: "urn:uuid:c", Peer: newKeySigner(t).PeerID(), CallbackAddress: "/p2p/me"})
	if err != nil {
		t.Fatal(err)
	}
	terms := []byte(`{"@id":"urn:agreement:1"}`)
	e := &entry{key: negotiation.Key{Role: negotiation.Consumer, Pid: n.Pid()}, n: n, meta: meta{Canonical: terms}}
	b, err := recordOf(e, time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(terms); !bytes.Equal(got.meta.TermsSum, sum[:]) || got.meta.Canonical != nil {
		t.Fatalf("loaded meta: TermsSum %x, Canonical %q; want the sum %x and no terms", got.meta.TermsSum, got.meta.Canonical, sum)
	}
}

// meta.appendJSON writes what json.Marshal writes, or declines.
func TestMetaAppendJSONIsMarshal(t *testing.T) {
	at := time.Date(2026, 12, 4, 19, 0, 0, 123456789, time.UTC)
	decision := json.RawMessage(`{"action":"use","permit":true,"reasons":[{"code":"satisfied","text":"the purpose is research: \"x\"","where":"permission[0]"}]}`)
	written := 0
	for i, m := range []meta{
		{Dataset: "urn:ds", Created: at, Updated: at},
		{Dataset: "urn:ds", OfferID: "urn:offer:1", Created: at, Updated: at.Add(time.Second), AgreementID: "urn:uuid:a",
			TermsSum: []byte{1, 2, 3, 250}, Signature: []byte("sig"), Approved: true, Decision: decision},
		{Dataset: "urn:ds <&>", Created: at, Updated: at},
		{Dataset: "é", Created: at, Updated: at},
		{Dataset: "urn:ds", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600)), Updated: time.Time{}},
		{Dataset: "urn:ds", Created: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Updated: at},
		{Dataset: "urn:ds", Created: at, Updated: at, Canonical: []byte("c"), File: []byte("f")},
		{Dataset: "urn:ds", Created: at, Updated: at, Decision: json.RawMessage(`{ "permit" : true }`)},
		{Dataset: "urn:ds", Created: at, Updated: at, Decision: json.RawMessage(`{"text":"a <b>"}`)},
		{Dataset: "urn:ds", Created: at, Updated: at, Decision: json.RawMessage(`{"text":"\u00e9 é"}`)},
		{Dataset: "urn:ds", Created: at, Updated: at, Decision: json.RawMessage(`{"text":"tab\t"}`)},
		{Dataset: "urn:ds", Created: at, Updated: at, Decision: json.RawMessage(`{"a":1`)},
		{Dataset: "urn:ds", Created: at, Updated: at, TermsSum: []byte{}, Decision: json.RawMessage(`[1,"\\\" ",{}]`)},
	} {
		got, ok := m.appendJSON(nil)
		want, err := json.Marshal(m)
		if !ok {
			continue
		}
		written++
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("case %d: appendJSON = %s\njson.Marshal = %s, %v", i, got, want, err)
		}
	}
	if written < 5 {
		t.Errorf("appendJSON wrote %d cases itself", written)
	}
}

// TestAgreementFilesArePacked: agreement files are stored packed and
// read back byte for byte, and files stored as plain JSON before are
// still read and listed.
func TestAgreementFilesArePacked(t *testing.T) {
	prov, cons := newKeySigner(t), newKeySigner(t)
	tpl, _ := policy.LookupTemplate("research-only")
	offer, _ := tpl.New(policy.Params{ID: "urn:offer:1", Target: "urn:ds:noise", Assigner: prov.PeerID()})
	a, err := policy.NewAgreement(policy.Agreement{ID: "urn:uuid:a1", Dataset: "urn:ds:noise", Provider: prov.PeerID(),
		Consumer: cons.PeerID(), Policy: offer, Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	a.Sign(prov)
	a.Sign(cons)
	file, _ := a.MarshalJSON()
	packed := store.Pack(file)
	if packed[0] != store.PackedMarker || len(packed) >= len(file) {
		t.Fatalf("agreement file of %d bytes packed to %d", len(file), len(packed))
	}
	for name, stored := range map[string][]byte{"packed": packed, "plain JSON": file} {
		got, err := unpackAgreement(stored)
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("unpackAgreement(%s) = %s, %v\nwant %s", name, got, err, file)
		}
	}
	if _, err := unpackAgreement(append([]byte{store.PackedMarker}, "garbage"...)); err == nil {
		t.Fatal("unpackAgreement(bad packing) succeeded")
	}
}

// idVerifier verifies Ed25519 signatures by the key in the peer ID, as
// node.PeerIDVerifier does.
type idVerifier struct{}

func (idVerifier) Verify(peerID string, msg, sig []byte) error {
	id, err := peer.Decode(peerID)
	if err != nil {
		return err
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return err
	}
	if ok, err := pk.Verify(msg, sig); err != nil || !ok {
		return fmt.Errorf("bad signature by %s: %v", peerID, err)
	}
	return nil
}

// TestFinalizeKnownAsFull: the provider's check of the countersigned
// agreement against the agreement it holds in memory (finalizeKnown)
// accepts what the full check accepts, with the same file, and leaves
// everything else to it: whatever it declines, finalizeLocked decides as
// it did without it.
func TestFinalizeKnownAsFull(t *testing.T) {
	prov, cons, other := newKeySigner(t), newKeySigner(t), newKeySigner(t)
	tpl, _ := policy.LookupTemplate("research-only")
	offer, _ := tpl.New(policy.Params{ID: "urn:offer:1", Target: "urn:ds:noise", Assigner: prov.PeerID()})
	offerJSON, _ := policy.Marshal(offer)
	made := func(id string) policy.Agreement {
		a, err := policy.NewAgreement(policy.Agreement{ID: id, Dataset: "urn:ds:noise", Provider: prov.PeerID(),
			Consumer: cons.PeerID(), Policy: offer, Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	signed := made("urn:uuid:a1")
	canon, _, err := signed.Seal(nil, nil, prov)
	if err != nil {
		t.Fatal(err)
	}
	provSigned, _ := agreementJSON(signed)
	countersigned := func(a policy.Agreement, by ...policy.Signer) json.RawMessage {
		for _, s := range by {
			a.Sign(s)
		}
		raw, err := agreementJSON(a)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := countersigned(signed, cons)
	other2 := made("urn:uuid:a2")
	other2.Sign(prov)
	spaced := bytes.Replace(good, []byte(`{"agreement":{`), []byte(`{ "agreement" : {`), 1)
	// edited is good with one regexp's match replaced; the edit must
	// apply.
	edited := func(re, repl string) json.RawMessage {
		t.Helper()
		out := regexp.MustCompile(re).ReplaceAll(good, []byte(repl))
		if bytes.Equal(out, good) {
			t.Fatalf("%s matches nothing in %s", re, good)
		}
		return out
	}
	provSig := `\{"peer":"` + prov.PeerID() + `","role":"provider"`
	consSig := `\{"peer":"` + cons.PeerID() + `","role":"consumer","sig":"[^"]*"\}`
	cases := []struct {
		name   string
		raw    json.RawMessage
		quick  bool // finalizeKnown takes it
		accept bool // finalizeLocked finalizes
	}{
		{"countersigned", good, true, true},
		{"spaced file", spaced, false, true},
		{"signed by another", countersigned(signed, other), false, false},
		{"not countersigned", provSigned, false, false},
		{"another agreement", countersigned(other2, cons), false, false},
		{"made and signed again (Ed25519: the same bytes)", countersigned(made("urn:uuid:a1"), prov, cons), true, true},
		{"provider's signature named for another peer", edited(provSig, `{"peer":"`+other.PeerID()+`","role":"provider"`), false, false},
		{"consumer's signature in the provider's role", edited(`"role":"consumer"`, `"role":"provider"`), false, false},
		{"consumer's signature twice", edited(`(`+consSig+`)`, `$1,$1`), false, false},
		{"no consumer's signature", edited(`,`+consSig, ``), false, false},
		{"terms changed", edited(`"created":"2026-03-01T00:00:00Z"`, `"created":"2026-03-01T00:00:01Z"`), false, false},
		{"member after the signatures", edited(`(`+consSig+`)\]\}`, `$1],"x":1}`), false, false},
		{"consumer's signature members reordered", edited(`\{"peer":"`+cons.PeerID()+`","role":"consumer",`, `{"role":"consumer","peer":"`+cons.PeerID()+`",`), false, true},
		{"signatures spaced", edited(`,"signatures":\[`, `,"signatures": [`), false, true},
		{"space after the file", edited(`(`+consSig+`\]\})`, `$1 `), true, true},
	}
	now := time.Date(2026, 3, 1, 0, 0, 1, 0, time.UTC)
	s := &Service{log: slog.New(slog.DiscardHandler), o: Options{Verifier: idVerifier{}}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := negotiation.NewProvider(negotiation.Config{Pid: "urn:uuid:p", Peer: cons.PeerID()})
			if err != nil {
				t.Fatal(err)
			}
			pids := protocol.Pids{ProviderPid: "urn:uuid:p", ConsumerPid: "urn:uuid:c"}
			for _, m := range []negotiation.Msg{
				{Type: negotiation.MsgReceive, Now: now, From: cons.PeerID(), Body: &protocol.ContractRequestMessage{
					Pids: protocol.Pids{ConsumerPid: "urn:uuid:c"}, Offer: offerJSON, CallbackAddress: "/p2p/" + cons.PeerID()}},
				{Type: negotiation.MsgDecide, Now: now, Verdict: negotiation.Agree, Agreement: provSigned},
				{Type: negotiation.MsgReceive, Now: now, From: cons.PeerID(), Body: &protocol.ContractAgreementVerificationMessage{
					Pids: pids, Agreement: tc.raw}},
			} {
				if err := n.Step(m); err != nil {
					t.Fatalf("Step(%v): %v", m.Type, err)
				}
				n.Advance()
			}
			if n.Todo() != negotiation.TodoFinalize {
				t.Fatalf("negotiation waits for %q, want %q", n.Todo(), negotiation.TodoFinalize)
			}
			sum := sha256.Sum256(canon)
			m := meta{AgreementID: signed.ID, TermsSum: sum[:], Signature: signatureOf(signed, policy.RoleProvider)}
			kept := signed
			known := &entry{key: negotiation.Key{Role: negotiation.Provider, Pid: n.Pid()}, n: n, meta: m, signed: &kept, canon: canon}
			full := &entry{key: known.key, n: n, meta: m}
			_, quick := s.finalizeKnown(known)
			unsigned := &entry{key: known.key, n: n, meta: m, signed: &kept, canon: canon}
			unsigned.meta.Signature = nil
			if _, ok := s.finalizeKnown(unsigned); ok {
				t.Error("finalizeKnown took it with no signature of this node's to compare")
			}
			if quick != tc.quick {
				t.Errorf("finalizeKnown took it: %v, want %v", quick, tc.quick)
			}
			got, want := s.finalizeLocked(known, now), s.finalizeLocked(full, now)
			if got.Type != want.Type || fmt.Sprint(got.Reasons) != fmt.Sprint(want.Reasons) || !bytes.Equal(known.file, full.file) {
				t.Fatalf("with the agreement in memory: %v %v, file %s\nwithout: %v %v, file %s", got.Type, got.Reasons, known.file, want.Type, want.Reasons, full.file)
			}
			if accepted := got.Type == negotiation.MsgFinalize; accepted != tc.accept {
				t.Errorf("finalized: %v (%v), want %v", accepted, got.Reasons, tc.accept)
			}
			if len(kept.Signatures) != 1 {
				t.Errorf("finalizeKnown changed the agreement in memory: %d signatures", len(kept.Signatures))
			}
		})
	}
}

// TestTransitionDataIsMarshal: the data of a transition's audit entry is
// written by hand as json.Marshal writes it, or declined (strings it
// escapes), for generated transitions.
func TestTransitionDataIsMarshal(t *testing.T) {
	strs := []string{"", "AGREED", "provider agreed", "urn:uuid:6f8d9d44-8026-4776-9194-1a50c77a431c", "MIM-601",
		"urn:ngsi-ld:Dataset:noise", "a<b", "q\"q", "é", "tab\t", "~!#$%'()*+,-./:;=?@[]^_`{|}"}
	written := 0
	for i := 0; i < 20000; i++ {
		pick := func(k int) string { return strs[(i*7+k*13+i/len(strs)*k)%len(strs)] }
		tr := negotiation.Transition{From: negotiation.State(pick(1)), To: negotiation.State(pick(2)), Cause: pick(3), Code: protocol.Code(pick(4))}
		for k := range i % 3 {
			tr.Reasons = append(tr.Reasons, pick(5+k))
		}
		if i%5 == 0 {
			tr.Reasons = []string{}
		}
		pids := protocol.Pids{ProviderPid: pick(8), ConsumerPid: pick(9)}
		want := marshalTransitionData(tr, pick(10), pids, negotiation.Role(pick(11)))
		got, ok := appendTransitionData([]byte{}, tr, pick(10), pids, negotiation.Role(pick(11)))
		if !ok {
			continue
		}
		written++
		if !bytes.Equal(got, want) {
			t.Fatalf("appendTransitionData(%+v) =\n%s\njson.Marshal:\n%s", tr, got, want)
		}
	}
	if written < 1000 {
		t.Fatalf("written by hand: %d of 20000", written)
	}
	t.Logf("written by hand: %d of 20000", written)
}
