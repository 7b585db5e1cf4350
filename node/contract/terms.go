package contract

import (
	"bytes"
	"sync"

	"github.com/mimnode/mimnode/policy"
)

// A negotiation reads the same offer several times: the consumer when it
// requests it and again when it checks the agreement against it, the
// provider when the request arrives and when it looks up its own copy,
// and every negotiation about that offer does it all again. Reading an
// offer (policy.Parse) and writing its terms for a comparison (sameTerms)
// cost more than deciding on it, and depend on its bytes alone, so an
// offerMemo keeps what the latest offers it read gave.

// Bounds of an offerMemo: offers up to maxMemoOffer bytes are kept, up to
// memoOffers of them (then all are forgotten).
const (
	maxMemoOffer = 16 << 10
	memoOffers   = 256
)

// offerMemo remembers offers read lately, by their bytes.
type offerMemo struct {
	mu sync.Mutex
	m  map[string]readOffer // guarded by mu
	// req holds asRequested's offers, by dataset and offer bytes, bounded
	// as m is (offer and dataset together up to maxMemoOffer bytes).
	// Guarded by mu.
	req map[requestKey][]byte
}

// requestKey names an offer as a consumer requests it: the offer's bytes
// as advertised, for one dataset.
type requestKey struct{ dataset, raw string }

// readOffer is an offer as policy.Parse read it (compiled; shared, so
// never modified: Clone it first) and its terms (termsOf).
type readOffer struct {
	p     policy.Policy
	terms []byte
}

// read returns policy.Parse(raw) and its terms; an offer that does not
// parse is not remembered.
func (o *offerMemo) read(raw []byte) (readOffer, error) {
	o.mu.Lock()
	r, ok := o.m[string(raw)]
	o.mu.Unlock()
	if ok {
		return r, nil
	}
	p, err := policy.Parse(raw)
	if err != nil {
		return readOffer{}, err
	}
	r = readOffer{p: p}
	// Terms that cannot be written compare equal to nothing (sameTerms).
	r.terms, _ = termsOf(p)
	if len(raw) <= maxMemoOffer {
		o.mu.Lock()
		if o.m == nil || len(o.m) >= memoOffers {
			o.m = make(map[string]readOffer, memoOffers)
		}
		o.m[string(raw)] = r
		o.mu.Unlock()
	}
	return r, nil
}

// asRequested returns policy.Marshal of r, read from raw, as a consumer
// requests it for dataset: of type Offer with dataset as its target. A
// consumer requests the same offer over and over, and cloning and
// writing it depend on the offer's bytes and the dataset alone. The
// bytes returned are shared: their capacity is their length, so that an
// append copies them, and they must not be changed in place.
func (o *offerMemo) asRequested(raw []byte, r readOffer, dataset string) ([]byte, error) {
	k := requestKey{dataset: dataset, raw: string(raw)}
	o.mu.Lock()
	b, ok := o.req[k]
	o.mu.Unlock()
	if ok {
		return b, nil
	}
	p := r.p.Clone()
	p.Type, p.Target = policy.TypeOffer, dataset
	b, err := policy.Marshal(p)
	if err != nil {
		return nil, err
	}
	b = b[:len(b):len(b)]
	// The dataset counts too: it is the API client's, in a body of up
	// to 1 MiB, and both the key and the bytes hold it.
	if len(raw)+len(dataset) <= maxMemoOffer {
		o.mu.Lock()
		if o.req == nil || len(o.req) >= memoOffers {
			o.req = make(map[requestKey][]byte, memoOffers)
		}
		o.req[k] = b
		o.mu.Unlock()
	}
	return b, nil
}

// termsOf is what p says, whatever its id, type and parties: the form two
// policies are compared in by sameTerms.
func termsOf(p policy.Policy) ([]byte, error) {
	p = p.Clone()
	p.ID, p.Type, p.Target, p.Assigner, p.Assignee = "", policy.TypeSet, "", "", ""
	delete(p.Extra, ManualApproval)
	delete(p.Extra, SignedAgreementKey)
	return policy.Marshal(p)
}

// sameTerms reports whether two policies say the same thing, whatever
// their ids, types and parties: an offer and the agreement made from it,
// or the offer as advertised and as requested.
func sameTerms(a, b policy.Policy) bool {
	x, err1 := termsOf(a)
	y, err2 := termsOf(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// sameTermsAs is sameTerms(a, b) for b read with an offerMemo.
func sameTermsAs(a policy.Policy, b readOffer) bool {
	x, err := termsOf(a)
	return err == nil && b.terms != nil && bytes.Equal(x, b.terms)
}
