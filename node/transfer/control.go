package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Suspend pauses transfer id (either role, STARTED); a live feed under it
// ends, and Resume starts it again.
func (s *Service) Suspend(ctx context.Context, id, reason string) (Info, error) {
	if reason == "" {
		reason = fmt.Sprintf("suspended by the user; 'mimnode transfer resume %s' starts it again", id)
	}
	return s.local(ctx, id, dsp.Msg{Type: dsp.MsgSuspend, Code: protocol.CodeCancelled, Reasons: reasonList(reason)})
}

// Resume restarts a SUSPENDED transfer (either role).
func (s *Service) Resume(ctx context.Context, id string) (Info, error) {
	return s.local(ctx, id, dsp.Msg{Type: dsp.MsgStart})
}

// Terminate ends transfer id for good (either role, any non-terminal state).
func (s *Service) Terminate(ctx context.Context, id, reason string) (Info, error) {
	return s.local(ctx, id, dsp.Msg{Type: dsp.MsgTerminate, Code: protocol.CodeCancelled, Reasons: reasonList(reason)})
}

func reasonList(r string) []string {
	if r == "" {
		return []string{"ended by the user"}
	}
	return []string{r}
}

// local steps a local input into transfer id and tells the peer. The step
// is persisted first: if the peer cannot be reached the state change
// stands here, and the peer learns of it when it next asks for data (the
// provider refuses data requests of a process that is not STARTED).
func (s *Service) local(ctx context.Context, id string, m dsp.Msg) (Info, error) {
	in, err := s.Get(id)
	if err != nil {
		return Info{}, err
	}
	return s.localAs(ctx, in.Role, id, m, nil)
}

// localAs is local for this node's process in role; stepped, if set, is
// called once the step is stored (or failed), before the peer is told.
func (s *Service) localAs(ctx context.Context, role dsp.Role, id string, m dsp.Msg, stepped func()) (Info, error) {
	if stepped != nil {
		var once sync.Once
		done := stepped
		stepped = func() { once.Do(done) }
		defer stepped()
	}
	unlock := s.lockProc(role, id)
	defer unlock()
	e, err := s.load(role, id)
	if err != nil {
		return Info{}, err
	}
	rd, err := s.step(e, m)
	if stepped != nil {
		stepped()
	}
	if err != nil {
		if errors.Is(err, dsp.ErrNotAllowed) {
			return e.info, &stateError{id: id, state: e.p.State(), msg: m.Type, err: err}
		}
		return e.info, fmt.Errorf("%s transfer %s: %w", m.Type, id, err)
	}
	p, err := peer.Decode(e.p.Peer())
	if err != nil {
		return e.info, err
	}
	for _, out := range rd.Messages {
		ans, err := s.exchange(ctx, p, out)
		if err != nil {
			s.log.Warn("telling the peer", "transfer", id, "message", out.MessageType(), "err", err)
			break
		}
		s.step(e, dsp.Msg{Type: dsp.MsgReceive, From: p.String(), Body: ans})
	}
	return e.info, nil
}

// stateError says that a transfer's state does not take what was asked
// (terminate a COMPLETED one), in one sentence; it is ErrBadState and
// the state machine's refusal for errors.Is.
type stateError struct {
	id    string
	state dsp.State
	msg   dsp.MsgType
	err   error
}

func (e *stateError) Error() string {
	done := map[dsp.MsgType]string{dsp.MsgStart: "resumed", dsp.MsgSuspend: "suspended", dsp.MsgTerminate: "terminated", dsp.MsgComplete: "completed"}[e.msg]
	if done == "" {
		done = "changed by " + e.msg.String()
	}
	return fmt.Sprintf("transfer %s is %s: it cannot be %s now", e.id, e.state, done)
}

func (e *stateError) Unwrap() []error { return []error{ErrBadState, e.err} }
