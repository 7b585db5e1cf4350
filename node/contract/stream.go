package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// handleStream serves one incoming exchange (docs/protocol.md 1.1): read
// one size-capped frame under a deadline, step it into its negotiation,
// answer with one frame, then carry on with whatever the step produced.
// Bad input is answered with the protocol error and never stalls the
// handler: every read and write has a deadline.
func (s *Service) handleStream(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	remote := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(s.o.ReadTimeout))
	body, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxNegotiationFrame)
	if err != nil {
		if errors.Is(err, protocol.ErrFrameTooLarge) {
			// Say why before resetting, as docs/protocol.md 1.3 asks;
			// the body is never read.
			// the body is never read. Close, not Reset: a reset could
			// discard the answer before it leaves.
			s.answer(st, protocol.NegotiationErrorFor(nil, err))
			st.Close()
			return
		}
		s.log.Debug("bad negotiation frame", "peer", remote, "err", err)
		st.Reset()
		return
	}
	s.trace("negotiation message in", remote, body)
	msg, err := protocol.Decode(body)
	if err != nil {
		s.answer(st, protocol.NegotiationErrorFor(nil, err))
		st.Close()
		return
	}
	reply, after := s.receive(remote, msg)
	if reply != nil {
		s.answer(st, reply)
	}
	st.Close()
	if after != nil {
		after()
	}
}

// answer writes one answer frame under the write deadline.
func (s *Service) answer(st network.Stream, m protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		s.log.Error("encoding answer", "err", err)
		return
	}
	s.trace("negotiation answer out", st.Conn().RemotePeer(), b)
	_ = st.SetWriteDeadline(time.Now().Add(s.o.ReadTimeout))
	if err := protocol.WriteFrame(st, b); err != nil {
		s.log.Debug("writing answer", "peer", st.Conn().RemotePeer(), "err", err)
	}
}

// receive steps a message from remote into the negotiation it belongs to
// (docs/protocol.md 6.2) and returns the answer, and the follow-up work
// (sending what the step produced, acting on the todo) to do after the
// answer is written.
func (s *Service) receive(remote peer.ID, msg protocol.Message) (protocol.Message, func()) {
	if isAnswer(msg) {
		// Answers travel only on streams this node opened; one arriving
		// on its own is not answered.
		return nil, nil
	}
	now := s.o.Now()
	e, errReply := s.route(remote, msg, now)
	if e == nil {
		return errReply, nil
	}
	k, peerID := e.key, e.n.Peer()
	reply, out, err := s.stepLocked(e, negotiation.Msg{Type: negotiation.MsgReceive, Now: now, From: remote.String(), Body: msg})
	e.mu.Unlock()
	if err != nil {
		s.log.Debug("refused negotiation message", "peer", remote, "type", msg.MessageType(), "err", err)
	}
	return reply, func() {
		s.sendAll(k, peerID, out)
		s.act(k)
	}
}

// route finds (or, for a consumer's first request, creates) the
// negotiation msg is for and returns it locked; otherwise the answer.
func (s *Service) route(remote peer.ID, msg protocol.Message, now time.Time) (*entry, protocol.Message) {
	cands, isNew := negotiation.Route(msg)
	if isNew {
		return s.routeFirst(remote, msg.(*protocol.ContractRequestMessage), now)
	}
	for _, k := range cands {
		if k.Pid == "" {
			continue
		}
		if e := s.lock(k); e != nil {
			return e, nil
		}
	}
	return nil, negotiation.UnknownNegotiation(msg)
}

// routeFirst handles a first ContractRequestMessage: the negotiation an
// earlier copy of it created, if any (the consumer resends when the
// answer got lost), else a new provider-side negotiation.
func (s *Service) routeFirst(remote peer.ID, req *protocol.ContractRequestMessage, now time.Time) (*entry, protocol.Message) {
	if req.CallbackAddress != "/p2p/"+remote.String() {
		return nil, protocol.NegotiationErrorFor(req, protocol.Errorf(protocol.CodeWrongParty, negotiation.ErrWrongParty,
			"callbackAddress %q does not name the sender %s", req.CallbackAddress, remote))
	}
	// firstMu makes looking up and creating one step, so that two copies
	// of a first request arriving together create one negotiation.
	s.firstMu.Lock()
	defer s.firstMu.Unlock()
	fk := remote.String() + " " + req.ConsumerPid
	var ppid []byte
	var err error
	s.mu.Lock()
	pid, ok := s.firsts[fk]
	s.mu.Unlock()
	if ok {
		ppid = []byte(pid)
	} else {
		err = s.o.Store.View(func(tx *store.Txn) error {
			var err error
			ppid, err = tx.Get(firstKey(remote.String(), req.ConsumerPid))
			return err
		})
	}
	switch {
	case err == nil:
		if e := s.lock(negotiation.Key{Role: negotiation.Provider, Pid: string(ppid)}); e != nil {
			return e, nil
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, protocol.NegotiationErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "looking up the negotiation failed"))
	}
	n, err := negotiation.NewProvider(negotiation.Config{Pid: newPid(), Peer: remote.String(), Retry: s.retry()})
	if err != nil {
		return nil, protocol.NegotiationErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "creating the negotiation failed"))
	}
	e := &entry{key: negotiation.Key{Role: negotiation.Provider, Pid: n.Pid()}, n: n}
	e.meta.Created = now
	if ds, id, err := offerRef(req.Offer); err == nil {
		e.meta.Dataset, e.meta.OfferID = ds, id
	}
	e.staged = append(e.staged, staged{key: firstKey(remote.String(), req.ConsumerPid), value: []byte(n.Pid())})
	e.mu.Lock()
	s.mu.Lock()
	s.live[e.key] = e
	s.firsts[fk] = n.Pid()
	s.mu.Unlock()
	return e, nil
}

// sendAll sends msgs to peerID in order, one exchange each, and steps each
// answer back into negotiation k. It stops at the first message that gets
// no answer: the negotiation resends it at its next tick.
func (s *Service) sendAll(k negotiation.Key, peerID string, msgs []protocol.Message) {
	for _, m := range msgs {
		ans, err := s.exchange(peerID, m)
		if err != nil {
			s.log.Debug("negotiation message unanswered", "pid", k.Pid, "type", m.MessageType(), "err", err)
			return
		}
		e := s.lock(k)
		if e == nil {
			return
		}
		_, out, err := s.stepLocked(e, negotiation.Msg{Type: negotiation.MsgReceive, Now: s.o.Now(), From: peerID, Body: ans})
		e.mu.Unlock()
		if err != nil {
			s.log.Debug("answer not taken", "pid", k.Pid, "err", err)
		}
		s.sendAll(k, peerID, out)
	}
}

// exchange sends one message on a new stream and reads its answer
// (docs/protocol.md 1.1), all within ExchangeTimeout.
func (s *Service) exchange(peerID string, m protocol.Message) (protocol.Message, error) {
	p, err := peer.Decode(peerID)
	if err != nil {
		return nil, fmt.Errorf("sending to %q: %w", peerID, err)
	}
	body, err := protocol.Encode(m)
	if err != nil {
		return nil, err
	}
	s.trace("negotiation message out", p, body)
	ctx, cancel := context.WithTimeout(s.ctx, s.o.ExchangeTimeout)
	defer cancel()
	st, err := s.o.Host.NewStream(ctx, p, p2pproto.ID(protocol.NegotiationProtocol))
	if err != nil {
		return nil, fmt.Errorf("opening negotiation stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := protocol.WriteFrame(st, body); err != nil {
		st.Reset()
		return nil, fmt.Errorf("sending %s to %s: %w", m.MessageType(), p, err)
	}
	_ = st.CloseWrite()
	raw, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxNegotiationFrame)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("reading the answer to %s from %s: %w", m.MessageType(), p, err)
	}
	st.Close()
	s.trace("negotiation answer in", p, raw)
	ans, err := protocol.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("answer to %s from %s: %w", m.MessageType(), p, err)
	}
	if !isAnswer(ans) {
		return nil, fmt.Errorf("answer to %s from %s is a %s: %w", m.MessageType(), p, ans.MessageType(), protocol.ErrMalformedMessage)
	}
	return ans, nil
}

// trace logs a wire message at debug level, for following a negotiation
// with a peer message by message. The check keeps the hot path free of
// the conversion when debug logging is off.
func (s *Service) trace(what string, p peer.ID, body []byte) {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug(what, "peer", p, "body", json.RawMessage(body))
	}
}
