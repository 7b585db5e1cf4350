package contract_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

const (
	dsNoise    = "urn:ngsi-ld:Dataset:noise-levels-2025"
	dsIncident = "urn:ngsi-ld:Dataset:traffic-incidents-internal"
)

// TestResearcherAgreementAndRefusal is the main story: a
// researcher gets an agreement for a research-only dataset, signed by
// both, stored by both, and is refused, with the failed constraint named,
// for an agency-internal one.
func TestResearcherAgreementAndRefusal(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	fed := federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	research := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	internal := addOffer(t, prov, contract.OfferRequest{Dataset: dsIncident, Template: "agency-internal", Federation: fed})

	t.Run("research-only with purpose research is agreed", func(t *testing.T) {
		got := request(t, res, prov, dsNoise, research, policy.PurposeResearch)
		if got.State != negotiation.Finalized || got.AgreementID == "" {
			t.Fatalf("consumer ended %s (%s %v), want FINALIZED with an agreement", got.State, got.Code, got.Reasons)
		}
		pside := waitProvider(t, prov, got.ID)
		if pside.State != negotiation.Finalized || pside.AgreementID != got.AgreementID {
			t.Fatalf("provider ended %s with agreement %q, want FINALIZED with %s", pside.State, pside.AgreementID, got.AgreementID)
		}
		cf, err := res.Contracts().Agreement(got.AgreementID)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := prov.Contracts().Agreement(got.AgreementID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cf, pf) {
			t.Errorf("the two sides store different agreement files:\n%s\n%s", cf, pf)
		}
		a, err := policy.ParseAgreement(cf)
		if err != nil {
			t.Fatalf("stored agreement does not parse as an agreement file: %v", err)
		}
		if err := a.Verify(node.PeerIDVerifier{}); err != nil {
			t.Errorf("stored agreement does not verify: %v", err)
		}
		if a.Provider != prov.ID().String() || a.Consumer != res.ID().String() || a.Dataset != dsNoise {
			t.Errorf("agreement parties/dataset = %s %s %s", a.Provider, a.Consumer, a.Dataset)
		}
		// The agreement permits research use by this researcher at transfer time.
		d := a.Evaluate(policy.Request{Now: time.Now(), Action: policy.ActionRead, PeerID: res.ID().String(),
			Role: policy.RoleResearcher, Federations: []string{fed}, Purpose: policy.PurposeResearch})
		if !d.Permit {
			t.Errorf("agreement does not permit research reads: %v", d)
		}
	})

	t.Run("research-only without the purpose is refused", func(t *testing.T) {
		got := request(t, res, prov, dsNoise, research, "marketing")
		if got.State != negotiation.Terminated || got.Code != protocol.CodeRefused {
			t.Fatalf("got %s %s, want TERMINATED %s", got.State, got.Code, protocol.CodeRefused)
		}
		if !anyContains(got.Reasons, "purpose") {
			t.Errorf("reasons %q do not name the purpose constraint", got.Reasons)
		}
	})

	t.Run("agency-internal is refused to a researcher with reasons", func(t *testing.T) {
		got := request(t, res, prov, dsIncident, internal, policy.PurposeResearch)
		if got.State != negotiation.Terminated || got.Code != protocol.CodeRefused {
			t.Fatalf("got %s %s, want TERMINATED %s", got.State, got.Code, protocol.CodeRefused)
		}
		if !anyContains(got.Reasons, "role") {
			t.Errorf("reasons %q do not name the role constraint", got.Reasons)
		}
		if p := waitProvider(t, prov, got.ID); p.State != negotiation.Terminated || p.Code != protocol.CodeRefused {
			t.Errorf("provider side %s %s, want TERMINATED %s", p.State, p.Code, protocol.CodeRefused)
		}
		if _, err := res.Contracts().Agreement(got.AgreementID); err == nil && got.AgreementID != "" {
			t.Errorf("a refused negotiation left an agreement")
		}
	})

	t.Run("terms changed by the consumer are refused", func(t *testing.T) {
		forged := bytes.Replace(internal, []byte(`"agency"`), []byte(`"researcher"`), 1)
		got := request(t, res, prov, dsIncident, forged, policy.PurposeResearch)
		if got.State != negotiation.Terminated || !anyContains(got.Reasons, "differ") {
			t.Fatalf("got %s %v, want a refusal saying the terms differ", got.State, got.Reasons)
		}
	})

	kinds := verifyAudit(t, prov, res)
	for i, who := range []string{"provider", "consumer"} {
		for _, k := range []string{audit.KindNegotiationRequested, audit.KindNegotiationTransition, audit.KindAgreementSigned, audit.KindNegotiationRefused} {
			if kinds[i][k] == 0 {
				t.Errorf("%s audit log has no %s entry: %v", who, k, kinds[i])
			}
		}
	}
	if kinds[0][audit.KindDecision] == 0 {
		t.Errorf("provider audit log has no policy decision: %v", kinds[0])
	}
	agr, err := res.Contracts().Agreements()
	if err != nil || len(agr) != 1 || agr[0].Role != policy.RoleConsumer {
		t.Errorf("consumer Agreements() = %+v, %v; want the one research agreement", agr, err)
	}
}

func TestManualApproval(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only", Manual: true})

	start := func(t *testing.T) (consumerPid, providerPid string) {
		id, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: offer, Purpose: policy.PurposeResearch})
		if err != nil {
			t.Fatal(err)
		}
		var pending []contract.Info
		eventually(t, 10*time.Second, "the request is queued for approval", func() bool {
			pending, _ = prov.Contracts().Pending()
			return slices.ContainsFunc(pending, func(in contract.Info) bool { return in.ConsumerPid == id })
		})
		in, _ := res.Contracts().Get(id)
		if in.State != negotiation.Requested {
			t.Errorf("consumer is %s while the provider waits for a person, want REQUESTED", in.State)
		}
		return id, providerSide(t, prov, id).ID
	}

	t.Run("approve", func(t *testing.T) {
		cid, pid := start(t)
		if _, err := prov.Contracts().Approve(ctx, pid); err != nil {
			t.Fatal(err)
		}
		if got := wait(t, res, cid); got.State != negotiation.Finalized {
			t.Fatalf("after approval consumer is %s %v, want FINALIZED", got.State, got.Reasons)
		}
		if _, err := prov.Contracts().Approve(ctx, pid); err == nil {
			t.Errorf("approving twice succeeded, want ErrNotPending")
		}
	})
	t.Run("approve by the consumer's id", func(t *testing.T) {
		// The researcher quotes its own id; the provider's person
		// approves with it.
		cid, _ := start(t)
		if _, err := prov.Contracts().Approve(ctx, cid); err != nil {
			t.Fatalf("approving by the consumer's id %s: %v", cid, err)
		}
		if got := wait(t, res, cid); got.State != negotiation.Finalized {
			t.Fatalf("after approval consumer is %s %v, want FINALIZED", got.State, got.Reasons)
		}
	})
	t.Run("the same request again while one waits", func(t *testing.T) {
		cid, pid := start(t)
		_, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: offer, Purpose: policy.PurposeResearch})
		if err == nil || !strings.Contains(err.Error(), "under way as "+cid) {
			t.Errorf("asking again while the first request waits: %v, want it refused naming %s", err, cid)
		}
		if pending, _ := prov.Contracts().Pending(); len(pending) != 1 {
			t.Errorf("the provider holds %d pending requests, want 1", len(pending))
		}
		if _, err := prov.Contracts().Approve(ctx, pid); err != nil {
			t.Fatal(err)
		}
		wait(t, res, cid)
		// Once the first has ended, the same request may be asked again.
		other, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: offer, Purpose: policy.PurposeResearch})
		if err != nil {
			t.Fatalf("the same request after the first ended: %v", err)
		}
		eventually(t, 10*time.Second, "the other request is queued", func() bool {
			pending, _ := prov.Contracts().Pending()
			return len(pending) == 1 && pending[0].ConsumerPid == other
		})
		if _, err := prov.Contracts().Reject(ctx, other, "one agreement is enough"); err != nil {
			t.Fatal(err)
		}
		wait(t, res, other)
	})
	t.Run("reject with a reason", func(t *testing.T) {
		cid, pid := start(t)
		if _, err := prov.Contracts().Reject(ctx, pid, "the data steward wants a research plan first"); err != nil {
			t.Fatal(err)
		}
		got := wait(t, res, cid)
		if got.State != negotiation.Terminated || got.Code != protocol.CodeRejected || !anyContains(got.Reasons, "research plan") {
			t.Fatalf("after rejection consumer is %s %s %v, want TERMINATED %s with the reason", got.State, got.Code, got.Reasons, protocol.CodeRejected)
		}
	})
	verifyAudit(t, prov, res)
}

// TestRestartMidNegotiation closes each side in the middle of a
// negotiation and starts it again on the same data directory; the
// negotiation completes from what was stored.
func TestRestartMidNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name string
		// restartConsumer: the consumer is down while the provider's
		// agreement is sent, and comes back; otherwise the provider
		// restarts while a request waits for approval.
		restartConsumer bool
	}{
		{"provider restarts while a request is queued", false},
		{"consumer is down when the agreement is sent", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pcfg, ccfg := initDir(t, "Transport"), initDir(t, "University")
			prov, res := startAt(t, pcfg), startAt(t, ccfg)
			federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
			offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only", Manual: true})
			// Resends start fast so the test does not wait for the default backoff.
			for _, n := range []*node.Node{prov, res} {
				n.Contracts().SetRetry(negotiation.RetryPolicy{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond})
			}
			cid, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: offer, Purpose: policy.PurposeResearch})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "queued for approval", func() bool {
				p, _ := prov.Contracts().Pending()
				return len(p) == 1
			})
			pid := providerSide(t, prov, cid).ID
			if tc.restartConsumer {
				res.Close()
				if _, err := prov.Contracts().Approve(ctx, pid); err != nil {
					t.Fatal(err)
				}
				in, _ := prov.Contracts().Get(pid)
				if in.State != negotiation.Agreed {
					t.Fatalf("provider is %s after approval, want AGREED", in.State)
				}
				res = startAt(t, ccfg)
				if err := res.Host().Connect(ctx, prov.AddrInfo()); err != nil {
					t.Fatal(err)
				}
			} else {
				prov.Close()
				prov = startAt(t, pcfg)
				if err := res.Host().Connect(ctx, prov.AddrInfo()); err != nil {
					t.Fatal(err)
				}
				if p, _ := prov.Contracts().Pending(); len(p) != 1 || p[0].ID != pid {
					t.Fatalf("after restart pending = %+v, want %s", p, pid)
				}
				if _, err := prov.Contracts().Approve(ctx, pid); err != nil {
					t.Fatal(err)
				}
			}
			got := wait(t, res, cid)
			if got.State != negotiation.Finalized {
				t.Fatalf("consumer ended %s %s %v, want FINALIZED", got.State, got.Code, got.Reasons)
			}
			if p := wait(t, prov, pid); p.State != negotiation.Finalized || p.AgreementID != got.AgreementID {
				t.Fatalf("provider ended %s %q, want FINALIZED %s", p.State, p.AgreementID, got.AgreementID)
			}
			verifyAudit(t, prov, res)
		})
	}
}

// TestProviderVanishes: the provider is gone before it answers; the
// consumer resends with backoff and then terminates with a reason.
func TestProviderVanishes(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	res.Contracts().SetRetry(negotiation.RetryPolicy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
	prov.Close()
	got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	if got.State != negotiation.Terminated || got.Code != protocol.CodeTimeout || len(got.Reasons) == 0 {
		t.Fatalf("got %s %s %v, want TERMINATED %s with a reason", got.State, got.Code, got.Reasons, protocol.CodeTimeout)
	}
	verifyAudit(t, res)
}

// TestUnreachedProviderIsSaid: while the provider cannot be reached, the
// consumer's negotiation says so, with the last attempt's error, rather
// than leaving the user to guess whether it waits for a person.
func TestUnreachedProviderIsSaid(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	res.Contracts().SetRetry(negotiation.RetryPolicy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Timeout: time.Minute})
	prov.Close()
	id, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: offer, Purpose: policy.PurposeResearch})
	if err != nil {
		t.Fatal(err)
	}
	var in contract.Info
	eventually(t, 10*time.Second, "the negotiation says the provider was not reached", func() bool {
		in, err = res.Contracts().Get(id)
		return err == nil && in.Unreached != ""
	})
	if in.State != negotiation.Requested {
		t.Errorf("state %s, want REQUESTED while it keeps trying", in.State)
	}
	if !strings.Contains(in.Unreached, prov.ID().String()) {
		t.Errorf("unreached = %q, want the failed attempt naming the provider %s", in.Unreached, prov.ID())
	}
}

func anyContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(strings.ToLower(s), strings.ToLower(sub)) {
			return true
		}
	}
	return false
}

// TestFinishedNegotiationsAreNotResumed: after a negotiation ended on
// both sides and the last answers were taken, a restart finds nothing to
// resend or decide.
func TestFinishedNegotiationsAreNotResumed(t *testing.T) {
	pcfg := initDir(t, "Environment")
	prov := startAt(t, pcfg)
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	got := request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	waitProvider(t, prov, got.ID)
	pid := providerSide(t, prov, got.ID).ID
	// The provider takes the consumer's answer to FINALIZED just after
	// the consumer finishes; wait until nothing is outstanding.
	eventually(t, 10*time.Second, "provider settled", func() bool { return prov.Contracts().Live() == 0 })
	prov.Close()
	prov = startAt(t, pcfg)
	if n := prov.Contracts().Live(); n != 0 {
		t.Errorf("after restart %d negotiations resumed, want none (%s is finished)", n, pid)
	}
}

// TestManualApprovalFromTheCatalogue: a dataset published with a template
// offer marked "manual" queues the requests made under it from the
// catalogue (no offer given by hand) for a person's approval.
func TestManualApprovalFromTheCatalogue(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	const ds = "urn:ngsi-ld:Dataset:noise-by-approval"
	rec, err := prov.Catalog().Publish(ctx, catalog.Dataset{ID: ds, Title: "Noise levels", Description: "Noise levels, by approval.",
		License: "CC-BY-4.0", Offers: []catalog.Offer{{Template: "research-only", Manual: true}}, Dissemination: catalog.Federation})
	if err != nil {
		t.Fatal(err)
	}
	if !contract.IsManual(rec.Dataset.Offers[0].Policy) {
		t.Fatalf("published offer %+v does not carry %s", rec.Dataset.Offers[0].Policy.Extra, contract.ManualApproval)
	}
	eventually(t, 10*time.Second, "the researcher's catalogue holds the dataset", func() bool {
		_, err := res.Catalog().Offer(ds, "")
		return err == nil
	})
	id, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: ds, Purpose: policy.PurposeResearch})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the request is queued for approval", func() bool {
		pending, _ := prov.Contracts().Pending()
		return slices.ContainsFunc(pending, func(in contract.Info) bool { return in.ConsumerPid == id })
	})
	if _, err := prov.Contracts().Approve(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := wait(t, res, id); got.State != negotiation.Finalized {
		t.Fatalf("after approval consumer is %s %v, want FINALIZED", got.State, got.Reasons)
	}
	verifyAudit(t, prov, res)
}

// TestDatasetNotOpenToThePeerIsRefused: a dataset its publisher keeps
// private, or restricts to an audience, is refused to any other peer
// that asks with a valid offer obtained some other way (the offer ids
// follow a pattern); a peer in the audience gets its agreement.
func TestDatasetNotOpenToThePeerIsRefused(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	for _, c := range []struct {
		name     string
		dis      catalog.Dissemination
		audience []string
		open     bool
	}{
		{"private", catalog.Private, nil, false},
		{"restricted to another peer", catalog.Restricted, []string{prov.ID().String()}, false},
		{"restricted to the researcher", catalog.Restricted, []string{res.ID().String()}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ds := "urn:ngsi-ld:Dataset:" + strings.ReplaceAll(c.name, " ", "-")
			if _, err := prov.Catalog().Publish(ctx, catalog.Dataset{ID: ds, Title: "Noise", Description: "Noise levels.",
				License: "CC-BY-4.0", Offers: []catalog.Offer{{Template: "research-only"}}, Dissemination: c.dis, Audience: c.audience}); err != nil {
				t.Fatal(err)
			}
			own, err := prov.Catalog().Offer(ds, "")
			if err != nil {
				t.Fatal(err)
			}
			offer, err := policy.Marshal(own)
			if err != nil {
				t.Fatal(err)
			}
			got := request(t, res, prov, ds, offer, policy.PurposeResearch)
			if c.open && got.State != negotiation.Finalized {
				t.Fatalf("a peer in the audience got %s %v, want FINALIZED", got.State, got.Reasons)
			}
			if !c.open && (got.State != negotiation.Terminated || !anyContains(got.Reasons, "not open to this peer")) {
				t.Fatalf("got %s %v, want a refusal saying the dataset is not open to it", got.State, got.Reasons)
			}
		})
	}
	verifyAudit(t, prov, res)
}

// TestReusedAgreementIDIsRefused: a provider gives a new agreement the id
// of one the consumer holds already. The consumer refuses to countersign
// it, saying why, and keeps the agreement it had.
func TestReusedAgreementIDIsRefused(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	research := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	const id = "urn:uuid:0c6f7a52-6a43-4c1b-9d0e-0d7b1f3a9a11"
	contract.ReuseAgreementID(t, id)
	first := request(t, res, prov, dsNoise, research, policy.PurposeResearch)
	if first.State != negotiation.Finalized || first.AgreementID != id {
		t.Fatalf("first negotiation ended %s with %q (%v), want FINALIZED with %s", first.State, first.AgreementID, first.Reasons, id)
	}
	held, err := res.Contracts().Agreement(id)
	if err != nil {
		t.Fatal(err)
	}
	second := request(t, res, prov, dsNoise, research, policy.PurposeResearch)
	if second.State != negotiation.Terminated || !anyContains(second.Reasons, "holds an agreement") {
		t.Fatalf("second negotiation ended %s (%s %v), want TERMINATED saying the id is held", second.State, second.Code, second.Reasons)
	}
	if now, err := res.Contracts().Agreement(id); err != nil || !bytes.Equal(now, held) {
		t.Errorf("the consumer's agreement %s changed (%v)", id, err)
	}
}

// TestAgreementIDGivenTwiceAtOnceIsRefused: a provider gives two
// negotiations in flight at once the same agreement id, the second while
// the first is countersigned but not finalized (no agreement stored yet).
// The consumer refuses to countersign the second, and keeps the first's.
func TestAgreementIDGivenTwiceAtOnceIsRefused(t *testing.T) {
	prov := startAt(t, initDir(t, "Environment"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	research := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	open := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "open-data"})
	const id = "urn:uuid:5d0b8e8e-3c1f-4f5e-9a57-3f4f1b2a7c21"
	contract.ReuseAgreementID(t, id)
	started, release := contract.HoldFinalize(t)
	first, err := res.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.ID(), Dataset: dsNoise, Offer: research, Purpose: policy.PurposeResearch})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started: // the consumer countersigned; the provider holds its check
	case <-time.After(30 * time.Second):
		t.Fatal("the first negotiation never reached the provider's final check")
	}
	second := request(t, res, prov, dsNoise, open, policy.PurposeResearch)
	if second.State != negotiation.Terminated || !anyContains(second.Reasons, "another negotiation") {
		t.Fatalf("second negotiation ended %s (%s %v), want TERMINATED saying another negotiation has the id", second.State, second.Code, second.Reasons)
	}
	release()
	got := wait(t, res, first)
	if got.State != negotiation.Finalized || got.AgreementID != id {
		t.Fatalf("first negotiation ended %s with %q (%v), want FINALIZED with %s", got.State, got.AgreementID, got.Reasons, id)
	}
	// The terms held are the first's: research-only names the purpose
	// research, open-data no purpose.
	file, err := res.Contracts().Agreement(id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file, []byte(`"research"`)) {
		t.Errorf("the consumer holds other terms than the first negotiation's under %s:\n%s", id, file)
	}
	// Both finished: no id stays reserved (the stored agreement guards
	// its id from here on).
	eventually(t, 10*time.Second, "the finished negotiations release their reservations", func() bool {
		return res.Contracts().Live() == 0 && contract.Reserved(res.Contracts()) == 0
	})
}
