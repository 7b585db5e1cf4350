package catalogsvc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/policy"
)

var _ contract.Offers = (*Service)(nil)

// Offer implements contract.Offers from the catalogue: the provider finds
// what it offered in its own signed records (never trusting the consumer's
// copy), the consumer what the provider advertised in the federated index.
// offerID may be the policy's id, the offer's digest, its template name or
// its position ("1" for the first); empty means the first offer.
func (s *Service) Offer(dataset, offerID string) (policy.Policy, error) {
	rec, err := s.Get(dataset)
	if err != nil || rec.Retired {
		return policy.Policy{}, fmt.Errorf("%w: dataset %s is not in the catalogue", contract.ErrUnknownOffer, dataset)
	}
	for i, o := range rec.Dataset.Offers {
		if offerID == "" || offerID == o.Policy.ID || offerID == o.Digest() ||
			(o.Template != "" && offerID == o.Template) || offerID == strconv.Itoa(i+1) {
			// The offer names what it is about and who offers it, as an
			// agreement made from it must.
			p := o.Policy.Clone()
			if p.Target == "" {
				p.Target = rec.Dataset.ID
			}
			if p.Assigner == "" {
				p.Assigner = rec.Publisher
			}
			p.Compile()
			return p, nil
		}
	}
	names := []string{}
	for i, o := range rec.Dataset.Offers {
		n := strconv.Itoa(i + 1)
		if o.Template != "" {
			n += " (" + o.Template + ")"
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		names = []string{"none"}
	}
	return policy.Policy{}, fmt.Errorf("%w: dataset %s has no offer %q; its offers are %s ('mimnode dataset show %s' shows their terms)",
		contract.ErrUnknownOffer, dataset, offerID, strings.Join(names, ", "), dataset)
}

// OpenTo reports whether peer may ask for dataset (catalog.Dataset.OpenTo)
// as this node publishes it; a dataset it does not publish is open, as far
// as the catalogue knows (its offers come from elsewhere).
func (s *Service) OpenTo(dataset, peer string) bool {
	s.pubMu.Lock()
	r, ok := s.cat.Get(dataset)
	s.pubMu.Unlock()
	return !ok || r.Dataset.OpenTo(peer)
}
