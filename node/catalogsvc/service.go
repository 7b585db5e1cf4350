// Package catalogsvc runs the catalogue on a node: it persists the node's own
// signed records and the federated index in badger, announces changes on each
// federation's GossipSub topic, answers /mim/catalog/1.0.0 and pulls what
// changed from publishers (by sequence number, so a node that was offline
// catches up), and serves search and dataset management over the local API.
// The catalogue logic itself (records, visibility, index, search) is in the
// pure package catalog.
package catalogsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	mimproto "github.com/mimnode/mimnode/protocol"
)

// Protocol is the catalogue stream protocol.
const Protocol = protocol.ID(mimproto.CatalogProtocol)

// maxPage is the largest page Index.Search returns.
const maxPage = 1000

// streamTimeout bounds one catalogue exchange.
const streamTimeout = 10 * time.Second

// Options configures a Service.
type Options struct {
	Host        host.Host
	Store       *store.DB
	Signer      policy.Signer
	Verifier    policy.Verifier
	Federations *federation.Service
	// Agency is the publisher name put on this node's datasets.
	Agency string
	Logger *slog.Logger
	Now    func() time.Time
}

// Service is a node's catalogue.
type Service struct {
	o      Options
	log    *slog.Logger
	self   peer.ID
	cancel context.CancelFunc
	wg     sync.WaitGroup

	notifee *network.NotifyBundle // connection events, stopped by Close
	spawnMu sync.Mutex            // guards closing
	closing bool

	pubMu sync.Mutex // serialises publishing (Catalog is not safe for concurrent Put)
	cat   *catalog.Catalog

	mu    sync.RWMutex // guards index (Search takes the read lock)
	index *catalog.Index

	heldMu sync.Mutex
	held   map[string]uint64 // guarded by heldMu; catalogue seq held per publisher
	pulls  map[string]bool   // guarded by heldMu; publishers being pulled now; true: pull again after

	subMu  sync.Mutex
	subbed map[string]bool // guarded by subMu; federations whose topic we read
}

// Errors a caller can get.
var (
	ErrNotFound   = errors.New("no such dataset")
	ErrResearcher = federation.ErrResearcher
)

// Key layout under store.PrefixCatalog:
//
//	c/own/<dataset id>                 → this node's latest record (JSON)
//	c/idx/<publisher>/<dataset id>     → newest record seen of any publisher's dataset
//	c/held/<publisher>                 → catalogue seq pulled from that publisher
func ownKey(id string) []byte     { return store.Key(store.PrefixCatalog, "own", id) }
func idxKey(k catalog.Key) []byte { return store.Key(store.PrefixCatalog, "idx", k.Publisher, k.ID) }
func heldKey(p string) []byte     { return store.Key(store.PrefixCatalog, "held", p) }

// New loads the node's own catalogue and the federated index.
func New(o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{o: o, log: o.Logger.With("component", "catalog"), self: o.Host.ID(),
		index: catalog.NewIndex(), held: map[string]uint64{}, pulls: map[string]bool{}, subbed: map[string]bool{}}
	var own, all []catalog.Record
	err := o.Store.View(func(tx *store.Txn) error {
		if err := tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixCatalog, "own", "")}, func(k, v []byte) error {
			r, err := catalog.DecodeRecord(v)
			if err != nil {
				return fmt.Errorf("stored record %s: %w", k, err)
			}
			own = append(own, r)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixCatalog, "idx", "")}, func(k, v []byte) error {
			r, err := catalog.DecodeRecord(v)
			if err != nil {
				return fmt.Errorf("stored record %s: %w", k, err)
			}
			all = append(all, r)
			return nil
		}); err != nil {
			return err
		}
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixCatalog, "held", "")}, func(k, v []byte) error {
			var seq uint64
			if err := json.Unmarshal(v, &seq); err != nil {
				return fmt.Errorf("stored seq %s: %w", k, err)
			}
			s.held[string(k[len(store.Key(store.PrefixCatalog, "held", "")):])] = seq
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load catalogue: %w", err)
	}
	if s.cat, err = catalog.NewCatalog(o.Signer, own); err != nil {
		return nil, fmt.Errorf("load own catalogue: %w", err)
	}
	for _, r := range all {
		s.index.Put(r)
	}
	return s, nil
}

// Start serves the catalogue protocol, follows every federation's catalogue
// topic, and catches up from publishers as they connect.
func (s *Service) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.o.Host.SetStreamHandler(Protocol, s.o.Federations.Guard(Protocol, s.handleStream))
	s.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			p := c.RemotePeer()
			s.spawn(func() { s.pullFrom(ctx, p) })
		},
	}
	s.o.Host.Network().Notify(s.notifee)
	s.o.Federations.OnChange(func(string) { s.followTopics(ctx) })
	s.followTopics(ctx)
	// Catch up from the members already connected (the service may start
	// after the host has connected to them).
	for _, p := range s.o.Host.Network().Peers() {
		s.spawn(func() { s.pullFrom(ctx, p) })
	}
	return nil
}

// Close stops background work.
func (s *Service) Close() error {
	s.stopSpawning()
	if s.cancel != nil {
		s.cancel()
	}
	s.o.Host.RemoveStreamHandler(Protocol)
	s.wg.Wait()
	return nil
}

// announcement is what a publisher says on a federation's catalogue topic.
type announcement struct {
	Publisher string `json:"publisher"`
	Seq       uint64 `json:"seq"`
}

// followTopics subscribes to the catalogue topic of every federation not
// followed yet.
func (s *Service) followTopics(ctx context.Context) {
	for _, id := range s.o.Federations.IDs() {
		s.subMu.Lock()
		done := s.subbed[id]
		s.subbed[id] = true
		s.subMu.Unlock()
		if done {
			continue
		}
		t := s.o.Federations.CatalogTopicHandle(id)
		if t == nil {
			s.subMu.Lock()
			delete(s.subbed, id)
			s.subMu.Unlock()
			continue
		}
		sub, err := t.Subscribe()
		if err != nil {
			s.log.Warn("follow catalogue topic", "federation", id, "err", err)
			continue
		}
		s.spawn(func() { s.readAnnouncements(ctx, sub) })
	}
}

func (s *Service) readAnnouncements(ctx context.Context, sub *pubsub.Subscription) {
	defer sub.Cancel()
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if msg.ReceivedFrom == s.self {
			continue
		}
		var a announcement
		if json.Unmarshal(msg.Data, &a) != nil || a.Publisher != msg.GetFrom().String() {
			continue // the validator checked the author is an agency; it must announce itself
		}
		if a.Seq > s.heldSeq(a.Publisher) {
			p, err := peer.Decode(a.Publisher)
			if err == nil {
				s.spawn(func() { s.pullFrom(ctx, p) })
			}
		}
	}
}

func (s *Service) heldSeq(p string) uint64 {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	return s.held[p]
}

// pullFrom fetches every change of p's catalogue after what this node holds.
// One pull per publisher runs at a time; an announcement during a pull is
// caught by the pull's own loop or the next announcement.
func (s *Service) pullFrom(ctx context.Context, p peer.ID) {
	if p == s.self {
		return
	}
	if role, ok := s.roleOf(p); !ok || role != federation.RoleAgency {
		return // only agencies publish
	}
	key := p.String()
	s.heldMu.Lock()
	if _, running := s.pulls[key]; running {
		// A pull is under way; it may have asked before this change was
		// made, so have it ask once more when it is done.
		s.pulls[key] = true
		s.heldMu.Unlock()
		return
	}
	s.pulls[key] = false
	s.heldMu.Unlock()
	for range 1000 { // pages and re-pulls; bounded so a misbehaving peer cannot keep us forever
		more, err := s.pullPage(ctx, p)
		if err != nil {
			s.log.Debug("catalogue pull failed", "publisher", p, "err", err)
		}
		s.heldMu.Lock()
		again := s.pulls[key]
		s.pulls[key] = false
		if err != nil || (!more && !again) {
			// Done, or failed (the next announcement or connection retries).
			delete(s.pulls, key)
			s.heldMu.Unlock()
			return
		}
		s.heldMu.Unlock()
	}
	s.heldMu.Lock()
	delete(s.pulls, key)
	s.heldMu.Unlock()
}

func (s *Service) roleOf(p peer.ID) (federation.Role, bool) {
	// Agency in any shared federation wins: it may publish there.
	var role federation.Role
	for _, id := range s.o.Federations.SharedFederations(p) {
		if r, ok := s.o.Federations.RoleOf(id, p); ok && (role == "" || r == federation.RoleAgency) {
			role = r
		}
	}
	return role, role != ""
}

// pullPage asks p for one page of changes and applies it.
func (s *Service) pullPage(ctx context.Context, p peer.ID) (more bool, err error) {
	since := s.heldSeq(p.String())
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := s.o.Host.NewStream(ctx, p, Protocol)
	if err != nil {
		return false, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	req, err := catalog.EncodeMessage(&catalog.ChangesRequest{Since: since})
	if err != nil {
		return false, err
	}
	if err := mimproto.WriteFrame(st, req); err != nil {
		st.Reset()
		return false, err
	}
	body, err := mimproto.ReadFrame(st, mimproto.MaxCatalogFrame)
	if err != nil {
		st.Reset()
		return false, err
	}
	msg, err := catalog.DecodeMessage(body)
	if err != nil {
		return false, err
	}
	switch m := msg.(type) {
	case *catalog.CatalogError:
		return false, m
	case *catalog.CatalogResponse:
		if m.Participant != p.String() {
			return false, fmt.Errorf("answer for %s came from %s", m.Participant, p)
		}
		if err := m.Verify(s.o.Verifier); err != nil {
			return false, fmt.Errorf("catalogue of %s: %w", p, err)
		}
		recs := append(append([]catalog.Record(nil), m.Records...), m.Retired...)
		if err := s.apply(p.String(), recs, m.Seq); err != nil {
			return false, err
		}
		return m.More, nil
	default:
		return false, fmt.Errorf("unexpected %s answer", msg.MessageType())
	}
}

// apply puts verified records into the index and persists them with the
// new held sequence number in one transaction.
func (s *Service) apply(publisher string, recs []catalog.Record, seq uint64) error {
	s.mu.Lock()
	var changed []catalog.Record
	for _, r := range recs {
		if r.Publisher != publisher {
			continue
		}
		if s.index.Put(r) {
			changed = append(changed, r)
		}
	}
	s.mu.Unlock()
	err := s.o.Store.Update(func(tx *store.Txn) error {
		for _, r := range changed {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := tx.Set(idxKey(r.Key()), b); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(seq)
		return tx.Set(heldKey(publisher), b)
	})
	if err != nil {
		return fmt.Errorf("persist catalogue of %s: %w", publisher, err)
	}
	s.heldMu.Lock()
	if seq > s.held[publisher] {
		s.held[publisher] = seq
	}
	s.heldMu.Unlock()
	return nil
}

// handleStream answers one catalogue request from a member.
func (s *Service) handleStream(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	body, err := mimproto.ReadFrame(st, 64<<10)
	if err != nil {
		st.Reset()
		return
	}
	req, err := catalog.DecodeMessage(body)
	if err != nil {
		st.Reset()
		return
	}
	caller := st.Conn().RemotePeer()
	role, _ := s.roleOf(caller)
	v := catalog.Viewer{PeerID: caller.String(), Role: string(role), Federations: s.o.Federations.SharedFederations(caller), Now: s.o.Now()}
	s.pubMu.Lock()
	resp := s.cat.Answer(req, v)
	s.pubMu.Unlock()
	out, err := catalog.EncodeMessage(resp)
	if err != nil {
		st.Reset()
		return
	}
	if err := mimproto.WriteFrame(st, out); err != nil {
		st.Reset()
	}
}

// Publish adds or updates one of this node's datasets and announces it.
func (s *Service) Publish(ctx context.Context, d catalog.Dataset) (catalog.Record, error) {
	if !s.o.Federations.IsAgency() {
		return catalog.Record{}, fmt.Errorf("publish %s: %w", d.ID, ErrResearcher)
	}
	d.Publisher = catalog.Publisher{PeerID: s.self.String(), Name: s.o.Agency}
	return s.change(ctx, func(now time.Time) (catalog.Record, error) { return s.cat.Put(d, now) })
}

// Retire withdraws one of this node's datasets.
func (s *Service) Retire(ctx context.Context, id string) (catalog.Record, error) {
	if _, ok := s.cat.Get(id); !ok {
		return catalog.Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return s.change(ctx, func(now time.Time) (catalog.Record, error) { return s.cat.Retire(id, now) })
}

// change applies one change to the own catalogue, then (in this order)
// persists the record, indexes it and announces the new sequence number.
func (s *Service) change(ctx context.Context, do func(time.Time) (catalog.Record, error)) (catalog.Record, error) {
	s.pubMu.Lock()
	before := s.cat.Seq()
	rec, err := do(s.o.Now())
	if err != nil {
		s.pubMu.Unlock()
		return rec, err
	}
	if rec.Seq == before {
		s.pubMu.Unlock()
		return rec, nil // unchanged
	}
	err = s.o.Store.Update(func(tx *store.Txn) error {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := tx.Set(ownKey(rec.Dataset.ID), b); err != nil {
			return err
		}
		return tx.Set(idxKey(rec.Key()), b)
	})
	s.pubMu.Unlock()
	if err != nil {
		return rec, fmt.Errorf("persist record: %w", err)
	}
	s.mu.Lock()
	s.index.Put(rec)
	s.mu.Unlock()
	s.announce(ctx, rec.Seq)
	return rec, nil
}

func (s *Service) announce(ctx context.Context, seq uint64) {
	b, _ := json.Marshal(announcement{Publisher: s.self.String(), Seq: seq})
	for _, id := range s.o.Federations.IDs() {
		if err := s.o.Federations.Announce(ctx, id, b); err != nil {
			s.log.Warn("announce catalogue change", "federation", id, "err", err)
		}
	}
}

// Own lists this node's datasets (retired ones included, marked).
func (s *Service) Own() []catalog.Record {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	return s.cat.All()
}

// Get returns one of this node's datasets, or any indexed one by
// "publisher/id" or a unique id.
func (s *Service) Get(id string) (catalog.Record, error) {
	s.pubMu.Lock()
	r, ok := s.cat.Get(id)
	s.pubMu.Unlock()
	if ok {
		return r, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if pub, dsid, ok := strings.Cut(id, "/"); ok && !strings.HasPrefix(id, "urn:") {
		if r, ok := s.index.Get(catalog.Key{Publisher: pub, ID: dsid}); ok {
			return r, nil
		}
	}
	// By id alone: walk the index a page at a time (lookups by id are rare:
	// a negotiation's start, a person's "dataset show").
	for off := 0; ; off += maxPage {
		res, err := s.index.Search(catalog.Query{Limit: maxPage, Offset: off})
		if err != nil {
			return catalog.Record{}, err
		}
		for _, h := range res.Hits {
			if h.Record.Dataset.ID == id {
				return h.Record, nil
			}
		}
		if off+maxPage >= res.Total {
			return catalog.Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
	}
}

// Search answers a catalogue search from the local federated index.
func (s *Service) Search(q catalog.Query) (catalog.Result, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	res, err := s.index.Search(q)
	if err != nil {
		return res, err
	}
	// Hits share memory with the index: copy before the lock is released.
	hits := make([]catalog.Hit, len(res.Hits))
	copy(hits, res.Hits)
	res.Hits = hits
	return res, nil
}

// spawn runs fn in the background unless the service is closing: libp2p
// may still deliver a connection event while Close waits.
func (s *Service) spawn(fn func()) {
	s.spawnMu.Lock()
	defer s.spawnMu.Unlock()
	if s.closing {
		return
	}
	s.wg.Go(fn)
}

// stopSpawning makes spawn refuse new work and stops connection events.
func (s *Service) stopSpawning() {
	s.spawnMu.Lock()
	s.closing = true
	s.spawnMu.Unlock()
	if s.notifee != nil {
		s.o.Host.Network().StopNotify(s.notifee)
	}
}
