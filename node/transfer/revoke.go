package transfer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Revocations tells whether this node, as provider, revoked an agreement,
// or was told as consumer that its provider did (contract.Service
// implements it). A revoked agreement allows no
// transfer: evaluate refuses every request under it. Told records, on the
// consumer, that the agreement's provider said it revoked it.
type Revocations interface {
	Revoked(agreementID string) (contract.Revocation, bool, error)
	Told(agreementID string, from peer.ID, reasons []string) error
	// ToldRevoked: the provider told this node, the consumer, that it
	// revoked the agreement (what Told recorded).
	ToldRevoked(agreementID string) (contract.Revocation, bool, error)
}

// told records, on the consumer, that provider (a peer ID) ended a
// transfer or refused a request under agreement with code: a revocation
// when code says so (contract.Service.Told checks that the agreement's
// provider said it).
func (s *Service) told(agreement, provider string, code protocol.Code, reasons []string) {
	if code != protocol.CodeAgreementRevoked || s.o.Revocations == nil {
		return
	}
	p, err := peer.Decode(provider)
	if err == nil {
		err = s.recordTold(agreement, p, reasons)
	}
	if err != nil {
		s.log.Warn("recording a revocation the provider told of", "agreement", agreement, "peer", provider, "err", err)
	}
}

// recordTold records that from, the agreement's provider, revoked it
// (Revocations.Told checks who says it), and moves the provenance epoch
// the first time only (revokedHere): a provider repeating its notice
// cannot make every next version of the consumer's datasets be built whole.
func (s *Service) recordTold(agreement string, from peer.ID, reasons []string) error {
	_, before, err := s.o.Revocations.ToldRevoked(agreement)
	if err != nil {
		before = false // moving the epoch once too often costs a rebuild
	}
	if err := s.o.Revocations.Told(agreement, from, reasons); err != nil {
		return err
	}
	if !before {
		s.revokedHere()
	}
	return nil
}

// revokedHere moves the provenance epoch once this node learns that an
// agreement it holds as consumer was revoked: the data it received under
// it is not passed on any more (passable), so the next version of each
// dataset is built whole (rebuild.go).
func (s *Service) revokedHere() {
	_ = s.provenanceWrite(func() error { return nil })
}

// revokedReasons returns the refusal of agreement id if it is revoked
// (or its revocation cannot be read: refused, not served), else nil
// reasons.
func (s *Service) revokedReasons(id string) (protocol.Code, []string) {
	if s.o.Revocations == nil {
		return "", nil
	}
	r, ok, err := s.o.Revocations.Revoked(id)
	if err != nil {
		return protocol.CodeInternal, []string{err.Error()}
	}
	if ok {
		return protocol.CodeAgreementRevoked, []string{r.Why()}
	}
	return "", nil
}

// tellTimeout bounds telling a consumer that its transfer ended.
const tellTimeout = 10 * time.Second

// EndAgreements ends what this node, as provider, serves under the
// agreements in reasons (agreement id to refusal reason), after their
// revocation: the data requests it is answering (a block request, a live
// feed) stop at once, and each of its transfer processes not yet
// COMPLETED or TERMINATED is TERMINATED, stored before EndAgreements
// returns. Their consumers are told in the background; one that cannot be
// reached learns it at its next request, which is refused. It returns the
// ended processes' ids.
func (s *Service) EndAgreements(reasons map[string]string) []string {
	type stopping struct {
		stop func(*RefusedError)
		why  string
	}
	if !s.enter() {
		return nil
	}
	defer s.wg.Done()
	var stops []stopping
	s.mu.Lock()
	if s.revoked == nil {
		s.revoked = map[string]string{}
	}
	for id, why := range reasons {
		// A data request registering from now on is refused by serve.
		s.revoked[id] = why
		for _, stop := range s.serving[id] {
			stops = append(stops, stopping{stop, why})
		}
	}
	s.mu.Unlock()
	for _, st := range stops {
		st.stop(&RefusedError{Code: protocol.CodeAgreementRevoked, Reasons: []string{st.why}})
	}
	list, err := s.List()
	if err != nil {
		s.log.Error("listing the transfers of revoked agreements", "err", err)
		return nil
	}
	var stepped sync.WaitGroup
	ended := []string{}
	for _, in := range list {
		why, revoked := reasons[in.Agreement]
		if in.Role != dsp.Provider || !revoked || in.State.Terminal() {
			continue
		}
		ended = append(ended, in.ID)
		stepped.Add(1)
		s.wg.Add(1)
		go func(pid string) {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, tellTimeout)
			defer cancel()
			m := dsp.Msg{Type: dsp.MsgTerminate, Code: protocol.CodeAgreementRevoked, Reasons: []string{why}}
			if _, err := s.localAs(ctx, dsp.Provider, pid, m, stepped.Done); err != nil {
				s.log.Warn("ending a transfer of a revoked agreement", "transfer", pid, "err", err)
			}
		}(in.ID)
	}
	stepped.Wait()
	return ended
}

// serve registers a data request this node is answering under agreement
// id, so that EndAgreements can stop it with the refusal; the returned
// func unregisters it. It returns the refusal at once, unregistered, if
// EndAgreements ended the agreement: a request checked (evaluate) before
// the revocation was stored, and registering after EndAgreements looked,
// is caught here, under the same lock.
func (s *Service) serve(id string, stop func(*RefusedError)) (func(), *RefusedError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if why, ok := s.revoked[id]; ok {
		return func() {}, &RefusedError{Code: protocol.CodeAgreementRevoked, Reasons: []string{why}}
	}
	if s.serving == nil {
		s.serving = map[string]map[uint64]func(*RefusedError){}
	}
	if s.serving[id] == nil {
		s.serving[id] = map[uint64]func(*RefusedError){}
	}
	s.servingN++
	n := s.servingN
	s.serving[id][n] = stop
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.serving[id], n)
		if len(s.serving[id]) == 0 {
			delete(s.serving, id)
		}
	}, nil
}

// TellRevoked tells consumer, in the background, that this node revoked
// agreement, saying why (a TypeRevocation frame, answered by
// serveRevocation): the consumer's node records it at once instead of at
// its next request. A consumer that cannot be reached learns it then.
func (s *Service) TellRevoked(agreement, consumer, why string) {
	p, err := peer.Decode(consumer)
	if err != nil || !s.enter() {
		return
	}
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, tellTimeout)
		defer cancel()
		st, br, err := s.dataStream(ctx, p, DataRequest{Type: TypeRevocation, Agreement: agreement, Reasons: []string{why}}, true)
		if err == nil {
			_, err = s.readAnswer(st, br)
			st.Close()
		}
		if err != nil {
			s.log.Info("the consumer was not told of the revocation; it learns it at its next request", "agreement", agreement, "consumer", p, "err", err)
		}
	}()
}

// serveRevocation answers a TypeRevocation frame: the sender says it
// revoked an agreement this node is the consumer of. Only the agreement's
// provider is believed (contract.Service.Told).
func (s *Service) serveRevocation(st network.Stream, remote peer.ID, body []byte) {
	defer st.Close()
	r, err := DecodeDataRequest(body)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeMalformedMessage, err.Error()))
		return
	}
	if s.o.Revocations == nil {
		s.writeFrame(st, errorFrame(protocol.CodeInternal, "this node keeps no agreements"))
		return
	}
	if err := s.recordTold(r.Agreement, remote, r.Reasons); err != nil {
		code := protocol.CodeInternal
		switch {
		case errors.Is(err, contract.ErrNotProvider), errors.Is(err, contract.ErrNotConsumer):
			code = protocol.CodeWrongParty
			s.log.Warn("a peer that is not the provider said an agreement was revoked", "agreement", r.Agreement, "peer", remote, "err", err)
		case errors.Is(err, contract.ErrUnknownAgreement):
			code = protocol.CodeAgreementNotValid
		}
		s.writeFrame(st, errorFrame(code, err.Error()))
		return
	}
	s.writeFrame(st, []byte{statusData})
}
