package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
)

// A provider may withdraw an agreement it signed: an agency that finds it
// should not share a dataset after all, or a consumer that broke the
// terms. The agreement file stays as it was (both signatures still
// verify: they prove what was agreed), and the provider's node records
// the revocation beside it and in its hash-chained log. From then on it
// refuses every transfer under the agreement, ends the running ones, and
// stops its live feeds (node/transfer). Only the provider's node enforces
// an agreement, so only it can revoke one.

// ErrNotProvider: a node asked to revoke an agreement it is the consumer
// of.
var ErrNotProvider = errors.New("only the agreement's provider can revoke it")

// ErrNotConsumer: a node was told of the revocation of an agreement it is
// not the consumer of.
var ErrNotConsumer = errors.New("this node is not the agreement's consumer")

// Revocation records that this node, the provider, revoked an agreement,
// or, with Told set, that this node, its consumer, was told so by the
// provider.
type Revocation struct {
	Agreement string    `json:"agreement"`
	Dataset   string    `json:"dataset"`
	Consumer  string    `json:"consumer"`
	Reason    string    `json:"reason,omitempty"`
	Time      time.Time `json:"time"`
	// Told: the agreement's provider told this node, its consumer, of
	// the revocation at Time; Reason is what the provider said.
	Told bool `json:"told,omitempty"`
}

// Why is the refusal reason a transfer under the revoked agreement gets.
func (r Revocation) Why() string {
	s := fmt.Sprintf("agreement %s was revoked by its provider at %s", r.Agreement, r.Time.UTC().Format(time.RFC3339))
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// RevokeRequest is the body of POST /api/v1/agreements/{id}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// RevokeResult answers it.
type RevokeResult struct {
	Revocation
	// AlreadyRevoked: the agreement was revoked before; Revocation is
	// that first revocation, and nothing changed.
	AlreadyRevoked bool `json:"alreadyRevoked,omitempty"`
	// EndedTransfers are the provider's transfer processes under the
	// agreement that the revocation terminated.
	EndedTransfers []string `json:"endedTransfers"`
}

// TransferEnder ends the transfers under agreements (transfer.Service),
// given the refusal reason of each, and tells a revoked agreement's
// consumer.
type TransferEnder interface {
	EndAgreements(reasons map[string]string) []string
	TellRevoked(agreement, consumer, why string)
}

// UseTransfers gives the service the transfers to end when it revokes an
// agreement. Without it, a revocation still refuses every later request
// (node/transfer checks Revoked), but running transfers end only at their
// next check.
func (s *Service) UseTransfers(t TransferEnder) { s.ender = t }

// EndRevoked ends the transfers still running under agreements revoked
// before: the node may have stopped between storing a revocation and
// ending them. A node calls it once it has started.
func (s *Service) EndRevoked() error {
	var all map[string]Revocation
	if err := s.o.Store.View(func(tx *store.Txn) (err error) { all, err = revocations(tx); return err }); err != nil {
		return err
	}
	if len(all) == 0 || s.ender == nil {
		return nil
	}
	reasons := make(map[string]string, len(all))
	for id, r := range all {
		reasons[id] = r.Why()
	}
	s.ender.EndAgreements(reasons)
	return nil
}

func revocationKey(id string) []byte {
	return store.Key(store.PrefixNegotiation, "x", url.PathEscape(id))
}

// maxReason bounds a revocation's reason: it goes into the log and into
// every refusal.
const maxReason = 1000

// Revoke revokes agreement id, of which this node must be the provider:
// the revocation and its log entry are stored in one synced write, then
// the transfers running under it end (UseTransfers). A second revocation
// stores nothing and returns the first, with AlreadyRevoked; it ends the
// transfers all the same, in case the node stopped before it did.
func (s *Service) Revoke(id, reason string) (RevokeResult, error) {
	rev, fresh, err := s.revoke(id, reason)
	if err != nil {
		return RevokeResult{}, err
	}
	out := RevokeResult{Revocation: rev, AlreadyRevoked: !fresh, EndedTransfers: []string{}}
	if fresh {
		s.log.Info("agreement revoked", "agreement", rev.Agreement, "dataset", rev.Dataset, "consumer", rev.Consumer, "reason", rev.Reason)
	}
	if s.ender != nil {
		if ended := s.ender.EndAgreements(map[string]string{rev.Agreement: rev.Why()}); ended != nil {
			out.EndedTransfers = ended
		}
		s.ender.TellRevoked(rev.Agreement, rev.Consumer, rev.Why())
	}
	return out, nil
}

func (s *Service) revoke(id, reason string) (rev Revocation, fresh bool, err error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > maxReason {
		return Revocation{}, false, fmt.Errorf("%w: the reason is %d bytes long; at most %d", ErrBadRequest, len(reason), maxReason)
	}
	a, err := s.parsedAgreement(id)
	if err != nil {
		return Revocation{}, false, err
	}
	if a.Provider != s.names.of(s.self) {
		return Revocation{}, false, fmt.Errorf("agreement %s: %w: this node is its consumer; its provider %s can revoke it", id, ErrNotProvider, a.Provider)
	}
	rev = Revocation{Agreement: a.ID, Dataset: a.Dataset, Consumer: a.Consumer, Reason: reason, Time: s.o.Now().UTC()}
	rev, fresh, err = s.recordOnce(revocationKey(a.ID), rev, a.Consumer)
	if err != nil {
		return Revocation{}, false, fmt.Errorf("revoking agreement %s: %w", id, err)
	}
	s.anyRevoked.Store(true)
	return rev, fresh, nil
}

// parsedAgreement reads and parses agreement id.
func (s *Service) parsedAgreement(id string) (policy.Agreement, error) {
	file, err := s.Agreement(id)
	if err != nil {
		return policy.Agreement{}, err
	}
	a, err := policy.ParseAgreement(file)
	if err != nil {
		return policy.Agreement{}, fmt.Errorf("reading agreement %s: %w", id, err)
	}
	return a, nil
}

// recordOnce stores rev under key, with its agreement.revoked entry in the
// log (peer: the agreement's other party), in one synced write, unless a
// revocation is stored there already. It returns the revocation stored
// and whether it is rev.
func (s *Service) recordOnce(key []byte, rev Revocation, peer string) (stored Revocation, fresh bool, err error) {
	b, err := json.Marshal(rev)
	if err != nil {
		return Revocation{}, false, err
	}
	err = s.o.Audit.Update(func(tx *store.Txn) error {
		// Read again if the update is retried.
		first, before, err := readRevocationAt(tx, key, rev.Agreement)
		if err != nil || before {
			stored, fresh = first, false
			return err
		}
		stored, fresh = rev, true
		if err := tx.Set(key, b); err != nil {
			return err
		}
		return audit.AppendAllTx(tx, []audit.Entry{{Time: rev.Time, Kind: audit.KindAgreementRevoked, Subject: rev.Agreement, Peer: peer, Data: b}})
	})
	return stored, fresh, err
}

// Revoked returns the revocation of agreement id, if this node revoked it.
func (s *Service) Revoked(id string) (r Revocation, ok bool, err error) {
	err = s.o.Store.View(func(tx *store.Txn) error { r, ok, err = readRevocation(tx, id); return err })
	return r, ok, err
}

// ToldRevoked returns the revocation of agreement id that its provider
// told this node of, as its consumer, if one did (Told).
func (s *Service) ToldRevoked(id string) (r Revocation, ok bool, err error) {
	err = s.o.Store.View(func(tx *store.Txn) error { r, ok, err = readNotice(tx, id); return err })
	return r, ok, err
}

// Told records that the provider of agreement id, of which this node is
// the consumer, told it that it revoked the agreement, saying reasons:
// the consumer's agreement list then marks it, and its log holds the
// notice. A provider that ends a transfer or refuses a request with
// protocol.CodeAgreementRevoked tells it (node/transfer). A notice from
// any other peer is refused (ErrNotProvider); a second notice changes
// nothing.
func (s *Service) Told(id string, from peer.ID, reasons []string) error {
	a, err := s.parsedAgreement(id)
	if err != nil {
		return err
	}
	if a.Consumer != s.names.of(s.self) {
		return fmt.Errorf("agreement %s: %w", id, ErrNotConsumer)
	}
	if a.Provider != s.names.of(from) {
		return fmt.Errorf("agreement %s: %w: %s says it was revoked, but its provider is %s", id, ErrNotProvider, from, a.Provider)
	}
	reason := strings.Join(reasons, "; ")
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	rev := Revocation{Agreement: a.ID, Dataset: a.Dataset, Consumer: a.Consumer, Reason: reason, Time: s.o.Now().UTC(), Told: true}
	_, fresh, err := s.recordOnce(noticeKey(a.ID), rev, a.Provider)
	if err != nil {
		return fmt.Errorf("recording the revocation of agreement %s: %w", id, err)
	}
	if fresh {
		s.log.Info("the provider revoked an agreement this node holds", "agreement", a.ID, "dataset", a.Dataset, "provider", a.Provider, "reason", reason)
	}
	return nil
}

// noticeKey holds the revocation this node was told of as consumer
// (Told), apart from those it made as provider (revocationKey), which
// its own decisions read.
func noticeKey(id string) []byte {
	return store.Key(store.PrefixNegotiation, "y", url.PathEscape(id))
}

// readRevocation reads the revocation of agreement id, if this node made
// one.
func readRevocation(tx *store.Txn, id string) (Revocation, bool, error) {
	return readRevocationAt(tx, revocationKey(id), id)
}

// readNotice reads the revocation of agreement id this node was told of.
func readNotice(tx *store.Txn, id string) (Revocation, bool, error) {
	return readRevocationAt(tx, noticeKey(id), id)
}

func readRevocationAt(tx *store.Txn, key []byte, id string) (Revocation, bool, error) {
	var r Revocation
	v, err := tx.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return r, false, nil
	}
	if err == nil {
		err = json.Unmarshal(v, &r)
	}
	if err != nil {
		return r, false, fmt.Errorf("reading the revocation of agreement %s: %w", id, err)
	}
	return r, true, nil
}

// heldFor says why a new request of consumer for dataset must wait for
// a person: an agreement of the consumer for the dataset was revoked
// ("" when none was). Revocations are few; reading them all costs one
// seek when there are none.
func (s *Service) heldFor(consumer, dataset string) (string, error) {
	if !s.anyRevoked.Load() {
		return "", nil
	}
	var latest *Revocation
	err := s.o.Store.View(func(tx *store.Txn) error {
		all, err := revocations(tx)
		for _, r := range all {
			if r.Consumer == consumer && r.Dataset == dataset && (latest == nil || r.Time.After(latest.Time)) {
				latest = &r
			}
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("reading revocations: %w", err)
	}
	if latest == nil {
		return "", nil
	}
	return latest.Why() + "; a person decides on this consumer's new requests for the dataset", nil
}

// revocations reads every revocation this node made, by agreement id.
func revocations(tx *store.Txn) (map[string]Revocation, error) {
	return revocationsAt(tx, "x")
}

// notices reads every revocation this node was told of, by agreement id.
func notices(tx *store.Txn) (map[string]Revocation, error) {
	return revocationsAt(tx, "y")
}

func revocationsAt(tx *store.Txn, kind string) (map[string]Revocation, error) {
	out := map[string]Revocation{}
	err := tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, kind, "")}, func(_, v []byte) error {
		var r Revocation
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("reading a revocation: %w", err)
		}
		out[r.Agreement] = r
		return nil
	})
	return out, err
}

func (s *Service) handleRevoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if !api.ReadOptionalJSON(w, r, &req) {
		return
	}
	out, err := s.Revoke(r.PathValue("id"), req.Reason)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}
