package protocol

import (
	"encoding/json"
	"strconv"
)

// A negotiation encodes each of its messages to store and send it, and
// each message it receives once more for its digest; the agreement
// messages carry a few kilobytes of policy that encoding/json checks and
// compacts every time. Encode therefore writes the negotiation's messages
// itself (appendQuick), byte for byte as their MarshalJSON methods do,
// when it can be sure of it: their policy is known to be valid JSON
// (Encode has just checked it) and is already compact, with nothing
// encoding/json would escape. Anything else takes MarshalJSON
// (TestQuickEncodingIsMarshalJSON, FuzzQuickEncoding).

// appendQuick appends m's wire form for the message types it knows whose
// policy (checked valid by the caller) needs no rewriting; false
// otherwise.
func appendQuick(b []byte, m Message) ([]byte, bool) {
	if b == nil {
		// The members besides the policy take a few hundred bytes.
		b = make([]byte, 0, 384+len(m.PIDs().ProviderPid)+len(m.PIDs().ConsumerPid)+quickPayload(m))
	}
	switch m := m.(type) {
	case *ContractRequestMessage:
		b = appendStart(b, TypeContractRequest, m.Pids, m.Seq)
		if b, ok := appendRaw(b, "offer", m.Offer); ok {
			b = appendString(b, "callbackAddress", m.CallbackAddress, true)
			b = appendString(b, "urn:mimnode:purpose", m.Purpose, true)
			return append(b, '}'), true
		}
	case *ContractAgreementMessage:
		b = appendStart(b, TypeContractAgreement, m.Pids, m.Seq)
		if b, ok := appendRaw(b, "agreement", m.Agreement); ok {
			return append(b, '}'), true
		}
	case *ContractAgreementVerificationMessage:
		b = appendStart(b, TypeContractAgreementVerification, m.Pids, m.Seq)
		if len(m.Agreement) == 0 {
			return append(b, '}'), true
		}
		if b, ok := appendRaw(b, "agreement", m.Agreement); ok {
			return append(b, '}'), true
		}
	case *ContractNegotiationEventMessage:
		b = appendStart(b, TypeContractNegotiationEvent, m.Pids, m.Seq)
		return append(appendString(b, "eventType", m.EventType, false), '}'), true
	case *ContractNegotiation:
		b = appendStart(b, TypeContractNegotiation, m.Pids, Seq{})
		return append(appendString(b, "state", m.State, false), '}'), true
	}
	return nil, false
}

// quickPayload is the size of what m carries besides its pids.
func quickPayload(m Message) int {
	switch m := m.(type) {
	case *ContractRequestMessage:
		return len(m.Offer) + len(m.CallbackAddress) + len(m.Purpose)
	case *ContractAgreementMessage:
		return len(m.Agreement)
	case *ContractAgreementVerificationMessage:
		return len(m.Agreement)
	}
	return 0
}

// appendStart writes the members every message starts with, as
// json.Marshal writes the embedded header, Pids and Seq.
func appendStart(b []byte, typ string, p Pids, s Seq) []byte {
	b = append(append(append(b, `{"@context":[`...), quotedContext...), `],"@type":`...)
	b = appendQuoted(b, typ)
	b = appendString(b, "providerPid", p.ProviderPid, true)
	b = appendString(b, "consumerPid", p.ConsumerPid, true)
	if s.N != 0 {
		b = strconv.AppendUint(append(b, `,"urn:mimnode:seq":`...), s.N, 10)
	}
	return b
}

var quotedContext = func() []byte { b, _ := json.Marshal(Context); return b }()

// appendString writes the member name: v, left out when empty and
// omitEmpty.
func appendString(b []byte, name, v string, omitEmpty bool) []byte {
	if v == "" && omitEmpty {
		return b
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return appendQuoted(b, v)
}

// appendQuoted writes s as json.Marshal writes a string.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // escapes, and invalid UTF-8, as encoding/json has it
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// appendRaw writes the member name: raw, valid JSON, if it is compact and
// holds nothing json.Marshal would escape (<, >, &, U+2028, U+2029);
// false otherwise.
func appendRaw(b []byte, name string, raw json.RawMessage) ([]byte, bool) {
	if len(raw) == 0 || !plainCompact(raw) {
		return nil, false
	}
	b = append(append(append(b, `,"`...), name...), `":`...)
	return append(b, raw...), true
}

// plainCompact reports whether valid JSON raw has no white space outside
// strings and no byte json.Marshal's compaction would change.
func plainCompact(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '<' || c == '>' || c == '&' || c == 0xe2: // 0xe2 starts U+2028 and U+2029 (and others: declined too)
			return false
		case inString && c == '\\':
			i++ // the escaped byte; an escape is kept as it is
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}
