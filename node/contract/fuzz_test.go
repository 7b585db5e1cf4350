package contract

import (
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
)

// keySigner signs with a libp2p Ed25519 key, as the node does.
type keySigner struct {
	key crypto.PrivKey
	id  peer.ID
}

func newKeySigner(t testing.TB) keySigner {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return keySigner{key: k, id: id}
}

func (s keySigner) PeerID() string                  { return s.id.String() }
func (s keySigner) Sign(msg []byte) ([]byte, error) { return s.key.Sign(msg) }

// seedMessages are the messages a real negotiation puts on the wire,
// built with the same code the driver uses.
func seedMessages(t testing.TB) [][]byte {
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
	provSigned, err := agreementJSON(a)
	if err != nil {
		t.Fatal(err)
	}
	a.Sign(cons)
	bothSigned, _ := agreementJSON(a)
	pids := protocol.Pids{ProviderPid: "urn:uuid:p", ConsumerPid: "urn:uuid:c"}
	msgs := []protocol.Message{
		&protocol.ContractRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:uuid:c"}, Offer: offerJSON,
			CallbackAddress: "/p2p/" + cons.PeerID(), Purpose: "research"},
		&protocol.ContractAgreementMessage{Pids: pids, Agreement: provSigned},
		&protocol.ContractAgreementVerificationMessage{Pids: pids, Agreement: bothSigned},
		&protocol.ContractNegotiationTerminationMessage{Pids: pids, Code: protocol.CodeRefused, Reason: protocol.Reasons{"purpose"}},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := protocol.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeNegotiationMessage feeds arbitrary frame bodies through the
// decoding the driver does on a received message: the DSP message, then
// the offer of a request and the signed agreement inside an agreement or
// verification. Nothing may panic, and an agreement that is read must
// name the same terms inside and outside.
func FuzzDecodeNegotiationMessage(f *testing.F) {
	for _, b := range seedMessages(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractAgreementMessage","providerPid":"p","consumerPid":"c","agreement":{"@type":"Agreement","@id":"x","target":"t","assigner":"a","assignee":"b","permission":[{}],"mim:signedAgreement":{"agreement":{}}}}`))
	tpl, _ := policy.LookupTemplate("research-only")
	own, _ := tpl.New(policy.Params{ID: "urn:offer:1", Target: "urn:ds:noise"})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := protocol.Decode(body)
		if err != nil {
			return
		}
		var agreement json.RawMessage
		switch m := m.(type) {
		case *protocol.ContractRequestMessage:
			if _, _, err := offerRef(m.Offer); err != nil {
				return
			}
			if p, err := policy.Parse(m.Offer); err == nil {
				sameTerms(own, p)
			}
		case *protocol.ContractAgreementMessage:
			agreement = m.Agreement
		case *protocol.ContractAgreementVerificationMessage:
			agreement = m.Agreement
		}
		if agreement == nil {
			return
		}
		a, err := parseAgreementJSON(agreement)
		if err != nil {
			return
		}
		if _, err := a.Canonical(); err != nil {
			return
		}
		back, err := agreementJSON(a)
		if err != nil {
			return
		}
		if _, err := parseAgreementJSON(back); err != nil {
			t.Errorf("an agreement read from the wire does not read back after encoding: %v", err)
		}
	})
}

func TestSeedAgreementsRoundTrip(t *testing.T) {
	for i, b := range seedMessages(t) {
		m, err := protocol.Decode(b)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if am, ok := m.(*protocol.ContractAgreementMessage); ok {
			a, err := parseAgreementJSON(am.Agreement)
			if err != nil {
				t.Fatalf("parseAgreementJSON: %v", err)
			}
			if len(a.Signatures) != 1 {
				t.Errorf("provider-signed agreement has %d signatures", len(a.Signatures))
			}
		}
	}
}

func TestParseAgreementJSONRefusesMismatchedTerms(t *testing.T) {
	b := seedMessages(t)[1]
	m, _ := protocol.Decode(b)
	raw := m.(*protocol.ContractAgreementMessage).Agreement
	var obj map[string]json.RawMessage
	json.Unmarshal(raw, &obj)
	for _, tc := range []struct {
		name, key, value string
	}{
		{"other dataset outside", "target", `"urn:ds:other"`},
		{"other consumer outside", "assignee", `"12D3KooWSomeoneElse"`},
		{"other id outside", "@id", `"urn:uuid:other"`},
		{"no signed agreement", "mim:signedAgreement", ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := map[string]json.RawMessage{}
			for k, v := range obj {
				o[k] = v
			}
			if tc.value == "" {
				delete(o, tc.key)
			} else {
				o[tc.key] = json.RawMessage(tc.value)
			}
			changed, _ := json.Marshal(o)
			if _, err := parseAgreementJSON(changed); err == nil {
				t.Errorf("parseAgreementJSON accepted an agreement with %s", tc.name)
			}
		})
	}
}
