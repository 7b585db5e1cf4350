package contract

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

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
