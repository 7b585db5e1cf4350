package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Context is the JSON-LD context every message is compacted against: the
// Dataspace Protocol 2025-1 context. Messages list it as the only (or one
// of the) @context entries.
const Context = "https://w3id.org/dspace/2025/1/context.jsonld"

// Decoding errors.
var (
	// ErrMalformedMessage means a frame body is not a well-formed DSP
	// message: not a JSON object, no DSP @context, a required property
	// missing or of the wrong type, an enum value out of range.
	ErrMalformedMessage = errors.New("malformed message")
	// ErrUnknownMessageType means @type names no message this package
	// knows. It is reported separately so that a newer peer's extra message
	// types can be told apart from garbage.
	ErrUnknownMessageType = errors.New("unknown message type")
)

// Message is one DSP message. The set is closed: the concrete types are the
// pointer types in this package (*ContractRequestMessage, ...).
type Message interface {
	// MessageType returns the DSP @type, e.g. "ContractRequestMessage".
	MessageType() string
	// PIDs returns the process ids the message carries.
	PIDs() Pids
	validate() error
}

// Pids are the two process ids of a negotiation or transfer process. Each
// side names the process by its own id and learns the other side's from the
// first answer.
type Pids struct {
	ProviderPid string `json:"providerPid,omitempty"`
	ConsumerPid string `json:"consumerPid,omitempty"`
}

// PIDs returns p; it lets every message type satisfy Message by embedding.
func (p Pids) PIDs() Pids { return p }

// Seq is a mimnode extension carried by every protocol message (not by
// the answers): each side numbers the messages it sends in a process 1, 2,
// 3, ..., and a resend carries the number of the original. It lets the
// receiver tell a resend (same message, same number: answered as before)
// from a new message that happens to have the same content (a second
// identical counter-offer, a second start after a suspension). The JSON key
// is an absolute IRI so that it stays valid JSON-LD; peers that do not send
// it are still understood, but identical messages from them count as
// resends.
type Seq struct {
	N uint64 `json:"urn:mimnode:seq,omitempty"`
}

// SeqNo returns the sequence number (0 if absent).
func (s *Seq) SeqNo() uint64 { return s.N }

// SetSeqNo sets the sequence number.
func (s *Seq) SetSeqNo(n uint64) { s.N = n }

// Sequenced is implemented by the protocol messages that carry Seq.
type Sequenced interface {
	Message
	SeqNo() uint64
	SetSeqNo(uint64)
}

// Reasons is the DSP "reason" array. The schema allows any JSON value as an
// item; strings are kept as they are and any other value as its compact JSON
// text, so that a reason is always printable.
type Reasons []string

// UnmarshalJSON accepts an array of arbitrary values.
func (r *Reasons) UnmarshalJSON(b []byte) error {
	var items []json.RawMessage
	if err := json.Unmarshal(b, &items); err != nil {
		return fmt.Errorf("reason must be an array: %w", err)
	}
	out := make(Reasons, 0, len(items))
	for _, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			out = append(out, s)
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, it); err != nil {
			return fmt.Errorf("reason item: %w", err)
		}
		out = append(out, buf.String())
	}
	*r = out
	return nil
}

// header is the part every message starts with.
type header struct {
	Context []string `json:"@context"`
	Type    string   `json:"@type"`
}

func hdr(typ string) header { return header{Context: []string{Context}, Type: typ} }

// newMessage returns an empty message of the given @type.
func newMessage(typ string) Message {
	switch typ {
	case TypeContractRequest:
		return new(ContractRequestMessage)
	case TypeContractOffer:
		return new(ContractOfferMessage)
	case TypeContractAgreement:
		return new(ContractAgreementMessage)
	case TypeContractAgreementVerification:
		return new(ContractAgreementVerificationMessage)
	case TypeContractNegotiationEvent:
		return new(ContractNegotiationEventMessage)
	case TypeContractNegotiationTermination:
		return new(ContractNegotiationTerminationMessage)
	case TypeContractNegotiation:
		return new(ContractNegotiation)
	case TypeContractNegotiationError:
		return new(ContractNegotiationError)
	case TypeTransferRequest:
		return new(TransferRequestMessage)
	case TypeTransferStart:
		return new(TransferStartMessage)
	case TypeTransferSuspension:
		return new(TransferSuspensionMessage)
	case TypeTransferCompletion:
		return new(TransferCompletionMessage)
	case TypeTransferTermination:
		return new(TransferTerminationMessage)
	case TypeTransferProcess:
		return new(TransferProcess)
	case TypeTransferError:
		return new(TransferError)
	}
	return nil
}

// Decode parses one frame body into its message. It checks what the DSP
// JSON Schema requires of that message type (required properties, enums,
// the callbackAddress/pid alternatives) and that @context includes Context;
// unknown extra properties are ignored, as JSON-LD allows. Errors wrap
// ErrMalformedMessage or ErrUnknownMessageType.
func Decode(body []byte) (Message, error) {
	// Most bodies are read in one pass: the header is picked out by hand
	// (quickHeader) and only a message that then decodes and validates is
	// returned that way. Anything else, every error included, goes through
	// decodeSlow, so errors and their order stay those of the two passes.
	if typ, ok := quickHeader(body); ok {
		if m := newMessage(typ); m != nil && (quickBody(body, m) || json.Unmarshal(body, m) == nil) && m.validate() == nil {
			return m, nil
		}
	}
	return decodeSlow(body)
}

// decodeSlow reads the header with encoding/json, then the whole message.
func decodeSlow(body []byte) (Message, error) {
	var h struct {
		Context json.RawMessage `json:"@context"`
		Type    json.RawMessage `json:"@type"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, fmt.Errorf("decoding message: %w: %w", ErrMalformedMessage, err)
	}
	if len(h.Context) == 0 {
		return nil, fmt.Errorf("decoding message: %w: no @context", ErrMalformedMessage)
	}
	var ctx []string
	if err := json.Unmarshal(h.Context, &ctx); err != nil {
		return nil, fmt.Errorf("decoding message: %w: @context must be an array of strings", ErrMalformedMessage)
	}
	found := false
	for _, c := range ctx {
		found = found || c == Context
	}
	if !found {
		return nil, fmt.Errorf("decoding message: %w: @context lacks %s", ErrMalformedMessage, Context)
	}
	var typ string
	if err := json.Unmarshal(h.Type, &typ); err != nil || typ == "" {
		return nil, fmt.Errorf("decoding message: %w: @type must be a non-empty string", ErrMalformedMessage)
	}
	m := newMessage(typ)
	if m == nil {
		return nil, fmt.Errorf("decoding message: %w: %q", ErrUnknownMessageType, typ)
	}
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w: %w", typ, ErrMalformedMessage, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("decoding %s: %w: %w", typ, ErrMalformedMessage, err)
	}
	return m, nil
}

// Encode checks m the way Decode would and returns its JSON-LD form,
// compacted against Context, ready for WriteFrame.
func Encode(m Message) ([]byte, error) { return AppendEncode(nil, m) }

// AppendEncode appends Encode(m) to dst and returns the extended slice,
// or Encode's error: a caller that only hashes the wire form (a received
// message's digest) encodes into a buffer it reuses.
func AppendEncode(dst []byte, m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("encoding message: %w: nil message", ErrMalformedMessage)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encoding %s: %w: %w", m.MessageType(), ErrMalformedMessage, err)
	}
	// The policy a message carries has just been checked: the common
	// messages are written without encoding/json when it is already
	// compact (encode.go).
	if b, ok := appendQuick(dst, m); ok {
		return b, nil
	}
	// Every message type writes itself with encoding/json, compact and
	// HTML-escaped, which is what json.Marshal would make of it; called
	// through json.Marshal, its output would be checked and compacted a
	// second time.
	var b []byte
	var err error
	if jm, ok := m.(json.Marshaler); ok {
		b, err = jm.MarshalJSON()
	} else {
		b, err = json.Marshal(m)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", m.MessageType(), err)
	}
	if dst == nil {
		return b, nil
	}
	return append(dst, b...), nil
}

// requireString reports a missing required string property.
func requireString(name, v string) error {
	if v == "" {
		return fmt.Errorf("missing %s", name)
	}
	return nil
}

// exactlyOne checks the DSP schemas' oneOf-required alternatives.
func exactlyOne(aName, a, bName, b string) error {
	switch {
	case a == "" && b == "":
		return fmt.Errorf("needs one of %s and %s", aName, bName)
	case a != "" && b != "":
		return fmt.Errorf("has both %s and %s; exactly one is allowed", aName, bName)
	}
	return nil
}

// policyKind is what policyObject requires of one kind of policy, and
// the policies of that kind it accepted lately. A negotiation checks the
// same offer or agreement several times on each side (encoded to send
// and to store, decoded, encoded again for its digest), and the check
// decodes the whole policy; it depends on the bytes alone, so a policy
// accepted once is accepted again without decoding.
type policyKind struct {
	wantType string
	required []string

	mu sync.Mutex
	ok map[string]struct{} // guarded by mu; accepted policies, by their bytes
}

// The kinds of policies messages carry.
var (
	offerKind         = &policyKind{wantType: "Offer"}
	targetedOfferKind = &policyKind{wantType: "Offer", required: []string{"target"}}
	agreementKind     = &policyKind{wantType: "Agreement", required: []string{"target", "assigner", "assignee"}}
)

// Bounds of policyKind.ok: policies up to maxRemembered bytes are
// remembered, up to rememberedPolicies of them (then all are forgotten).
const (
	maxRemembered      = 16 << 10
	rememberedPolicies = 256
)

func (k *policyKind) accepted(raw []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.ok[string(raw)]
	return ok
}

func (k *policyKind) remember(raw []byte) {
	if len(raw) > maxRemembered {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ok == nil || len(k.ok) >= rememberedPolicies {
		k.ok = make(map[string]struct{}, rememberedPolicies)
	}
	k.ok[string(raw)] = struct{}{}
}

// policyObject checks the parts of an ODRL policy (offer or agreement) that
// the DSP schema requires, as kind k. The rules themselves are left to
// package policy.
func policyObject(name string, raw json.RawMessage, k *policyKind) error {
	if len(raw) == 0 {
		return fmt.Errorf("missing %s", name)
	}
	if k.accepted(raw) {
		return nil
	}
	if err := checkPolicyObject(name, raw, k.wantType, k.required...); err != nil {
		return err
	}
	k.remember(raw)
	return nil
}

func checkPolicyObject(name string, raw json.RawMessage, wantType string, required ...string) error {
	if quickPolicyObject(raw, wantType, required) {
		return nil
	}
	return slowPolicyObject(name, raw, wantType, required...)
}

// quickPolicyObject reports whether slowPolicyObject accepts raw, for a
// policy it reads without encoding/json (which decodes the whole policy
// into maps, rules included): one ObjectMembers reads, the checked
// strings plain, the rule arrays of objects. It says false both for a
// policy slowPolicyObject refuses and for one it leaves to it (escapes,
// duplicates, nulls), so the errors stay slowPolicyObject's.
func quickPolicyObject(raw []byte, wantType string, required []string) bool {
	// Members checked: @type, @id, the rule kinds, then the required ones.
	names := [8]string{"@type", "@id", "permission", "prohibition", "obligation"}
	if len(required) > len(names)-5 {
		return false
	}
	n := 5 + copy(names[5:], required)
	var vals [len(names)][]byte
	if !ObjectMembers(raw, names[:n], vals[:n]) {
		return false
	}
	rules := 0
	for k, v := range vals[:n] {
		switch {
		case k <= 1 || k >= 5: // @type, @id, required: plain strings
			s, ok := plainValue(v)
			if !ok || len(s) == 0 || (k == 0 && string(s) != wantType) {
				return false
			}
		case v == nil:
		case quickObjects(v, 0) != len(v):
			return false
		case k != 4:
			rules++
		}
	}
	return rules > 0
}

// ObjectMembers reads the members named in names (each once at most) of
// raw, a JSON object, into vals: vals[i] is the value of names[i] as
// written, nil when absent. It reads by hand what encoding/json would
// decode whole, and only well-formed JSON whose member names are plain
// strings (printable ASCII, no escapes); for anything else, or a named
// member present twice, it says false and the caller takes encoding/json.
func ObjectMembers(raw []byte, names []string, vals [][]byte) bool {
	return objectMembers(raw, names, vals, false)
}

// objectMembers is ObjectMembers; with fold, it also says false for a
// member named as one of names in another case, which encoding/json
// would decode into that field (quickBody).
func objectMembers(raw []byte, names []string, vals [][]byte, fold bool) bool {
	clear(vals)
	if !json.Valid(raw) {
		return false
	}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return true
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return false
		}
		key, j, ok := plainString(raw, i)
		if !ok {
			return false
		}
		i = skipSpace(raw, skipSpace(raw, j)+1) // past the colon (the JSON is valid)
		end := skipValue(raw, i)
		if end < 0 {
			return false
		}
		if k := slices.Index(names, string(key)); k >= 0 {
			if vals[k] != nil {
				return false
			}
			vals[k] = raw[i:end:end]
		} else if fold && slices.ContainsFunc(names, func(n string) bool { return bytes.EqualFold(key, []byte(n)) }) {
			return false
		}
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return false
		}
		if raw[i] == '}' {
			return true
		}
		i = skipSpace(raw, i+1) // past the comma
	}
}

// PlainString returns the string v, a JSON value as written, when it is a
// string of printable ASCII without escapes; false for anything else.
func PlainString(v []byte) (string, bool) {
	s, ok := plainValue(v)
	return string(s), ok
}

// plainValue is PlainString without the copy.
func plainValue(v []byte) ([]byte, bool) {
	if len(v) == 0 || v[0] != '"' {
		return nil, false
	}
	s, end, ok := plainString(v, 0)
	if !ok || end != len(v) {
		return nil, false
	}
	return s, true
}

// quickObjects reads a non-empty array of objects at raw[i:], in
// well-formed JSON, and returns the index after it, or -1 for anything
// else.
func quickObjects(raw []byte, i int) int {
	if i >= len(raw) || raw[i] != '[' {
		return -1
	}
	for {
		i = skipSpace(raw, i+1) // past '[' or ','
		if i >= len(raw) || raw[i] != '{' {
			return -1
		}
		if i = skipValue(raw, i); i < 0 {
			return -1
		}
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return -1
		}
		if raw[i] == ']' {
			return i + 1
		}
	}
}

// slowPolicyObject is checkPolicyObject by encoding/json.
func slowPolicyObject(name string, raw json.RawMessage, wantType string, required ...string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return fmt.Errorf("%s must be an object", name)
	}
	var typ string
	if err := json.Unmarshal(obj["@type"], &typ); err != nil || typ != wantType {
		return fmt.Errorf("%s needs \"@type\": %q", name, wantType)
	}
	for _, key := range append([]string{"@id"}, required...) {
		var s string
		if err := json.Unmarshal(obj[key], &s); err != nil || s == "" {
			return fmt.Errorf("%s needs a non-empty string %q", name, key)
		}
	}
	rules := 0
	for _, key := range []string{"permission", "prohibition", "obligation"} {
		v, ok := obj[key]
		if !ok {
			continue
		}
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil || len(items) == 0 {
			return fmt.Errorf("%s.%s must be a non-empty array of objects", name, key)
		}
		if key != "obligation" {
			rules++
		}
	}
	if rules == 0 {
		return fmt.Errorf("%s needs a permission or a prohibition", name)
	}
	return nil
}
