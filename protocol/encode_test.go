package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkQuick fails unless appendQuick declines m or writes what its
// MarshalJSON writes. m must pass validate, as in Encode.
func checkQuick(t *testing.T, m Message) {
	t.Helper()
	got, ok := appendQuick(nil, m)
	if !ok {
		return
	}
	want, err := m.(json.Marshaler).MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendQuick = %s\nMarshalJSON = %s", got, want)
	}
}

func quickMessages(pid, s string, seq uint64, raw json.RawMessage) []Message {
	p := Pids{ProviderPid: pid, ConsumerPid: "urn:c"}
	return []Message{
		&ContractRequestMessage{Pids: Pids{ConsumerPid: pid}, Seq: Seq{N: seq}, Offer: raw, CallbackAddress: s, Purpose: s},
		&ContractRequestMessage{Pids: p, Offer: raw},
		&ContractAgreementMessage{Pids: p, Seq: Seq{N: seq}, Agreement: raw},
		&ContractAgreementVerificationMessage{Pids: p, Seq: Seq{N: seq}, Agreement: raw},
		&ContractAgreementVerificationMessage{Pids: p, Seq: Seq{N: seq}},
		&ContractNegotiationEventMessage{Pids: p, Seq: Seq{N: seq}, EventType: s},
		&ContractNegotiation{Pids: p, State: s},
	}
}

func TestQuickEncodingIsMarshalJSON(t *testing.T) {
	offer := `{"@id":"urn:o","@type":"Offer","permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":"re\"search \\u003c"}]}],"target":"urn:d"}`
	for _, raw := range []string{
		offer,
		`{"@id": "urn:o", "@type":"Offer","permission":[{"action":"use"}]}`, // white space: declined
		`{"@id":"urn:o<>","@type":"Offer","permission":[{"action":"use"}]}`, // escaped by json.Marshal: declined
		"{\"@id\":\"urn:o\u2028\",\"@type\":\"Offer\",\"permission\":[{\"action\":\"use\"}]}",
		`{"@id":"urn:é","@type":"Offer","permission":[{"action":"use"}]}`,
	} {
		for _, s := range []string{"", "FINALIZED", "/p2p/12D3KooW", "a<b&c", "é", "\x7f", "\xff", "\"\\\n"} {
			for _, m := range quickMessages("urn:uuid:p", s, 3, json.RawMessage(raw)) {
				checkQuick(t, m)
			}
		}
	}
	if _, ok := appendQuick(nil, quickMessages("p", "x", 1, json.RawMessage(offer))[2]); !ok {
		t.Fatal("an agreement message with a compact policy was not written quickly")
	}
}

func FuzzQuickEncoding(f *testing.F) {
	f.Add("urn:uuid:p", "FINALIZED", uint64(2), []byte(`{"@id":"urn:o","@type":"Offer","permission":[{"action":"use"}]}`))
	f.Add("<", "\u2028", uint64(0), []byte(`{"a":"\u2028"}`))
	f.Fuzz(func(t *testing.T, pid, s string, seq uint64, raw []byte) {
		if !json.Valid(raw) {
			return // Encode checks the policy first
		}
		for _, m := range quickMessages(pid, s, seq, raw) {
			checkQuick(t, m)
		}
	})
}

// An agreement message as a negotiation sends it (about 2.5 KB of
// policy): Encode, and the MarshalJSON it takes otherwise.
func BenchmarkEncodeAgreementMessage(b *testing.B) {
	rule := `{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":"research"},{"leftOperand":"mim:role","operator":"isAnyOf","rightOperand":["researcher","agency"]}]}`
	agreement := `{"@context":["http://www.w3.org/ns/odrl.jsonld",{"dct":"http://purl.org/dc/terms/","mim":"https://w3id.org/mimnode/policy/"}],"@id":"urn:uuid:03fd9cf5","@type":"Agreement","assignee":"12D3KooWS2x9fFmV8YHU1A4xqhLe1Bk57x9kNJuHCsrhuYKs4MaM","assigner":"12D3KooWLqMFH2rpDsMeZNGa9cdmPt8P5Q6MkQNLaVRdWfXyU8Gs","permission":[` +
		rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `],"target":"urn:ngsi-ld:Dataset:noise-levels-2025"}`
	m := &ContractAgreementMessage{Pids: Pids{ProviderPid: "urn:uuid:a72bba25-5d82-4392-9c76-d3e276b0b065", ConsumerPid: "urn:uuid:a71f494d-734a-45dd-8a9e-1ea6152a7537"},
		Seq: Seq{N: 1}, Agreement: json.RawMessage(agreement)}
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := Encode(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalJSON", func(b *testing.B) {
		for b.Loop() {
			if err := m.validate(); err != nil {
				b.Fatal(err)
			}
			if _, err := m.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestAppendEncodeIsEncode: AppendEncode appends exactly Encode's bytes
// after what dst holds, by the quick writer and by encoding/json alike,
// and fails as Encode does.
func TestAppendEncodeIsEncode(t *testing.T) {
	offer := `{"@id":"urn:o","@type":"Offer","permission":[{"action":"use"}],"target":"urn:d"}`
	msgs := quickMessages("urn:uuid:p", "FINALIZED", 3, json.RawMessage(offer))
	msgs = append(msgs, quickMessages("urn:uuid:p", "a<b", 3, json.RawMessage(`{"@id": "urn:o", "@type":"Offer","permission":[{"action":"use"}]}`))...)
	msgs = append(msgs, &ContractNegotiationTerminationMessage{Pids: Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}, Code: "x"},
		&ContractAgreementMessage{Pids: Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}}) // no agreement: refused
	for _, m := range msgs {
		want, wantErr := Encode(m)
		for _, dst := range [][]byte{nil, {}, []byte("prefix"), make([]byte, 3, 8)} {
			got, err := AppendEncode(dst, m)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("AppendEncode(%q, %T) error %v, Encode's %v", dst, m, err, wantErr)
			}
			if err == nil && (!bytes.Equal(got[:len(dst)], dst) || !bytes.Equal(got[len(dst):], want)) {
				t.Fatalf("AppendEncode(%q, %T) = %q, want %q after it", dst, m, got, want)
			}
		}
	}
}

// TestAppendEncodeAfterLargerMessage: AppendEncode of every message kind
// (the upstream examples, negotiation and transfer, and the quick
// writer's messages with a compact and a spaced policy) into a buffer
// that has just held a larger message gives Encode's bytes after dst,
// as Digest uses it.
func TestAppendEncodeAfterLargerMessage(t *testing.T) {
	pids := Pids{ProviderPid: "urn:p", ConsumerPid: "urn:c"}
	long := `{"@id":"urn:a","@type":"Agreement","assignee":"b","assigner":"a","permission":[` + strings.Repeat(`{"action":"use"},`, 500) + `{"action":"use"}],"target":"urn:d"}`
	large := &ContractAgreementMessage{Pids: pids, Agreement: json.RawMessage(long)}
	var msgs []Message
	for name, doc := range examples(t) {
		m, err := Decode(doc)
		if err != nil {
			t.Fatalf("Decode(%s): %v", name, err)
		}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, quickMessages("urn:uuid:p", "FINALIZED", 3, json.RawMessage(`{"@id":"urn:o","@type":"Offer","permission":[{"action":"use"}],"target":"urn:d"}`))...)
	msgs = append(msgs, quickMessages("urn:uuid:p", "a<b", 0, json.RawMessage(`{"@id": "urn:o", "@type":"Offer","permission":[{"action":"use"}]}`))...)
	var buf []byte
	for _, m := range msgs {
		want, wantErr := Encode(m)
		for _, keep := range []int{0, 5} {
			var err error
			if buf, err = AppendEncode(buf[:0], large); err != nil {
				t.Fatal(err)
			}
			got, err := AppendEncode(buf[:keep], m)
			if wantErr != nil {
				if err == nil {
					t.Fatalf("AppendEncode(%T) = %q, want Encode's error %v", m, got, wantErr)
				}
				continue
			}
			if err != nil || !bytes.Equal(got[keep:], want) || !bytes.Equal(got[:keep], []byte(`{"@co`)[:keep]) {
				t.Fatalf("AppendEncode(%d bytes of a larger message, %T) = %q, %v; want %q after them", keep, m, got, err, want)
			}
		}
	}
}
