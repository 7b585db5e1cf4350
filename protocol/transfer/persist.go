package transfer

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/resend"
)

const persistVersion = 1

type persisted struct {
	Version     int               `json:"v"`
	Role        Role              `json:"role"`
	State       State             `json:"state"`
	Pids        protocol.Pids     `json:"pids"`
	Peer        string            `json:"peer"`
	Callback    string            `json:"callback,omitempty"`
	Retry       [4]time.Duration  `json:"retry"`
	AgreementID string            `json:"agreementId,omitempty"`
	Format      string            `json:"format,omitempty"`
	DataAddress json.RawMessage   `json:"dataAddress,omitempty"`
	Code        protocol.Code     `json:"code,omitempty"`
	Reasons     []string          `json:"reasons,omitempty"`
	Seq         uint64            `json:"seq,omitempty"`
	Out         *resend.Pending   `json:"out,omitempty"`
	Queue       []*resend.Pending `json:"queue,omitempty"`
	Seen        resend.Seen       `json:"seen,omitempty"`
}

var stepFuncs = map[State]stepFunc{
	Initial: stepInitial, Requested: stepRequested, Started: stepStarted, Suspended: stepSuspended,
	Completed: stepCompleted, Terminated: stepTerminated,
}

// Marshal returns the durable form of the process (see
// negotiation.Negotiation.MarshalJSON for what is and is not in it).
func (p *Process) Marshal() ([]byte, error) {
	b, err := json.Marshal(persisted{
		Version: persistVersion, Role: p.role, State: p.state, Pids: p.pids, Peer: p.peer, Callback: p.callback,
		Retry:       [4]time.Duration{p.retry.Initial, p.retry.Max, p.retry.Timeout, p.retry.FinalTimeout},
		AgreementID: p.agreementID, Format: p.format, DataAddress: p.dataAddress,
		Code: p.code, Reasons: p.reasons, Seq: p.seq, Out: p.out, Queue: p.queue, Seen: p.seen,
	})
	if err != nil {
		return nil, fmt.Errorf("persisting transfer %s: %w", p.Pid(), err)
	}
	return b, nil
}

// Unmarshal restores a process stored with Marshal.
func Unmarshal(b []byte) (*Process, error) {
	var s persisted
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("restoring transfer: %w: %w", ErrCorrupt, err)
	}
	if s.Version != persistVersion {
		return nil, fmt.Errorf("restoring transfer: %w: version %d, want %d", ErrCorrupt, s.Version, persistVersion)
	}
	if s.Role != Consumer && s.Role != Provider {
		return nil, fmt.Errorf("restoring transfer: %w: role %q", ErrCorrupt, s.Role)
	}
	step, ok := stepFuncs[s.State]
	if !ok {
		return nil, fmt.Errorf("restoring transfer: %w: state %q", ErrCorrupt, s.State)
	}
	if ownPid(s.Role, s.Pids) == "" || s.Peer == "" {
		return nil, fmt.Errorf("restoring transfer: %w: own pid or peer missing", ErrCorrupt)
	}
	return &Process{
		role: s.Role, state: s.State, pids: s.Pids, peer: s.Peer, callback: s.Callback,
		retry:       RetryPolicy{Initial: s.Retry[0], Max: s.Retry[1], Timeout: s.Retry[2], FinalTimeout: s.Retry[3]},
		agreementID: s.AgreementID, format: s.Format, dataAddress: s.DataAddress,
		code: s.Code, reasons: s.Reasons, seq: s.Seq, out: s.Out, queue: s.Queue, seen: s.Seen, step: step,
	}, nil
}
