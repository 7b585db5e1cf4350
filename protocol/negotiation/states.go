package negotiation

import (
	"fmt"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

// SenderRole returns the role that sends messages of m's type, or "" for
// types either side sends (terminations and answers). A node uses it to
// pick which of its negotiations (consumer or provider side) a message is
// for; the state machine uses it to refuse a message from the wrong party.
func SenderRole(m protocol.Message) Role {
	switch b := m.(type) {
	case *protocol.ContractRequestMessage, *protocol.ContractAgreementVerificationMessage:
		return Consumer
	case *protocol.ContractOfferMessage, *protocol.ContractAgreementMessage:
		return Provider
	case *protocol.ContractNegotiationEventMessage:
		if b.EventType == protocol.EventAccepted {
			return Consumer
		}
		return Provider
	}
	return ""
}

// invalid is the error for a peer message the current state does not take.
func (n *Negotiation) invalid(m Msg) error {
	return protocol.Errorf(protocol.CodeInvalidTransition, ErrInvalidTransition,
		"%s not allowed in state %s of the %s", describe(m.Body), n.state, n.role)
}

// notAllowed is the error for a local input the current state does not take.
func (n *Negotiation) notAllowed(m Msg) error {
	return fmt.Errorf("%s as %s in state %s: %w", m.Type, n.role, n.state, ErrNotAllowed)
}

// stepNonTerminal handles what every live state accepts: the peer's
// termination and a local termination. ok is false if m is neither.
func (n *Negotiation) stepNonTerminal(m Msg) (ok bool) {
	switch {
	case m.Type == MsgTerminate:
		code := m.Code
		if code == "" {
			code = protocol.CodeCancelled
		}
		n.becomeTerminated(m.Now, code, m.Reasons, "terminated here", true)
		return true
	case m.Type == MsgReceive:
		if t, isTerm := m.Body.(*protocol.ContractNegotiationTerminationMessage); isTerm {
			n.becomeTerminated(m.Now, t.Code, t.Reason, "terminated by peer", false)
			return true
		}
	}
	return false
}

func stepInitial(n *Negotiation, m Msg) error {
	switch {
	case n.role == Consumer && m.Type == MsgRequest:
		n.offer, n.purpose = m.Offer, m.Purpose
		n.becomeRequested("consumer requested offer")
		n.send(m.Now, &protocol.ContractRequestMessage{Pids: n.pids, Offer: m.Offer, CallbackAddress: n.callback, Purpose: m.Purpose}, Requested)
		return nil
	case n.role == Provider && m.Type == MsgReceive:
		req, ok := m.Body.(*protocol.ContractRequestMessage)
		if !ok {
			return n.invalid(m)
		}
		n.pids.ConsumerPid = req.ConsumerPid
		n.offer, n.purpose = req.Offer, req.Purpose
		n.becomeRequested("consumer requested offer")
		return nil
	case m.Type == MsgReceive:
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

func stepRequested(n *Negotiation, m Msg) error {
	if n.stepNonTerminal(m) {
		return nil
	}
	if n.role == Consumer {
		switch b := m.Body.(type) {
		case *protocol.ContractOfferMessage:
			n.offer = b.Offer
			n.becomeOffered("provider offered")
			return nil
		case *protocol.ContractAgreementMessage:
			n.agreement = b.Agreement
			n.becomeAgreed("provider agreed")
			return nil
		}
	} else if m.Type == MsgDecide {
		return n.decide(m, true)
	}
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

// decide applies the provider's verdict in REQUESTED (counterOK) or
// ACCEPTED (where DSP allows only agreeing or terminating).
func (n *Negotiation) decide(m Msg, counterOK bool) error {
	switch m.Verdict {
	case Agree:
		n.pending = false
		n.agreement = m.Agreement
		n.becomeAgreed("provider agreed")
		n.send(m.Now, &protocol.ContractAgreementMessage{Pids: n.pids, Agreement: m.Agreement}, Agreed)
	case CounterOffer:
		if !counterOK {
			return n.notAllowed(m)
		}
		n.pending = false
		n.offer = m.Offer
		n.becomeOffered("provider offered")
		n.send(m.Now, &protocol.ContractOfferMessage{Pids: n.pids, Offer: m.Offer}, Offered)
	case Refuse:
		code := m.Code
		if code == "" {
			code = protocol.CodeRefused
		}
		n.pending = false
		n.becomeTerminated(m.Now, code, m.Reasons, "provider refused", true)
	case Queue:
		if n.pending {
			return nil
		}
		n.pending = true
		n.record(n.state, "queued for manual approval", "", nil)
	}
	return nil
}

func stepOffered(n *Negotiation, m Msg) error {
	if n.stepNonTerminal(m) {
		return nil
	}
	if n.role == Consumer {
		switch m.Type {
		case MsgAccept:
			n.becomeAccepted("consumer accepted offer")
			n.send(m.Now, &protocol.ContractNegotiationEventMessage{Pids: n.pids, EventType: protocol.EventAccepted}, Accepted)
			return nil
		case MsgCounter:
			n.offer, n.purpose = m.Offer, m.Purpose
			n.becomeRequested("consumer counter-offered")
			n.send(m.Now, &protocol.ContractRequestMessage{Pids: n.pids, Offer: m.Offer, Purpose: m.Purpose}, Requested)
			return nil
		}
	} else {
		switch b := m.Body.(type) {
		case *protocol.ContractRequestMessage:
			if b.ProviderPid == "" {
				return n.invalid(m)
			}
			n.offer, n.purpose = b.Offer, b.Purpose
			n.becomeRequested("consumer counter-offered")
			return nil
		case *protocol.ContractNegotiationEventMessage:
			if b.EventType == protocol.EventAccepted {
				n.becomeAccepted("consumer accepted offer")
				return nil
			}
		}
	}
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

func stepAccepted(n *Negotiation, m Msg) error {
	if n.stepNonTerminal(m) {
		return nil
	}
	if n.role == Consumer {
		if b, ok := m.Body.(*protocol.ContractAgreementMessage); ok {
			n.agreement = b.Agreement
			n.becomeAgreed("provider agreed")
			return nil
		}
	} else if m.Type == MsgDecide {
		return n.decide(m, false)
	}
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

func stepAgreed(n *Negotiation, m Msg) error {
	if n.stepNonTerminal(m) {
		return nil
	}
	if n.role == Consumer {
		if m.Type == MsgVerify {
			n.agreement = m.Agreement
			n.becomeVerified("consumer verified agreement")
			n.send(m.Now, &protocol.ContractAgreementVerificationMessage{Pids: n.pids, Agreement: m.Agreement}, Verified)
			return nil
		}
	} else if b, ok := m.Body.(*protocol.ContractAgreementVerificationMessage); ok {
		if len(b.Agreement) > 0 {
			n.agreement = b.Agreement
		}
		n.becomeVerified("consumer verified agreement")
		return nil
	}
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

func stepVerified(n *Negotiation, m Msg) error {
	if n.stepNonTerminal(m) {
		return nil
	}
	if n.role == Consumer {
		if b, ok := m.Body.(*protocol.ContractNegotiationEventMessage); ok && b.EventType == protocol.EventFinalized {
			n.becomeFinalized("provider finalized")
			return nil
		}
	} else if m.Type == MsgFinalize {
		n.becomeFinalized("provider finalized")
		n.send(m.Now, &protocol.ContractNegotiationEventMessage{Pids: n.pids, EventType: protocol.EventFinalized}, Finalized)
		return nil
	}
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

func stepFinalized(n *Negotiation, m Msg) error {
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

// stepTerminated accepts the peer's termination once more: both sides may
// terminate at the same moment, and each must acknowledge the other's.
func stepTerminated(n *Negotiation, m Msg) error {
	if _, ok := m.Body.(*protocol.ContractNegotiationTerminationMessage); ok {
		return nil
	}
	if m.Type == MsgReceive {
		return n.invalid(m)
	}
	return n.notAllowed(m)
}

// The become functions each perform one transition: set the state and the
// step function, and record the transition for the driver's log.

func (n *Negotiation) becomeRequested(cause string) {
	n.transition(Requested, stepRequested, cause, "", nil)
}

func (n *Negotiation) becomeOffered(cause string) {
	n.transition(Offered, stepOffered, cause, "", nil)
}

func (n *Negotiation) becomeAccepted(cause string) {
	n.transition(Accepted, stepAccepted, cause, "", nil)
}

func (n *Negotiation) becomeAgreed(cause string) {
	n.transition(Agreed, stepAgreed, cause, "", nil)
}

func (n *Negotiation) becomeVerified(cause string) {
	n.transition(Verified, stepVerified, cause, "", nil)
}

func (n *Negotiation) becomeFinalized(cause string) {
	n.transition(Finalized, stepFinalized, cause, "", nil)
}

// becomeTerminated ends the negotiation. If tell is set the peer is sent a
// termination with the same code and reasons (and it is resent until
// answered or timed out, like any message).
func (n *Negotiation) becomeTerminated(now time.Time, code protocol.Code, reasons []string, cause string, tell bool) {
	n.code, n.reasons = code, append([]string(nil), reasons...)
	n.pending = false
	n.out = nil
	n.transition(Terminated, stepTerminated, cause, code, n.reasons)
	if tell {
		msg := &protocol.ContractNegotiationTerminationMessage{Pids: n.pidsOr(protocol.Pids{}), Code: code}
		if len(reasons) > 0 {
			msg.Reason = protocol.Reasons(append([]string(nil), reasons...))
		}
		n.send(now, msg, Terminated)
	}
}

func (n *Negotiation) transition(to State, step stepFunc, cause string, code protocol.Code, reasons []string) {
	if n.state == to {
		panic(fmt.Sprintf("negotiation %s: transition from %s to itself", n.Pid(), to))
	}
	n.record(to, cause, code, reasons)
	n.state = to
	n.step = step
}

// record logs one line: a transition, or (to == current state) an event
// such as "queued for manual approval" or "gave up resending".
func (n *Negotiation) record(to State, cause string, code protocol.Code, reasons []string) {
	n.rd.Transitions = append(n.rd.Transitions, Transition{From: n.state, To: to, Cause: cause, Code: code, Reasons: reasons})
	n.rd.MustPersist = true
}

// send queues msg for the peer and starts its resend schedule. The peer's
// answer must report state expect to settle it.
func (n *Negotiation) send(now time.Time, msg protocol.Message, expect State) {
	if s, ok := msg.(protocol.Sequenced); ok {
		n.seq++
		s.SetSeqNo(n.seq)
	}
	n.out = resend.Start(now, n.retry.schedule(), msg, string(expect), final(expect))
	n.rd.Messages = append(n.rd.Messages, msg)
	n.rd.MustPersist = true
}
