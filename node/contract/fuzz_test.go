package contract

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
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

// agreementMembers reads agreements by hand as encoding/json reads them:
// the same names (the same answer from parseAgreementJSON) whether the
// members are plain or escaped, duplicated, missing or not strings.
func TestAgreementMembersIsEncodingJSON(t *testing.T) {
	m, _ := protocol.Decode(seedMessages(t)[1])
	raw := m.(*protocol.ContractAgreementMessage).Agreement
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	escaped := func(v json.RawMessage) json.RawMessage { // the first letter as \u00XX
		var s string
		json.Unmarshal(v, &s)
		return json.RawMessage(fmt.Sprintf(`"\u%04x%s"`, s[0], s[1:]))
	}
	for _, tc := range []struct {
		name string
		edit func(o map[string]json.RawMessage)
		ok   bool
	}{
		{"as written", func(map[string]json.RawMessage) {}, true},
		{"id escaped", func(o map[string]json.RawMessage) { o["@id"] = escaped(o["@id"]) }, true},
		{"target escaped", func(o map[string]json.RawMessage) { o["target"] = escaped(o["target"]) }, true},
		{"assigner a number", func(o map[string]json.RawMessage) { o["assigner"] = json.RawMessage(`7`) }, false},
		{"assignee null", func(o map[string]json.RawMessage) { o["assignee"] = json.RawMessage(`null`) }, false},
		{"no id", func(o map[string]json.RawMessage) { delete(o, "@id") }, false},
		{"Target", func(o map[string]json.RawMessage) { o["Target"] = o["target"]; delete(o, "target") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := map[string]json.RawMessage{}
			for k, v := range obj {
				o[k] = v
			}
			tc.edit(o)
			changed, _ := json.Marshal(o)
			_, err := parseAgreementJSON(changed)
			if (err == nil) != tc.ok {
				t.Errorf("parseAgreementJSON: %v, want ok %v", err, tc.ok)
			}
			file, names, err := agreementMembers(changed)
			var slow map[string]json.RawMessage
			json.Unmarshal(changed, &slow)
			var want [4]string
			for i, k := range []string{"@id", "target", "assigner", "assignee"} {
				json.Unmarshal(slow[k], &want[i])
			}
			if err != nil || names != want || string(file) != string(slow[SignedAgreementKey]) {
				t.Errorf("agreementMembers = %q, %v; encoding/json gives %q", names, err, want)
			}
		})
	}
}
