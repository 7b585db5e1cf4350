package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// handleStream serves one incoming exchange on /mim/negotiation/1.0.0
// (docs/protocol.md 1.1): read one size-capped frame under a deadline,
// step it into its negotiation, answer with one frame, then carry on with
// whatever the step produced. Bad input is answered with the protocol
// error and never stalls the handler: every read and write has a deadline.
func (s *Service) handleStream(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	msg, ok := s.readFirst(st, bufio.NewReader(st))
	if !ok {
		return
	}
	reply, f := s.receive(st.Conn().RemotePeer(), msg)
	if reply != nil {
		s.answer(st, reply)
	}
	st.Close()
	if f.ok {
		s.sendAll(f.key, f.peer, f.out)
		s.act(f.key)
	}
}

// handleConversation serves a stream of /mim/negotiation/1.1.0
// (docs/protocol.md 6.8): the first message is read like handleStream
// reads one, and the stream then carries everything that follows from it.
func (s *Service) handleConversation(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	c := newConversation(st, st.Conn().RemotePeer())
	msg, ok := s.readFirst(st, c.r)
	if !ok {
		c.release()
		return
	}
	s.converse(c, msg, nil, false)
}

// readFirst reads the message that opens an incoming stream. Bad input is
// answered (or the stream reset) here, and reported as !ok.
func (s *Service) readFirst(st network.Stream, r *bufio.Reader) (protocol.Message, bool) {
	remote := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(s.o.ReadTimeout))
	body, err := protocol.ReadFrame(r, protocol.MaxNegotiationFrame)
	if err != nil {
		if errors.Is(err, protocol.ErrFrameTooLarge) {
			// Say why before resetting, as docs/protocol.md 1.3 asks;
			// the body is never read. Close, not Reset: a reset could
			// discard the answer before it leaves.
			s.answer(st, protocol.NegotiationErrorFor(nil, err))
			st.Close()
			return nil, false
		}
		s.log.Debug("bad negotiation frame", "peer", remote, "err", err)
		st.Reset()
		return nil, false
	}
	s.trace("negotiation message in", remote, body)
	msg, err := protocol.Decode(body)
	if err != nil {
		s.answer(st, protocol.NegotiationErrorFor(nil, err))
		st.Close()
		return nil, false
	}
	if isAnswer(msg) {
		// Answers travel only on streams this node opened, after its own
		// message; one opening a stream is not answered.
		st.Close()
		return nil, false
	}
	return msg, true
}

// answer writes one answer frame under the write deadline.
func (s *Service) answer(st network.Stream, m protocol.Message) {
	if err := s.write(st, st, outMsg{msg: m}); err != nil {
		s.log.Debug("writing answer", "peer", st.Conn().RemotePeer(), "err", err)
	}
}

// outMsg is a message to send, with its wire form if the negotiation
// has it already (negotiation.Negotiation.Wire).
type outMsg struct {
	msg  protocol.Message
	wire []byte
}

// encode returns m's wire form.
func (m outMsg) encode() ([]byte, error) {
	if m.wire != nil {
		return m.wire, nil
	}
	return protocol.Encode(m.msg)
}

// write writes one message frame to w, which writes to st, under st's
// write deadline.
func (s *Service) write(w io.Writer, st network.Stream, m outMsg) error {
	b, err := m.encode()
	if err != nil {
		s.log.Error("encoding negotiation message", "type", m.msg.MessageType(), "err", err)
		return err
	}
	what := "negotiation message out"
	if isAnswer(m.msg) {
		what = "negotiation answer out"
	}
	s.trace(what, st.Conn().RemotePeer(), b)
	_ = st.SetWriteDeadline(time.Now().Add(s.o.ReadTimeout))
	return protocol.WriteFrame(w, b)
}

// followUp is what a received message leads to once it is answered: the
// messages its negotiation sends to the peer.
type followUp struct {
	ok   bool // a negotiation took the message
	key  negotiation.Key
	peer string
	out  []outMsg
}

// receive steps a message from remote into the negotiation it belongs to
// (docs/protocol.md 6.2) and returns the answer, and the messages to send
// once the answer is written.
func (s *Service) receive(remote peer.ID, msg protocol.Message) (protocol.Message, followUp) {
	now := s.o.Now()
	e, errReply := s.route(remote, msg, now)
	if e == nil {
		return errReply, followUp{}
	}
	f := followUp{ok: true, key: e.key, peer: e.n.Peer()}
	reply, out, err := s.stepLocked(e, negotiation.Msg{Type: negotiation.MsgReceive, Now: now, From: s.names.of(remote), Body: msg})
	e.mu.Unlock()
	if err != nil {
		s.log.Debug("refused negotiation message", "peer", remote, "type", msg.MessageType(), "err", err)
	}
	f.out = out
	return reply, f
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
	if req.CallbackAddress != "/p2p/"+s.names.of(remote) {
		return nil, protocol.NegotiationErrorFor(req, protocol.Errorf(protocol.CodeWrongParty, negotiation.ErrWrongParty,
			"callbackAddress %q does not name the sender %s", req.CallbackAddress, remote))
	}
	// firstLock makes looking up and creating one step, so that two
	// copies of a first request arriving together create one negotiation.
	fk := s.names.of(remote) + " " + req.ConsumerPid
	mu := s.firstLock(fk)
	mu.Lock()
	defer mu.Unlock()
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
			ppid, err = tx.Get(firstKey(s.names.of(remote), req.ConsumerPid))
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
	n, err := negotiation.NewProvider(negotiation.Config{Pid: newPid(), Peer: s.names.of(remote), Retry: s.retry()})
	if err != nil {
		return nil, protocol.NegotiationErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "creating the negotiation failed"))
	}
	e := &entry{key: negotiation.Key{Role: negotiation.Provider, Pid: n.Pid()}, n: n}
	e.meta.Created = now
	if ds, id, err := offerRef(req.Offer); err == nil {
		e.meta.Dataset, e.meta.OfferID = ds, id
	}
	e.staged = append(e.staged, staged{key: firstKey(s.names.of(remote), req.ConsumerPid), value: []byte(n.Pid())})
	e.mu.Lock()
	s.mu.Lock()
	s.live[e.key] = e
	s.firsts[fk] = n.Pid()
	s.mu.Unlock()
	return e, nil
}

// firstLock returns the lock of first requests with key fk ("consumer
// peer consumerPid").
func (s *Service) firstLock(fk string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(fk))
	return &s.firstMu[h.Sum32()%uint32(len(s.firstMu))]
}

// sendAll sends msgs to peerID in order and steps each answer back into
// negotiation k. With a peer that speaks /mim/negotiation/1.1.0 they go
// on one conversation stream, which then carries whatever the peer sends
// back (converse); otherwise each is one exchange on a new stream. It
// stops at the first message that gets no answer: the negotiation resends
// it at its next tick.
func (s *Service) sendAll(k negotiation.Key, peerID string, msgs []outMsg) {
	if len(msgs) == 0 {
		return
	}
	p, err := s.names.id(peerID)
	if err != nil {
		s.log.Error("negotiation peer", "pid", k.Pid, "peer", peerID, "err", err)
		return
	}
	if ok, _ := s.o.Host.Peerstore().SupportsProtocols(p, conversationProto); len(ok) > 0 {
		q := []pendingMsg{{key: k, peer: peerID, msgs: msgs}}
		if st := s.takeIdle(p); st != nil {
			if s.converse(newConversation(st, p), nil, q, true) != convUnused {
				return
			}
			// The kept stream had ended (the peer's read deadline, a
			// reset) before anything came back: a new one carries them.
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.o.ExchangeTimeout)
		st, err := s.o.Host.NewStream(ctx, p, conversationProto)
		cancel()
		if err != nil {
			s.log.Debug("negotiation message unsent", "pid", k.Pid, "err", err)
			s.unreached.Store(k.Pid, err.Error())
			return
		}
		s.unreached.Delete(k.Pid)
		s.converse(newConversation(st, p), nil, q, false)
		return
	}
	for _, m := range msgs {
		ans, err := s.exchange(p, m)
		if err != nil {
			s.log.Debug("negotiation message unanswered", "pid", k.Pid, "type", m.msg.MessageType(), "err", err)
			s.unreached.Store(k.Pid, err.Error())
			return
		}
		s.unreached.Delete(k.Pid)
		s.sendAll(k, peerID, s.stepAnswer(k, peerID, ans))
	}
}

// stepAnswer steps the peer's answer to one of negotiation k's messages
// and returns the messages that produced (a termination after a final
// error, say).
func (s *Service) stepAnswer(k negotiation.Key, peerID string, ans protocol.Message) []outMsg {
	e := s.lock(k)
	if e == nil {
		return nil
	}
	_, out, err := s.stepLocked(e, negotiation.Msg{Type: negotiation.MsgReceive, Now: s.o.Now(), From: peerID, Body: ans})
	e.mu.Unlock()
	if err != nil {
		s.log.Debug("answer not taken", "pid", k.Pid, "err", err)
	}
	return out
}

var conversationProto = p2pproto.ID(protocol.NegotiationConversationProtocol)

// conversation is one /mim/negotiation/1.1.0 stream. Frames written in a
// row (an answer and the messages that follow it) go out together: w is
// flushed before each read.
type conversation struct {
	st     network.Stream
	r      *bufio.Reader
	w      *bufio.Writer
	remote peer.ID
}

// Buffers of conversations, reused: a negotiation is one conversation on
// each side, and fresh buffers were a third of the bytes it allocated.
var (
	convReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}
	convWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
)

func newConversation(st network.Stream, remote peer.ID) *conversation {
	r, w := convReaders.Get().(*bufio.Reader), convWriters.Get().(*bufio.Writer)
	r.Reset(st)
	w.Reset(st)
	return &conversation{st: st, r: r, w: w, remote: remote}
}

// release returns c's buffers for reuse; c must not be used after it.
func (c *conversation) release() {
	c.r.Reset(nil)
	c.w.Reset(nil)
	convReaders.Put(c.r)
	convWriters.Put(c.w)
	c.r, c.w = nil, nil
}

// pendingMsg is a message of negotiation key sent on a conversation, in
// msgs[0], waiting for its answer, followed by the ones to send after it.
type pendingMsg struct {
	key  negotiation.Key
	peer string
	msgs []outMsg
}

// How a conversation ended (converse).
type convEnd int

const (
	convEnded  convEnd = iota // closed, reset, or kept for later (keepIdle)
	convUnused                // a kept stream that failed before anything came back
)

// converse runs a conversation stream (docs/protocol.md 6.8) until it
// ends: first the peer's message first (if any) is answered, or the
// messages in queue are sent; then every frame read is either the answer
// to this side's oldest unanswered message on the stream, stepped into its
// negotiation, or a message from the peer, answered at once and followed
// by the messages it leads to. A side with nothing unanswered that has
// just answered a message without follow-up closes the stream, or keeps
// it for its next messages to the peer if it opened it (keepIdle); a side
// that reads the end of it closes it. Anything unanswered then is resent
// at its negotiation's next tick, on a stream of its own. reused says the
// stream was kept from an earlier conversation: if it fails before any
// frame is read, converse says convUnused, and the queue is still to send.
func (s *Service) converse(c *conversation, first protocol.Message, queue []pendingMsg, reused bool) convEnd {
	kept, read := false, false
	// Close ends conversations in flight, as it ends exchanges: a peer's
	// kept stream would otherwise hold this side's read for its deadline.
	stop := context.AfterFunc(s.ctx, func() { c.st.Reset() })
	defer func() {
		stop()
		if !kept {
			_ = c.w.Flush() // fails harmlessly after a reset
			c.st.Close()
		}
		c.release()
	}()
	end := func() convEnd {
		if reused && !read {
			return convUnused
		}
		return convEnded
	}
	var waiting []pendingMsg // sent, answer not read yet, oldest first
	send := func(q []pendingMsg) bool {
		for _, p := range q {
			if len(p.msgs) == 0 {
				continue
			}
			if err := s.write(c.w, c.st, p.msgs[0]); err != nil {
				s.log.Debug("negotiation message unsent", "pid", p.key.Pid, "err", err)
				return false
			}
			waiting = append(waiting, p)
		}
		return true
	}
	if !send(queue) {
		c.st.Reset()
		return end()
	}
	msg := first
	for {
		if msg != nil {
			reply, f := s.receive(c.remote, msg)
			if reply != nil {
				if err := s.write(c.w, c.st, outMsg{msg: reply}); err != nil {
					c.st.Reset()
					return convEnded
				}
			}
			if f.ok {
				if !send([]pendingMsg{{key: f.key, peer: f.peer, msgs: f.out}}) {
					c.st.Reset()
					return convEnded
				}
				s.act(f.key)
			}
			if len(waiting) == 0 {
				// Answered, nothing to follow: this side is done. The
				// peer is reading still, so the side that opened the
				// stream may keep it for its next messages.
				kept = first == nil && c.w.Flush() == nil && s.keepIdle(c.st, c.remote)
				return convEnded
			}
		}
		if err := c.w.Flush(); err != nil {
			s.log.Debug("negotiation conversation ended", "peer", c.remote, "err", err)
			c.st.Reset()
			return end()
		}
		_ = c.st.SetReadDeadline(time.Now().Add(s.o.ExchangeTimeout))
		body, err := protocol.ReadFrame(c.r, protocol.MaxNegotiationFrame)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("negotiation conversation ended", "peer", c.remote, "err", err)
				c.st.Reset()
			}
			return end()
		}
		read = true
		in, err := protocol.Decode(body)
		if err != nil {
			s.trace("negotiation message in", c.remote, body)
			s.answer(c.st, protocol.NegotiationErrorFor(nil, err))
			return convEnded
		}
		if !isAnswer(in) {
			s.trace("negotiation message in", c.remote, body)
			if _, isNew := negotiation.Route(in); isNew && !s.o.Members.Authorize(negotiationProto, c.remote) {
				// A stream kept open outlives the check made when it was
				// opened: a new negotiation is checked again.
				s.log.Debug("refused negotiation on a kept stream", "peer", c.remote)
				c.st.Reset()
				return convEnded
			}
			msg = in
			continue
		}
		s.trace("negotiation answer in", c.remote, body)
		msg = nil
		if len(waiting) == 0 {
			s.log.Debug("negotiation answer to nothing", "peer", c.remote)
			c.st.Reset()
			return convEnded
		}
		p := waiting[0]
		waiting = waiting[1:]
		more := s.stepAnswer(p.key, p.peer, in)
		if !send([]pendingMsg{{key: p.key, peer: p.peer, msgs: p.msgs[1:]}, {key: p.key, peer: p.peer, msgs: more}}) {
			c.st.Reset()
			return convEnded
		}
	}
}

// Conversation streams this node opened are kept, once their exchange is
// over, for its next messages to the same peer (docs/protocol.md 6.8): a
// negotiation after another then costs no stream set-up, protocol
// selection or handler. The peer reads a kept stream for its read
// deadline (10 s); a stream is reused within keepIdleFor of being kept,
// well within it, and at most maxIdlePerPeer are kept per peer.
const (
	keepIdleFor    = time.Second
	maxIdlePerPeer = 4
)

var negotiationProto = p2pproto.ID(protocol.NegotiationProtocol)

// idleStream is a conversation stream kept since at.
type idleStream struct {
	st network.Stream
	at time.Time
}

// idleFor is how long a kept stream may wait to be reused.
func (s *Service) idleFor() time.Duration {
	return min(keepIdleFor, s.o.ExchangeTimeout/2)
}

// keepIdle keeps st, a conversation stream to p this node opened, for
// reuse, and reports whether it did.
func (s *Service) keepIdle(st network.Stream, p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.idle[p]) >= maxIdlePerPeer {
		return false
	}
	s.idle[p] = append(s.idle[p], idleStream{st: st, at: time.Now()})
	return true
}

// takeIdle returns the most recently kept stream to p, if one is fresh
// enough, and closes those that are not.
func (s *Service) takeIdle(p peer.ID) network.Stream {
	var st network.Stream
	var stale []network.Stream
	s.mu.Lock()
	var kept []idleStream
	list := s.idle[p]
	for i := len(list) - 1; i >= 0; i-- {
		switch is := list[i]; {
		case time.Since(is.at) >= s.idleFor():
			stale = append(stale, is.st)
		case st == nil:
			st = is.st
		default:
			kept = append(kept, is)
		}
	}
	slices.Reverse(kept)
	if len(kept) == 0 {
		delete(s.idle, p)
	} else {
		s.idle[p] = kept
	}
	s.mu.Unlock()
	for _, o := range stale {
		o.Close()
	}
	return st
}

// closeIdle closes every kept stream (Close).
func (s *Service) closeIdle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = map[peer.ID][]idleStream{}
	s.mu.Unlock()
	for _, list := range idle {
		for _, is := range list {
			is.st.Close()
		}
	}
}

// exchange sends one message on a new stream and reads its answer
// (docs/protocol.md 1.1), all within ExchangeTimeout.
func (s *Service) exchange(p peer.ID, om outMsg) (protocol.Message, error) {
	m := om.msg
	body, err := om.encode()
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
