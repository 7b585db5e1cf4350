package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
	"github.com/mimnode/mimnode/policy"
)

// RecordFormat names the signed record body format; it is part of what is
// signed.
const RecordFormat = "mimnode-catalog-record/1"

// recordSignaturePrefix keeps catalogue record signatures apart from
// anything else the same key signs (agreements use their own prefix): a
// signature over one can never be replayed as the other.
const recordSignaturePrefix = "mimnode catalog record signature v1\x00"

// MaxRecordSize bounds one encoded record; DecodeRecord refuses larger input.
const MaxRecordSize = 1 << 20

// Record is one signed entry of a publisher's catalogue: the current
// description of one dataset at catalogue sequence number Seq.
//
// The signature covers the dataset without its offers plus the SHA-256
// digest of every offer (OfferDigests). A copy sent to a peer may leave out
// offers that peer may not see (Visible); the peer still verifies the
// signature and checks that every offer it got is one the publisher signed.
type Record struct {
	Dataset   Dataset // Dataset.Offers: the offers this copy carries
	Publisher string  // publisher's peer ID (= Dataset.Publisher.PeerID)
	Seq       uint64  // publisher's catalogue sequence number, from 1
	Retired   bool    // the dataset was withdrawn; the index drops it

	OfferDigests []string // digests of all the publisher's offers, in order
	Signature    []byte   // publisher's signature over the canonical body
}

// Key identifies a dataset across the federation: two publishers may pick
// the same dataset id, so the publisher is part of it.
type Key struct {
	Publisher string
	ID        string
}

// Key returns the record's dataset key.
func (r Record) Key() Key { return Key{r.Publisher, r.Dataset.ID} }

type bodyJSON struct {
	Format    string          `json:"format"`
	Publisher string          `json:"publisher"`
	Seq       uint64          `json:"seq"`
	Retired   bool            `json:"retired,omitempty"`
	Dataset   json.RawMessage `json:"dataset"`
	Offers    []string        `json:"offers"`
}

// Canonical returns the bytes the publisher signs: the record body in the
// JSON Canonicalization Scheme (RFC 8785).
func (r Record) Canonical() ([]byte, error) {
	w, err := r.Dataset.wire(false)
	if err != nil {
		return nil, err
	}
	ds, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding record of %s: %w", r.Dataset.ID, err)
	}
	digests := r.OfferDigests
	if digests == nil {
		digests = []string{}
	}
	raw, err := json.Marshal(bodyJSON{Format: RecordFormat, Publisher: r.Publisher, Seq: r.Seq, Retired: r.Retired, Dataset: ds, Offers: digests})
	if err != nil {
		return nil, fmt.Errorf("encoding record of %s: %w", r.Dataset.ID, err)
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("canonicalising record of %s: %w", r.Dataset.ID, err)
	}
	return c, nil
}

// Sign signs the record as its publisher; s must be the publisher's key.
func (r *Record) Sign(s policy.Signer) error {
	if s.PeerID() != r.Publisher {
		return fmt.Errorf("signing record of %s: signer %s is not the publisher %s: %w", r.Dataset.ID, s.PeerID(), r.Publisher, ErrBadSignature)
	}
	c, err := r.Canonical()
	if err != nil {
		return err
	}
	sig, err := s.Sign(append([]byte(recordSignaturePrefix), c...))
	if err != nil {
		return fmt.Errorf("signing record of %s: %w", r.Dataset.ID, err)
	}
	r.Signature = sig
	return nil
}

// Verify checks that the record is signed by its publisher and that every
// offer it carries is one the publisher signed. It works offline.
func (r Record) Verify(v policy.Verifier) error {
	if r.Publisher == "" || r.Dataset.Publisher.PeerID != r.Publisher {
		return fmt.Errorf("verifying record of %s: publisher %q does not match the dataset's publisher %q: %w", r.Dataset.ID, r.Publisher, r.Dataset.Publisher.PeerID, ErrBadSignature)
	}
	if len(r.Signature) == 0 {
		return fmt.Errorf("verifying record of %s: no signature: %w", r.Dataset.ID, ErrBadSignature)
	}
	if err := r.checkOffers(); err != nil {
		return fmt.Errorf("verifying record of %s: %w", r.Dataset.ID, err)
	}
	c, err := r.Canonical()
	if err != nil {
		return err
	}
	if err := v.Verify(r.Publisher, append([]byte(recordSignaturePrefix), c...), r.Signature); err != nil {
		return fmt.Errorf("verifying record of %s by %s: %w: %w", r.Dataset.ID, r.Publisher, ErrBadSignature, err)
	}
	return nil
}

// checkOffers makes sure each carried offer matches a distinct signed digest.
func (r Record) checkOffers() error {
	used := make([]bool, len(r.OfferDigests))
	for i, o := range r.Dataset.Offers {
		if o.canon == nil {
			return fmt.Errorf("offers[%d] was never resolved for publication: %w", i, ErrNotCanonical)
		}
		d := o.Digest()
		found := false
		for j, x := range r.OfferDigests {
			if x == d && !used[j] {
				used[j], found = true, true
				break
			}
		}
		if !found {
			return fmt.Errorf("offers[%d] (%s) is not one the publisher signed: %w", i, d, ErrNotCanonical)
		}
	}
	return nil
}

type recordWire struct {
	Record    json.RawMessage   `json:"record"`
	Offers    []json.RawMessage `json:"offers"`
	Signature string            `json:"signature"`
}

// MarshalJSON writes the record for the wire and for storage:
// {"record": <signed body>, "offers": [<ODRL offer>...], "signature": <base64>}.
func (r Record) MarshalJSON() ([]byte, error) {
	c, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	offers := make([]json.RawMessage, 0, len(r.Dataset.Offers))
	for i, o := range r.Dataset.Offers {
		if o.canon == nil {
			return nil, fmt.Errorf("encoding record of %s: offers[%d] is not resolved", r.Dataset.ID, i)
		}
		offers = append(offers, o.canon)
	}
	return json.Marshal(recordWire{Record: c, Offers: offers, Signature: base64.StdEncoding.EncodeToString(r.Signature)})
}

// UnmarshalJSON is DecodeRecord.
func (r *Record) UnmarshalJSON(b []byte) error {
	x, err := DecodeRecord(b)
	if err != nil {
		return err
	}
	*r = x
	return nil
}

// DecodeRecord reads a record written by MarshalJSON. It checks the form,
// not the signature (call Verify): the body must be exactly the canonical
// form of what it says (ErrNotCanonical otherwise), the dataset must be
// valid, and every offer must match a signed digest.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) > MaxRecordSize {
		return Record{}, fmt.Errorf("decoding record: %d bytes is more than %d: %w", len(b), MaxRecordSize, ErrMalformedMessage)
	}
	var w recordWire
	if err := strictUnmarshal(b, &w); err != nil {
		return Record{}, fmt.Errorf("decoding record: %w: %v", ErrMalformedMessage, err)
	}
	if len(w.Record) == 0 {
		return Record{}, fmt.Errorf("decoding record: no record body: %w", ErrMalformedMessage)
	}
	sig, err := base64.StdEncoding.DecodeString(w.Signature)
	if err != nil || len(sig) == 0 {
		return Record{}, fmt.Errorf("decoding record: signature is not base64: %w", ErrMalformedMessage)
	}
	canon, err := jcs.Transform(w.Record)
	if err != nil {
		return Record{}, fmt.Errorf("decoding record: body: %w: %v", ErrMalformedMessage, err)
	}
	var body bodyJSON
	if err := strictUnmarshal(canon, &body); err != nil {
		return Record{}, fmt.Errorf("decoding record: body: %w: %v", ErrMalformedMessage, err)
	}
	if body.Format != RecordFormat {
		return Record{}, fmt.Errorf("decoding record: format %q is not %s: %w", body.Format, RecordFormat, ErrMalformedMessage)
	}
	if body.Seq == 0 || body.Publisher == "" || body.Offers == nil {
		return Record{}, fmt.Errorf("decoding record: seq, publisher and offers are required: %w", ErrMalformedMessage)
	}
	ds, err := decodeDataset(body.Dataset)
	if err != nil {
		return Record{}, fmt.Errorf("decoding record: %w", err)
	}
	if len(ds.Offers) > 0 {
		return Record{}, fmt.Errorf("decoding record of %s: the signed body carries offers by digest only: %w", ds.ID, ErrNotCanonical)
	}
	r := Record{Dataset: ds, Publisher: body.Publisher, Seq: body.Seq, Retired: body.Retired, OfferDigests: body.Offers, Signature: sig}
	if len(w.Offers) > len(body.Offers) {
		return Record{}, fmt.Errorf("decoding record of %s: %d offers but %d signed: %w", ds.ID, len(w.Offers), len(body.Offers), ErrNotCanonical)
	}
	for i, raw := range w.Offers {
		c, err := jcs.Transform(raw)
		if err != nil {
			return Record{}, fmt.Errorf("decoding record of %s: offers[%d]: %w: %v", ds.ID, i, ErrMalformedMessage, err)
		}
		p, err := policy.Parse(c)
		if err != nil {
			return Record{}, fmt.Errorf("decoding record of %s: offers[%d]: %w", ds.ID, i, err)
		}
		r.Dataset.Offers = append(r.Dataset.Offers, Offer{Policy: p, canon: c})
	}
	if err := r.checkOffers(); err != nil {
		return Record{}, fmt.Errorf("decoding record of %s: %w", ds.ID, err)
	}
	// Offers are checked by digest; the rest of the description by the
	// dataset rules, with a placeholder offer standing in for the signed ones.
	check := r.Dataset
	check.Offers = []Offer{{Template: "open-data"}}
	if err := check.Validate(); err != nil {
		return Record{}, fmt.Errorf("decoding record: %w", err)
	}
	if r.Dataset.Publisher.PeerID != r.Publisher {
		return Record{}, fmt.Errorf("decoding record of %s: dataset publisher %q is not the record's publisher %q: %w", ds.ID, r.Dataset.Publisher.PeerID, r.Publisher, ErrMalformedMessage)
	}
	again, err := r.Canonical()
	if err != nil {
		return Record{}, fmt.Errorf("decoding record of %s: %w", ds.ID, err)
	}
	if !bytes.Equal(again, canon) {
		return Record{}, fmt.Errorf("decoding record of %s: body holds content this node would not keep: %w", ds.ID, ErrNotCanonical)
	}
	return r, nil
}
