package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
	"github.com/mimnode/mimnode/policy"
)

// Offer is one usage policy a dataset is offered under: a policy template
// by name (with parameters) or an inline ODRL policy. Policy holds the
// resolved, compiled policy.
type Offer struct {
	Template string      // template name, e.g. "research-only"; empty for inline policies
	Params   OfferParams // template parameters
	// Manual asks for a person's approval of each request the template's
	// policy permits ("manual": true; the policy then carries
	// policy.ManualApproval). An inline policy says so itself.
	Manual bool
	Policy policy.Policy

	// canon is the published policy's canonical JSON (RFC 8785); set once
	// the offer is resolved for a publisher or read from a signed record.
	// Its SHA-256 is what the publisher signs.
	canon []byte
}

// OfferParams are the template parameters an author may give.
type OfferParams struct {
	Federation string   `json:"federation,omitempty"`
	Days       int      `json:"days,omitempty"`
	Purposes   []string `json:"purposes,omitempty"`
	Licence    string   `json:"licence,omitempty"`
}

type templateOfferJSON struct {
	Template string       `json:"template"`
	Params   *OfferParams `json:"params,omitempty"`
	Manual   bool         `json:"manual,omitempty"`
}

type templateOfferIn struct {
	Template string          `json:"template"`
	Params   json.RawMessage `json:"params"`
	Manual   bool            `json:"manual"`
}

func decodeOffer(field string, raw json.RawMessage) (Offer, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Offer{}, fieldErr(field, "must be an object: {\"template\": NAME} or an ODRL policy")
	}
	if _, ok := probe["template"]; ok {
		var t templateOfferIn
		if err := decodeAt(field, raw, &t); err != nil {
			return Offer{}, err
		}
		o := Offer{Template: t.Template, Manual: t.Manual}
		if present(t.Params) {
			if err := decodeAt(field+".params", t.Params, &o.Params); err != nil {
				return Offer{}, err
			}
		}
		p, err := o.build("", "", "")
		if err != nil {
			return Offer{}, fieldErr(field, "%v", err)
		}
		o.Policy = p
		return o, nil
	}
	p, err := policy.Parse(raw)
	if err != nil {
		return Offer{}, fieldErr(field, "%v", err)
	}
	return Offer{Policy: p}, nil
}

// build makes the offer's policy for a dataset and publisher.
func (o Offer) build(id, datasetID, publisher string) (policy.Policy, error) {
	if o.Template == "" {
		p := o.Policy.Clone()
		switch p.Type {
		case "", policy.TypeSet, policy.TypeOffer:
			p.Type = policy.TypeOffer
		default:
			return policy.Policy{}, fmt.Errorf("an offer must be an ODRL Offer or Set, not %s", p.Type)
		}
		// DSP: an Offer inside a Dataset has no target; the dataset is the target.
		if p.Target != "" && p.Target != datasetID {
			return policy.Policy{}, fmt.Errorf("target %q is not this dataset (%s); leave it out", p.Target, datasetID)
		}
		p.Target = ""
		if p.Assigner != "" && publisher != "" && p.Assigner != publisher {
			return policy.Policy{}, fmt.Errorf("assigner %q is not the publisher %s", p.Assigner, publisher)
		}
		if publisher != "" {
			p.Assigner = publisher
		}
		if p.ID == "" {
			p.ID = id
		}
		p.Compile()
		if err := policy.Validate(p); err != nil {
			return policy.Policy{}, err
		}
		return p, nil
	}
	tpl, err := policy.LookupTemplate(o.Template)
	if err != nil {
		return policy.Policy{}, err
	}
	p, err := tpl.New(policy.Params{
		ID: id, Assigner: publisher,
		Federation: o.Params.Federation, Days: o.Params.Days,
		Purposes: o.Params.Purposes, Licence: o.Params.Licence,
	})
	if err != nil {
		return policy.Policy{}, err
	}
	if o.Manual {
		if p.Extra == nil {
			p.Extra = map[string]json.RawMessage{}
		}
		p.Extra[policy.ManualApproval] = json.RawMessage("true")
	}
	if err := policy.Validate(p); err != nil {
		return policy.Policy{}, err
	}
	return p, nil
}

// resolve fixes the offer's policy for publication: an id under the
// dataset's, the publisher as assigner, and its canonical bytes.
func (o Offer) resolve(i int, datasetID, publisher string) (Offer, error) {
	p, err := o.build(fmt.Sprintf("%s:offer:%d", datasetID, i+1), datasetID, publisher)
	if err != nil {
		return Offer{}, err
	}
	canon, err := canonicalPolicy(p)
	if err != nil {
		return Offer{}, err
	}
	o.Policy, o.canon = p, canon
	return o, nil
}

func canonicalPolicy(p policy.Policy) ([]byte, error) {
	raw, err := policy.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding offer %s: %w", p.ID, err)
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("canonicalising offer %s: %w", p.ID, err)
	}
	return c, nil
}

// Digest is the offer's SHA-256 over its canonical JSON ("sha256:<hex>"):
// what a signed record commits to. Empty until the offer is resolved.
func (o Offer) Digest() string {
	if o.canon == nil {
		return ""
	}
	return digestOf(o.canon)
}

func digestOf(canon []byte) string {
	s := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(s[:])
}

// MarshalJSON writes a resolved offer as its ODRL policy, an unresolved
// template offer as {"template": ..., "params": ...}.
func (o Offer) MarshalJSON() ([]byte, error) {
	if o.canon != nil {
		return o.canon, nil
	}
	if o.Template != "" {
		t := templateOfferJSON{Template: o.Template, Manual: o.Manual}
		if o.Params.Federation != "" || o.Params.Days != 0 || len(o.Params.Purposes) > 0 || o.Params.Licence != "" {
			p := o.Params
			t.Params = &p
		}
		return json.Marshal(t)
	}
	return policy.Marshal(o.Policy)
}
