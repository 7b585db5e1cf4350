package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
)

// Offers is where the driver finds offers: the provider looks up what it
// offered for a dataset (never trusting the consumer's copy), and the
// consumer, when a request names an offer by id only, what the provider
// advertised. The node implements it with the catalogue (own datasets and
// the federated index); until that is wired, Registry is used.
//
// Offer returns the offer offerID of dataset, or the dataset's first offer
// when offerID is empty. The returned policy is compiled and must not be
// modified by the caller. It wraps ErrUnknownOffer when there is none.
type Offers interface {
	Offer(dataset, offerID string) (policy.Policy, error)
}

// ErrUnknownOffer: the dataset has no such offer on this node.
var ErrUnknownOffer = errors.New("unknown offer")

// ManualApproval is policy.ManualApproval: an offer carrying it
// ("mim:manualApproval": true) queues the requests its policy permits for
// a person's approval.
const ManualApproval = policy.ManualApproval

// IsManual reports whether offer p asks for manual approval.
func IsManual(p policy.Policy) bool {
	v, ok := p.Extra[ManualApproval]
	return ok && strings.TrimSpace(string(v)) == "true"
}

// Registry is the interim offers store of a node, kept under
// store.PrefixNegotiation ("g/o/<dataset>/<offer id>"), until the
// catalogue provides offers. It is filled through POST /api/v1/offers.
type Registry struct {
	db   *store.DB
	memo offerMemo // offers read lately; the store is read every time
}

var _ Offers = (*Registry)(nil)

// NewRegistry returns the registry kept in db.
func NewRegistry(db *store.DB) *Registry { return &Registry{db: db} }

// Dataset and offer ids are URNs or URLs; escaping keeps one dataset's
// prefix from matching another whose id it starts.
func offerKey(dataset, id string) []byte {
	return store.Key(store.PrefixNegotiation, "o", url.PathEscape(dataset), url.PathEscape(id))
}

// Add stores offer p for its target dataset. p must have an @id and a
// target; an offer with the same id is replaced.
func (r *Registry) Add(p policy.Policy) error {
	if p.ID == "" || p.Target == "" {
		return fmt.Errorf("adding offer: %w: an offer needs an @id and a target dataset", ErrBadRequest)
	}
	b, err := policy.Marshal(p)
	if err != nil {
		return fmt.Errorf("adding offer %s: %w", p.ID, err)
	}
	return r.db.Update(func(tx *store.Txn) error { return tx.Set(offerKey(p.Target, p.ID), b) })
}

// Offer implements Offers.
func (r *Registry) Offer(dataset, offerID string) (policy.Policy, error) {
	var raw []byte
	err := r.db.View(func(tx *store.Txn) error {
		if offerID != "" {
			b, err := tx.Get(offerKey(dataset, offerID))
			raw = b
			return err
		}
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, "o", url.PathEscape(dataset), "")}, func(_, v []byte) error {
			raw = v
			return store.ErrStop
		})
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && raw == nil) {
		return policy.Policy{}, fmt.Errorf("offer %q of dataset %s: %w", offerID, dataset, ErrUnknownOffer)
	}
	if err != nil {
		return policy.Policy{}, fmt.Errorf("reading offer %q of dataset %s: %w", offerID, dataset, err)
	}
	read, err := r.memo.read(raw)
	if err != nil {
		return policy.Policy{}, fmt.Errorf("reading offer %q of dataset %s: %w", offerID, dataset, err)
	}
	return read.p, nil
}

// Remove deletes offer id of dataset; ErrUnknownOffer when there is none.
// Negotiations under it keep their copy of its terms.
func (r *Registry) Remove(dataset, id string) error {
	return r.db.Update(func(tx *store.Txn) error {
		k := offerKey(dataset, id)
		ok, err := tx.Has(k)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("offer %q of dataset %s: %w", id, dataset, ErrUnknownOffer)
		}
		return tx.Delete(k)
	})
}

// List returns every registered offer.
func (r *Registry) List() ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	err := r.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: store.Key(store.PrefixNegotiation, "o", "")}, func(_, v []byte) error {
			out = append(out, json.RawMessage(v))
			return nil
		})
	})
	return out, err
}

// OfferRequest is the body of POST /api/v1/offers: a dataset and either
// a template (with its parameters) or an ODRL offer.
type OfferRequest struct {
	Dataset    string          `json:"dataset"`
	ID         string          `json:"id,omitempty"`
	Template   string          `json:"template,omitempty"`
	Federation string          `json:"federation,omitempty"`
	Days       int             `json:"days,omitempty"`
	Purposes   []string        `json:"purposes,omitempty"`
	ODRL       json.RawMessage `json:"odrl,omitempty"`
	// Manual marks the offer for manual approval (ManualApproval).
	Manual bool `json:"manual,omitempty"`
}

// Build turns the request into an offer; assigner is this node's peer ID,
// used when the offer names none.
func (o OfferRequest) Build(assigner string) (policy.Policy, error) {
	if o.Dataset == "" {
		return policy.Policy{}, fmt.Errorf("%w: dataset is required", ErrBadRequest)
	}
	if !policy.IsIRI(o.Dataset) {
		return policy.Policy{}, fmt.Errorf("%w: dataset %q is not a dataset id (a URN or URL)", ErrBadRequest, o.Dataset)
	}
	if o.ID != "" && !policy.IsIRI(o.ID) {
		return policy.Policy{}, fmt.Errorf("%w: offer id %q is not a URN or URL", ErrBadRequest, o.ID)
	}
	var p policy.Policy
	switch {
	case o.Template != "" && len(o.ODRL) > 0:
		return policy.Policy{}, fmt.Errorf("%w: give a template or an ODRL offer, not both", ErrBadRequest)
	case o.Template != "":
		tpl, err := policy.LookupTemplate(o.Template)
		if err != nil {
			return policy.Policy{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		p, err = tpl.New(policy.Params{Federation: o.Federation, Days: o.Days, Purposes: o.Purposes})
		if err != nil {
			return policy.Policy{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	case len(o.ODRL) > 0:
		var err error
		if p, err = policy.Parse(o.ODRL); err != nil {
			return policy.Policy{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	default:
		return policy.Policy{}, fmt.Errorf("%w: template or odrl is required", ErrBadRequest)
	}
	p = p.Clone()
	p.Type = policy.TypeOffer
	if o.ID != "" {
		p.ID = o.ID
	}
	if p.ID == "" {
		p.ID = "urn:uuid:" + uuid.NewString()
	}
	if p.Target != "" && p.Target != o.Dataset {
		return policy.Policy{}, fmt.Errorf("%w: the offer's target %s is not dataset %s", ErrBadRequest, p.Target, o.Dataset)
	}
	p.Target = o.Dataset
	if p.Assigner == "" {
		p.Assigner = assigner
	}
	if o.Manual {
		if p.Extra == nil {
			p.Extra = map[string]json.RawMessage{}
		}
		p.Extra[ManualApproval] = json.RawMessage("true")
	}
	if err := policy.Validate(p); err != nil {
		return policy.Policy{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	p.Compile()
	return p, nil
}

// RegisterHTTP mounts the interim offer routes, GET and POST
// /api/v1/offers. self is this node's peer ID (the default assigner).
func (r *Registry) RegisterHTTP(mux *http.ServeMux, self string) {
	mux.HandleFunc("GET /api/v1/offers", func(w http.ResponseWriter, _ *http.Request) {
		list, err := r.List()
		if err != nil {
			writeErr(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("POST /api/v1/offers", func(w http.ResponseWriter, req *http.Request) {
		var o OfferRequest
		if !api.ReadJSON(w, req, &o) {
			return
		}
		p, err := o.Build(self)
		if err == nil {
			err = r.Add(p)
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		b, err := policy.Marshal(p)
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	})
	mux.HandleFunc("DELETE /api/v1/offers", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		if q.Get("dataset") == "" || q.Get("id") == "" {
			writeErr(w, fmt.Errorf("%w: give the offer's dataset and id (?dataset=...&id=...)", ErrBadRequest))
			return
		}
		if err := r.Remove(q.Get("dataset"), q.Get("id")); errors.Is(err, ErrUnknownOffer) {
			problem.Write(w, problem.New(http.StatusNotFound, "offer-unknown", "No such offer", err.Error()))
			return
		} else if err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// writeErr maps the package's errors to problem details.
func writeErr(w http.ResponseWriter, err error) {
	status, name, title := http.StatusInternalServerError, "contract-failed", "Contract request failed"
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrUnknownOffer), api.IsBadRequest(err):
		status, name, title = http.StatusBadRequest, "contract-invalid", "Invalid contract request"
	case errors.Is(err, ErrUnknownNegotiation), errors.Is(err, ErrUnknownAgreement):
		status, name, title = http.StatusNotFound, "contract-unknown", "No such negotiation or agreement"
	case errors.Is(err, ErrNotPending):
		status, name, title = http.StatusConflict, "contract-not-pending", "Negotiation is not waiting for approval"
	case errors.Is(err, ErrNotProvider):
		status, name, title = http.StatusForbidden, "contract-not-provider", "Not this node's to revoke"
	}
	problem.Write(w, problem.New(status, name, title, err.Error()))
}
