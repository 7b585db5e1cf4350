package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/internal/lognote"
	"github.com/mimnode/mimnode/node/store"
	ma "github.com/multiformats/go-multiaddr"

	mimproto "github.com/mimnode/mimnode/protocol"
)

// SyncProtocol lets a member pull the documents it missed: the request names
// a federation and the last sequence number the caller has, the answer lists
// every later document in order.
const SyncProtocol protocol.ID = "/mim/federation/1.0.0"

// syncTimeout bounds one sync exchange.
const syncTimeout = 10 * time.Second

// maxSyncFrame caps a sync answer (a chain of documents).
const maxSyncFrame = 4 << 20

type syncRequest struct {
	Federation string `json:"federation"`
	After      uint64 `json:"after"`
}

type syncResponse struct {
	Documents []*Document `json:"documents,omitempty"`
	// Peers are addresses of other members the responder is connected to,
	// so the caller can reach members it has never seen.
	Peers []addrHint `json:"peers,omitempty"`
	Error string     `json:"error,omitempty"`
}

type addrHint struct {
	PeerID string   `json:"peerId"`
	Addrs  []string `json:"addrs"`
}

// handleSync answers a pull. Guard has already checked that the caller is a
// member of some shared federation; the federation asked for must be one of
// them.
func (s *Service) handleSync(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(syncTimeout))
	body, err := mimproto.ReadFrame(st, 4<<10)
	if err != nil {
		st.Reset()
		return
	}
	var req syncRequest
	var resp syncResponse
	if err := json.Unmarshal(body, &req); err != nil {
		resp.Error = "malformed request: " + err.Error()
	} else if !s.isMember(req.Federation, st.Conn().RemotePeer()) {
		resp.Error = "not a member of " + req.Federation
	} else {
		chain := s.Chain(req.Federation)
		for _, d := range chain {
			if d.Seq > req.After {
				resp.Documents = append(resp.Documents, d)
			}
		}
		caller := st.Conn().RemotePeer()
		for _, m := range chain[len(chain)-1].Members {
			p, err := peer.Decode(m.PeerID)
			if err != nil || p == caller || p == s.self || s.o.Host.Network().Connectedness(p) != network.Connected {
				continue
			}
			h := addrHint{PeerID: m.PeerID}
			for _, a := range s.o.Host.Peerstore().Addrs(p) {
				h.Addrs = append(h.Addrs, a.String())
			}
			resp.Peers = append(resp.Peers, h)
		}
	}
	b, _ := json.Marshal(resp)
	if err := mimproto.WriteFrame(st, b); err != nil {
		st.Reset()
	}
}

// pullFrom asks p for newer documents of every federation both belong to,
// and applies them in order.
func (s *Service) pullFrom(ctx context.Context, p peer.ID) {
	for _, id := range s.SharedFederations(p) {
		if err := s.pull(ctx, p, id); err != nil {
			s.log.Debug("membership pull failed", "peer", p, "federation", id, "err", err)
		}
	}
}

func (s *Service) pull(ctx context.Context, p peer.ID, id string) error {
	chain := s.Chain(id)
	if len(chain) == 0 {
		return ErrUnknownFed
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	st, err := s.o.Host.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(syncTimeout))
	req, _ := json.Marshal(syncRequest{Federation: id, After: chain[len(chain)-1].Seq})
	if err := mimproto.WriteFrame(st, req); err != nil {
		st.Reset()
		return err
	}
	body, err := mimproto.ReadFrame(st, maxSyncFrame)
	if err != nil {
		st.Reset()
		return err
	}
	var resp syncResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("%w: sync answer: %v", ErrMalformed, err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	for _, h := range resp.Peers {
		p, err := peer.Decode(h.PeerID)
		if err != nil || p == s.self || !s.isMember(id, p) {
			continue
		}
		for _, a := range h.Addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				s.o.Host.Peerstore().AddAddr(p, m, 10*time.Minute)
			}
		}
	}
	for _, d := range resp.Documents {
		if d == nil {
			return fmt.Errorf("%w: null document in sync answer", ErrMalformed)
		}
		if err := s.apply(ctx, d); err != nil {
			if errors.Is(err, ErrStale) {
				continue // a concurrent update got there first
			}
			return err
		}
	}
	return nil
}

// reconnectLoop keeps every member of our federations connected, redialling
// with exponential backoff (capped at a minute) and protecting member
// connections from the connection manager.
func (s *Service) reconnectLoop(ctx context.Context) {
	type backoff struct {
		next  time.Time
		delay time.Duration
	}
	state := map[peer.ID]*backoff{}
	t := time.NewTicker(s.o.ReconnectInterval)
	defer t.Stop()
	var iso isolation
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.antiEntropy(ctx)
		case <-s.kick:
		}
		now := time.Now()
		members := s.memberPeers()
		connected := 0
		for _, p := range members {
			cm := s.o.Host.ConnManager()
			cm.Protect(p, "federation")
			if s.o.Host.Network().Connectedness(p) == network.Connected {
				connected++
				delete(state, p)
				continue
			}
			b := state[p]
			if b == nil {
				b = &backoff{delay: s.o.ReconnectInterval}
				state[p] = b
			}
			if now.Before(b.next) {
				continue
			}
			known := len(s.o.Host.Peerstore().Addrs(p)) > 0
			s.spawn(func() { s.redial(ctx, p) })
			jitter := time.Duration(rand.Int64N(int64(b.delay)/4 + 1))
			b.next = now.Add(b.delay + jitter)
			if known {
				// Back off only from peers whose addresses failed; a peer
				// we have no address for yet is looked up again next tick.
				b.delay = min(2*b.delay, time.Minute)
			}
		}
		iso.note(s.log, len(members), connected, now)
	}
}

// isolatedAfter is how long a node reaches none of the other members of
// its federations before it says so.
const isolatedAfter = 5 * time.Minute

// isolation notes how long the node has reached no other member, and
// says so in the log (lognote: hourly while it lasts, and when it ends):
// the node then neither hears of changes nor serves anyone, and nothing
// else shows it. The usual cause is addresses gone stale: nodes that
// listen on port 0 take new ports when they restart.
type isolation struct {
	since time.Time // when the node last went from some members to none; zero while it reaches one
	told  lognote.Note
}

func (i *isolation) note(log *slog.Logger, members, connected int, now time.Time) {
	switch {
	case members == 0 || connected > 0:
		if i.told.End() {
			log.Info("reaching federation members again", "connected", connected, "members", members)
		}
		i.since = time.Time{}
	case i.since.IsZero():
		i.since = now
	case now.Sub(i.since) >= isolatedAfter && i.told.Hold("isolated", now):
		log.Warn("this node has reached none of the other members of its federations for a while: it hears of no change and serves no one. "+
			"The addresses known for them may be stale (a node listening on port 0 takes a new port when it restarts): "+
			"'mimnode connect MULTIADDR' of one member reconnects, and fixed ports in [network] listen (with [network] announce behind NAT) avoid it",
			"members", members, "since", i.since.UTC().Format(time.RFC3339))
	}
}

// antiEntropy pulls each federation's chain from one random connected
// member, so an update lost to gossip (published before the subscriptions met)
// still arrives within one interval.
func (s *Service) antiEntropy(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.feds))
	for id := range s.feds {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		var connected []peer.ID
		s.mu.Lock()
		if f := s.feds[id]; f != nil {
			if _, me := f.head().Member(s.self); me {
				for _, m := range f.head().Members {
					if p, err := peer.Decode(m.PeerID); err == nil && p != s.self && s.o.Host.Network().Connectedness(p) == network.Connected {
						connected = append(connected, p)
					}
				}
			}
		}
		s.mu.Unlock()
		if len(connected) > 0 {
			p := connected[rand.IntN(len(connected))]
			s.spawn(func() { _ = s.pull(ctx, p, id) })
		}
	}
}

// redial connects to p from known addresses, asking the DHTs when there are
// none.
func (s *Service) redial(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ai := peer.AddrInfo{ID: p, Addrs: s.o.Host.Peerstore().Addrs(p)}
	if len(ai.Addrs) == 0 {
		s.mu.Lock()
		var kads []interface {
			FindPeer(context.Context, peer.ID) (peer.AddrInfo, error)
		}
		for _, f := range s.feds {
			if f.dht != nil {
				kads = append(kads, f.dht)
			}
		}
		s.mu.Unlock()
		for _, k := range kads {
			if found, err := k.FindPeer(ctx, p); err == nil && len(found.Addrs) > 0 {
				ai = found
				break
			}
		}
	}
	if len(ai.Addrs) == 0 {
		// Ask the members we are connected to where p is.
		for _, q := range s.memberPeers() {
			if s.o.Host.Network().Connectedness(q) == network.Connected {
				s.pullFrom(ctx, q)
			}
			if ai.Addrs = s.o.Host.Peerstore().Addrs(p); len(ai.Addrs) > 0 {
				break
			}
		}
	}
	if len(ai.Addrs) == 0 {
		return
	}
	_ = s.o.Host.Connect(ctx, ai)
}

// memberPeers lists the other members of every federation we are in.
func (s *Service) memberPeers() []peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[peer.ID]bool{}
	var out []peer.ID
	for _, f := range s.feds {
		h := f.head()
		if _, ok := h.Member(s.self); !ok {
			continue
		}
		for _, m := range h.Members {
			p, err := peer.Decode(m.PeerID)
			if err != nil || p == s.self || seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Key layout under store.PrefixFederation:
//
//	f/<federation-id>/<seq, 20 digits>  → document JSON
func docKey(id string, seq uint64) []byte {
	return store.Key(store.PrefixFederation, id, fmt.Sprintf("%020d", seq))
}

func storeDocs(db *store.DB, docs []*Document) error {
	return db.Update(func(tx *store.Txn) error {
		for _, d := range docs {
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := tx.Set(docKey(d.ID, d.Seq), b); err != nil {
				return err
			}
		}
		return nil
	})
}

func loadChains(db *store.DB) (map[string][]*Document, error) {
	out := map[string][]*Document{}
	err := db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(store.PrefixFederation)}, func(k, v []byte) error {
			d, err := Decode(v)
			if err != nil {
				return fmt.Errorf("stored federation document %s: %w", k, err)
			}
			out[d.ID] = append(out[d.ID], d)
			return nil
		})
	})
	return out, err
}
