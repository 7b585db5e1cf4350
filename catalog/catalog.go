package catalog

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/mimnode/mimnode/policy"
)

// Catalog is one node's own catalogue: the latest signed record of each
// dataset it publishes, and the catalogue sequence number. Every change
// (publish, update, retire) makes a new record with the next sequence
// number, signed with the node's key. The node persists each record it
// returns and announces the new sequence number; peers catch up with Since.
//
// A Catalog is not safe for concurrent use; the node serialises changes.
type Catalog struct {
	signer policy.Signer
	seq    uint64
	byID   map[string]Record
}

// NewCatalog returns the catalogue of the node whose key is signer, holding
// the records the node persisted earlier (any order). Each must be the
// signer's and carry all its offers.
func NewCatalog(signer policy.Signer, records []Record) (*Catalog, error) {
	c := &Catalog{signer: signer, byID: make(map[string]Record, len(records))}
	for _, r := range records {
		if r.Publisher != signer.PeerID() {
			return nil, fmt.Errorf("loading catalogue: record of %s is published by %s, not by this node (%s)", r.Dataset.ID, r.Publisher, signer.PeerID())
		}
		if len(r.Dataset.Offers) != len(r.OfferDigests) {
			return nil, fmt.Errorf("loading catalogue: record of %s lacks some of its offers", r.Dataset.ID)
		}
		if old, ok := c.byID[r.Dataset.ID]; ok && old.Seq >= r.Seq {
			continue
		}
		c.byID[r.Dataset.ID] = r
		c.seq = max(c.seq, r.Seq)
	}
	return c, nil
}

// Publisher returns the node's peer ID.
func (c *Catalog) Publisher() string { return c.signer.PeerID() }

// Seq returns the sequence number of the latest change (0: none yet).
func (c *Catalog) Seq() uint64 { return c.seq }

// Get returns the latest record of a dataset, retired ones included.
func (c *Catalog) Get(id string) (Record, bool) {
	r, ok := c.byID[id]
	return r, ok
}

// All returns the latest record of every dataset, retired ones included,
// ordered by dataset id.
func (c *Catalog) All() []Record {
	out := make([]Record, 0, len(c.byID))
	for _, r := range c.byID {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Dataset.ID, b.Dataset.ID) })
	return out
}

// Put publishes a dataset or updates it. It fills in the publisher, keeps
// the first Issued time, sets Modified to now, resolves the offers for this
// publisher, and returns the new signed record. Publishing a description
// identical to the current one changes nothing and returns the current
// record (no new sequence number, nothing to announce).
func (c *Catalog) Put(d Dataset, now time.Time) (Record, error) {
	me := c.signer.PeerID()
	if d.Publisher.PeerID != "" && d.Publisher.PeerID != me {
		return Record{}, fieldErr("publisher.peerId", "%q is not this node (%s)", d.Publisher.PeerID, me)
	}
	d.Publisher.PeerID = me
	if d.Dissemination == "" {
		d.Dissemination = Federation
	}
	if err := d.Validate(); err != nil {
		return Record{}, err
	}
	old, exists := c.byID[d.ID]
	if exists && old.Retired {
		return Record{}, fmt.Errorf("publishing %s: %w (seq %d); publish it under a new id", d.ID, ErrRetired, old.Seq)
	}
	offers := make([]Offer, len(d.Offers))
	digests := make([]string, len(d.Offers))
	for i, o := range d.Offers {
		r, err := o.resolve(i, d.ID, me)
		if err != nil {
			return Record{}, fieldErr(fmt.Sprintf("offers[%d]", i), "%v", err)
		}
		offers[i], digests[i] = r, r.Digest()
	}
	d.Offers = offers
	d.Issued = now.UTC()
	if exists {
		d.Issued = old.Dataset.Issued
		same := Record{Dataset: d, Publisher: me, Seq: old.Seq, OfferDigests: digests}
		same.Dataset.Modified = old.Dataset.Modified
		a, err1 := same.Canonical()
		b, err2 := old.Canonical()
		if err1 == nil && err2 == nil && bytes.Equal(a, b) {
			return old, nil
		}
	}
	d.Modified = now.UTC()
	if d.Modified.Before(d.Issued) {
		d.Modified = d.Issued
	}
	return c.commit(Record{Dataset: d, Publisher: me, OfferDigests: digests})
}

// Retire withdraws a dataset: the new record says so, and every index that
// receives it drops the dataset.
func (c *Catalog) Retire(id string, now time.Time) (Record, error) {
	old, ok := c.byID[id]
	if !ok {
		return Record{}, fmt.Errorf("retiring %s: %w", id, ErrUnknownDataset)
	}
	if old.Retired {
		return old, nil
	}
	r := old
	r.Retired = true
	r.Dataset.Modified = now.UTC()
	if r.Dataset.Modified.Before(r.Dataset.Issued) {
		r.Dataset.Modified = r.Dataset.Issued
	}
	return c.commit(r)
}

func (c *Catalog) commit(r Record) (Record, error) {
	r.Seq = c.seq + 1
	if err := r.Sign(c.signer); err != nil {
		return Record{}, err
	}
	c.seq = r.Seq
	c.byID[r.Dataset.ID] = r
	return r, nil
}

// Since returns, in sequence order, the latest record of every dataset
// changed after seq that v may see, with the offers v may see: the answer
// to a "changes since sequence N" request. A peer that has seen up to seq
// Seq() then has everything visible to it.
func (c *Catalog) Since(seq uint64, v Viewer) []Record {
	var out []Record
	for _, r := range c.byID {
		if r.Seq <= seq {
			continue
		}
		if x, ok := Visible(r, v); ok {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Lookup returns dataset id as v may see it (ErrUnknownDataset if it does
// not exist or v may not see it: the two are not told apart, so a peer
// cannot probe for restricted datasets).
func (c *Catalog) Lookup(id string, v Viewer) (Record, error) {
	r, ok := c.byID[id]
	if ok {
		if x, ok := Visible(r, v); ok {
			return x, nil
		}
	}
	return Record{}, fmt.Errorf("looking up %s: %w", id, ErrUnknownDataset)
}

// Viewer is the peer a catalogue copy is made for. Fill in everything the
// node knows: offers with a role or federation constraint are hidden from
// a viewer without one.
type Viewer struct {
	PeerID      string
	Role        string   // policy.RoleAgency or policy.RoleResearcher
	Federations []string // federations the peer is a member of
	Now         time.Time
}

// OpenTo reports whether peer, not the publisher, may see and ask for the
// dataset: not if it is private, nor if it is restricted to an audience
// without peer. Negotiations and transfers are refused to whom it is
// not open, whatever its offers say.
func (d Dataset) OpenTo(peer string) bool {
	switch d.Dissemination {
	case Private:
		return false
	case Restricted:
		return slices.Contains(d.Audience, peer)
	}
	return true
}

// Visible returns the copy of r that v may see: the publisher sees
// everything; a private dataset nobody else; a restricted one only the
// peers in its audience. Offers v may not see (policy.Evaluate in the
// catalog scope says no) are left out; a live dataset with no offer left
// is not visible at all. A retired record is visible to whoever could see
// the dataset, so that it leaves their index.
func Visible(r Record, v Viewer) (Record, bool) {
	if v.PeerID != "" && v.PeerID == r.Publisher {
		return r, true
	}
	if !r.Dataset.OpenTo(v.PeerID) {
		return Record{}, false
	}
	if r.Retired {
		r.Dataset.Offers = nil
		return r, true
	}
	var offers []Offer
	for _, o := range r.Dataset.Offers {
		d := policy.Evaluate(o.Policy, policy.Request{Now: v.Now, PeerID: v.PeerID, Role: v.Role, Federations: v.Federations}, policy.ScopeCatalog)
		if d.Permit {
			offers = append(offers, o)
		}
	}
	if len(offers) == 0 {
		return Record{}, false
	}
	r.Dataset.Offers = offers
	return r, true
}
