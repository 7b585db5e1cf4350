package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Every negotiation moves six to eight message bodies, and decoding each
// with encoding/json (reflection over the message struct, a copy of the
// offer or agreement it carries) cost more than reading the header and
// checking the policy together. quickBody reads the common negotiation
// messages by hand when their members are plain; Decode takes
// encoding/json for anything else, so what it returns and every error
// stay those of encoding/json (TestQuickBodyIsUnmarshal, FuzzQuickBody).

// bodyField is one member quickBody reads into a message.
type bodyField struct {
	name string
	str  *string          // a plain string member, or
	raw  *json.RawMessage // an object member kept as written, or
	num  *uint64          // an unsigned integer member
}

// bodyFields lists the members of m that encoding/json fills, for the
// message types quickBody reads; nil for the others.
func bodyFields(m Message, f *[6]bodyField) []bodyField {
	switch t := m.(type) {
	case *ContractNegotiation:
		f[0], f[1] = pidFields(&t.Pids)
		f[2] = bodyField{name: "state", str: &t.State}
		return f[:3]
	case *ContractNegotiationEventMessage:
		f[3] = bodyField{name: "eventType", str: &t.EventType}
		return seqFields(f, &t.Pids, &t.N, 4)
	case *ContractAgreementMessage:
		f[3] = bodyField{name: "agreement", raw: &t.Agreement}
		return seqFields(f, &t.Pids, &t.N, 4)
	case *ContractAgreementVerificationMessage:
		f[3] = bodyField{name: "agreement", raw: &t.Agreement}
		return seqFields(f, &t.Pids, &t.N, 4)
	case *ContractRequestMessage:
		f[3] = bodyField{name: "offer", raw: &t.Offer}
		f[4] = bodyField{name: "callbackAddress", str: &t.CallbackAddress}
		f[5] = bodyField{name: "urn:mimnode:purpose", str: &t.Purpose}
		return seqFields(f, &t.Pids, &t.N, 6)
	}
	return nil
}

func pidFields(p *Pids) (bodyField, bodyField) {
	return bodyField{name: "providerPid", str: &p.ProviderPid}, bodyField{name: "consumerPid", str: &p.ConsumerPid}
}

// seqFields sets the members every sequenced message has (f[0:3]: the
// pids and urn:mimnode:seq) and returns f's first n.
func seqFields(f *[6]bodyField, p *Pids, seq *uint64, n int) []bodyField {
	f[0], f[1] = pidFields(p)
	f[2] = bodyField{name: "urn:mimnode:seq", num: seq}
	return f[:n]
}

// quickBody decodes body into m, a fresh message of body's type, as
// json.Unmarshal(body, m) would, and says true; or leaves m as it is and
// says false. It reads well-formed JSON objects whose member names are
// printable ASCII without escapes, where each member m has a field for
// is named exactly as the field (encoding/json would also take "STATE"
// for "state") and present once, with a string value of printable ASCII
// without escapes, an object, or an unsigned integer, as the field is.
// Other members are skipped, as encoding/json skips them.
func quickBody(body []byte, m Message) bool {
	var storage [6]bodyField
	fields := bodyFields(m, &storage)
	if fields == nil {
		return false
	}
	var names [len(storage)]string
	for k, f := range fields {
		names[k] = f.name
	}
	var vals [len(storage)][]byte
	if !objectMembers(body, names[:len(fields)], vals[:len(fields)], true) {
		return false
	}
	// Check every value before setting any field: m stays as it was if
	// encoding/json has to read it.
	var strs [len(storage)]string
	var nums [len(storage)]uint64
	for k, f := range fields {
		v := vals[k]
		if v == nil {
			continue
		}
		switch {
		case f.str != nil:
			s, ok := plainValue(v)
			if !ok {
				return false
			}
			strs[k] = string(s)
		case f.raw != nil:
			if v[0] != '{' {
				return false
			}
		default:
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return false
			}
			nums[k] = n
		}
	}
	for k, f := range fields {
		if vals[k] == nil {
			continue
		}
		switch {
		case f.str != nil:
			*f.str = strs[k]
		case f.raw != nil:
			*f.raw = bytes.Clone(vals[k])
		default:
			*f.num = nums[k]
		}
	}
	return true
}
