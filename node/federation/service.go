package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mimnode/mimnode/internal/spawn"
	"github.com/mimnode/mimnode/node/store"
)

// Options configures a Service.
type Options struct {
	Host   host.Host
	Store  *store.DB
	Key    crypto.PrivKey
	PubSub *pubsub.PubSub
	Gater  *Gater
	// Agency is this node's agency name, used when it creates a federation.
	Agency string
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// ReconnectInterval is how often missing members are redialled (default 2s).
	ReconnectInterval time.Duration
}

// Service keeps this node's federations: their document chains in badger,
// their GossipSub topics and DHTs, the gater's member set, and connections to
// the other members.
type Service struct {
	o      Options
	log    *slog.Logger
	self   peer.ID
	cancel context.CancelFunc
	bg     spawn.Group // background work, refused once Close began

	notifee *network.NotifyBundle // connection events, stopped by Close

	// kick wakes the reconnect loop early, after membership changed.
	kick chan struct{}

	mu        sync.Mutex
	feds      map[string]*fed      // guarded by mu
	listeners []func(fedID string) // guarded by mu
}

// fed is one federation this node belongs to (or was revoked from).
type fed struct {
	chain   []*Document
	topic   *pubsub.Topic // members topic
	sub     *pubsub.Subscription
	events  *pubsub.TopicEventHandler
	catalog *pubsub.Topic // catalogue announcements
	dht     *dht.IpfsDHT
	cancel  context.CancelFunc
}

func (f *fed) head() *Document { return f.chain[len(f.chain)-1] }

// Info summarises a federation for listings.
type Info struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Seq       uint64   `json:"seq"`
	Role      Role     `json:"role,omitempty"` // this node's role; empty when revoked
	Admin     bool     `json:"admin"`
	Members   []Member `json:"members"`
	Admins    []string `json:"admins"`
	Threshold int      `json:"threshold"`
	Bootstrap []string `json:"bootstrap,omitempty"`
	Connected int      `json:"connectedMembers"`
}

// New loads the federations stored in the database. Start joins their
// topics and DHTs.
func New(o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReconnectInterval == 0 {
		o.ReconnectInterval = 2 * time.Second
	}
	s := &Service{o: o, log: o.Logger.With("component", "federation"), self: o.Host.ID(), feds: map[string]*fed{}, kick: make(chan struct{}, 1)}
	chains, err := loadChains(o.Store)
	if err != nil {
		return nil, err
	}
	for id, chain := range chains {
		if _, err := VerifyChain(chain); err != nil {
			return nil, fmt.Errorf("stored federation %s does not verify: %w", id, err)
		}
		s.feds[id] = &fed{chain: chain}
	}
	s.updateGater(nil)
	return s, nil
}

// Start joins every federation's topics and DHT, serves the sync protocol,
// pulls updates from members as they connect and keeps members connected.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.o.Host.SetStreamHandler(SyncProtocol, s.Guard(SyncProtocol, s.handleSync))
	s.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			p := c.RemotePeer()
			s.spawn(func() { s.pullFrom(ctx, p) })
		},
	}
	s.o.Host.Network().Notify(s.notifee)
	s.mu.Lock()
	ids := make([]string, 0, len(s.feds))
	for id := range s.feds {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if err := s.activate(ctx, id); err != nil {
			return err
		}
	}
	// Members' addresses from before a restart (addrs.go), for the
	// reconnect loop's first round.
	s.recallAddrs()
	if err := s.rememberAddrs(ctx); err != nil {
		return err
	}
	s.spawn(func() { s.reconnectLoop(ctx) })
	return nil
}

// Close leaves topics, stops DHTs and background work.
func (s *Service) Close() error {
	s.stopSpawning()
	if s.cancel != nil {
		s.cancel()
	}
	s.o.Host.RemoveStreamHandler(SyncProtocol)
	s.mu.Lock()
	var parts []*fedParts
	for _, f := range s.feds {
		parts = append(parts, f.detach())
	}
	s.mu.Unlock()
	for _, p := range parts {
		p.close()
	}
	s.bg.Wait()
	return nil
}

// fedParts are the libp2p resources of an active federation, detached from
// it under the lock and closed outside it: closing them waits for libp2p
// goroutines that may be calling back into the Service (peer filters, the
// DHT's routing table filter), which take the lock.
type fedParts struct {
	cancel  context.CancelFunc
	sub     *pubsub.Subscription
	events  *pubsub.TopicEventHandler
	topic   *pubsub.Topic
	catalog *pubsub.Topic
	dht     *dht.IpfsDHT
}

// detach takes f's resources out of it. Call with s.mu held.
func (f *fed) detach() *fedParts {
	p := &fedParts{cancel: f.cancel, sub: f.sub, events: f.events, topic: f.topic, catalog: f.catalog, dht: f.dht}
	f.cancel, f.sub, f.events, f.topic, f.catalog, f.dht = nil, nil, nil, nil, nil, nil
	return p
}

// close releases detached resources. Call without s.mu.
func (p *fedParts) close() {
	if p.cancel != nil {
		p.cancel()
	}
	if p.sub != nil {
		p.sub.Cancel()
	}
	if p.events != nil {
		p.events.Cancel()
	}
	if p.topic != nil {
		p.topic.Close()
	}
	if p.catalog != nil {
		p.catalog.Close()
	}
	if p.dht != nil {
		p.dht.Close()
	}
}

// MembersTopic and CatalogTopic name a federation's GossipSub topics.
func MembersTopic(id string) string { return "mim/" + id + "/members" }

// CatalogTopic names the topic catalogue changes are announced on.
func CatalogTopic(id string) string { return "mim/" + id + "/catalog" }

// DHTPrefix is the Kademlia protocol prefix of a federation's own DHT.
func DHTPrefix(id string) protocol.ID { return protocol.ID("/mim/" + id) }

// activate joins the topics and starts the DHT of federation id, if this
// node is still a member.
func (s *Service) activate(ctx context.Context, id string) error {
	s.mu.Lock()
	f := s.feds[id]
	if f == nil || f.topic != nil {
		s.mu.Unlock()
		return nil
	}
	me, ok := f.head().Member(s.self)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	ps := s.o.PubSub
	// A node re-admitted after a revocation registers again.
	_ = ps.UnregisterTopicValidator(MembersTopic(id))
	_ = ps.UnregisterTopicValidator(CatalogTopic(id))
	if err := ps.RegisterTopicValidator(MembersTopic(id), s.validateMembers); err != nil {
		return fmt.Errorf("federation %s: members validator: %w", id, err)
	}
	if err := ps.RegisterTopicValidator(CatalogTopic(id), s.validateCatalog); err != nil {
		return fmt.Errorf("federation %s: catalogue validator: %w", id, err)
	}
	// parts collects what is opened, so a failure half-way closes it all.
	parts := &fedParts{}
	fail := func(what string, err error) error {
		parts.close()
		return fmt.Errorf("federation %s: %s: %w", id, what, err)
	}
	var err error
	if parts.topic, err = ps.Join(MembersTopic(id)); err != nil {
		return fail("join members topic", err)
	}
	if parts.sub, err = parts.topic.Subscribe(); err != nil {
		return fail("subscribe", err)
	}
	if parts.events, err = parts.topic.EventHandler(); err != nil {
		return fail("topic events", err)
	}
	if parts.catalog, err = ps.Join(CatalogTopic(id)); err != nil {
		return fail("join catalogue topic", err)
	}
	mode := dht.ModeServer
	if me.Role != RoleAgency {
		mode = dht.ModeClient
	}
	fctx, cancel := context.WithCancel(ctx)
	parts.cancel = cancel
	parts.dht, err = dht.New(s.o.Host,
		dht.ProtocolPrefix(DHTPrefix(id)),
		dht.Mode(mode),
		dht.BootstrapPeersFunc(func() []peer.AddrInfo { return s.bootstrapPeers(id) }),
		dht.RoutingTableFilter(func(_ any, p peer.ID) bool { return s.isMember(id, p) }),
	)
	if err != nil {
		return fail("start DHT", err)
	}
	s.mu.Lock()
	f.topic, f.sub, f.events, f.catalog, f.dht, f.cancel = parts.topic, parts.sub, parts.events, parts.catalog, parts.dht, parts.cancel
	s.mu.Unlock()
	sub, events, kad := parts.sub, parts.events, parts.dht
	s.spawn(func() { s.watchTopicPeers(fctx, id, events) })
	s.spawn(func() { s.readMembers(fctx, id, sub) })
	s.spawn(func() { _ = kad.Bootstrap(fctx) })
	s.connectBootstrap(fctx, id)
	return nil
}

// bootstrapPeers are the federation's bootstrap addresses, without self.
func (s *Service) bootstrapPeers(id string) []peer.AddrInfo {
	s.mu.Lock()
	f := s.feds[id]
	var addrs []string
	if f != nil {
		addrs = slices.Clone(f.head().Bootstrap)
	}
	s.mu.Unlock()
	var out []peer.AddrInfo
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil || ai.ID == s.self {
			continue
		}
		out = append(out, *ai)
	}
	return out
}

func (s *Service) connectBootstrap(ctx context.Context, id string) {
	for _, ai := range s.bootstrapPeers(id) {
		s.o.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		ai := ai
		s.spawn(func() {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := s.o.Host.Connect(cctx, ai); err != nil {
				s.log.Debug("bootstrap dial failed", "federation", id, "peer", ai.ID, "err", err)
			}
		})
	}
}

func (s *Service) isMember(id string, p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feds[id]
	if f == nil {
		return false
	}
	_, ok := f.head().Member(p)
	return ok
}

// updateGater recomputes the member set from every federation's head.
func (s *Service) updateGater(revoked []peer.ID) {
	if s.o.Gater == nil {
		return
	}
	members := map[peer.ID]bool{}
	s.mu.Lock()
	closed := len(s.feds) > 0
	for _, f := range s.feds {
		h := f.head()
		if _, ok := h.Member(s.self); !ok {
			continue
		}
		for _, m := range h.Members {
			if p, err := peer.Decode(m.PeerID); err == nil {
				members[p] = true
			}
		}
	}
	s.mu.Unlock()
	s.o.Gater.setMembers(members, revoked, closed)
}

// Create starts a new federation with this node as its first admin and
// member. bootstrap defaults to this node's own addresses.
func (s *Service) Create(ctx context.Context, name string, bootstrap []string) (Info, error) {
	if strings.TrimSpace(name) == "" {
		return Info{}, fmt.Errorf("%w: federation name is empty", ErrMalformed)
	}
	s.mu.Lock()
	for id, f := range s.feds {
		if strings.EqualFold(f.head().Name, strings.TrimSpace(name)) {
			s.mu.Unlock()
			return Info{}, fmt.Errorf("%w: this node is already in a federation named %q (%s); give the new one another name", ErrNameTaken, f.head().Name, id)
		}
	}
	s.mu.Unlock()
	if bootstrap == nil {
		bootstrap = s.ownAddrs()
	}
	doc, err := NewGenesis(name, s.o.Agency, s.o.Key, bootstrap, s.o.Now())
	if err != nil {
		return Info{}, err
	}
	if err := s.adopt(ctx, []*Document{doc}); err != nil {
		return Info{}, err
	}
	return s.Show(doc.ID)
}

func (s *Service) ownAddrs() []string {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: s.self, Addrs: s.o.Host.Addrs()})
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// adopt stores a verified chain of a federation new to this node and
// activates it.
func (s *Service) adopt(ctx context.Context, chain []*Document) error {
	head, err := VerifyChain(chain)
	if err != nil {
		return err
	}
	if err := storeDocs(s.o.Store, chain); err != nil {
		return err
	}
	s.mu.Lock()
	s.feds[head.ID] = &fed{chain: chain}
	s.mu.Unlock()
	s.updateGater(nil)
	if err := s.activate(ctx, head.ID); err != nil {
		return err
	}
	s.changed(head.ID)
	return nil
}

// OnChange registers fn to be called (in its own goroutine) whenever a
// federation's document changes or this node joins or creates one.
func (s *Service) OnChange(fn func(fedID string)) {
	s.mu.Lock()
	s.listeners = append(s.listeners, fn)
	s.mu.Unlock()
}

func (s *Service) changed(id string) {
	select {
	case s.kick <- struct{}{}:
	default:
	}
	s.mu.Lock()
	ls := slices.Clone(s.listeners)
	s.mu.Unlock()
	for _, fn := range ls {
		go fn(id)
	}
}

// Resolve finds a federation by full ID, unique ID prefix or unique name.
func (s *Service) Resolve(ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.feds[ref]; ok {
		return ref, nil
	}
	var hits []string
	for id, f := range s.feds {
		if f.head().Name == ref || (len(ref) >= 6 && strings.HasPrefix(id, ref)) {
			hits = append(hits, id)
		}
	}
	if len(s.feds) == 1 && ref == "" {
		for id := range s.feds {
			return id, nil
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		if ref == "" {
			return "", fmt.Errorf("%w: this node belongs to %d federations; name one with --federation", ErrUnknownFed, len(s.feds))
		}
		return "", fmt.Errorf("%w: %q", ErrUnknownFed, ref)
	default:
		return "", fmt.Errorf("%w: %q matches %d federations; use the full ID", ErrUnknownFed, ref, len(hits))
	}
}

// Change applies an edit signed by this node. When the federation needs
// more admin signatures than this one, the change is not applied: the
// returned token carries the proposal for other admins to Sign.
func (s *Service) Change(ctx context.Context, fedRef string, ch Change) (tok string, applied bool, err error) {
	id, err := s.Resolve(fedRef)
	if err != nil {
		return "", false, err
	}
	s.mu.Lock()
	f := s.feds[id]
	cur := f.head()
	chain := slices.Clone(f.chain)
	s.mu.Unlock()
	if !cur.IsAdmin(s.self) {
		return "", false, fmt.Errorf("%w: %s is not an admin of %s", ErrNotAdmin, s.self, cur.Name)
	}
	next, err := cur.Next(ch, s.o.Now())
	if err != nil {
		return "", false, err
	}
	if err := next.Sign(s.o.Key); err != nil {
		return "", false, err
	}
	return s.proposeOrApply(ctx, chain, next)
}

// Sign adds this node's admin signature to a proposal token and applies it
// once it has enough signatures.
func (s *Service) Sign(ctx context.Context, token string) (string, bool, error) {
	t, err := DecodeToken(token)
	if err != nil {
		return "", false, err
	}
	if t.Proposal == nil {
		return "", false, fmt.Errorf("%w: the token carries no proposal to sign", ErrMalformed)
	}
	id := t.Chain[0].ID
	s.mu.Lock()
	f := s.feds[id]
	var chain []*Document
	if f != nil {
		chain = slices.Clone(f.chain)
	}
	s.mu.Unlock()
	if f == nil {
		return "", false, fmt.Errorf("%w: %s", ErrUnknownFed, id)
	}
	cur := chain[len(chain)-1]
	if !cur.IsAdmin(s.self) {
		return "", false, fmt.Errorf("%w: %s", ErrNotAdmin, s.self)
	}
	if t.Proposal.Seq <= cur.Seq {
		return "", false, fmt.Errorf("%w: proposal seq %d, federation is at %d", ErrStale, t.Proposal.Seq, cur.Seq)
	}
	// Check the proposal before signing it: all but the signature count.
	if _, err := t.Proposal.validSigners(cur.Admins); err != nil {
		return "", false, err
	}
	if err := VerifyNext(cur, t.Proposal); err != nil && !errors.Is(err, ErrNotEnoughSigs) {
		return "", false, err
	}
	if err := t.Proposal.Sign(s.o.Key); err != nil {
		return "", false, err
	}
	return s.proposeOrApply(ctx, chain, t.Proposal)
}

func (s *Service) proposeOrApply(ctx context.Context, chain []*Document, next *Document) (string, bool, error) {
	cur := chain[len(chain)-1]
	err := VerifyNext(cur, next)
	if errors.Is(err, ErrNotEnoughSigs) {
		tok, err := EncodeToken(Token{Chain: chain, Proposal: next, Addresses: s.ownAddrs()})
		return tok, false, err
	}
	if err != nil {
		return "", false, err
	}
	if err := s.apply(ctx, next); err != nil {
		return "", false, err
	}
	s.publish(ctx, next)
	tok, err := s.InviteToken(next.ID)
	return tok, true, err
}

// InviteToken is a token with the federation's current chain and this
// node's addresses: what a new member needs to join.
func (s *Service) InviteToken(id string) (string, error) {
	s.mu.Lock()
	f := s.feds[id]
	if f == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("%w: %s", ErrUnknownFed, id)
	}
	chain := slices.Clone(f.chain)
	s.mu.Unlock()
	return EncodeToken(Token{Chain: chain, Addresses: s.ownAddrs()})
}

// Join adopts the federation in an invitation token. This node must be a
// member of its latest document.
func (s *Service) Join(ctx context.Context, token string) (Info, error) {
	t, err := DecodeToken(token)
	if err != nil {
		return Info{}, err
	}
	head, err := VerifyChain(t.Chain)
	if err != nil {
		return Info{}, fmt.Errorf("invitation does not verify: %w", err)
	}
	if _, ok := head.Member(s.self); !ok {
		return Info{}, fmt.Errorf("%w: %s is not in %s (ask an admin to run 'mimnode federation invite %s')", ErrNotMember, s.self, head.Name, s.self)
	}
	s.mu.Lock()
	existing := s.feds[head.ID]
	s.mu.Unlock()
	for _, a := range t.Addresses {
		if m, err := ma.NewMultiaddr(a); err == nil {
			if ai, err := peer.AddrInfoFromP2pAddr(m); err == nil && ai.ID != s.self {
				s.o.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
			}
		}
	}
	if existing != nil {
		// Already known: take whatever is newer.
		for _, d := range t.Chain {
			if d.Seq > existing.head().Seq {
				if err := s.apply(ctx, d); err != nil {
					return Info{}, err
				}
			}
		}
	} else if err := s.adopt(ctx, t.Chain); err != nil {
		return Info{}, err
	}
	s.dialMembers(ctx, head.ID, t.Addresses)
	return s.Show(head.ID)
}

// dialMembers connects to the inviter and the bootstrap peers right away.
func (s *Service) dialMembers(ctx context.Context, id string, addrs []string) {
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			continue
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil || ai.ID == s.self {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.o.Host.Connect(cctx, *ai); err != nil {
			s.log.Debug("dial inviter failed", "peer", ai.ID, "err", err)
		}
		cancel()
	}
}

// apply verifies next against the current head, stores it, updates the
// gater and cuts off revoked peers.
func (s *Service) apply(ctx context.Context, next *Document) error {
	s.mu.Lock()
	f := s.feds[next.ID]
	if f == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrUnknownFed, next.ID)
	}
	cur := f.head()
	if err := VerifyNext(cur, next); err != nil {
		s.mu.Unlock()
		return err
	}
	if err := storeDocs(s.o.Store, []*Document{next}); err != nil {
		s.mu.Unlock()
		return err
	}
	f.chain = append(f.chain, next)
	var revoked []peer.ID
	for _, m := range cur.Members {
		if p, err := peer.Decode(m.PeerID); err == nil {
			if _, still := next.Member(p); !still {
				revoked = append(revoked, p)
			}
		}
	}
	_, selfStill := next.Member(s.self)
	s.mu.Unlock()
	s.log.Info("federation updated", "federation", next.Name, "seq", next.Seq, "members", len(next.Members))
	s.updateGater(revoked)
	for _, p := range revoked {
		if p == s.self {
			continue
		}
		if !s.o.Gater.Allowed(p) {
			s.o.Host.Network().ClosePeer(p)
		}
	}
	if !selfStill {
		s.log.Warn("this node was removed from the federation", "federation", next.Name)
		s.mu.Lock()
		parts := f.detach()
		s.mu.Unlock()
		parts.close()
	} else {
		s.activate(ctx, next.ID)
	}
	s.changed(next.ID)
	return nil
}

// publish announces a new document on the members topic.
func (s *Service) publish(ctx context.Context, d *Document) {
	s.mu.Lock()
	f := s.feds[d.ID]
	var t *pubsub.Topic
	if f != nil {
		t = f.topic
	}
	s.mu.Unlock()
	if t == nil {
		return
	}
	b, err := json.Marshal(d)
	if err != nil {
		return
	}
	if err := t.Publish(ctx, b); err != nil {
		s.log.Warn("publish membership update", "err", err)
	}
}

// readMembers applies the updates that arrive on the members topic.
func (s *Service) readMembers(ctx context.Context, id string, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == s.self {
			continue
		}
		d, ok := msg.ValidatorData.(*Document)
		if !ok {
			continue
		}
		s.mu.Lock()
		f := s.feds[id]
		var headSeq uint64
		if f != nil {
			headSeq = f.head().Seq
		}
		s.mu.Unlock()
		switch {
		case d.Seq == headSeq+1:
			if err := s.apply(ctx, d); err != nil {
				s.log.Debug("membership update rejected", "err", err)
			}
		case d.Seq > headSeq+1:
			// We missed versions: pull the chain from whoever sent this.
			s.pullFrom(ctx, msg.ReceivedFrom)
		}
	}
}

// watchTopicPeers pulls from every member that appears on the members
// topic: an update published before that peer's subscription was known never
// reached us by gossip.
func (s *Service) watchTopicPeers(ctx context.Context, id string, h *pubsub.TopicEventHandler) {
	for {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if ev.Type == pubsub.PeerJoin {
			if err := s.pull(ctx, ev.Peer, id); err != nil {
				s.log.Debug("membership pull failed", "peer", ev.Peer, "err", err)
			}
		}
	}
}

// validateMembers accepts a document that decodes and is signed by admins
// of a version we know; stale or foreign ones are ignored, forged ones
// rejected (which lowers the sender's score).
func (s *Service) validateMembers(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	d, err := Decode(msg.Data)
	if err != nil {
		return pubsub.ValidationReject
	}
	s.mu.Lock()
	f := s.feds[d.ID]
	var cur *Document
	if f != nil {
		cur = f.head()
	}
	s.mu.Unlock()
	if msg.ReceivedFrom == s.self && cur != nil && d.Seq == cur.Seq {
		// Our own publication of the version we just applied.
		return pubsub.ValidationAccept
	}
	if cur == nil || d.Seq <= cur.Seq {
		return pubsub.ValidationIgnore
	}
	if d.Seq == cur.Seq+1 {
		if err := VerifyNext(cur, d); err != nil {
			s.log.Debug("rejected membership update", "from", msg.GetFrom(), "err", err)
			return pubsub.ValidationReject
		}
	}
	msg.ValidatorData = d
	return pubsub.ValidationAccept
}

// validateCatalog drops catalogue announcements whose author is not an
// agency member of the topic's federation.
func (s *Service) validateCatalog(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if msg.ReceivedFrom == s.self {
		// Local publications were checked by Announce; the rule guards
		// against other nodes.
		return pubsub.ValidationAccept
	}
	id := strings.TrimSuffix(strings.TrimPrefix(msg.GetTopic(), "mim/"), "/catalog")
	author := msg.GetFrom()
	if role, ok := s.RoleOf(id, author); !ok || role != RoleAgency {
		s.log.Debug("dropped catalogue announcement from non-agency", "from", author, "federation", id)
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

// RoleOf returns p's role in federation id.
func (s *Service) RoleOf(id string, p peer.ID) (Role, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feds[id]
	if f == nil {
		return "", false
	}
	m, ok := f.head().Member(p)
	return m.Role, ok
}

// MemberName says who p is in the federations this node shares with it:
// its member name and role, with the federation's name ("env, agency
// in Aarhus region"); "" when no such federation names it.
func (s *Service) MemberName(p peer.ID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.feds))
	for id := range s.feds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		h := s.feds[id].head()
		if _, me := h.Member(s.self); !me {
			continue
		}
		m, ok := h.Member(p)
		if !ok {
			continue
		}
		name := m.Name
		if name == "" {
			name = "unnamed member"
		}
		return fmt.Sprintf("%s, %s in %s", name, m.Role, h.Name)
	}
	return ""
}

// ErrNameTaken is returned by Create for a name this node's federations
// already use: members tell federations apart by name.
var ErrNameTaken = errors.New("federation name taken")

// ErrResearcher is returned when a researcher node tries to publish or serve.
var ErrResearcher = errors.New("researcher nodes may not publish datasets or serve transfers")

// Announce publishes a catalogue announcement on federation id's topic. A
// node that is not an agency member refuses locally.
func (s *Service) Announce(ctx context.Context, id string, data []byte) error {
	s.mu.Lock()
	f := s.feds[id]
	var t *pubsub.Topic
	var role Role
	if f != nil {
		t = f.catalog
		m, _ := f.head().Member(s.self)
		role = m.Role
	}
	s.mu.Unlock()
	if f == nil {
		return fmt.Errorf("%w: %s", ErrUnknownFed, id)
	}
	if role != RoleAgency {
		return fmt.Errorf("announce in %s: %w", id, ErrResearcher)
	}
	if t == nil {
		return fmt.Errorf("announce in %s: not active", id)
	}
	return t.Publish(ctx, data)
}

// TopicPeers lists the peers this node sees subscribed to federation id's
// members topic: once every member sees every other, updates spread by
// gossip alone.
func (s *Service) TopicPeers(id string) []peer.ID {
	s.mu.Lock()
	var t *pubsub.Topic
	if f := s.feds[id]; f != nil {
		t = f.topic
	}
	s.mu.Unlock()
	if t == nil {
		return nil
	}
	// Outside the lock: ListPeers waits for the pubsub event loop, which
	// may be calling our peer filter, which takes the lock.
	return t.ListPeers()
}

// CatalogTopicHandle returns the joined catalogue topic of a federation, for
// the catalogue to subscribe to.
func (s *Service) CatalogTopicHandle(id string) *pubsub.Topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.feds[id]; f != nil {
		return f.catalog
	}
	return nil
}

// List returns every federation this node knows.
func (s *Service) List() []Info {
	s.mu.Lock()
	ids := make([]string, 0, len(s.feds))
	for id := range s.feds {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	sort.Strings(ids)
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		if in, err := s.Show(id); err == nil {
			out = append(out, in)
		}
	}
	return out
}

// Show describes one federation (by ID, prefix or name).
func (s *Service) Show(ref string) (Info, error) {
	id, err := s.Resolve(ref)
	if err != nil {
		return Info{}, err
	}
	s.mu.Lock()
	h := s.feds[id].head()
	s.mu.Unlock()
	in := Info{ID: h.ID, Name: h.Name, Seq: h.Seq, Members: h.Members, Admins: h.Admins,
		Threshold: h.Threshold, Bootstrap: h.Bootstrap, Admin: h.IsAdmin(s.self)}
	if m, ok := h.Member(s.self); ok {
		in.Role = m.Role
	}
	for _, m := range h.Members {
		if p, err := peer.Decode(m.PeerID); err == nil && p != s.self && s.o.Host.Network().Connectedness(p) == network.Connected {
			in.Connected++
		}
	}
	return in, nil
}

// Chain returns a copy of federation id's document chain.
func (s *Service) Chain(id string) []*Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.feds[id]; f != nil {
		return slices.Clone(f.chain)
	}
	return nil
}

// IDs lists the federations this node is a member of.
func (s *Service) IDs() []string {
	var out []string
	for id := range s.Roles() {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Roles returns this node's role in each federation it is a member of.
func (s *Service) Roles() map[string]Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Role{}
	for id, f := range s.feds {
		if m, ok := f.head().Member(s.self); ok {
			out[id] = m.Role
		}
	}
	return out
}

// IsAgency reports whether this node may publish and serve: it is an agency
// member of some federation, or belongs to none (a stand-alone node).
func (s *Service) IsAgency() bool {
	roles := s.Roles()
	if len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		if r == RoleAgency {
			return true
		}
	}
	return false
}

// SharedFederations lists the federations both this node and p are members of.
func (s *Service) SharedFederations(p peer.ID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, f := range s.feds {
		h := f.head()
		if _, me := h.Member(s.self); !me {
			continue
		}
		if _, ok := h.Member(p); ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// TopicPeerAllowed is GossipSub's peer filter: a federation's topics are
// exchanged only with its members.
func (s *Service) TopicPeerAllowed(p peer.ID, topic string) bool {
	rest, ok := strings.CutPrefix(topic, "mim/")
	if !ok {
		return false
	}
	id, _, ok := strings.Cut(rest, "/")
	return ok && s.isMember(id, p)
}

// spawn runs fn in the background unless the service is closing: libp2p
// may still deliver a connection event while Close waits.
func (s *Service) spawn(fn func()) { s.bg.Go(fn) }

// stopSpawning makes spawn refuse new work and stops connection events.
func (s *Service) stopSpawning() {
	s.bg.Stop()
	if s.notifee != nil {
		s.o.Host.Network().StopNotify(s.notifee)
	}
}
