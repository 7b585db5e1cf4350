package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/protocol/internal/dspschema"
)

func openSchemas(t testing.TB) *dspschema.Validator {
	t.Helper()
	v, err := dspschema.Open(filepath.Join("testdata", "dsp"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// examples returns the upstream DSP example messages of the negotiation
// and transfer protocols, by file name.
func examples(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"negotiation", "transfer"} {
		files, err := filepath.Glob(filepath.Join("testdata", "dsp", dir, "example", "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no DSP examples in testdata/dsp/%s: %v", dir, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[dir+"/"+filepath.Base(f)] = b
		}
	}
	return out
}

// TestUpstreamExamplesValidate checks the schema loader itself: every
// upstream example passes its upstream schema, including the three transfer
// schemas with the "#definitions/" fragment bug.
func TestUpstreamExamplesValidate(t *testing.T) {
	v := openSchemas(t)
	for name, doc := range examples(t) {
		t.Run(name, func(t *testing.T) {
			var h struct {
				Type string `json:"@type"`
			}
			if err := json.Unmarshal(doc, &h); err != nil {
				t.Fatal(err)
			}
			if err := v.Validate(h.Type, doc); err != nil {
				t.Fatalf("upstream example %s does not validate: %v", name, err)
			}
		})
	}
}

// TestSchemaRejectsInvalid makes sure the validator can fail: a message
// missing a required property must not pass.
func TestSchemaRejectsInvalid(t *testing.T) {
	v := openSchemas(t)
	doc := []byte(`{"@context":["` + Context + `"],"@type":"ContractNegotiationEventMessage","providerPid":"p","consumerPid":"c","eventType":"MAYBE"}`)
	if err := v.Validate(TypeContractNegotiationEvent, doc); err == nil {
		t.Fatal("schema accepted eventType MAYBE")
	}
}

// TestDecodeUpstreamExamples: every DSP example decodes, and re-encoding
// it gives a message that still validates and decodes to the same value.
func TestDecodeUpstreamExamples(t *testing.T) {
	v := openSchemas(t)
	for name, doc := range examples(t) {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(doc)
			if err != nil {
				t.Fatalf("Decode(%s) = %v", name, err)
			}
			out, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode = %v", err)
			}
			if err := v.Validate(m.MessageType(), out); err != nil {
				t.Fatalf("re-encoded %s fails its schema: %v\n%s", name, err, out)
			}
			m2, err := Decode(out)
			if err != nil {
				t.Fatalf("Decode(re-encoded) = %v", err)
			}
			a, _ := json.Marshal(m)
			b, _ := json.Marshal(m2)
			if string(a) != string(b) {
				t.Fatalf("round trip changed the message:\n%s\n%s", a, b)
			}
		})
	}
}

const offerJSON = `{"@id":"urn:offer:1","@type":"Offer","target":"urn:dataset:1","permission":[{"action":"use"}]}`
const agreementJSON = `{"@id":"urn:agreement:1","@type":"Agreement","target":"urn:dataset:1","assigner":"peerP","assignee":"peerC","permission":[{"action":"use"}]}`

// TestEncodedMessagesValidate covers each message type this package
// builds, in the shapes the state machines send.
func TestEncodedMessagesValidate(t *testing.T) {
	v := openSchemas(t)
	both := Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}
	for _, m := range []Message{
		&ContractRequestMessage{Pids: Pids{ConsumerPid: "urn:c"}, Offer: json.RawMessage(offerJSON), CallbackAddress: "/p2p/peerC"},
		&ContractRequestMessage{Pids: both, Offer: json.RawMessage(offerJSON)},
		&ContractOfferMessage{Pids: both, Offer: json.RawMessage(offerJSON)},
		&ContractAgreementMessage{Pids: both, Agreement: json.RawMessage(agreementJSON)},
		&ContractAgreementVerificationMessage{Pids: both},
		&ContractAgreementVerificationMessage{Pids: both, Agreement: json.RawMessage(agreementJSON)},
		&ContractNegotiationEventMessage{Pids: both, EventType: EventAccepted},
		&ContractNegotiationEventMessage{Pids: both, Seq: Seq{N: 7}, EventType: EventAccepted},
		&ContractNegotiationEventMessage{Pids: both, EventType: EventFinalized},
		&ContractNegotiationTerminationMessage{Pids: both, Code: CodeRefused, Reason: Reasons{"purpose is not research"}},
		&ContractNegotiation{Pids: both, State: "AGREED"},
		NegotiationErrorFor(nil, Errorf(CodeUnknownNegotiation, nil, "no such negotiation")),
		&TransferRequestMessage{Pids: Pids{ConsumerPid: "urn:c"}, AgreementID: "urn:agreement:1", Format: "mimnode-blocks", CallbackAddress: "/p2p/peerC"},
		&TransferStartMessage{Pids: both},
		&TransferSuspensionMessage{Pids: both, Code: CodeCancelled, Reason: Reasons{"paused by user"}},
		&TransferCompletionMessage{Pids: both},
		&TransferTerminationMessage{Pids: both},
		&TransferProcess{Pids: both, State: "STARTED"},
		TransferErrorFor(&TransferStartMessage{Pids: both}, Errorf(CodeUnknownNegotiation, nil, "x")),
	} {
		t.Run(m.MessageType(), func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode = %v", err)
			}
			if want, _ := json.Marshal(m); string(b) != string(want) {
				t.Fatalf("Encode = %s, json.Marshal = %s", b, want)
			}
			if err := v.Validate(m.MessageType(), b); err != nil {
				t.Fatalf("%s fails its DSP schema: %v\n%s", m.MessageType(), err, b)
			}
			if _, err := Decode(b); err != nil {
				t.Fatalf("Decode(Encode(m)) = %v", err)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	ctx := `"@context":["` + Context + `"]`
	for _, tc := range []struct {
		name, body string
		want       error
		mention    string
	}{
		{"not JSON", `{"@context"`, ErrMalformedMessage, ""},
		{"JSON array", `[1,2]`, ErrMalformedMessage, ""},
		{"no context", `{"@type":"ContractNegotiation","providerPid":"p","consumerPid":"c","state":"AGREED"}`, ErrMalformedMessage, "@context"},
		{"context is a string", `{"@context":"` + Context + `","@type":"ContractNegotiation"}`, ErrMalformedMessage, "@context"},
		{"foreign context", `{"@context":["https://example.com/ctx"],"@type":"ContractNegotiation"}`, ErrMalformedMessage, "lacks"},
		{"no type", `{` + ctx + `}`, ErrMalformedMessage, "@type"},
		{"unknown type", `{` + ctx + `,"@type":"CatalogRequestMessage"}`, ErrUnknownMessageType, "CatalogRequestMessage"},
		{"state out of enum", `{` + ctx + `,"@type":"ContractNegotiation","providerPid":"p","consumerPid":"c","state":"DONE"}`, ErrMalformedMessage, "state"},
		{"event out of enum", `{` + ctx + `,"@type":"ContractNegotiationEventMessage","providerPid":"p","consumerPid":"c","eventType":"REJECTED"}`, ErrMalformedMessage, "eventType"},
		{"request without offer", `{` + ctx + `,"@type":"ContractRequestMessage","consumerPid":"c","callbackAddress":"x"}`, ErrMalformedMessage, "offer"},
		{"request with both providerPid and callback", `{` + ctx + `,"@type":"ContractRequestMessage","consumerPid":"c","providerPid":"p","callbackAddress":"x","offer":` + offerJSON + `}`, ErrMalformedMessage, "exactly one"},
		{"request with neither providerPid nor callback", `{` + ctx + `,"@type":"ContractRequestMessage","consumerPid":"c","offer":` + offerJSON + `}`, ErrMalformedMessage, "one of"},
		{"offer without rules", `{` + ctx + `,"@type":"ContractRequestMessage","consumerPid":"c","callbackAddress":"x","offer":{"@id":"o","@type":"Offer"}}`, ErrMalformedMessage, "permission"},
		{"offer of wrong type", `{` + ctx + `,"@type":"ContractRequestMessage","consumerPid":"c","callbackAddress":"x","offer":{"@id":"o","@type":"Agreement","permission":[{"action":"use"}]}}`, ErrMalformedMessage, "Offer"},
		{"offer message offer without target", `{` + ctx + `,"@type":"ContractOfferMessage","consumerPid":"c","providerPid":"p","offer":{"@id":"o","@type":"Offer","permission":[{"action":"use"}]}}`, ErrMalformedMessage, "target"},
		{"agreement without assignee", `{` + ctx + `,"@type":"ContractAgreementMessage","consumerPid":"c","providerPid":"p","agreement":{"@id":"a","@type":"Agreement","target":"t","assigner":"x","permission":[{"action":"use"}]}}`, ErrMalformedMessage, "assignee"},
		{"pid of wrong type", `{` + ctx + `,"@type":"ContractAgreementVerificationMessage","consumerPid":7,"providerPid":"p"}`, ErrMalformedMessage, ""},
		{"missing consumerPid", `{` + ctx + `,"@type":"ContractAgreementVerificationMessage","providerPid":"p"}`, ErrMalformedMessage, "consumerPid"},
		{"reason not an array", `{` + ctx + `,"@type":"ContractNegotiationTerminationMessage","consumerPid":"c","providerPid":"p","reason":"no"}`, ErrMalformedMessage, "reason"},
		{"transfer request without agreement", `{` + ctx + `,"@type":"TransferRequestMessage","consumerPid":"c","format":"f","callbackAddress":"x"}`, ErrMalformedMessage, "agreementId"},
		{"bad data address", `{` + ctx + `,"@type":"TransferStartMessage","consumerPid":"c","providerPid":"p","dataAddress":{"@type":"Other"}}`, ErrMalformedMessage, "dataAddress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode([]byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%s) = %v, %v; want error %v", tc.body, m, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("Decode error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestSeqRoundTrip(t *testing.T) {
	m := &TransferStartMessage{Pids: Pids{ProviderPid: "p", ConsumerPid: "c"}, Seq: Seq{N: 3}}
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"urn:mimnode:seq":3`) {
		t.Fatalf("Encode = %s, want the sequence number under urn:mimnode:seq", b)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if n := got.(Sequenced).SeqNo(); n != 3 {
		t.Fatalf("decoded SeqNo = %d, want 3", n)
	}
	var _ Sequenced = (*ContractRequestMessage)(nil)
}

func TestReasonsKeepNonStrings(t *testing.T) {
	body := `{"@context":["` + Context + `"],"@type":"ContractNegotiationError","providerPid":"p","consumerPid":"c","code":"99","reason":["plain",{"@value":"localised","@language":"en"}]}`
	m, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*ContractNegotiationError).Reason
	want := Reasons{"plain", `{"@value":"localised","@language":"en"}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Reason = %q, want %q", got, want)
	}
}

func TestNegotiationErrorFor(t *testing.T) {
	req := &ContractAgreementVerificationMessage{Pids: Pids{ProviderPid: "urn:p"}}
	for _, tc := range []struct {
		name     string
		msg      Message
		err      error
		wantCode Code
		wantPids Pids
	}{
		{"protocol error keeps its code", req, Errorf(CodeInvalidTransition, nil, "not in OFFERED"), CodeInvalidTransition, Pids{ProviderPid: "urn:p", ConsumerPid: UnknownPid}},
		{"decode error is malformed", nil, ErrMalformedMessage, CodeMalformedMessage, Pids{ProviderPid: UnknownPid, ConsumerPid: UnknownPid}},
		{"oversized frame", nil, ErrFrameTooLarge, CodeFrameTooLarge, Pids{ProviderPid: UnknownPid, ConsumerPid: UnknownPid}},
		{"anything else is internal", nil, errors.New("disk full"), CodeInternal, Pids{ProviderPid: UnknownPid, ConsumerPid: UnknownPid}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NegotiationErrorFor(tc.msg, tc.err)
			if got.Code != tc.wantCode || got.Pids != tc.wantPids || len(got.Reason) == 0 {
				t.Fatalf("NegotiationErrorFor(%v) = %+v, want code %s pids %+v and a reason", tc.err, got, tc.wantCode, tc.wantPids)
			}
		})
	}
}

func TestCodeTable(t *testing.T) {
	seenCode, seenName := map[Code]bool{}, map[string]bool{}
	for _, c := range Codes() {
		if seenCode[c.Code] || seenName[c.Name] {
			t.Errorf("code %s / name %s appears twice in the table", c.Code, c.Name)
		}
		seenCode[c.Code], seenName[c.Name] = true, true
		if c.Description == "" {
			t.Errorf("code %s has no description", c.Code)
		}
	}
	if !CodeBusy.Retryable() || CodeInvalidTransition.Retryable() || Code("99").Retryable() {
		t.Error("Retryable: busy must be retryable; invalid transition and foreign codes must not")
	}
}

func FuzzDecode(f *testing.F) {
	for _, doc := range examples(f) {
		f.Add(doc)
	}
	f.Add([]byte(`{"@context":["` + Context + `"],"@type":"ContractRequestMessage","consumerPid":"c","callbackAddress":"x","offer":{"@id":"o","@type":"Offer","permission":[null]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) && !errors.Is(err, ErrUnknownMessageType) {
				t.Fatalf("Decode returned an unclassified error: %v", err)
			}
			return
		}
		// Whatever decodes must encode and decode again to the same value.
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %s does not re-encode: %v", m.MessageType(), err)
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%s", err, out)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(m2)
		if string(a) != string(b) {
			t.Fatalf("round trip changed the message:\n%s\n%s", a, b)
		}
	})
}

// TestPolicyCheckRemembersPerKind: a policy accepted as one kind (an offer
// in a request, which needs no target) is still checked as another (an
// offer from the provider, which does), and one that was refused stays
// refused.
func TestPolicyCheckRemembersPerKind(t *testing.T) {
	untargeted := json.RawMessage(`{"@id":"urn:offer:9","@type":"Offer","permission":[{"action":"use"}]}`)
	both := Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}
	for i := 0; i < 2; i++ {
		if _, err := Encode(&ContractRequestMessage{Pids: both, Offer: untargeted}); err != nil {
			t.Fatalf("request with an offer without target: %v", err)
		}
		if _, err := Encode(&ContractOfferMessage{Pids: both, Offer: untargeted}); err == nil {
			t.Fatal("offer message with an offer without target was accepted")
		}
		if _, err := Encode(&ContractAgreementMessage{Pids: both, Agreement: untargeted}); err == nil {
			t.Fatal("an offer was accepted as an agreement")
		}
	}
}
