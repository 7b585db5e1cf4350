package negotiation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

// ErrCorrupt means stored bytes are not a negotiation this version can
// resume.
var ErrCorrupt = errors.New("corrupt stored negotiation")

// persistVersion is bumped when the stored form changes incompatibly.
// Version 2 may leave out the offer or the agreement when the unanswered
// message carries the very same bytes (offerInOut, agreementInOut);
// version 1 records are still read.
const persistVersion = 2

type persisted struct {
	Version   int             `json:"v"`
	Role      Role            `json:"role"`
	State     State           `json:"state"`
	Pids      protocol.Pids   `json:"pids"`
	Peer      string          `json:"peer"`
	Callback  string          `json:"callback,omitempty"`
	Retry     persistedRetry  `json:"retry"`
	Offer     json.RawMessage `json:"offer,omitempty"`
	Purpose   string          `json:"purpose,omitempty"`
	Agreement json.RawMessage `json:"agreement,omitempty"`
	// OfferInOut and AgreementInOut (version 2): the offer or agreement
	// is the one Out.Msg carries, stored there only.
	OfferInOut     bool            `json:"offerInOut,omitempty"`
	AgreementInOut bool            `json:"agreementInOut,omitempty"`
	Pending        bool            `json:"pending,omitempty"`
	Code           protocol.Code   `json:"code,omitempty"`
	Reasons        []string        `json:"reasons,omitempty"`
	Seq            uint64          `json:"seq,omitempty"`
	Out            *resend.Pending `json:"out,omitempty"`
	Seen           resend.Seen     `json:"seen,omitempty"`
	LastProgress   time.Time       `json:"lastProgress,omitzero"`
}

type persistedRetry struct {
	Initial time.Duration `json:"initial"`
	Max     time.Duration `json:"max"`
	Timeout time.Duration `json:"timeout"`
	Idle    time.Duration `json:"idle,omitempty"`
	Final   time.Duration `json:"final"`
}

var stepFuncs = map[State]stepFunc{
	Initial: stepInitial, Requested: stepRequested, Offered: stepOffered, Accepted: stepAccepted,
	Agreed: stepAgreed, Verified: stepVerified, Finalized: stepFinalized, Terminated: stepTerminated,
}

// MarshalJSON returns the durable form of the negotiation: everything
// needed to resume after a restart, including the unanswered outgoing
// message and the answers already given. What Ready holds is not included:
// the driver persists before it sends, so after a restart an unsent message
// is simply resent at the next tick and an unsent answer is given again
// when the peer resends.
func (n *Negotiation) MarshalJSON() ([]byte, error) { return n.AppendJSON(nil) }

// AppendJSON appends the durable form of the negotiation (see
// MarshalJSON) to dst, so that a driver storing it inside a larger record
// writes it in place.
func (n *Negotiation) AppendJSON(dst []byte) ([]byte, error) {
	p := persisted{
		Version: persistVersion, Role: n.role, State: n.state, Pids: n.pids, Peer: n.peer,
		Callback: n.callback, Purpose: n.purpose, Pending: n.pending,
		Code: n.code, Reasons: n.reasons, Seen: n.seen, LastProgress: n.lastProgress,
		Retry: persistedRetry{Initial: n.retry.Initial, Max: n.retry.Max, Timeout: n.retry.Timeout, Idle: n.retry.Idle, Final: n.retry.FinalTimeout},
		Seq:   n.seq,
	}
	// The unanswered message usually carries the offer or agreement just
	// made or received (the request, the agreement, the verification):
	// storing it once, in the message, halves the record.
	offer, agreement := n.offer, n.agreement
	if n.out != nil {
		if o, a := payload(n.out.Msg); len(o) > 0 && bytes.Equal(o, offer) {
			offer, p.OfferInOut = nil, true
		} else if len(a) > 0 && bytes.Equal(a, agreement) {
			agreement, p.AgreementInOut = nil, true
		}
	}
	// The offer, the agreement and the unanswered message are most of the
	// bytes, and already JSON: they are spliced in as they are, where
	// encoding/json would check and compact them once more on every
	// persist. What is spliced here is checked here; the one the message
	// carries is checked by its wire form (protocol.Encode refuses a
	// policy that is not JSON). Anything not valid JSON takes
	// encoding/json's path, which refuses it as before.
	if (len(offer) > 0 && !json.Valid(offer)) || (len(agreement) > 0 && !json.Valid(agreement)) {
		p.Offer, p.Agreement, p.Out, p.OfferInOut, p.AgreementInOut = n.offer, n.agreement, n.out, false, false
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("persisting negotiation %s: %w", n.Pid(), err)
		}
		return append(dst, b...), nil
	}
	b, ok := p.appendOpen(dst)
	if !ok {
		pb, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("persisting negotiation %s: %w", n.Pid(), err)
		}
		b = append(dst, pb[:len(pb)-1]...) // without the closing brace; p always has members
	}
	var err error
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"offer", offer}, {"agreement", agreement}} {
		if len(f.raw) > 0 {
			b = append(append(append(append(b, ',', '"'), f.name...), '"', ':'), f.raw...)
		}
	}
	if n.out != nil {
		// The message keeps its wire form (resend.Pending.Wire): stored
		// at every step until answered, it is encoded once.
		if b, err = n.out.AppendJSON(append(b, `,"out":`...)); err != nil {
			return nil, fmt.Errorf("persisting negotiation %s: %w", n.Pid(), err)
		}
	}
	return append(b, '}'), nil
}

// appendOpen appends json.Marshal(p) without its closing brace to dst,
// for p without offer, agreement and unanswered message (AppendJSON
// splices those in itself), when its strings are plain (printable ASCII
// that json.Marshal writes as it is) and its time one MarshalJSON writes.
// For anything else it says false, and the caller takes json.Marshal,
// which writes it or refuses it as before. A negotiation is stored at
// every persisted step: reflection over p cost more than writing it.
func (p *persisted) appendOpen(dst []byte) ([]byte, bool) {
	if p.Offer != nil || p.Agreement != nil || p.Out != nil {
		return nil, false
	}
	for _, s := range [...]string{string(p.Role), string(p.State), p.Pids.ProviderPid, p.Pids.ConsumerPid,
		p.Peer, p.Callback, p.Purpose, string(p.Code)} {
		if !plainString(s) {
			return nil, false
		}
	}
	for _, r := range p.Reasons {
		if !plainString(r) {
			return nil, false
		}
	}
	for _, e := range p.Seen {
		if !plainString(e.Digest) || !plainString(e.State) {
			return nil, false
		}
	}
	b := strconv.AppendInt(append(dst, `{"v":`...), int64(p.Version), 10)
	b = appendMember(b, `,"role":`, string(p.Role))
	b = appendMember(b, `,"state":`, string(p.State))
	b = append(b, `,"pids":{`...)
	if p.Pids.ProviderPid != "" {
		b = appendMember(b, `"providerPid":`, p.Pids.ProviderPid)
	}
	if p.Pids.ConsumerPid != "" {
		if p.Pids.ProviderPid != "" {
			b = append(b, ',')
		}
		b = appendMember(b, `"consumerPid":`, p.Pids.ConsumerPid)
	}
	b = appendMember(append(b, '}'), `,"peer":`, p.Peer)
	if p.Callback != "" {
		b = appendMember(b, `,"callback":`, p.Callback)
	}
	r := p.Retry
	b = strconv.AppendInt(append(b, `,"retry":{"initial":`...), int64(r.Initial), 10)
	b = strconv.AppendInt(append(b, `,"max":`...), int64(r.Max), 10)
	b = strconv.AppendInt(append(b, `,"timeout":`...), int64(r.Timeout), 10)
	if r.Idle != 0 {
		b = strconv.AppendInt(append(b, `,"idle":`...), int64(r.Idle), 10)
	}
	b = strconv.AppendInt(append(b, `,"final":`...), int64(r.Final), 10)
	b = append(b, '}')
	if p.Purpose != "" {
		b = appendMember(b, `,"purpose":`, p.Purpose)
	}
	for _, f := range [...]struct {
		name string
		set  bool
	}{{`,"offerInOut":true`, p.OfferInOut}, {`,"agreementInOut":true`, p.AgreementInOut}, {`,"pending":true`, p.Pending}} {
		if f.set {
			b = append(b, f.name...)
		}
	}
	if p.Code != "" {
		b = appendMember(b, `,"code":`, string(p.Code))
	}
	if len(p.Reasons) > 0 {
		b = append(b, `,"reasons":[`...)
		for i, r := range p.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMember(b, "", r)
		}
		b = append(b, ']')
	}
	if p.Seq != 0 {
		b = strconv.AppendUint(append(b, `,"seq":`...), p.Seq, 10)
	}
	if len(p.Seen) > 0 {
		b = append(b, `,"seen":[`...)
		for i, e := range p.Seen {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendMember(append(b, '{'), `"digest":`, e.Digest)
			b = append(appendMember(b, `,"state":`, e.State), '}')
		}
		b = append(b, ']')
	}
	if !p.LastProgress.IsZero() {
		// What MarshalJSON writes between its quotes; a time it refuses
		// (a year beyond 9999, say) is left to json.Marshal's error.
		var err error
		if b, err = p.LastProgress.AppendText(append(b, `,"lastProgress":"`...)); err != nil {
			return nil, false
		}
		b = append(b, '"')
	}
	return b, true
}

// appendMember appends name (with its quotes, comma and colon) and the
// plain string s in quotes.
func appendMember(b []byte, name, s string) []byte {
	return append(append(append(append(b, name...), '"'), s...), '"')
}

// plainString reports whether json.Marshal writes s between quotes as it
// is: printable ASCII without the quote, the backslash, <, > and &.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// UnmarshalJSON restores a negotiation stored with MarshalJSON. Use
// Unmarshal for a fresh value.
func (n *Negotiation) UnmarshalJSON(b []byte) error {
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("restoring negotiation: %w: %w", ErrCorrupt, err)
	}
	if p.Version != persistVersion && p.Version != 1 {
		return fmt.Errorf("restoring negotiation: %w: version %d, want 1 to %d", ErrCorrupt, p.Version, persistVersion)
	}
	if p.OfferInOut || p.AgreementInOut {
		var o, a json.RawMessage
		if p.Out != nil {
			o, a = payload(p.Out.Msg)
		}
		switch {
		case p.OfferInOut && (len(o) == 0 || len(p.Offer) > 0):
			return fmt.Errorf("restoring negotiation: %w: offer neither stored nor in the unanswered message", ErrCorrupt)
		case p.AgreementInOut && (len(a) == 0 || len(p.Agreement) > 0):
			return fmt.Errorf("restoring negotiation: %w: agreement neither stored nor in the unanswered message", ErrCorrupt)
		case p.OfferInOut:
			p.Offer = o
		default:
			p.Agreement = a
		}
	}
	if p.Role != Consumer && p.Role != Provider {
		return fmt.Errorf("restoring negotiation: %w: role %q", ErrCorrupt, p.Role)
	}
	step, ok := stepFuncs[p.State]
	if !ok {
		return fmt.Errorf("restoring negotiation: %w: state %q", ErrCorrupt, p.State)
	}
	if ownPid(p.Role, p.Pids) == "" || p.Peer == "" {
		return fmt.Errorf("restoring negotiation: %w: own pid or peer missing", ErrCorrupt)
	}
	restored := Negotiation{
		role: p.Role, state: p.State, pids: p.Pids, peer: p.Peer, callback: p.Callback,
		retry: RetryPolicy{Initial: p.Retry.Initial, Max: p.Retry.Max, Timeout: p.Retry.Timeout, Idle: p.Retry.Idle, FinalTimeout: p.Retry.Final}.withDefaults(),
		offer: p.Offer, purpose: p.Purpose, agreement: p.Agreement, pending: p.Pending, code: p.Code, reasons: p.Reasons,
		seen: p.Seen, lastProgress: p.LastProgress, step: step, out: p.Out, seq: p.Seq,
	}
	*n = restored
	return nil
}

// payload returns the offer or the agreement msg carries, if any.
func payload(msg protocol.Message) (offer, agreement json.RawMessage) {
	switch m := msg.(type) {
	case *protocol.ContractRequestMessage:
		return m.Offer, nil
	case *protocol.ContractOfferMessage:
		return m.Offer, nil
	case *protocol.ContractAgreementMessage:
		return nil, m.Agreement
	case *protocol.ContractAgreementVerificationMessage:
		return nil, m.Agreement
	}
	return nil, nil
}

// Unmarshal restores a negotiation stored with Marshal.
func Unmarshal(b []byte) (*Negotiation, error) {
	n := new(Negotiation)
	if err := n.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return n, nil
}

// Marshal returns the durable form (see MarshalJSON).
func (n *Negotiation) Marshal() ([]byte, error) { return n.MarshalJSON() }
