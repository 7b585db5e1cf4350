package transfer

import (
	"fmt"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

func describe(m protocol.Message) string { return m.MessageType() }

func (p *Process) invalid(m Msg) error {
	return protocol.Errorf(protocol.CodeInvalidTransition, ErrInvalidTransition,
		"%s not allowed in state %s of the %s", describe(m.Body), p.state, p.role)
}

func (p *Process) notAllowed(m Msg) error {
	return fmt.Errorf("%s as %s in state %s: %w", m.Type, p.role, p.state, ErrNotAllowed)
}

func (p *Process) reject(m Msg) error {
	if m.Type == MsgReceive {
		return p.invalid(m)
	}
	return p.notAllowed(m)
}

// stepNonTerminal handles terminations, which every live state takes from
// either side.
func (p *Process) stepNonTerminal(m Msg) bool {
	switch {
	case m.Type == MsgTerminate:
		code := m.Code
		if code == "" {
			code = protocol.CodeCancelled
		}
		p.becomeTerminated(m.Now, code, m.Reasons, "terminated here", true)
		return true
	case m.Type == MsgReceive:
		if t, ok := m.Body.(*protocol.TransferTerminationMessage); ok {
			p.becomeTerminated(m.Now, t.Code, t.Reason, "terminated by peer", false)
			return true
		}
	}
	return false
}

func stepInitial(p *Process, m Msg) error {
	switch {
	case p.role == Consumer && m.Type == MsgRequest:
		p.agreementID, p.format = m.AgreementID, m.Format
		p.becomeRequested("consumer requested transfer")
		p.send(m.Now, &protocol.TransferRequestMessage{Pids: p.pids, AgreementID: m.AgreementID, Format: m.Format, CallbackAddress: p.callback}, Requested)
		return nil
	case p.role == Provider && m.Type == MsgReceive:
		req, ok := m.Body.(*protocol.TransferRequestMessage)
		if !ok {
			return p.invalid(m)
		}
		p.pids.ConsumerPid = req.ConsumerPid
		p.agreementID, p.format = req.AgreementID, req.Format
		p.becomeRequested("consumer requested transfer")
		return nil
	}
	return p.reject(m)
}

func stepRequested(p *Process, m Msg) error {
	if p.stepNonTerminal(m) {
		return nil
	}
	switch {
	case p.role == Provider && m.Type == MsgStart:
		p.dataAddress = m.DataAddress
		p.becomeStarted("provider started transfer")
		p.send(m.Now, &protocol.TransferStartMessage{Pids: p.pids, DataAddress: m.DataAddress}, Started)
		return nil
	case p.role == Consumer && m.Type == MsgReceive:
		if s, ok := m.Body.(*protocol.TransferStartMessage); ok {
			p.dataAddress = s.DataAddress
			p.becomeStarted("provider started transfer")
			return nil
		}
	}
	return p.reject(m)
}

func stepStarted(p *Process, m Msg) error {
	if p.stepNonTerminal(m) {
		return nil
	}
	switch m.Type {
	case MsgSuspend:
		p.code, p.reasons = m.Code, append([]string(nil), m.Reasons...)
		p.becomeSuspended("suspended here")
		msg := &protocol.TransferSuspensionMessage{Pids: p.pids, Code: m.Code}
		if len(m.Reasons) > 0 {
			msg.Reason = protocol.Reasons(append([]string(nil), m.Reasons...))
		}
		p.send(m.Now, msg, Suspended)
		return nil
	case MsgComplete:
		p.becomeCompleted("completed here")
		p.send(m.Now, &protocol.TransferCompletionMessage{Pids: p.pids}, Completed)
		return nil
	case MsgReceive:
		switch b := m.Body.(type) {
		case *protocol.TransferSuspensionMessage:
			p.code, p.reasons = b.Code, append([]string(nil), b.Reason...)
			p.becomeSuspended("suspended by peer")
			return nil
		case *protocol.TransferCompletionMessage:
			p.becomeCompleted("completed by peer")
			return nil
		}
	}
	return p.reject(m)
}

// stepSuspended: either side may resume with a start message (DSP lets
// the consumer restart a suspended transfer too); completing a suspended
// transfer is not allowed (TCK TP:03-03, TP_C:03-03).
func stepSuspended(p *Process, m Msg) error {
	if p.stepNonTerminal(m) {
		return nil
	}
	switch m.Type {
	case MsgStart:
		p.dataAddress = m.DataAddress
		p.becomeStarted("resumed here")
		p.send(m.Now, &protocol.TransferStartMessage{Pids: p.pids, DataAddress: m.DataAddress}, Started)
		return nil
	case MsgReceive:
		if s, ok := m.Body.(*protocol.TransferStartMessage); ok {
			p.dataAddress = s.DataAddress
			p.becomeStarted("resumed by peer")
			return nil
		}
	}
	return p.reject(m)
}

func stepCompleted(p *Process, m Msg) error { return p.reject(m) }

// stepTerminated acknowledges a termination again: both sides may
// terminate at once.
func stepTerminated(p *Process, m Msg) error {
	if _, ok := m.Body.(*protocol.TransferTerminationMessage); ok {
		return nil
	}
	return p.reject(m)
}

func (p *Process) becomeRequested(cause string) { p.transition(Requested, stepRequested, cause) }
func (p *Process) becomeStarted(cause string)   { p.transition(Started, stepStarted, cause) }
func (p *Process) becomeSuspended(cause string) { p.transition(Suspended, stepSuspended, cause) }
func (p *Process) becomeCompleted(cause string) { p.transition(Completed, stepCompleted, cause) }

// becomeTerminated ends the process; with tell, the peer is sent a
// termination with the same code and reasons.
func (p *Process) becomeTerminated(now time.Time, code protocol.Code, reasons []string, cause string, tell bool) {
	p.code, p.reasons = code, append([]string(nil), reasons...)
	p.out, p.queue = nil, nil // a termination supersedes whatever was pending
	p.record(Terminated, cause, code, p.reasons)
	p.state, p.step = Terminated, stepTerminated
	if tell {
		msg := &protocol.TransferTerminationMessage{Pids: p.pidsOr(protocol.Pids{}), Code: code}
		if len(reasons) > 0 {
			msg.Reason = protocol.Reasons(append([]string(nil), reasons...))
		}
		p.send(now, msg, Terminated)
	}
}

func (p *Process) transition(to State, step stepFunc, cause string) {
	if p.state == to {
		panic(fmt.Sprintf("transfer %s: transition from %s to itself", p.Pid(), to))
	}
	code, reasons := protocol.Code(""), []string(nil)
	if to == Suspended {
		code, reasons = p.code, p.reasons
	}
	p.record(to, cause, code, reasons)
	p.state, p.step = to, step
}

func (p *Process) record(to State, cause string, code protocol.Code, reasons []string) {
	p.rd.Transitions = append(p.rd.Transitions, Transition{From: p.state, To: to, Cause: cause, Code: code, Reasons: reasons})
	p.rd.MustPersist = true
}

// send sends msg, or queues it behind the message in flight. Completions
// and terminations are final (resent for FinalTimeout): a side that gave up
// on one early would stay COMPLETED or TERMINATED while the other, never
// told, waits. Messages queued ahead of a final one become final too, since
// it can only leave after them.
func (p *Process) send(now time.Time, msg protocol.Message, expect State) {
	if s, ok := msg.(protocol.Sequenced); ok {
		p.seq++
		s.SetSeqNo(p.seq)
	}
	final := expect == Completed || expect == Terminated
	pending := resend.Start(now, p.retry.schedule(), msg, string(expect), final)
	p.rd.MustPersist = true
	if p.out != nil {
		if final {
			p.out.Final = true
			for _, q := range p.queue {
				q.Final = true
			}
		}
		p.queue = append(p.queue, pending)
		return
	}
	p.out = pending
	p.rd.Messages = append(p.rd.Messages, msg)
}
