package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Revocations tells whether this node, as provider, revoked an agreement
// (contract.Service implements it). A revoked agreement allows no
// transfer: evaluate refuses every request under it.
type Revocations interface {
	Revoked(agreementID string) (contract.Revocation, bool, error)
}

// revokedReasons returns the refusal reasons of agreement id if it is
// revoked (or its revocation cannot be read: refused, not served), else
// nil.
func (s *Service) revokedReasons(id string) []string {
	if s.o.Revocations == nil {
		return nil
	}
	r, ok, err := s.o.Revocations.Revoked(id)
	if err != nil {
		return []string{err.Error()}
	}
	if ok {
		return []string{r.Why()}
	}
	return nil
}

// tellTimeout bounds telling a consumer that its transfer ended.
const tellTimeout = 10 * time.Second

// EndAgreement ends what this node, as provider, serves under agreement
// id, after its revocation: its live feeds stop at once with reason as
// the refusal, and each of its transfer processes not yet COMPLETED or
// TERMINATED is TERMINATED, stored before EndAgreement returns. Their
// consumers are told in the background; one that cannot be reached learns
// it at its next request, which is refused. It returns the ended
// processes' ids.
func (s *Service) EndAgreement(id, reason string) []string {
	refusal := &RefusedError{Code: protocol.CodeAgreementNotValid, Reasons: []string{reason}}
	s.mu.Lock()
	for _, cancel := range s.lives[id] {
		cancel(refusal)
	}
	s.mu.Unlock()
	list, err := s.List()
	if err != nil {
		s.log.Error("listing the transfers of a revoked agreement", "agreement", id, "err", err)
		return nil
	}
	if !s.enter() {
		return nil
	}
	defer s.wg.Done()
	var stepped sync.WaitGroup
	ended := []string{}
	for _, in := range list {
		if in.Role != dsp.Provider || in.Agreement != id || in.State.Terminal() {
			continue
		}
		ended = append(ended, in.ID)
		stepped.Add(1)
		s.wg.Add(1)
		go func(pid string) {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, tellTimeout)
			defer cancel()
			m := dsp.Msg{Type: dsp.MsgTerminate, Code: protocol.CodeAgreementNotValid, Reasons: []string{reason}}
			if _, err := s.localAs(ctx, dsp.Provider, pid, m, stepped.Done); err != nil {
				s.log.Warn("ending a transfer of a revoked agreement", "transfer", pid, "err", err)
			}
		}(in.ID)
	}
	stepped.Wait()
	return ended
}

// liveFeeds registers a live feed serving agreement id, so that
// EndAgreement can stop it; the returned func unregisters it.
func (s *Service) liveFeed(id string, cancel context.CancelCauseFunc) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lives == nil {
		s.lives = map[string]map[*context.CancelCauseFunc]context.CancelCauseFunc{}
	}
	if s.lives[id] == nil {
		s.lives[id] = map[*context.CancelCauseFunc]context.CancelCauseFunc{}
	}
	key := &cancel
	s.lives[id][key] = cancel
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.lives[id], key)
		if len(s.lives[id]) == 0 {
			delete(s.lives, id)
		}
	}
}
