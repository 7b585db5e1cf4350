package contract

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// RequestOptions start a negotiation as consumer.
type RequestOptions struct {
	// Provider is the peer that holds the dataset.
	Provider peer.ID
	// Dataset is the dataset id (the offer's target).
	Dataset string
	// OfferID names the offer; with no Offer, it is looked up in the
	// node's Offers ("" takes the dataset's first offer).
	OfferID string
	// Offer is the ODRL offer as the provider advertised it. Its terms
	// must be the provider's exactly: the provider refuses anything else.
	Offer json.RawMessage
	// Purpose is the purpose stated to the provider's policy.
	Purpose string
}

// Info describes one negotiation for the API and CLI.
type Info struct {
	// ID is this node's process id for the negotiation.
	ID    string            `json:"id"`
	Role  negotiation.Role  `json:"role"`
	State negotiation.State `json:"state"`
	Peer  string            `json:"peer"`
	// PeerName is who the peer is in a federation this node shares with
	// it: its member name and role ("" when none names it).
	PeerName    string `json:"peerName,omitempty"`
	Dataset     string `json:"dataset,omitempty"`
	OfferID     string `json:"offerId,omitempty"`
	Purpose     string `json:"purpose,omitempty"`
	ProviderPid string `json:"providerPid,omitempty"`
	ConsumerPid string `json:"consumerPid,omitempty"`
	// Pending: a person must approve or reject (provider side).
	Pending bool `json:"pending,omitempty"`
	// Held says why a person must, when the offer does not ask for one
	// (an earlier agreement of the consumer for the dataset was revoked).
	Held string `json:"held,omitempty"`
	// Unreached says why the last message to the peer could not be sent
	// or got no answer; the node keeps resending it. Empty once one got
	// through (and after a restart, until a send fails again).
	Unreached string `json:"unreached,omitempty"`
	// Code and Reasons say why it TERMINATED (for a refusal, one reason
	// per failed policy constraint).
	Code        protocol.Code   `json:"code,omitempty"`
	Reasons     []string        `json:"reasons,omitempty"`
	AgreementID string          `json:"agreementId,omitempty"`
	Decision    json.RawMessage `json:"decision,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

// MemberNames is what a Membership may also tell: who a peer is (its
// member name and role in a federation this node shares with it), for a
// person deciding on its request. federation.Service implements it.
type MemberNames interface {
	MemberName(p peer.ID) string
}

// infoOf describes a negotiation, naming its peer when the federation
// does.
func (s *Service) infoOf(n *negotiation.Negotiation, m meta) Info {
	in := negotiationInfo(n, m)
	in.PeerName = s.peerName(n.Peer())
	return in
}

// peerName is who peer id is in this node's federations ("" unknown).
func (s *Service) peerName(id string) string {
	names, ok := s.o.Members.(MemberNames)
	if !ok {
		return ""
	}
	p, err := peer.Decode(id)
	if err != nil {
		return ""
	}
	return names.MemberName(p)
}

func negotiationInfo(n *negotiation.Negotiation, m meta) Info {
	code, reasons := n.Termination()
	in := Info{
		ID: n.Pid(), Role: n.Role(), State: n.State(), Peer: n.Peer(), Dataset: m.Dataset, OfferID: m.OfferID,
		Purpose: n.Purpose(), ProviderPid: n.Pids().ProviderPid, ConsumerPid: n.Pids().ConsumerPid,
		Pending: n.Pending(), Code: code, Reasons: reasons, Decision: m.Decision, Created: m.Created, Updated: m.Updated,
	}
	if in.Pending {
		in.Held = m.Held
	}
	if n.State() == negotiation.Finalized {
		in.AgreementID = m.AgreementID
	}
	return in
}

// Request starts a negotiation as consumer and returns its id. The
// request is stored before it is sent; sending and everything after
// happens in the background (Wait follows it).
func (s *Service) Request(ctx context.Context, o RequestOptions) (string, error) {
	if o.Provider == "" || o.Dataset == "" {
		return "", fmt.Errorf("requesting a contract: %w: provider and dataset are required", ErrBadRequest)
	}
	if o.Provider == s.self {
		return "", fmt.Errorf("requesting a contract: %w: the provider is this node itself", ErrBadRequest)
	}
	// The offer is only read until it is written as requested: one read
	// from o.Offer is shared (offerMemo).
	var offer policy.Policy
	var read readOffer
	var err error
	if len(o.Offer) > 0 {
		read, err = s.offers.read(o.Offer)
		offer = read.p
	} else {
		offer, err = s.o.Offers.Offer(o.Dataset, o.OfferID)
	}
	if err != nil {
		return "", fmt.Errorf("requesting a contract for %s: %w: %w", o.Dataset, ErrBadRequest, err)
	}
	switch {
	case offer.ID == "":
		return "", fmt.Errorf("requesting a contract: %w: the offer has no @id", ErrBadRequest)
	case o.OfferID != "" && offer.ID != o.OfferID:
		return "", fmt.Errorf("requesting a contract: %w: the offer is %s, not %s", ErrBadRequest, offer.ID, o.OfferID)
	case offer.Target != "" && offer.Target != o.Dataset:
		return "", fmt.Errorf("requesting a contract: %w: the offer is for %s, not %s", ErrBadRequest, offer.Target, o.Dataset)
	case offer.Assigner != "" && offer.Assigner != s.names.of(o.Provider):
		return "", fmt.Errorf("requesting a contract: %w: the offer is made by %s, not %s", ErrBadRequest, offer.Assigner, o.Provider)
	}
	var raw []byte
	if len(o.Offer) > 0 {
		raw, err = s.offers.asRequested(o.Offer, read, o.Dataset)
	} else {
		offer = offer.Clone()
		offer.Type, offer.Target = policy.TypeOffer, o.Dataset
		raw, err = policy.Marshal(offer)
	}
	if err != nil {
		return "", fmt.Errorf("requesting a contract: %w: %w", ErrBadRequest, err)
	}
	if id := s.underWay(s.names.of(o.Provider), o.Dataset, offer.ID, o.Purpose); id != "" {
		return "", fmt.Errorf("requesting a contract for %s: %w: the same request (offer %s, purpose %q) is under way as %s: 'mimnode contract show %s' follows it",
			o.Dataset, ErrBadRequest, offer.ID, o.Purpose, id, id)
	}
	n, err := negotiation.NewConsumer(negotiation.Config{Pid: newPid(), Peer: s.names.of(o.Provider),
		CallbackAddress: "/p2p/" + s.names.of(s.self), Retry: s.retry()})
	if err != nil {
		return "", err
	}
	if !s.enter() {
		return "", ErrClosed
	}
	defer s.wg.Done()
	now := s.o.Now()
	e := &entry{key: negotiation.Key{Role: negotiation.Consumer, Pid: n.Pid()}, n: n,
		meta: meta{Dataset: o.Dataset, OfferID: offer.ID, Created: now}}
	e.mu.Lock()
	s.mu.Lock()
	s.live[e.key] = e
	s.mu.Unlock()
	_, out, err := s.stepLocked(e, negotiation.Msg{Type: negotiation.MsgRequest, Now: now, Offer: raw, Purpose: o.Purpose})
	e.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("requesting a contract for %s: %w", o.Dataset, err)
	}
	k, provider := e.key, s.names.of(o.Provider)
	s.goDo(func() { s.sendAll(k, provider, out) })
	return k.Pid, nil
}

// underWay returns this node's negotiation, as consumer, of the same
// request (provider, dataset, offer and purpose) that has not ended, if
// there is one: asking again would queue a second request for the
// provider (and a second approval for its person) instead of following
// the first.
func (s *Service) underWay(provider, dataset, offerID, purpose string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.live {
		if k.Role != negotiation.Consumer || !e.mu.TryLock() {
			continue
		}
		same := e.n.Peer() == provider && e.meta.Dataset == dataset && e.meta.OfferID == offerID &&
			e.n.Purpose() == purpose && !e.n.State().Terminal()
		e.mu.Unlock()
		if same {
			return k.Pid
		}
	}
	return ""
}

// Get returns negotiation id as stored (either role).
func (s *Service) Get(id string) (Info, error) {
	for _, role := range []negotiation.Role{negotiation.Consumer, negotiation.Provider} {
		e, err := s.load(negotiation.Key{Role: role, Pid: id})
		if err == nil {
			in := s.infoOf(e.n, e.meta)
			if why, ok := s.unreached.Load(id); ok && !in.State.Terminal() {
				in.Unreached = why.(string)
			}
			return in, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return Info{}, fmt.Errorf("reading negotiation %s: %w", id, err)
		}
	}
	return Info{}, fmt.Errorf("negotiation %s: %w", id, ErrUnknownNegotiation)
}

// Wait blocks until negotiation id is FINALIZED or TERMINATED, or ctx
// ends, and returns it as it then is (as stored).
func (s *Service) Wait(ctx context.Context, id string) (Info, error) {
	ch, cancel := s.waiter(id)
	// A negotiation running in memory is not finished, and will notify
	// the waiter registered above when it is: no need to read and decode
	// its record first.
	if !s.running(id) {
		in, err := s.Get(id)
		if err != nil || in.State.Terminal() {
			cancel()
			return in, err
		}
	}
	select {
	case fin := <-ch:
		return fin, nil
	case <-ctx.Done():
		cancel()
		in, err := s.Get(id)
		if err != nil {
			return in, fmt.Errorf("waiting for negotiation %s: %w", id, errors.Join(ctx.Err(), err))
		}
		return in, fmt.Errorf("waiting for negotiation %s (now %s): %w", id, in.State, ctx.Err())
	}
}

// running reports whether negotiation id is in memory and not finished,
// as far as it can tell without waiting for the negotiation's lock.
// The state in memory is the stored one or later, and a finished state
// is never left, so a negotiation running here is not finished in the
// store either.
func (s *Service) running(id string) bool {
	for _, role := range []negotiation.Role{negotiation.Consumer, negotiation.Provider} {
		s.mu.Lock()
		e := s.live[negotiation.Key{Role: role, Pid: id}]
		s.mu.Unlock()
		if e == nil || !e.mu.TryLock() {
			continue
		}
		ok := !e.gone && !e.n.State().Terminal()
		e.mu.Unlock()
		if ok {
			return true
		}
	}
	return false
}

// List returns every negotiation on this node, newest first.
func (s *Service) List() ([]Info, error) {
	out := []Info{}
	err := s.o.Store.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, "n", "")}, func(k, v []byte) error {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("reading %s: %w", k, err)
			}
			out = append(out, s.infoOf(e.n, e.meta))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing negotiations: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Pending returns the requests waiting for a person's approval.
func (s *Service) Pending() ([]Info, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	out := []Info{}
	for _, in := range all {
		if in.Pending && !in.State.Terminal() {
			out = append(out, in)
		}
	}
	return out, nil
}

// pendingByConsumerPid returns this node's id of the request waiting for
// approval that the consumer names consumerPid, or "" for none.
func (s *Service) pendingByConsumerPid(consumerPid string) (string, error) {
	pending, err := s.Pending()
	if err != nil {
		return "", err
	}
	for _, in := range pending {
		if in.Role == negotiation.Provider && in.ConsumerPid == consumerPid {
			return in.ID, nil
		}
	}
	return "", nil
}

// Approve is a person's approval of a queued request: the policy is
// evaluated once more (time has passed) and, if it still permits, the
// agreement is signed and sent.
func (s *Service) Approve(ctx context.Context, id string) (Info, error) {
	return s.judge(id, func(e *entry, now time.Time) negotiation.Msg {
		e.meta.Approved = true
		e.staged = append(e.staged, staged{audit: &audit.Entry{Time: now, Kind: audit.KindDecision, Subject: e.key.Pid,
			Peer: e.n.Peer(), Data: json.RawMessage(`{"manual":"approved"}`)}})
		return s.decideLocked(e, now)
	})
}

// Reject is a person's rejection of a queued request; reason goes to the
// consumer with code MIM-602.
func (s *Service) Reject(ctx context.Context, id, reason string) (Info, error) {
	if reason == "" {
		reason = "rejected by the provider"
	}
	return s.judge(id, func(e *entry, now time.Time) negotiation.Msg {
		data, _ := json.Marshal(map[string]string{"manual": "rejected", "reason": reason})
		e.staged = append(e.staged, staged{audit: &audit.Entry{Time: now, Kind: audit.KindDecision, Subject: e.key.Pid,
			Peer: e.n.Peer(), Data: data}})
		return refuse(protocol.CodeRejected, reason)
	})
}

func (s *Service) judge(id string, decide func(*entry, time.Time) negotiation.Msg) (Info, error) {
	if !s.enter() {
		return Info{}, ErrClosed
	}
	defer s.wg.Done()
	k := negotiation.Key{Role: negotiation.Provider, Pid: id}
	e := s.lock(k)
	if e == nil {
		// The consumer's id of a queued request, which its user may have
		// sent ("please approve urn:uuid:..."): each side names the
		// negotiation by its own id.
		if pid, err := s.pendingByConsumerPid(id); err == nil && pid != "" {
			k.Pid = pid
			e = s.lock(k)
		}
	}
	if e == nil {
		return Info{}, fmt.Errorf("negotiation %s: %w (give the id 'mimnode contract pending' lists: this node's, or the consumer's)", id, ErrUnknownNegotiation)
	}
	if e.n.Todo() != negotiation.TodoApprove {
		st := e.n.State()
		e.mu.Unlock()
		return Info{}, fmt.Errorf("negotiation %s (%s): %w", id, st, ErrNotPending)
	}
	now := s.o.Now()
	m := decide(e, now)
	m.Now = now
	peerID := e.n.Peer()
	_, out, err := s.stepLocked(e, m)
	in := s.infoOf(e.n, e.meta)
	e.mu.Unlock()
	if err != nil {
		return Info{}, fmt.Errorf("deciding negotiation %s: %w", id, err)
	}
	s.goDo(func() { s.sendAll(k, peerID, out) })
	return in, nil
}

// AgreementInfo describes one stored agreement.
type AgreementInfo struct {
	ID        string    `json:"id"`
	Dataset   string    `json:"dataset"`
	Provider  string    `json:"provider"`
	Consumer  string    `json:"consumer"`
	Role      string    `json:"role"` // this node's role: provider or consumer
	Created   time.Time `json:"created"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter,omitzero"`
	// Revoked is set when this node, its provider, revoked it, or when
	// its provider told this node, its consumer, that it did (Told).
	Revoked *Revocation `json:"revoked,omitempty"`
}

// Agreement returns the agreement file of agreement id: the canonical,
// doubly signed form that `mimnode agreement verify` reads.
func (s *Service) Agreement(id string) ([]byte, error) {
	var b []byte
	err := s.o.Store.View(func(tx *store.Txn) error {
		v, err := tx.Get(agreementKey(id))
		if err == nil {
			b, err = unpackAgreement(v)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("agreement %s: %w", id, ErrUnknownAgreement)
	}
	if err != nil {
		return nil, fmt.Errorf("reading agreement %s: %w", id, err)
	}
	return b, nil
}

// Agreements lists the agreements this node holds, newest first.
func (s *Service) Agreements() ([]AgreementInfo, error) {
	out := []AgreementInfo{}
	err := s.o.Store.View(func(tx *store.Txn) error {
		revoked, err := revocations(tx)
		if err != nil {
			return err
		}
		told, err := notices(tx)
		if err != nil {
			return err
		}
		maps.Copy(revoked, told)
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, "a", "")}, func(k, v []byte) error {
			file, err := unpackAgreement(v)
			var a policy.Agreement
			if err == nil {
				a, err = policy.ParseAgreement(file)
			}
			if err != nil {
				id, _ := url.PathUnescape(string(k[len(store.Key(store.PrefixNegotiation, "a", "")):]))
				return fmt.Errorf("reading agreement %s: %w", id, err)
			}
			role := policy.RoleConsumer
			if a.Provider == s.names.of(s.self) {
				role = policy.RoleProvider
			}
			in := AgreementInfo{ID: a.ID, Dataset: a.Dataset, Provider: a.Provider, Consumer: a.Consumer,
				Role: role, Created: a.Created, NotBefore: a.NotBefore, NotAfter: a.NotAfter}
			if r, ok := revoked[a.ID]; ok {
				in.Revoked = &r
			}
			out = append(out, in)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing agreements: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// AgreedPurpose returns the purpose the consumer stated in the negotiation
// that made agreement id ("" when none was stated or the agreement is not
// this node's). A transfer under the agreement is evaluated with it: the
// agreement was granted for that purpose, and only for it.
func (s *Service) AgreedPurpose(id string) string {
	list, err := s.List()
	if err != nil {
		return ""
	}
	for _, in := range list {
		if in.AgreementID == id {
			return in.Purpose
		}
	}
	return ""
}
