package contract

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// Errors of the local API. Peers never see these: what goes on the wire
// is a protocol error code.
var (
	// ErrBadRequest: a request lacks what it needs or names something
	// impossible (no dataset, the node itself as provider, ...).
	ErrBadRequest = errors.New("bad contract request")
	// ErrUnknownNegotiation: no negotiation with that id on this node.
	ErrUnknownNegotiation = errors.New("unknown negotiation")
	// ErrUnknownAgreement: no finalized agreement with that id here.
	ErrUnknownAgreement = errors.New("unknown agreement")
	// ErrNotPending: approve or reject of a negotiation that is not
	// waiting for a person.
	ErrNotPending = errors.New("negotiation is not waiting for approval")
	// ErrClosed: the service has been closed.
	ErrClosed = errors.New("contract service closed")
)

// Membership is what the driver needs from the federation service: the
// authorization table for its stream protocol, and the consumer's
// federations and role for the provider's policy evaluation.
type Membership interface {
	// Guard wraps h so that only peers the authorization table admits
	// reach it.
	Guard(proto p2pproto.ID, h network.StreamHandler) network.StreamHandler
	// SharedFederations lists the federations this node and p are both
	// members of.
	SharedFederations(p peer.ID) []string
	// RoleOf returns p's role in federation fed.
	RoleOf(fed string, p peer.ID) (federation.Role, bool)
	// Authorize reports whether p may open proto here now, as Guard
	// checks it (a conversation stream kept open is checked again for
	// each message that starts a negotiation).
	Authorize(proto p2pproto.ID, p peer.ID) bool
}

var _ Membership = (*federation.Service)(nil)

// Options configure a Service. Host, Store, Audit, Members, Signer,
// Verifier and Offers are required.
type Options struct {
	// Metrics, when set, gets the service's counters
	// (mimnode_negotiations_total).
	Metrics prometheus.Registerer

	Host     host.Host
	Store    *store.DB
	Audit    *audit.Log
	Members  Membership
	Signer   policy.Signer
	Verifier policy.Verifier
	Offers   Offers
	// OpenTo, if set, says whether the provider's dataset may be asked
	// for by peer (catalog.Dataset.OpenTo: not a private one, nor a
	// restricted one outside its audience); a request for one it is not
	// open to is refused, whatever the offer says. Datasets it does not
	// know are open.
	OpenTo func(dataset, peer string) bool
	// Retry is the resend schedule and timeouts of new negotiations
	// (negotiation.RetryPolicy; zero values take its defaults).
	Retry negotiation.RetryPolicy
	// Validity, if set, limits each agreement the node grants as provider
	// to this long after it is made; zero makes them open-ended (the
	// policy's own constraints still apply).
	Validity time.Duration
	// ExchangeTimeout bounds one outgoing exchange, from opening the
	// stream to reading the answer (docs/protocol.md 1.2: 10 s).
	ExchangeTimeout time.Duration
	// ReadTimeout bounds reading an incoming message and writing its
	// answer (docs/protocol.md 1.2: 5 s each).
	ReadTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service drives this node's contract negotiations, in both roles, over
// /mim/negotiation/1.0.0.
type Service struct {
	o    Options
	log  *slog.Logger
	self peer.ID

	ctx    context.Context // cancelled by Close; ends exchanges in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // work in flight: handlers, sends, ticks
	work   chan func()    // background work for an idle worker (goDo); unbuffered

	// firstMu serialises the lookup and creation of provider-side
	// negotiations for first requests that hash alike (firstLock): two
	// copies of one request always do, requests of different consumers
	// rarely, so that they do not queue behind each other's store reads.
	firstMu [64]sync.Mutex

	offers offerMemo     // offers read lately (terms.go)
	names  peerNames     // text forms of peer IDs
	ender  TransferEnder // set once by UseTransfers, before Start
	// anyRevoked: this node revoked an agreement once (set by Start and
	// revoke), so that a decision looks for revocations only then.
	anyRevoked atomic.Bool
	// outcomes counts ended negotiations (Options.Metrics).
	outcomes *prometheus.CounterVec
	// unreached holds, by negotiation id, why the last message to the
	// peer could not be sent or got no answer (Info.Unreached), until one
	// gets through.
	unreached sync.Map

	mu   sync.Mutex
	live map[negotiation.Key]*entry // guarded by mu; negotiations with work left
	// firsts maps "consumer peer consumerPid" to the provider pid of live
	// provider-side negotiations, so that a resent first request finds its
	// negotiation before the store index is written. Guarded by mu.
	firsts  map[string]string
	waiters map[string][]chan Info // guarded by mu; Wait calls by pid, given the negotiation when it ends
	// settling holds finished negotiations whose last change (the peer's
	// answer to the final message) is not stored yet; see settle.go.
	// Guarded by mu, as is settleTimer.
	settling    map[negotiation.Key]*entry
	settleTimer *time.Timer
	// idle holds conversation streams this node opened and keeps for its
	// next messages to the same peer (stream.go, takeIdle). Guarded by mu.
	idle map[peer.ID][]idleStream
	// countersigning holds the agreement ids this node countersigned as
	// consumer in negotiations still in memory (dropLocked releases them),
	// by negotiation: a second
	// negotiation given the same id before the first stored its agreement
	// is refused (verifyLocked), as one given a stored agreement's id is.
	// Guarded by mu.
	countersigning map[string]negotiation.Key
	closed         bool // guarded by mu
}

// entry is one negotiation in memory. Its mutex serialises Step, Ready,
// persisting and Advance, as the state machine requires.
type entry struct {
	key negotiation.Key

	mu     sync.Mutex
	n      *negotiation.Negotiation // guarded by mu
	meta   meta                     // guarded by mu
	timer  *time.Timer              // guarded by mu
	gone   bool                     // guarded by mu; dropped from live, look it up again
	dirty  bool                     // guarded by mu; changed since last stored (answers only)
	staged []staged                 // guarded by mu; written with the next persist
	// file is the doubly signed agreement file this side made (consumer:
	// when it countersigned; provider: when it checked the
	// countersignature), stored under its id at FINALIZED. It is not part
	// of the record: the negotiation's agreement carries it, and
	// agreementFile makes it again from there after a restart. Guarded
	// by mu.
	file []byte
	// signed is the agreement this side made and signed as provider, and
	// canon its canonical terms, kept in memory (not in the record) until
	// FINALIZED, so that the countersigned agreement is checked against
	// them without reading its terms again (finalizeKnown). Guarded by mu.
	signed *policy.Agreement
	canon  []byte
}

// staged is a write (or audit entry) to make in the same transaction as
// the next persisted step.
type staged struct {
	key   []byte
	value []byte
	audit *audit.Entry
}

// meta is what the driver keeps about a negotiation besides the state
// machine.
type meta struct {
	Dataset string    `json:"dataset"`
	OfferID string    `json:"offerId,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// AgreementID names the agreement once signed by this side.
	AgreementID string `json:"agreementId,omitempty"`
	// TermsSum is the SHA-256 of the agreement's signed terms in
	// canonical form (provider: to check that the consumer countersigned
	// the same terms).
	TermsSum []byte `json:"termsSum,omitempty"`
	// Canonical is the signed terms themselves, as negotiations stored
	// before TermsSum have them; read, no longer written.
	Canonical []byte `json:"canonical,omitempty"`
	// Signature is the provider's own signature on the terms (provider:
	// the countersigned agreement must carry it unchanged).
	Signature []byte `json:"signature,omitempty"`
	// File is the doubly signed agreement, as negotiations stored before
	// entry.file have it; read, no longer written.
	File []byte `json:"file,omitempty"`
	// Approved: a person approved this request (manual approval).
	Approved bool `json:"approved,omitempty"`
	// Held says why the request waits for a person although its offer
	// does not ask for one (revoke.go).
	Held string `json:"held,omitempty"`
	// Decision is the provider's last policy decision (policy.Decision JSON).
	Decision json.RawMessage `json:"decision,omitempty"`
	// plainDecision says Decision is known to be written as it is
	// (marshalledJSON), so that appendJSON need not check it again at
	// every step; set with Decision.
	plainDecision bool
}

// namedSigner is a Signer with its peer ID kept as text: policy asks for
// it twice at every signature, and the node's signer encodes it in base58
// each time.
type namedSigner struct {
	policy.Signer
	id string
}

func (s namedSigner) PeerID() string { return s.id }

// peerNames remembers the text form of the peer IDs the driver names, and
// the IDs of the texts it reads: base58-encoding or decoding one costs
// more than looking it up, and the same few peers are named at every step
// of every negotiation (a negotiation keeps its peer as text, and the
// provider's decision and every send decode it).
type peerNames struct {
	mu  sync.Mutex
	m   map[peer.ID]string // guarded by mu; up to maxPeerNames, then forgotten
	ids map[string]peer.ID // guarded by mu; texts that decode, as m
}

const maxPeerNames = 1024

// of returns p.String().
func (pn *peerNames) of(p peer.ID) string {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	s, ok := pn.m[p]
	if !ok {
		if pn.m == nil || len(pn.m) >= maxPeerNames {
			pn.m = make(map[peer.ID]string)
		}
		s = p.String()
		pn.m[p] = s
	}
	return s
}

// id returns peer.Decode(s). Only texts that decode are remembered.
func (pn *peerNames) id(s string) (peer.ID, error) {
	pn.mu.Lock()
	p, ok := pn.ids[s]
	pn.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := peer.Decode(s)
	if err != nil {
		return "", err
	}
	pn.mu.Lock()
	defer pn.mu.Unlock()
	if pn.ids == nil || len(pn.ids) >= maxPeerNames {
		pn.ids = make(map[string]peer.ID)
	}
	pn.ids[s] = p
	return p, nil
}

// appendJSON appends json.Marshal(m) to dst for the metadata the driver
// writes at every step: plain strings (printable ASCII that json.Marshal
// writes as it is), times it can write, no legacy members and a decision
// already compact with nothing json.Marshal escapes (Decision.MarshalJSON
// makes it so). For anything else it says false, and the caller takes
// json.Marshal.
func (m *meta) appendJSON(dst []byte) ([]byte, bool) {
	if len(m.Canonical) > 0 || len(m.File) > 0 || m.Held != "" || !plainJSONString(m.Dataset) || !plainJSONString(m.OfferID) ||
		!plainJSONString(m.AgreementID) || (len(m.Decision) > 0 && !m.plainDecision && !marshalledJSON(m.Decision)) {
		return nil, false
	}
	b := append(dst, `{"dataset":"`...)
	b = append(b, m.Dataset...)
	b = append(b, '"')
	if m.OfferID != "" {
		b = append(append(append(b, `,"offerId":"`...), m.OfferID...), '"')
	}
	for _, t := range [...]struct {
		name string
		at   time.Time
	}{{`,"created":"`, m.Created}, {`,"updated":"`, m.Updated}} {
		var err error
		if b, err = t.at.AppendText(append(b, t.name...)); err != nil {
			return nil, false
		}
		b = append(b, '"')
	}
	if m.AgreementID != "" {
		b = append(append(append(b, `,"agreementId":"`...), m.AgreementID...), '"')
	}
	for _, f := range [...]struct {
		name string
		v    []byte
	}{{`,"termsSum":"`, m.TermsSum}, {`,"signature":"`, m.Signature}} {
		if len(f.v) > 0 {
			b = append(base64.StdEncoding.AppendEncode(append(b, f.name...), f.v), '"')
		}
	}
	if m.Approved {
		b = append(b, `,"approved":true`...)
	}
	if len(m.Decision) > 0 {
		b = append(append(b, `,"decision":`...), m.Decision...)
	}
	return append(b, '}'), true
}

// plainJSONString reports whether json.Marshal writes s between quotes as
// it is.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// marshalledJSON reports whether json.Marshal writes raw, a RawMessage,
// as it is: valid, compact, and nothing in it that it escapes (<, >, &,
// U+2028, U+2029) or any other byte outside printable ASCII.
func marshalledJSON(raw []byte) bool {
	if !json.Valid(raw) {
		return false
	}
	in := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= 0x7f || c == '<' || c == '>' || c == '&':
			return false
		case in && c == '\\':
			i++ // the escaped byte (the JSON is valid)
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}

// record is a negotiation as stored.
type record struct {
	Meta        meta            `json:"meta"`
	Negotiation json.RawMessage `json:"negotiation"`
}

// Key layout under store.PrefixNegotiation (path parts escaped):
//
//	g/n/<role>/<own pid>            record (meta and negotiation.Marshal)
//	g/r/<consumer peer>/<consumer pid>  provider pid, to find a resent first request
//	g/a/<agreement id>              the doubly signed agreement file (policy canonical form), packed
//	g/o/<dataset>/<offer id>        interim offers registry (Registry)
func negKey(k negotiation.Key) []byte {
	return store.Key(store.PrefixNegotiation, "n", string(k.Role), url.PathEscape(k.Pid))
}

func firstKey(consumer, consumerPid string) []byte {
	return store.Key(store.PrefixNegotiation, "r", consumer, url.PathEscape(consumerPid))
}

func agreementKey(id string) []byte {
	return store.Key(store.PrefixNegotiation, "a", url.PathEscape(id))
}

// New checks the options and returns a service; Start serves it.
func New(o Options) (*Service, error) {
	switch {
	case o.Host == nil, o.Store == nil, o.Audit == nil, o.Members == nil, o.Signer == nil, o.Verifier == nil, o.Offers == nil:
		return nil, fmt.Errorf("creating contract service: %w: Host, Store, Audit, Members, Signer, Verifier and Offers are required", ErrBadRequest)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ExchangeTimeout <= 0 {
		o.ExchangeTimeout = 10 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Second
	}
	id := o.Signer.PeerID()
	if id != o.Host.ID().String() {
		return nil, fmt.Errorf("creating contract service: %w: signer %s is not the host %s", ErrBadRequest, id, o.Host.ID())
	}
	o.Signer = namedSigner{Signer: o.Signer, id: id}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mimnode_negotiations_total", Help: "Contract negotiations ended here, by this node's role and outcome (agreed, ended without agreement).",
	}, []string{"role", "outcome"})
	if o.Metrics != nil {
		if err := o.Metrics.Register(outcomes); err != nil {
			return nil, fmt.Errorf("creating contract service: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{outcomes: outcomes,
		o: o, log: o.Logger.With("component", "contract"), self: o.Host.ID(),
		ctx: ctx, cancel: cancel, work: make(chan func()),
		live: map[negotiation.Key]*entry{}, firsts: map[string]string{}, waiters: map[string][]chan Info{},
		settling: map[negotiation.Key]*entry{}, idle: map[peer.ID][]idleStream{},
		countersigning: map[string]negotiation.Key{},
	}, nil
}

// Start serves the negotiation protocol and resumes every negotiation that
// has work left (an unanswered message, a decision to make), as stored
// before the last stop.
func (s *Service) Start(ctx context.Context) error {
	var keys []negotiation.Key
	err := s.o.Store.View(func(tx *store.Txn) error {
		revoked, err := revocations(tx)
		if err != nil {
			return err
		}
		s.anyRevoked.Store(len(revoked) > 0)
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, "n", "")}, func(k, v []byte) error {
			e, err := decodeEntry(v)
			if err != nil {
				s.log.Error("skipping unreadable negotiation", "key", string(k), "err", err)
				return nil
			}
			if e.n.State().Terminal() && e.n.NextTick().IsZero() {
				return nil
			}
			s.live[e.key] = e
			s.reserveCountersignedLocked(e)
			keys = append(keys, e.key)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("loading negotiations: %w", err)
	}
	proto := p2pproto.ID(protocol.NegotiationProtocol)
	s.o.Host.SetStreamHandler(proto, s.o.Members.Guard(proto, s.handleStream))
	// Conversations carry the same messages, so the same peers may open
	// them: they are authorised as the negotiation protocol.
	s.o.Host.SetStreamHandler(conversationProto, s.o.Members.Guard(proto, s.handleConversation))
	for _, k := range keys {
		s.goDo(func() {
			// Act first (a decision or signature may be due), then tick:
			// whatever was unanswered at the stop is resent now.
			s.act(k)
			s.tick(k)
		})
	}
	if len(keys) > 0 {
		s.log.Info("resumed negotiations", "count", len(keys))
	}
	return nil
}

// Close stops serving, ends exchanges in flight and waits for the work
// already started to finish. Negotiations carry on at the next Start.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	live := make([]*entry, 0, len(s.live))
	for _, e := range s.live {
		live = append(live, e)
	}
	s.mu.Unlock()
	// Entries are locked without s.mu held: the lock order is entry, then
	// service.
	for _, e := range live {
		e.mu.Lock()
		if e.timer != nil {
			e.timer.Stop()
		}
		e.mu.Unlock()
	}
	s.o.Host.RemoveStreamHandler(p2pproto.ID(protocol.NegotiationProtocol))
	s.o.Host.RemoveStreamHandler(conversationProto)
	s.cancel()
	s.wg.Wait()
	s.closeIdle()
	s.mu.Lock()
	if s.settleTimer != nil {
		s.settleTimer.Stop()
	}
	s.mu.Unlock()
	s.flushSettled()
	return nil
}

// Live returns the number of negotiations with work left in memory: an
// unanswered message, a decision or approval to come.
func (s *Service) Live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// SetRetry changes the retry schedule and timeouts of the negotiations
// started or accepted from now on; those already running keep theirs.
func (s *Service) SetRetry(r negotiation.RetryPolicy) {
	s.mu.Lock()
	s.o.Retry = r
	s.mu.Unlock()
}

func (s *Service) retry() negotiation.RetryPolicy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o.Retry
}

// enter registers one piece of work; it fails once Close has begun.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// goDo runs fn in the background as tracked work, on a goroutine that
// waits for more (worker) or, if none waits, a new one.
func (s *Service) goDo(fn func()) {
	if !s.enter() {
		return
	}
	select {
	case s.work <- fn:
	default:
		go s.worker(fn)
	}
}

// workerIdle is how long a goroutine that did background work waits for
// more before it ends. Background work goes deep (a negotiation's whole
// conversation as consumer: stepping, reading and signing the
// agreement), and a fresh goroutine grew its stack to that depth by
// copying it two or three times, for every negotiation: a goroutine that
// did it once has the stack already.
const workerIdle = 2 * time.Second

// worker runs fn, then whatever goDo hands it, until it has waited
// workerIdle for work or the service closes.
func (s *Service) worker(fn func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		fn()
		s.wg.Done()
		idle.Reset(workerIdle)
		select {
		case fn = <-s.work:
		case <-idle.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

func decodeEntry(b []byte) (*entry, error) {
	b, err := unpackRecord(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", negotiation.ErrCorrupt, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", negotiation.ErrCorrupt, err)
	}
	n, err := negotiation.Unmarshal(r.Negotiation)
	if err != nil {
		return nil, err
	}
	if len(r.Meta.Canonical) > 0 { // stored before TermsSum: keep only its sum
		sum := sha256.Sum256(r.Meta.Canonical)
		r.Meta.TermsSum, r.Meta.Canonical = sum[:], nil
	}
	return &entry{key: negotiation.Key{Role: n.Role(), Pid: n.Pid()}, n: n, meta: r.Meta}, nil
}

// lock returns the entry for k with its mutex held, loading it from the
// store if it is not live, or nil if there is no such negotiation.
func (s *Service) lock(k negotiation.Key) *entry { return s.lockEntry(k, true) }

// lockLive is lock for negotiations with work left only: those are always
// live (Start loads them), so a finished one is not read from the store.
func (s *Service) lockLive(k negotiation.Key) *entry { return s.lockEntry(k, false) }

func (s *Service) lockEntry(k negotiation.Key, load bool) *entry {
	for {
		s.mu.Lock()
		e := s.live[k]
		s.mu.Unlock()
		if e == nil && !load {
			return nil
		}
		if e == nil {
			var err error
			e, err = s.load(k)
			if err != nil {
				if !errors.Is(err, store.ErrNotFound) {
					s.log.Error("loading negotiation", "pid", k.Pid, "err", err)
				}
				return nil
			}
			s.mu.Lock()
			if cur := s.live[k]; cur != nil {
				e = cur // loaded concurrently; keep the one already live
			} else {
				s.live[k] = e
			}
			s.mu.Unlock()
		}
		e.mu.Lock()
		if !e.gone {
			return e
		}
		e.mu.Unlock()
	}
}

func (s *Service) load(k negotiation.Key) (*entry, error) {
	var b []byte
	err := s.o.Store.View(func(tx *store.Txn) error {
		var err error
		b, err = tx.Get(negKey(k))
		return err
	})
	if err != nil {
		return nil, err
	}
	return decodeEntry(b)
}

// stepLocked feeds m to e's negotiation and makes the outcome durable
// (with its audit entries and staged writes) before anything it produced
// is handed out: the answer to m, and the messages to send to the peer.
// If storing fails, the negotiation is reloaded as it was stored and a
// peer message is answered with a retryable internal error, so that the
// peer resends it. e.mu must be held.
//
// A Msg with no Type steps nothing itself; it only takes the automatic
// local steps (autoLocked), which every call takes after m.
func (s *Service) stepLocked(e *entry, m negotiation.Msg) (reply protocol.Message, out []outMsg, err error) {
	var stepErr error
	wasPending := e.n.Pending()
	if m.Type != 0 {
		stepErr = e.n.Step(m)
	}
	s.autoLocked(e, m.Now)
	rd := e.n.Ready()
	// A change that neither moves the state nor answers nor sends
	// anything (an answer settling our message, a pid learnt from it) is
	// not worth a synced write of its own: lost in a crash, it only
	// makes the node resend a message the peer answers again the same
	// way. It is stored with the next write.
	mustWrite := len(rd.Transitions) > 0 || len(rd.Messages) > 0 || rd.Reply != nil || len(e.staged) > 0
	if rd.MustPersist && mustWrite {
		if perr := s.persist(e, rd, m.Now); perr != nil {
			s.log.Error("storing negotiation", "pid", e.key.Pid, "err", perr)
			e.staged = nil
			s.reloadLocked(e)
			if m.Type == negotiation.MsgReceive && m.Body != nil && !isAnswer(m.Body) {
				reply = protocol.NegotiationErrorFor(m.Body, protocol.Errorf(protocol.CodeInternal, perr, "storing the negotiation failed"))
			}
			return reply, nil, perr
		}
		e.dirty = false
		if e.n.State().Terminal() {
			s.notify(e.key.Pid, s.infoOf(e.n, e.meta))
		}
		s.logOutcome(e, rd.Transitions, wasPending)
	} else if rd.MustPersist {
		e.dirty = true
	}
	e.staged = nil
	reply = rd.Reply
	for _, msg := range rd.Messages {
		out = append(out, outMsg{msg: msg, wire: e.n.Wire(msg)})
	}
	e.n.Advance()
	s.scheduleLocked(e)
	return reply, out, stepErr
}

// logOutcome tells the node's log what an operator acts on or asks
// about: a request that waits for a person, and how a negotiation ended.
// The transaction log (mimnode audit) holds every step.
func (s *Service) logOutcome(e *entry, ts []negotiation.Transition, wasPending bool) {
	if e.n.Pending() && !wasPending {
		held := "its offer asks for manual approval"
		if e.meta.Held != "" {
			held = e.meta.Held
		}
		s.log.Info("a contract request waits for approval: 'mimnode contract approve ID' or 'reject ID --reason ...'",
			"id", e.key.Pid, "peer", e.n.Peer(), "who", s.peerName(e.n.Peer()), "dataset", e.meta.Dataset, "why", held)
	}
	for _, t := range ts {
		if t.From == t.To {
			continue
		}
		switch t.To {
		case negotiation.Finalized:
			s.outcomes.WithLabelValues(string(e.n.Role()), "agreed").Inc()
			s.log.Info("contract agreed", "role", e.n.Role(), "peer", e.n.Peer(), "dataset", e.meta.Dataset, "agreement", e.meta.AgreementID, "id", e.key.Pid)
		case negotiation.Terminated:
			s.outcomes.WithLabelValues(string(e.n.Role()), "ended").Inc()
			code, reasons := e.n.Termination()
			s.log.Info("contract negotiation ended without agreement", "role", e.n.Role(), "peer", e.n.Peer(), "dataset", e.meta.Dataset,
				"code", code, "reasons", reasons, "id", e.key.Pid)
		}
	}
}

// persist stores e's negotiation, the audit entries of rd's transitions
// and the staged writes in one durable transaction.
func (s *Service) persist(e *entry, rd negotiation.Ready, now time.Time) error {
	for _, t := range rd.Transitions {
		if t.To == negotiation.Finalized && t.From != t.To {
			if file := s.agreementFile(e); len(file) > 0 {
				e.staged = append(e.staged, staged{key: agreementKey(e.meta.AgreementID), value: store.Pack(file)})
			}
			// Stored under its own key from now on, and the record
			// keeps neither it nor the terms it carries.
			e.file, e.meta.File, e.signed, e.canon = nil, nil, nil, nil
			e.n.ForgetTerms()
		}
	}
	b, err := recordOf(e, now)
	if err != nil {
		return err
	}
	// Finished negotiations waiting to store their settled state ride
	// along (settle.go).
	settled := s.takeSettled(e, now)
	// The log tells the negotiation in the order it happened: the request
	// that opens it first, then what the step decided and signed (staged:
	// policy decisions, signatures), then the transitions it led to. A
	// provider that agrees at once takes all of them in one step.
	entries := make([]audit.Entry, 0, len(rd.Transitions)+len(e.staged))
	rest := rd.Transitions
	for len(rest) > 0 && rest[0].From == negotiation.Initial {
		entries = append(entries, s.transitionEntry(e, rest[0], now))
		rest = rest[1:]
	}
	for _, st := range e.staged {
		if st.audit != nil {
			entries = append(entries, *st.audit)
		}
	}
	for _, t := range rest {
		entries = append(entries, s.transitionEntry(e, t, now))
	}
	write := func(tx *store.Txn) error {
		if err := tx.Set(negKey(e.key), b); err != nil {
			return err
		}
		for _, st := range settled {
			if err := tx.Set(negKey(st.e.key), st.record); err != nil {
				return err
			}
		}
		for _, st := range e.staged {
			if st.key != nil {
				if err := tx.Set(st.key, st.value); err != nil {
					return err
				}
			}
		}
		return audit.AppendAllTx(tx, entries)
	}
	if len(entries) > 0 {
		err = s.o.Audit.Update(write)
	} else {
		// No audit entry: no need to queue behind the log's appenders.
		err = s.o.Store.Update(write)
	}
	s.doneSettled(settled, err == nil)
	if err != nil {
		return fmt.Errorf("storing negotiation %s: %w", e.key.Pid, err)
	}
	return nil
}

// Records are stored packed (store.Pack: the record's JSON compressed in
// the Snappy block format). A record is written at every step of a
// negotiation, and every byte of it is copied into the write-ahead log,
// the memtable and a level-0 table; its offer and agreement repeat the
// same policy text, so it packs to about a third, in a few microseconds.
// Records written before are plain JSON and are read as they are.

// maxUnpackedRecord bounds what a packed record may claim to unpack to.
const maxUnpackedRecord = 16 << 20

// recordScratch holds the JSON of a record while it is being packed.
var recordScratch = sync.Pool{New: func() any { return new([]byte) }}

// recordOf encodes e as stored, last updated now.
func recordOf(e *entry, now time.Time) ([]byte, error) {
	if e.meta.Created.IsZero() {
		e.meta.Created = now
	}
	e.meta.Updated = now
	// The record is assembled by hand, the negotiation written in place:
	// json.Marshal would re-validate and compact the negotiation's bytes,
	// which costs more than making them.
	bp := recordScratch.Get().(*[]byte)
	defer recordScratch.Put(bp)
	b, ok := e.meta.appendJSON(append((*bp)[:0], `{"meta":`...))
	if !ok {
		mb, err := json.Marshal(e.meta)
		if err != nil {
			return nil, fmt.Errorf("encoding negotiation %s: %w", e.key.Pid, err)
		}
		b = append(append((*bp)[:0], `{"meta":`...), mb...)
	}
	b = append(b, `,"negotiation":`...)
	var err error
	if b, err = e.n.AppendJSON(b); err != nil {
		return nil, err
	}
	b = append(b, '}')
	*bp = b
	return store.Pack(b), nil
}

// Agreement files are stored packed as well (store.Pack): one is written
// on each side of every negotiation, and its two peer IDs, named in the
// terms and again in the signatures, and its policy pack to two thirds.
// Files stored before are plain JSON and are read as they are.

// maxAgreementFile bounds what a packed agreement file may claim to
// unpack to: the file travels inside one negotiation frame.
const maxAgreementFile = protocol.MaxNegotiationFrame

// unpackAgreement returns the agreement file stored as b.
func unpackAgreement(b []byte) ([]byte, error) {
	file, err := store.Unpack(b, maxAgreementFile)
	if err != nil {
		return nil, fmt.Errorf("unpacking stored agreement: %w", err)
	}
	return file, nil
}

// unpackRecord returns the JSON of a stored record.
func unpackRecord(b []byte) ([]byte, error) {
	js, err := store.Unpack(b, maxUnpackedRecord)
	if err != nil {
		return nil, fmt.Errorf("unpacking stored negotiation: %w", err)
	}
	return js, nil
}

// transitionEntry is the audit entry of one transition.
func (s *Service) transitionEntry(e *entry, t negotiation.Transition, now time.Time) audit.Entry {
	kind := audit.KindNegotiationTransition
	switch {
	case t.From == negotiation.Initial:
		kind = audit.KindNegotiationRequested
	case t.To == negotiation.Terminated && (t.Code == protocol.CodeRefused || t.Code == protocol.CodeRejected):
		kind = audit.KindNegotiationRefused
	}
	// Members in sorted order, so that the data is already in the
	// canonical form the log hashes (audit skips re-encoding it then).
	pids := e.n.Pids()
	// Names, quotes and states take under 160 bytes.
	size := 160 + len(t.Cause) + len(t.Code) + len(e.meta.Dataset) + len(pids.ConsumerPid) + len(pids.ProviderPid)
	for _, r := range t.Reasons {
		size += 3 + len(r)
	}
	data, ok := appendTransitionData(make([]byte, 0, size), t, e.meta.Dataset, pids, e.key.Role)
	if !ok {
		data = marshalTransitionData(t, e.meta.Dataset, pids, e.key.Role)
	}
	return audit.Entry{Time: now, Kind: kind, Subject: e.key.Pid, Peer: e.n.Peer(), Data: data}
}

// appendTransitionData appends the data of a transition's audit entry as
// transitionEntry's json.Marshal writes it, when its strings are plain
// (plainJSONString); false otherwise. Eleven entries are written per
// negotiation.
func appendTransitionData(b []byte, t negotiation.Transition, dataset string, pids protocol.Pids, role negotiation.Role) ([]byte, bool) {
	for _, s := range [...]string{t.Cause, string(t.Code), dataset, string(t.From), pids.ConsumerPid, pids.ProviderPid, string(role), string(t.To)} {
		if !plainJSONString(s) {
			return nil, false
		}
	}
	for _, r := range t.Reasons {
		if !plainJSONString(r) {
			return nil, false
		}
	}
	str := func(b []byte, name, s string) []byte {
		return append(append(append(b, name...), s...), '"')
	}
	b = str(b, `{"cause":"`, t.Cause)
	if t.Code != "" {
		b = str(b, `,"code":"`, string(t.Code))
	}
	if dataset != "" {
		b = str(b, `,"dataset":"`, dataset)
	}
	b = append(str(b, `,"from":"`, string(t.From)), `,"pids":{`...)
	if pids.ConsumerPid != "" {
		b = str(b, `"consumerPid":"`, pids.ConsumerPid)
	}
	if pids.ProviderPid != "" {
		if pids.ConsumerPid != "" {
			b = append(b, ',')
		}
		b = str(b, `"providerPid":"`, pids.ProviderPid)
	}
	b = append(b, '}')
	if len(t.Reasons) > 0 {
		b = append(b, `,"reasons":[`...)
		for i, r := range t.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			b = str(b, `"`, r)
		}
		b = append(b, ']')
	}
	b = str(b, `,"role":"`, string(role))
	return append(str(b, `,"to":"`, string(t.To)), '}'), true
}

// marshalTransitionData is the data of a transition's audit entry by
// json.Marshal.
func marshalTransitionData(t negotiation.Transition, dataset string, pids protocol.Pids, role negotiation.Role) []byte {
	data, _ := json.Marshal(struct {
		Cause   string            `json:"cause"`
		Code    protocol.Code     `json:"code,omitempty"`
		Dataset string            `json:"dataset,omitempty"`
		From    negotiation.State `json:"from"`
		Pids    sortedPids        `json:"pids"`
		Reasons []string          `json:"reasons,omitempty"`
		Role    negotiation.Role  `json:"role"`
		To      negotiation.State `json:"to"`
	}{Cause: t.Cause, Code: t.Code, Dataset: dataset, From: t.From, Pids: sortedPids{pids.ConsumerPid, pids.ProviderPid},
		Reasons: t.Reasons, Role: role, To: t.To})
	return data
}

// sortedPids is protocol.Pids with its members in sorted order.
type sortedPids struct {
	ConsumerPid string `json:"consumerPid,omitempty"`
	ProviderPid string `json:"providerPid,omitempty"`
}

// reloadLocked puts e back to what is stored, or drops it if nothing is.
func (s *Service) reloadLocked(e *entry) {
	fresh, err := s.load(e.key)
	if err != nil {
		// The stored negotiation keeps its agreement id, and so does the
		// reservation, until it is loaded and finished.
		e.gone = true
		s.mu.Lock()
		if s.live[e.key] == e {
			delete(s.live, e.key)
		}
		s.mu.Unlock()
		return
	}
	// What e countersigned and could not store is not reserved any more;
	// what is stored stays reserved.
	s.mu.Lock()
	s.releaseAgreementIDLocked(e)
	e.n, e.meta, e.file, e.signed, e.canon = fresh.n, fresh.meta, nil, nil, nil
	s.reserveCountersignedLocked(e)
	s.mu.Unlock()
}

// scheduleLocked arms e's timer for its next tick, or drops a finished
// negotiation from memory (it stays in the store, where resends of
// finished negotiations find it).
func (s *Service) scheduleLocked(e *entry) {
	next := e.n.NextTick()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if next.IsZero() {
		if e.n.State().Terminal() {
			if e.dirty {
				s.settle(e)
				return
			}
			s.dropLocked(e)
		}
		return
	}
	k := e.key
	e.timer = time.AfterFunc(max(0, next.Sub(s.o.Now())), func() { s.goDo(func() { s.tick(k) }) })
}

// notify hands the Wait calls for negotiation pid its final state, as
// just stored.
func (s *Service) notify(pid string, in Info) {
	s.mu.Lock()
	ws := s.waiters[pid]
	delete(s.waiters, pid)
	s.mu.Unlock()
	for _, w := range ws {
		w <- in // buffered: each waiter is notified once
	}
}

// waiter returns a channel that receives negotiation pid when it ends.
func (s *Service) waiter(pid string) (ch chan Info, cancel func()) {
	ch = make(chan Info, 1)
	s.mu.Lock()
	s.waiters[pid] = append(s.waiters[pid], ch)
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ws := s.waiters[pid]
		for i, w := range ws {
			if w == ch {
				s.waiters[pid] = append(ws[:i:i], ws[i+1:]...)
				break
			}
		}
		if len(s.waiters[pid]) == 0 {
			delete(s.waiters, pid)
		}
	}
}

// tick steps a MsgTick into negotiation k and sends what it produced.
func (s *Service) tick(k negotiation.Key) {
	e := s.lock(k)
	if e == nil {
		return
	}
	peerID := e.n.Peer()
	_, out, err := s.stepLocked(e, negotiation.Msg{Type: negotiation.MsgTick, Now: s.o.Now()})
	e.mu.Unlock()
	if err != nil {
		s.log.Warn("tick", "pid", k.Pid, "err", err)
	}
	s.sendAll(k, peerID, out)
}

// newPid returns a fresh process id.
func newPid() string { return "urn:uuid:" + uuid.NewString() }

// newAgreementID returns the id of an agreement this node makes as a
// provider; a test stands in for a provider that reuses one.
var newAgreementID = newPid

func isAnswer(m protocol.Message) bool {
	switch m.(type) {
	case *protocol.ContractNegotiation, *protocol.ContractNegotiationError:
		return true
	}
	return false
}

// reserveAgreementID records that negotiation k countersigns agreement id,
// unless another negotiation in memory countersigned one with that id.
func (s *Service) reserveAgreementID(id string, k negotiation.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserveLocked(id, k)
}

func (s *Service) reserveLocked(id string, k negotiation.Key) bool {
	if held, ok := s.countersigning[id]; ok && held != k {
		return false
	}
	s.countersigning[id] = k
	return true
}

// reserveCountersignedLocked reserves the agreement id e countersigned as
// consumer, as stored (loaded at start or again). s.mu is held.
func (s *Service) reserveCountersignedLocked(e *entry) {
	if e.key.Role == negotiation.Consumer && e.meta.AgreementID != "" {
		s.reserveLocked(e.meta.AgreementID, e.key)
	}
}

// releaseAgreementIDLocked drops e's reservation of its agreement id, as
// e leaves memory: finished, its agreement is stored (or there is none).
// e.mu and s.mu are held.
func (s *Service) releaseAgreementIDLocked(e *entry) {
	if id := e.meta.AgreementID; id != "" && s.countersigning[id] == e.key {
		delete(s.countersigning, id)
	}
}

// releaseAgreementID drops negotiation k's reservation of agreement id,
// which it did not countersign after all.
func (s *Service) releaseAgreementID(id string, k negotiation.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.countersigning[id] == k {
		delete(s.countersigning, id)
	}
}
