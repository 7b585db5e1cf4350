package negotiation

import (
	"fmt"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

// Transition is one line of the negotiation's history: a state change, or
// an event that leaves the state as it is (From == To), such as a request
// queued for manual approval. The driver appends each to the node's
// hash-chained audit log.
type Transition struct {
	From, To State
	// Cause says what caused it, e.g. "provider agreed".
	Cause string
	// Code and Reasons are set for terminations.
	Code    protocol.Code
	Reasons []string
}

func (t Transition) String() string {
	s := fmt.Sprintf("%s -> %s: %s", t.From, t.To, t.Cause)
	if t.Code != "" {
		s += fmt.Sprintf(" [%s]", t.Code)
	}
	for _, r := range t.Reasons {
		s += fmt.Sprintf(" %q", r)
	}
	return s
}

// Todo names the local input the negotiation waits for.
type Todo string

// The todos.
const (
	// TodoNone: nothing local; waiting for the peer or finished.
	TodoNone Todo = ""
	// TodoDecide (provider, REQUESTED or ACCEPTED): evaluate the policy for
	// Offer() with the consumer's identity and purpose; Step a MsgDecide.
	TodoDecide Todo = "decide"
	// TodoApprove (provider, queued): a person must approve or reject;
	// Step a MsgDecide with Agree or Refuse (CodeRejected) when they do.
	TodoApprove Todo = "approve"
	// TodoChoose (consumer, OFFERED): accept the provider's offer, counter
	// it, or terminate.
	TodoChoose Todo = "choose"
	// TodoVerify (consumer, AGREED): check the provider's signature on
	// Agreement(), countersign it and Step MsgVerify (or terminate with
	// CodeInvalidAgreement).
	TodoVerify Todo = "verify"
	// TodoFinalize (provider, VERIFIED): check the consumer's
	// countersignature on Agreement() and Step MsgFinalize (or terminate
	// with CodeInvalidAgreement).
	TodoFinalize Todo = "finalize"
)

// Todo returns the local input the negotiation waits for.
func (n *Negotiation) Todo() Todo {
	switch {
	case n.role == Provider && (n.state == Requested || n.state == Accepted):
		if n.pending {
			return TodoApprove
		}
		return TodoDecide
	case n.role == Provider && n.state == Verified:
		return TodoFinalize
	case n.role == Consumer && n.state == Offered:
		return TodoChoose
	case n.role == Consumer && n.state == Agreed:
		return TodoVerify
	}
	return TodoNone
}

// Ready is what the state machine produced since the last Advance. The
// driver handles it in this order:
//
//  1. if MustPersist, store Marshal() (durably) — before anything leaves;
//  2. append Transitions to the audit log (same transaction if possible);
//  3. write Reply on the stream the last received message came on;
//  4. send each of Messages to the peer (a new stream each, reading the
//     peer's answer and stepping it back in as a MsgReceive);
//  5. call Advance;
//  6. act on Todo, and Step a MsgTick at NextTick.
type Ready struct {
	Transitions []Transition
	// Messages go to the peer, in order. Each expects an answer
	// (ContractNegotiation or ContractNegotiationError), which the driver
	// steps in as a MsgReceive from the peer.
	Messages []protocol.Message
	// Reply answers the message of the last MsgReceive: a
	// ContractNegotiation with the state after processing it, or a
	// ContractNegotiationError. Nil when the last input was not a peer
	// message or was itself an answer.
	Reply protocol.Message
	// MustPersist is set when the persisted form changed.
	MustPersist bool
	// State and Todo as after the collected inputs.
	State State
	Todo  Todo
}

// HasReady reports whether Ready has anything for the driver to do.
func (n *Negotiation) HasReady() bool {
	return len(n.rd.Transitions) > 0 || len(n.rd.Messages) > 0 || n.rd.Reply != nil || n.rd.MustPersist
}

// Ready returns what was produced since the last Advance. It does not
// clear it; Advance does.
func (n *Negotiation) Ready() Ready {
	rd := n.rd
	rd.State = n.state
	rd.Todo = n.Todo()
	return rd
}

// Wire returns the wire form of m (protocol.Encode) if m is the message
// the negotiation waits to have answered, else nil. That message is
// encoded once and kept, for MarshalJSON, which stores it, and for the
// driver, which sends it.
func (n *Negotiation) Wire(m protocol.Message) []byte {
	if n.out == nil || n.out.Msg != m {
		return nil
	}
	if b, err := n.out.Wire(); err == nil {
		return b
	}
	return nil
}

// Advance acknowledges that the last Ready was persisted and sent.
func (n *Negotiation) Advance() {
	n.rd = Ready{}
}

// NextTick returns when the driver should Step the next MsgTick: the next
// resend or give-up time, or the idle deadline. Zero means no tick is due
// (nothing outstanding and no idle timeout running).
func (n *Negotiation) NextTick() time.Time {
	var next time.Time
	if n.out != nil {
		next = n.out.Next(n.retry.schedule())
	}
	if d, ok := n.idleDeadline(); ok && (next.IsZero() || d.Before(next)) {
		next = d
	}
	return next
}

// final reports whether a message leading the peer to state s settles the
// outcome, and so is resent for RetryPolicy.FinalTimeout (24 hours) rather
// than Timeout. Once the consumer has countersigned (VERIFIED) or the
// provider has finalized, the peer may already hold the agreement as
// binding; and a termination the peer never hears of leaves it waiting.
// Giving up on these after two minutes could leave one side FINALIZED or
// waiting and the other TERMINATED.
func final(s State) bool { return s == Verified || s == Finalized || s == Terminated }

// waitingForPeer reports whether it is the peer's turn.
func (n *Negotiation) waitingForPeer() bool {
	// VERIFIED is left out on purpose: the provider resends FINALIZED until
	// it is answered, and giving up there would leave the consumer
	// TERMINATED while the provider holds a finalized agreement.
	if n.role == Consumer {
		return n.state == Requested || n.state == Accepted
	}
	return n.state == Offered || n.state == Agreed
}

func (n *Negotiation) idleDeadline() (time.Time, bool) {
	if n.retry.Idle <= 0 || n.out != nil || !n.waitingForPeer() || n.lastProgress.IsZero() {
		return time.Time{}, false
	}
	return n.lastProgress.Add(n.retry.Idle), true
}

// tick resends the outstanding message when its time has come, and gives
// up when the peer stayed silent for the whole retry timeout.
func (n *Negotiation) tick(now time.Time) {
	if o := n.out; o != nil {
		switch o.Tick(now, n.retry.schedule()) {
		case resend.Resend:
			n.rd.Messages = append(n.rd.Messages, o.Msg)
			n.rd.MustPersist = true
		case resend.GiveUp:
			n.out = nil
			n.rd.MustPersist = true
			reason := o.GiveUpReason(n.peer, n.retry.schedule())
			if n.state.Terminal() {
				n.record(n.state, "gave up resending", "", []string{reason})
				return
			}
			n.becomeTerminated(now, protocol.CodeTimeout, []string{reason}, "peer unreachable", true)
		}
		return
	}
	if d, ok := n.idleDeadline(); ok && !now.Before(d) {
		reason := fmt.Sprintf("no move from %s for %s in state %s", n.peer, n.retry.Idle, n.state)
		n.becomeTerminated(now, protocol.CodeTimeout, []string{reason}, "peer idle", true)
	}
}
