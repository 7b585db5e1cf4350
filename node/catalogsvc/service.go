package catalogsvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/internal/spawn"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	mimproto "github.com/mimnode/mimnode/protocol"
)

// Protocol is the catalogue stream protocol.
const Protocol = protocol.ID(mimproto.CatalogProtocol)

// maxPage is the largest page Index.Search returns.
const maxPage = 1000

// DefaultResyncInterval is the full resync period when none is configured.
const DefaultResyncInterval = 10 * time.Minute

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
	// ResyncInterval is how often, on average, the node pulls the full
	// catalogue of every connected publisher and drops the datasets it no
	// longer may see (each wait is jittered by ±25%). 0 means
	// DefaultResyncInterval; negative turns the schedule off. A full
	// resync also runs on the first connection to a publisher after start
	// and on every reconnection after a gap.
	ResyncInterval time.Duration
	// Warn, when set, looks over a dataset this node published and says
	// what may not be what its publisher meant (an entity type no stored
	// entity has); the publish answer carries it.
	Warn   func(catalog.Dataset) []string
	Logger *slog.Logger
	Now    func() time.Time
}

// Service is a node's catalogue.
type Service struct {
	o      Options
	log    *slog.Logger
	self   peer.ID
	cancel context.CancelFunc
	bg     spawn.Group // background work, refused once Close began

	notifee *network.NotifyBundle // connection events, stopped by Close

	pubMu sync.Mutex // serialises publishing (Catalog is not safe for concurrent Put)
	cat   *catalog.Catalog

	mu    sync.RWMutex // guards index (Search takes the read lock)
	index *catalog.Index

	heldMu sync.Mutex
	held   map[string]uint64   // guarded by heldMu; catalogue seq held per publisher
	pulls  map[string]*pending // guarded by heldMu; publishers being pulled now, and what to do after
	// met and gone (guarded by heldMu) tell a reconnection after a gap
	// from a further connection to a peer that is still connected.
	met  map[peer.ID]bool
	gone map[peer.ID]bool
	// skipped (guarded by heldMu) holds the peers whose pull was skipped
	// as they were not agencies then, each with whether the pull was to
	// be a full resync: a membership change may make one an agency.
	skipped map[peer.ID]bool

	filesMu sync.Mutex // serialises AddFile and RemoveFile (read, change, publish)
	files   Files      // set by UseFiles before Start

	subMu  sync.Mutex
	subbed map[string]bool // guarded by subMu; federations whose topic we read
}

// Errors a caller can get.
var (
	ErrNotFound = errors.New("no such dataset")
	// ErrNoSuchFile is returned for a file a dataset of this node does not have.
	ErrNoSuchFile = errors.New("no such file")
	// ErrAmbiguous: a dataset id alone names datasets of several
	// publishers; the caller names one as "publisher/id".
	ErrAmbiguous  = errors.New("dataset id is used by several publishers")
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
		index: catalog.NewIndex(), held: map[string]uint64{}, pulls: map[string]*pending{}, subbed: map[string]bool{},
		met: map[peer.ID]bool{}, gone: map[peer.ID]bool{}, skipped: map[peer.ID]bool{}}
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
			full := s.returning(p)
			s.spawn(func() { s.pull(ctx, p, full) })
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if p := c.RemotePeer(); len(n.ConnsToPeer(p)) == 0 {
				s.heldMu.Lock()
				s.gone[p] = true
				s.heldMu.Unlock()
			}
		},
	}
	s.o.Host.Network().Notify(s.notifee)
	s.o.Federations.OnChange(func(string) {
		s.followTopics(ctx)
		s.retrySkipped(ctx)
	})
	s.followTopics(ctx)
	// Catch up from the members already connected (the service may start
	// after the host has connected to them).
	for _, p := range s.o.Host.Network().Peers() {
		full := s.returning(p)
		s.spawn(func() { s.pull(ctx, p, full) })
	}
	if every := s.resyncInterval(); every > 0 {
		s.spawn(func() { s.resyncLoop(ctx, every) })
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
	s.bg.Wait()
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
		if h, err := t.EventHandler(); err == nil {
			s.spawn(func() { s.greetFollowers(ctx, id, h) })
		}
	}
}

// greetGather is how long greetFollowers waits for further members to
// start following before it announces once for all of them, and
// greetGatherMax bounds that wait while they keep coming.
const (
	greetGather    = 100 * time.Millisecond
	greetGatherMax = time.Second
)

// greetFollowers announces this node's catalogue sequence number again on
// federation id's topic each time members start following it. A member
// pulls when it connects, but GossipSub learns of its subscription a
// moment later: a change announced in between reaches nobody, and without
// this the member would not hear of it before the next change or the
// periodic resync. Members that hold the number already ignore it. Joins
// that come together (a federation starting) share one announcement.
func (s *Service) greetFollowers(ctx context.Context, id string, h *pubsub.TopicEventHandler) {
	defer h.Cancel()
	for {
		ev, err := h.NextPeerEvent(ctx)
		if err != nil {
			return
		}
		if ev.Type != pubsub.PeerJoin {
			continue
		}
		until := time.Now().Add(greetGatherMax)
		for time.Now().Before(until) {
			wctx, cancel := context.WithTimeout(ctx, greetGather)
			_, err := h.NextPeerEvent(wctx)
			cancel()
			if err != nil {
				break // quiet for a moment (or closing)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if role, _ := s.o.Federations.RoleOf(id, s.self); role != federation.RoleAgency {
			continue
		}
		s.pubMu.Lock()
		seq := s.cat.Seq()
		s.pubMu.Unlock()
		if seq > 0 {
			s.announceIn(ctx, id, seq)
		}
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
				s.spawn(func() { s.pull(ctx, p, false) })
			}
		}
	}
}

func (s *Service) heldSeq(p string) uint64 {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	return s.held[p]
}

// pending is what a running pull of one publisher is asked to do once its
// current exchange is done.
type pending struct {
	again bool // a change was announced: ask for changes once more
	full  bool // a full resync is due
}

// pull fetches every change of p's catalogue after what this node holds,
// or, when full is set, p's whole catalogue, dropping the datasets of p it
// was not given (resync). One pull per publisher runs at a time, so a
// resync never races with a changes pull; a request during a pull is
// carried out by the running pull's loop.
func (s *Service) pull(ctx context.Context, p peer.ID, full bool) {
	if p == s.self {
		return
	}
	if role, ok := s.roleOf(p); !ok || role != federation.RoleAgency {
		// Only agencies publish; retrySkipped asks again should p
		// become one.
		s.heldMu.Lock()
		s.skipped[p] = s.skipped[p] || full
		s.heldMu.Unlock()
		return
	}
	key := p.String()
	s.heldMu.Lock()
	delete(s.skipped, p)
	if st, running := s.pulls[key]; running {
		// A pull is under way; it may have asked before this change was
		// made, so have it ask once more when it is done.
		st.again = true
		st.full = st.full || full
		s.heldMu.Unlock()
		return
	}
	st := &pending{}
	s.pulls[key] = st
	s.heldMu.Unlock()
	for range 1000 { // pages and re-pulls; bounded so a misbehaving peer cannot keep us forever
		var more bool
		var err error
		if full {
			err = s.resync(ctx, p)
		} else {
			more, err = s.pullPage(ctx, p)
		}
		if err != nil {
			s.log.Debug("catalogue pull failed", "publisher", p, "full", full, "err", err)
		}
		s.heldMu.Lock()
		again := st.again
		full = st.full
		st.again, st.full = false, false
		if err != nil || (!more && !again && !full) {
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

// retrySkipped pulls from the connected peers whose pull was skipped and
// that are agencies now. A member connected to a peer before it learnt
// that the peer became an agency (the membership update may even come
// over that connection) would otherwise not see the new agency's
// catalogue before its next announcement or the periodic resync.
func (s *Service) retrySkipped(ctx context.Context) {
	s.heldMu.Lock()
	skipped := maps.Clone(s.skipped)
	s.heldMu.Unlock()
	for p, full := range skipped {
		if role, ok := s.roleOf(p); ok && role == federation.RoleAgency && s.o.Host.Network().Connectedness(p) == network.Connected {
			s.spawn(func() { s.pull(ctx, p, full) })
		}
	}
}

// returning reports whether a connection to p is the first since start or
// the first after p was disconnected: what this node missed meanwhile may
// include datasets p has since hidden from it, which only a full resync
// withdraws.
func (s *Service) returning(p peer.ID) bool {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	back := !s.met[p] || s.gone[p]
	s.met[p] = true
	delete(s.gone, p)
	return back
}

func (s *Service) resyncInterval() time.Duration {
	if s.o.ResyncInterval == 0 {
		return DefaultResyncInterval
	}
	return s.o.ResyncInterval
}

// resyncLoop resyncs with every connected publisher about every interval,
// each wait jittered by ±25% so that the nodes of a federation, started
// together, do not all ask at once.
func (s *Service) resyncLoop(ctx context.Context, every time.Duration) {
	for {
		wait := every*3/4 + rand.N(every/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		for _, p := range s.o.Host.Network().Peers() {
			s.spawn(func() { s.pull(ctx, p, true) })
		}
	}
}

// resync pulls p's whole catalogue (changes since 0, every page), applies
// it and removes from the index (and the store) every dataset of p that it
// did not contain: datasets p has hidden from this node since.
func (s *Service) resync(ctx context.Context, p peer.ID) error {
	var all []catalog.Record
	var since uint64
	for range 10000 {
		resp, err := s.changes(ctx, p, since)
		if err != nil {
			return err
		}
		page := append(append([]catalog.Record(nil), resp.Records...), resp.Retired...)
		all = append(all, page...)
		since = resp.Seq
		if !resp.More {
			break
		}
	}
	if err := s.apply(p.String(), all, since); err != nil {
		return err
	}
	s.mu.Lock()
	removed := s.index.Replace(p.String(), all)
	s.mu.Unlock()
	if len(removed) == 0 {
		return nil
	}
	err := s.o.Store.Update(func(tx *store.Txn) error {
		for _, k := range removed {
			if err := tx.Delete(idxKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget datasets %s no longer shows: %w", p, err)
	}
	s.log.Info("full catalogue resync", "publisher", p, "records", len(all), "withdrawn", len(removed))
	return nil
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
	resp, err := s.changes(ctx, p, s.heldSeq(p.String()))
	if err != nil {
		return false, err
	}
	recs := append(append([]catalog.Record(nil), resp.Records...), resp.Retired...)
	if err := s.apply(p.String(), recs, resp.Seq); err != nil {
		return false, err
	}
	return resp.More, nil
}

// changes asks p for one page of the changes after since and checks the
// answer: from p, about p, every record signed by p.
func (s *Service) changes(ctx context.Context, p peer.ID, since uint64) (*catalog.CatalogResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	st, err := s.o.Host.NewStream(ctx, p, Protocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(streamTimeout))
	req, err := catalog.EncodeMessage(&catalog.ChangesRequest{Since: since})
	if err != nil {
		return nil, err
	}
	if err := mimproto.WriteFrame(st, req); err != nil {
		st.Reset()
		return nil, err
	}
	body, err := mimproto.ReadFrame(st, mimproto.MaxCatalogFrame)
	if err != nil {
		st.Reset()
		return nil, err
	}
	msg, err := catalog.DecodeMessage(body)
	if err != nil {
		return nil, err
	}
	switch m := msg.(type) {
	case *catalog.CatalogError:
		return nil, m
	case *catalog.CatalogResponse:
		if m.Participant != p.String() {
			return nil, fmt.Errorf("answer for %s came from %s", m.Participant, p)
		}
		if err := m.Verify(s.o.Verifier); err != nil {
			return nil, fmt.Errorf("catalogue of %s: %w", p, err)
		}
		return m, nil
	default:
		return nil, fmt.Errorf("unexpected %s answer", msg.MessageType())
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
	// A template's federation may be given as the operator knows it (a
	// name or an ID prefix, as the federation commands take); the offer
	// names the ID, which is what a consumer's federation is checked
	// against. One this node does not belong to would hide the dataset
	// from everyone.
	d.Offers = slices.Clone(d.Offers)
	for i, o := range d.Offers {
		if o.Template == "" || o.Params.Federation == "" {
			continue
		}
		id, err := s.o.Federations.Resolve(o.Params.Federation)
		if err != nil {
			return catalog.Record{}, &catalog.FieldError{Field: fmt.Sprintf("offers[%d].params.federation", i),
				Msg: fmt.Sprintf("%q is not a federation this node belongs to (%v); 'mimnode federation list' shows their IDs and names", o.Params.Federation, err)}
		}
		d.Offers[i].Params.Federation = id
	}
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
	for _, id := range s.o.Federations.IDs() {
		s.announceIn(ctx, id, seq)
	}
}

// announceIn tells federation id's members this node's catalogue is at seq.
func (s *Service) announceIn(ctx context.Context, id string, seq uint64) {
	b, _ := json.Marshal(announcement{Publisher: s.self.String(), Seq: seq})
	if err := s.o.Federations.Announce(ctx, id, b); err != nil {
		s.log.Warn("announce catalogue change", "federation", id, "err", err)
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
	// By id alone: one publisher's dataset, or refuse to guess.
	switch rs := s.index.ByID(id); len(rs) {
	case 0:
		return catalog.Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	case 1:
		return rs[0], nil
	default:
		pubs := make([]string, len(rs))
		for i, r := range rs {
			pubs[i] = r.Publisher
		}
		return catalog.Record{}, fmt.Errorf("%w: %d publishers have %s (%s); name it as PUBLISHER/%s", ErrAmbiguous, len(rs), id, strings.Join(pubs, ", "), id)
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
func (s *Service) spawn(fn func()) { s.bg.Go(fn) }

// stopSpawning makes spawn refuse new work and stops connection events.
func (s *Service) stopSpawning() {
	s.bg.Stop()
	if s.notifee != nil {
		s.o.Host.Network().StopNotify(s.notifee)
	}
}
