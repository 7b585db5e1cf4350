package transfer

import (
	"fmt"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

// Transition is one line of the process's history, for the audit log.
type Transition struct {
	From, To State
	Cause    string
	// Code and Reasons are set for suspensions and terminations.
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

// Todo names the local input the process waits for.
type Todo string

// The todos.
const (
	TodoNone Todo = ""
	// TodoDecide (provider, REQUESTED): check the agreement's signatures,
	// that the peer is its consumer and the policy in the transfer scope;
	// Step MsgStart, or MsgTerminate with the refusal's code and reasons.
	TodoDecide Todo = "decide"
	// TodoTransfer (both, STARTED): move the data; Step MsgComplete when
	// done, or MsgSuspend/MsgTerminate.
	TodoTransfer Todo = "transfer"
)

// Todo returns the local input the process waits for.
func (p *Process) Todo() Todo {
	switch {
	case p.role == Provider && p.state == Requested:
		return TodoDecide
	case p.state == Started:
		return TodoTransfer
	}
	return TodoNone
}

// Ready is what the state machine produced since the last Advance; the
// driver handles it exactly as negotiation.Ready (persist, audit, reply,
// send, Advance, act on Todo, tick at NextTick).
type Ready struct {
	Transitions []Transition
	Messages    []protocol.Message
	Reply       protocol.Message
	MustPersist bool
	State       State
	Todo        Todo
}

// HasReady reports whether Ready has anything for the driver.
func (p *Process) HasReady() bool {
	return len(p.rd.Transitions) > 0 || len(p.rd.Messages) > 0 || p.rd.Reply != nil || p.rd.MustPersist
}

// Ready returns what was produced since the last Advance.
func (p *Process) Ready() Ready {
	rd := p.rd
	rd.State, rd.Todo = p.state, p.Todo()
	return rd
}

// Advance acknowledges the last Ready.
func (p *Process) Advance() { p.rd = Ready{} }

// NextTick returns when the driver should step the next MsgTick; zero if
// nothing is outstanding.
func (p *Process) NextTick() time.Time {
	if p.out == nil {
		return time.Time{}
	}
	return p.out.Next(p.retry.schedule())
}

func (p *Process) tick(now time.Time) {
	o := p.out
	if o == nil {
		return
	}
	switch o.Tick(now, p.retry.schedule()) {
	case resend.Resend:
		p.rd.Messages = append(p.rd.Messages, o.Msg)
		p.rd.MustPersist = true
	case resend.GiveUp:
		p.out, p.queue = nil, nil
		p.rd.MustPersist = true
		reason := o.GiveUpReason(p.peer, p.retry.schedule())
		if p.state.Terminal() {
			p.record(p.state, "gave up resending", "", []string{reason})
			return
		}
		p.becomeTerminated(now, protocol.CodeTimeout, []string{reason}, "peer unreachable", true)
	}
}
