package contract_test

import (
	"bytes"
	"net/url"
	"testing"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// finalized starts a provider and a researcher, federated, and returns
// them with the researcher's negotiation of a research-only offer,
// FINALIZED.
func finalized(t *testing.T) (prov, res *node.Node, got contract.Info) {
	t.Helper()
	prov = startAt(t, initDir(t, "Environment"))
	res = startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	offer := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	got = request(t, res, prov, dsNoise, offer, policy.PurposeResearch)
	if got.State != negotiation.Finalized {
		t.Fatalf("ended %s %v", got.State, got.Reasons)
	}
	return prov, res, got
}

// A finalized negotiation's record keeps neither the offer nor the
// agreement: the agreement file is stored on its own, and the record is
// written again after FINALIZED (the provider's settled state).
func TestFinalizedRecordKeepsNoTerms(t *testing.T) {
	prov, res, got := finalized(t)
	waitProvider(t, prov, got.ConsumerPid)
	for _, n := range []*node.Node{prov, res} {
		var records int
		err := n.Store().View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, "n", "")}, func(k, v []byte) error {
				js, err := store.Unpack(v, 1<<20)
				if err != nil {
					return err
				}
				records++
				for _, member := range []string{`"offer":`, `"agreement":`} {
					if bytes.Contains(js, []byte(member)) {
						t.Errorf("%s: finalized record %s keeps %s: %s", n.Config().Name, k, member, js)
					}
				}
				return nil
			})
		})
		if err != nil || records != 1 {
			t.Fatalf("%s: %d records, %v", n.Config().Name, records, err)
		}
		if _, err := n.Contracts().Agreement(got.AgreementID); err != nil {
			t.Fatalf("%s: agreement file: %v", n.Config().Name, err)
		}
		in, err := n.Contracts().Get(map[*node.Node]string{prov: providerSide(t, prov, got.ConsumerPid).ID, res: got.ID}[n])
		if err != nil || in.State != negotiation.Finalized || in.AgreementID != got.AgreementID {
			t.Fatalf("%s: Get = %+v, %v", n.Config().Name, in, err)
		}
	}
}

// TestLegacyAgreementFileRead: an agreement file stored as plain JSON,
// as before files were packed, is served and listed as it is.
func TestLegacyAgreementFileRead(t *testing.T) {
	_, res, got := finalized(t)
	file, err := res.Contracts().Agreement(got.AgreementID)
	if err != nil {
		t.Fatal(err)
	}
	key := store.Key(store.PrefixNegotiation, "a", url.PathEscape(got.AgreementID))
	err = res.Store().Update(func(tx *store.Txn) error {
		stored, err := tx.Get(key)
		if err != nil {
			return err
		}
		if stored[0] != store.PackedMarker {
			t.Errorf("agreement file stored unpacked: %s", stored)
		}
		return tx.Set(key, file)
	})
	if err != nil {
		t.Fatal(err)
	}
	again, err := res.Contracts().Agreement(got.AgreementID)
	if err != nil || !bytes.Equal(again, file) {
		t.Fatalf("plain agreement file read as %s, %v\nwant %s", again, err, file)
	}
	list, err := res.Contracts().Agreements()
	if err != nil || len(list) != 1 || list[0].ID != got.AgreementID {
		t.Fatalf("Agreements = %+v, %v", list, err)
	}
}
