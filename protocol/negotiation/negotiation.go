package negotiation

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

// Errors returned for local misuse. A bad message from the peer is never
// one of these: it is a *protocol.Error wrapping ErrInvalidTransition,
// ErrWrongParty or ErrUnknownNegotiation, and is also answered (Ready.Reply).
var (
	// ErrInvalidTransition: the peer's message is not allowed in the
	// current state. Wrapped by the *protocol.Error Step returns.
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrWrongParty: the message comes from a peer other than the
	// counter-party, or is one only this side's own role sends.
	ErrWrongParty = errors.New("wrong party")
	// ErrUnknownNegotiation: the message's pids do not name this
	// negotiation.
	ErrUnknownNegotiation = errors.New("unknown negotiation")
	// ErrNotAllowed: a local input (accept, decide, terminate, ...) that
	// this role or state does not take, e.g. MsgAccept while REQUESTED.
	ErrNotAllowed = errors.New("input not allowed now")
	// ErrBadInput: a local input lacks what it needs (no time, no offer,
	// no agreement, a nil message).
	ErrBadInput = errors.New("bad input")
	// ErrReplyPending: a peer message was stepped while the answer to the
	// previous one was still in Ready. Take Ready and Advance first.
	ErrReplyPending = errors.New("reply to previous message not taken")
	// ErrBadConfig: NewConsumer/NewProvider got an incomplete Config.
	ErrBadConfig = errors.New("bad negotiation config")
)

// Role is the side of the negotiation this value plays.
type Role string

// The two roles.
const (
	Consumer Role = "consumer"
	Provider Role = "provider"
)

// State is a DSP contract-negotiation state, plus Initial for a
// negotiation that has not yet sent or received its first message.
type State string

// The states. All but Initial are the DSP names and appear on the wire.
const (
	Initial    State = "INITIAL"
	Requested  State = "REQUESTED"
	Offered    State = "OFFERED"
	Accepted   State = "ACCEPTED"
	Agreed     State = "AGREED"
	Verified   State = "VERIFIED"
	Finalized  State = "FINALIZED"
	Terminated State = "TERMINATED"
)

// Terminal reports whether no transition leaves s.
func (s State) Terminal() bool { return s == Finalized || s == Terminated }

// RetryPolicy says how long to wait for the peer's answer to a message
// before sending it again, and when to give up.
type RetryPolicy struct {
	// Initial is the wait before the first resend; it doubles after each
	// resend up to Max. Defaults: 500ms and 30s.
	Initial, Max time.Duration
	// Timeout is how long after the first send an unanswered message is
	// given up; the negotiation then terminates with CodeTimeout. Default
	// two minutes.
	Timeout time.Duration
	// FinalTimeout replaces Timeout for the messages that settle the
	// outcome (verification, FINALIZED, termination). Default 24 hours.
	FinalTimeout time.Duration
	// Idle, if set, terminates a negotiation (CodeTimeout) whose peer made
	// no move for this long while it was the peer's turn. Zero (default)
	// waits for ever, which suits providers with manual approval.
	Idle time.Duration
}

func (r RetryPolicy) withDefaults() RetryPolicy {
	d := r.schedule().WithDefaults()
	r.Initial, r.Max, r.Timeout, r.FinalTimeout = d.Initial, d.Max, d.Timeout, d.FinalTimeout
	return r
}

func (r RetryPolicy) schedule() resend.Policy {
	return resend.Policy{Initial: r.Initial, Max: r.Max, Timeout: r.Timeout, FinalTimeout: r.FinalTimeout}
}

// Config describes a new negotiation.
type Config struct {
	Role Role
	// Pid is this side's process id (consumerPid for a consumer,
	// providerPid for a provider); the driver generates it, e.g. a
	// urn:uuid, so that the state machine needs no randomness.
	Pid string
	// Peer is the counter-party's identity (its libp2p peer ID). Messages
	// from anyone else are refused with CodeWrongParty.
	Peer string
	// CallbackAddress is the consumer's own address, sent in its first
	// ContractRequestMessage. Unused by providers.
	CallbackAddress string
	Retry           RetryPolicy
}

// MsgType says what a Msg is: a message from the peer, a tick, or one of
// the local decisions the driver makes on the state machine's behalf.
type MsgType int

// The inputs. Each names the role and states that accept it.
const (
	// MsgReceive: Body arrived from From. Both roles, every state.
	MsgReceive MsgType = iota + 1
	// MsgRequest: consumer, INITIAL. Ask for Offer; sends the first
	// ContractRequestMessage.
	MsgRequest
	// MsgCounter: consumer, OFFERED. Answer the provider's offer with a
	// different Offer (a new ContractRequestMessage).
	MsgCounter
	// MsgAccept: consumer, OFFERED. Accept the provider's offer.
	MsgAccept
	// MsgVerify: consumer, AGREED. The driver has checked the provider's
	// agreement and signature and countersigned; Agreement is the
	// countersigned document.
	MsgVerify
	// MsgDecide: provider, REQUESTED or ACCEPTED. The outcome of the policy
	// evaluation or of a person: Verdict, with Agreement, Offer or
	// Code/Reasons as the verdict needs.
	MsgDecide
	// MsgFinalize: provider, VERIFIED. The driver has checked the
	// consumer's countersignature.
	MsgFinalize
	// MsgTerminate: both roles, any non-terminal state. End with Code and
	// Reasons.
	MsgTerminate
	// MsgTick: both roles, every state. Time passed; resend or give up.
	MsgTick
)

var msgTypeNames = map[MsgType]string{
	MsgReceive: "receive", MsgRequest: "request", MsgCounter: "counter", MsgAccept: "accept",
	MsgVerify: "verify", MsgDecide: "decide", MsgFinalize: "finalize", MsgTerminate: "terminate", MsgTick: "tick",
}

func (t MsgType) String() string {
	if s, ok := msgTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("MsgType(%d)", int(t))
}

// Verdict is the provider's decision on a request.
type Verdict int

// The verdicts.
const (
	// Agree: send Msg.Agreement (already signed by the provider).
	Agree Verdict = iota + 1
	// CounterOffer: send Msg.Offer instead of agreeing (REQUESTED only).
	CounterOffer
	// Refuse: terminate with Msg.Code (CodeRefused, CodeRejected) and
	// Msg.Reasons, e.g. the failed policy constraints.
	Refuse
	// Queue: a person must decide (manual approval). The negotiation stays
	// REQUESTED and Pending reports true until a later MsgDecide.
	Queue
)

// Msg is one input to Step.
type Msg struct {
	Type MsgType
	// Now is the driver's clock; required for every input, because any of
	// them may send a message whose retry schedule starts now.
	Now time.Time
	// From and Body: MsgReceive.
	From string
	Body protocol.Message
	// Offer: MsgRequest, MsgCounter, MsgDecide with CounterOffer.
	Offer json.RawMessage
	// Purpose: MsgRequest, MsgCounter (optional): the purpose the consumer
	// states, sent with the request for the provider's policy.
	Purpose string
	// Agreement: MsgVerify, MsgDecide with Agree.
	Agreement json.RawMessage
	// Verdict: MsgDecide.
	Verdict Verdict
	// Code and Reasons: MsgTerminate, MsgDecide with Refuse.
	Code    protocol.Code
	Reasons []string
}

// Negotiation is one contract negotiation seen from one side. It is not
// safe for concurrent use; the driver serialises Step, Ready and Advance per
// negotiation.
type Negotiation struct {
	role     Role
	state    State
	pids     protocol.Pids
	peer     string
	callback string
	retry    RetryPolicy

	offer     json.RawMessage // latest offer requested or offered
	purpose   string          // purpose the consumer stated with its latest request
	agreement json.RawMessage // latest agreement (provider-signed, then countersigned)
	pending   bool            // provider: queued for a person
	code      protocol.Code   // why it terminated
	reasons   []string

	seq          uint64          // number of the last protocol message we sent
	out          *resend.Pending // our last message not yet answered
	seen         resend.Seen     // peer messages already answered, for idempotent resends
	lastProgress time.Time       // last time the peer moved or answered

	step stepFunc
	rd   Ready // collected since the last Advance; not persisted
}

type stepFunc func(n *Negotiation, m Msg) error

// NewConsumer returns a consumer-side negotiation in state INITIAL. Start it
// with a MsgRequest.
func NewConsumer(cfg Config) (*Negotiation, error) {
	cfg.Role = Consumer
	if cfg.CallbackAddress == "" {
		return nil, fmt.Errorf("creating consumer negotiation: %w: CallbackAddress is empty", ErrBadConfig)
	}
	return newNegotiation(cfg)
}

// NewProvider returns a provider-side negotiation in state INITIAL. Step the
// consumer's first ContractRequestMessage into it.
func NewProvider(cfg Config) (*Negotiation, error) {
	cfg.Role = Provider
	return newNegotiation(cfg)
}

func newNegotiation(cfg Config) (*Negotiation, error) {
	if cfg.Pid == "" || cfg.Peer == "" {
		return nil, fmt.Errorf("creating %s negotiation: %w: Pid and Peer are required", cfg.Role, ErrBadConfig)
	}
	n := &Negotiation{role: cfg.Role, peer: cfg.Peer, callback: cfg.CallbackAddress, retry: cfg.Retry.withDefaults()}
	if cfg.Role == Consumer {
		n.pids.ConsumerPid = cfg.Pid
	} else {
		n.pids.ProviderPid = cfg.Pid
	}
	n.state = Initial
	n.step = stepInitial
	return n, nil
}

// Role returns the side this negotiation plays.
func (n *Negotiation) Role() Role { return n.role }

// State returns the current state.
func (n *Negotiation) State() State { return n.state }

// Pids returns both process ids; the other side's is empty until learnt.
func (n *Negotiation) Pids() protocol.Pids { return n.pids }

// Pid returns this side's own process id.
func (n *Negotiation) Pid() string {
	if n.role == Consumer {
		return n.pids.ConsumerPid
	}
	return n.pids.ProviderPid
}

// Peer returns the counter-party.
func (n *Negotiation) Peer() string { return n.peer }

// Offer returns the latest offer requested or offered (nil before any).
func (n *Negotiation) Offer() json.RawMessage { return n.offer }

// Purpose returns the purpose the consumer stated with its latest request
// ("" if none): the provider's policy evaluates it in the negotiation scope.
func (n *Negotiation) Purpose() string { return n.purpose }

// Agreement returns the latest agreement: the provider-signed one from
// AGREED, the countersigned one from VERIFIED (if the consumer sent it).
func (n *Negotiation) Agreement() json.RawMessage { return n.agreement }

// ForgetTerms drops the offer and the agreement of a FINALIZED
// negotiation, from memory and from what Marshal stores from now on. A
// finished negotiation needs neither (resends of messages it answered are
// answered from their digests), and a driver that stores the agreement
// on its own would otherwise store it twice at every later write. It does
// nothing in any other state.
func (n *Negotiation) ForgetTerms() {
	if n.state == Finalized {
		n.offer, n.agreement = nil, nil
	}
}

// Pending reports whether a provider-side request waits for a person.
func (n *Negotiation) Pending() bool { return n.pending }

// Termination returns why the negotiation terminated (zero values unless
// TERMINATED).
func (n *Negotiation) Termination() (protocol.Code, []string) { return n.code, n.reasons }

// Step feeds one input to the state machine. For a MsgReceive, the answer
// to send back to the peer is in Ready().Reply whatever the outcome; a
// message the state machine refuses also returns a *protocol.Error (with
// the code of the answer) and changes nothing else. Errors for local inputs
// wrap ErrNotAllowed or ErrBadInput and also change nothing.
func (n *Negotiation) Step(m Msg) error {
	if m.Now.IsZero() {
		return fmt.Errorf("stepping %s: %w: Now is zero", m.Type, ErrBadInput)
	}
	switch m.Type {
	case MsgReceive:
		return n.receive(m)
	case MsgTick:
		n.tick(m.Now)
		return nil
	case MsgRequest, MsgCounter, MsgAccept, MsgVerify, MsgDecide, MsgFinalize, MsgTerminate:
		if err := n.checkLocal(m); err != nil {
			return err
		}
		return n.step(n, m)
	}
	return fmt.Errorf("stepping: %w: unknown input type %d", ErrBadInput, int(m.Type))
}

// checkLocal rejects local inputs that lack what they carry, before any
// state function looks at them.
func (n *Negotiation) checkLocal(m Msg) error {
	switch {
	case (m.Type == MsgRequest || m.Type == MsgCounter) && len(m.Offer) == 0:
		return fmt.Errorf("%s: %w: no offer", m.Type, ErrBadInput)
	case m.Type == MsgVerify && len(m.Agreement) == 0:
		return fmt.Errorf("%s: %w: no agreement", m.Type, ErrBadInput)
	case m.Type == MsgDecide && m.Verdict == Agree && len(m.Agreement) == 0:
		return fmt.Errorf("%s: %w: Agree without an agreement", m.Type, ErrBadInput)
	case m.Type == MsgDecide && m.Verdict == CounterOffer && len(m.Offer) == 0:
		return fmt.Errorf("%s: %w: CounterOffer without an offer", m.Type, ErrBadInput)
	case m.Type == MsgDecide && (m.Verdict < Agree || m.Verdict > Queue):
		return fmt.Errorf("%s: %w: unknown verdict %d", m.Type, ErrBadInput, int(m.Verdict))
	}
	return nil
}

// receive handles a message from the peer: answers to our own messages,
// resends of messages already answered, and new messages for the state
// function.
func (n *Negotiation) receive(m Msg) error {
	if m.Body == nil {
		return fmt.Errorf("receiving: %w: nil message", ErrBadInput)
	}
	if n.rd.Reply != nil {
		return fmt.Errorf("receiving %s: %w", m.Body.MessageType(), ErrReplyPending)
	}
	if m.From != n.peer {
		err := protocol.Errorf(protocol.CodeWrongParty, ErrWrongParty,
			"%s is not the counter-party of negotiation %s", m.From, n.Pid())
		if isAnswer(m.Body) {
			return err // answers are never answered
		}
		return n.refuse(m.Body, err)
	}
	switch body := m.Body.(type) {
	case *protocol.ContractNegotiation:
		if n.checkPids(body) == nil {
			n.answered(body, m.Now)
		}
		return nil
	case *protocol.ContractNegotiationError:
		if n.checkPids(body) == nil {
			n.answeredWithError(body, m.Now)
		}
		return nil
	}
	// A resend of a message already answered gets the same answer. This
	// comes before the pid check: the consumer's first request carries no
	// providerPid, and its resend must still be recognised.
	digest, err := resend.Digest(m.Body)
	if err != nil {
		return n.refuse(m.Body, protocol.Errorf(protocol.CodeMalformedMessage, err, "cannot encode message"))
	}
	if s, ok := n.seen.Lookup(digest); ok {
		n.rd.Reply = n.ack(State(s))
		return nil
	}
	if err := n.checkPids(m.Body); err != nil {
		return n.refuse(m.Body, err)
	}
	if sender := SenderRole(m.Body); sender == n.role {
		return n.refuse(m.Body, protocol.Errorf(protocol.CodeWrongParty, ErrWrongParty,
			"%s is sent by the %s, and this side is the %s", describe(m.Body), sender, n.role))
	}
	prev := n.out
	if err := n.step(n, m); err != nil {
		return n.refuse(m.Body, err)
	}
	// The peer moved: whatever we sent before has been processed or is
	// moot, so stop resending it (a message the state function just queued
	// is a new one and stays).
	if n.out == prev {
		n.out = nil
	}
	n.learnPids(m.Body.PIDs())
	n.lastProgress = m.Now
	n.seen = n.seen.Add(digest, string(n.state))
	n.rd.MustPersist = true
	n.rd.Reply = n.ack(n.state)
	return nil
}

// refuse answers m with err and returns it.
func (n *Negotiation) refuse(m protocol.Message, err error) error {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		pe = &protocol.Error{Code: protocol.CodeInternal, Err: err, Reasons: []string{err.Error()}}
	}
	reply := protocol.NegotiationErrorFor(m, pe)
	// Our own pids are authoritative in the answer when the message named
	// this negotiation.
	if n.Pid() == ownPid(n.role, m.PIDs()) {
		reply.Pids = n.pidsOr(m.PIDs())
	}
	n.rd.Reply = reply
	return pe
}

func (n *Negotiation) pidsOr(p protocol.Pids) protocol.Pids {
	out := n.pids
	if out.ConsumerPid == "" {
		out.ConsumerPid = p.ConsumerPid
	}
	if out.ProviderPid == "" {
		out.ProviderPid = p.ProviderPid
	}
	if out.ConsumerPid == "" {
		out.ConsumerPid = protocol.UnknownPid
	}
	if out.ProviderPid == "" {
		out.ProviderPid = protocol.UnknownPid
	}
	return out
}

func (n *Negotiation) ack(s State) *protocol.ContractNegotiation {
	return &protocol.ContractNegotiation{Pids: n.pidsOr(protocol.Pids{}), State: string(s)}
}

func ownPid(r Role, p protocol.Pids) string {
	if r == Consumer {
		return p.ConsumerPid
	}
	return p.ProviderPid
}

// checkPids makes sure the message names this negotiation: our own pid must
// match, and the other side's too once we know it. The provider's first
// request carries no providerPid.
func (n *Negotiation) checkPids(m protocol.Message) error {
	p := m.PIDs()
	own := ownPid(n.role, p)
	first := n.role == Provider && n.state == Initial
	if first {
		if p.ProviderPid != "" {
			return protocol.Errorf(protocol.CodeUnknownNegotiation, ErrUnknownNegotiation,
				"providerPid %s is not known here", p.ProviderPid)
		}
		return nil
	}
	if own != n.Pid() {
		return protocol.Errorf(protocol.CodeUnknownNegotiation, ErrUnknownNegotiation,
			"%s pid %q does not match negotiation %s", n.role, own, n.Pid())
	}
	other, otherName := p.ProviderPid, "providerPid"
	known := n.pids.ProviderPid
	if n.role == Provider {
		other, otherName, known = p.ConsumerPid, "consumerPid", n.pids.ConsumerPid
	}
	if known != "" && other != known {
		return protocol.Errorf(protocol.CodeUnknownNegotiation, ErrUnknownNegotiation,
			"%s %q does not match negotiation %s (%s)", otherName, other, n.Pid(), known)
	}
	return nil
}

func (n *Negotiation) learnPids(p protocol.Pids) {
	if n.pids.ConsumerPid == "" && p.ConsumerPid != "" {
		n.pids.ConsumerPid = p.ConsumerPid
		n.rd.MustPersist = true
	}
	if n.pids.ProviderPid == "" && p.ProviderPid != "" {
		n.pids.ProviderPid = p.ProviderPid
		n.rd.MustPersist = true
	}
}

// answered handles the peer's ContractNegotiation answer. It settles our
// outstanding message only if it reports the state that message leads to:
// a late answer to an older message must not cancel the resend of a newer
// one.
func (n *Negotiation) answered(a *protocol.ContractNegotiation, now time.Time) {
	if n.out == nil || a.State != n.out.Expect {
		return
	}
	n.out = nil
	n.learnPids(a.Pids)
	n.lastProgress = now
	n.rd.MustPersist = true
}

// answeredWithError handles the peer's ContractNegotiationError answer to
// our outstanding message. Retryable codes leave the resend schedule alone.
// A final refusal means the two sides disagree about the negotiation; the
// only way back to one state is to end it, so a live negotiation terminates
// (telling the peer) and a finished one stops resending.
func (n *Negotiation) answeredWithError(e *protocol.ContractNegotiationError, now time.Time) {
	if n.out == nil || e.Code.Retryable() {
		return
	}
	refused := n.out.Msg.MessageType()
	n.out = nil
	n.lastProgress = now
	n.rd.MustPersist = true
	if n.state.Terminal() {
		return
	}
	reasons := append([]string{fmt.Sprintf("peer refused %s with %s", refused, e.Code)}, e.Reason...)
	n.becomeTerminated(now, protocol.CodePeerRejected, reasons, "peer refused our message", true)
}

func isAnswer(m protocol.Message) bool {
	switch m.(type) {
	case *protocol.ContractNegotiation, *protocol.ContractNegotiationError:
		return true
	}
	return false
}

func describe(m protocol.Message) string {
	if e, ok := m.(*protocol.ContractNegotiationEventMessage); ok {
		return m.MessageType() + ":" + e.EventType
	}
	return m.MessageType()
}
