package federation

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// Role is what a member may do in a federation.
type Role string

// Roles.
const (
	// RoleAgency members publish datasets, serve transfers and run the DHT
	// in server mode.
	RoleAgency Role = "agency"
	// RoleResearcher members search, negotiate and receive, never publish
	// or serve.
	RoleResearcher Role = "researcher"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAgency || r == RoleResearcher }

// Member is one participant of a federation.
type Member struct {
	PeerID string `json:"peerId"`
	Name   string `json:"name,omitempty"`
	Role   Role   `json:"role"`
}

// Signature is one admin's signature over a document's canonical bytes.
type Signature struct {
	Signer string `json:"signer"`    // peer ID of the admin
	Sig    string `json:"signature"` // base64 (std, padded) Ed25519 signature
}

// Document is one version of a federation's membership. Version 0 is the
// genesis document; its CID is the federation's ID. Every later version
// names the CID of the one before (Prev) and is valid only when signed by
// Threshold distinct admins of the version before it: the current document's
// own rule governs its change.
type Document struct {
	ID        string    `json:"id,omitempty"` // federation ID; empty in genesis
	Name      string    `json:"name"`
	Seq       uint64    `json:"seq"`
	Prev      string    `json:"prev,omitempty"` // CID of version Seq-1
	Admins    []string  `json:"admins"`
	Threshold int       `json:"threshold"` // admin signatures a change needs
	Members   []Member  `json:"members"`
	Bootstrap []string  `json:"bootstrap,omitempty"` // multiaddrs with /p2p/
	Issued    time.Time `json:"issued"`

	Signatures []Signature `json:"signatures,omitempty"`
}

// Errors a document or an update can be rejected with.
var (
	ErrMalformed       = errors.New("malformed federation document")
	ErrBadSignature    = errors.New("bad signature")
	ErrNotEnoughSigs   = errors.New("not enough admin signatures")
	ErrStale           = errors.New("stale update")
	ErrNotNext         = errors.New("update does not follow the current document")
	ErrWrongFed        = errors.New("update is for another federation")
	ErrUnknownFed      = errors.New("unknown federation")
	ErrNotAdmin        = errors.New("not an admin of the federation")
	ErrNotMember       = errors.New("not a member of the federation")
	ErrMemberExists    = errors.New("already a member")
	ErrLastAdmin       = errors.New("a federation needs at least one admin")
	ErrBadThreshold    = errors.New("threshold must be between 1 and the number of admins")
	ErrAlreadySigned   = errors.New("already signed by this admin")
	ErrChainIncomplete = errors.New("chain does not start at the genesis document")
	ErrNoChange        = errors.New("the change changes nothing")
)

// maxDocBytes caps a document on the wire and in a token.
const maxDocBytes = 1 << 20

// signingBytes is the RFC 8785 canonical JSON of d without its signatures.
func (d *Document) signingBytes() ([]byte, error) {
	c := *d
	c.Signatures = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(b)
}

// CID is the content identifier of the document's signed content (without
// signatures, so adding a signature does not change it).
func (d *Document) CID() (cid.Cid, error) {
	b, err := d.signingBytes()
	if err != nil {
		return cid.Undef, err
	}
	sum, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewCidV1(cid.DagJSON, sum), nil
}

// FederationID is the federation's ID: the CID of the genesis document.
func (d *Document) FederationID() string { return d.ID }

// Member returns the member with peer ID p.
func (d *Document) Member(p peer.ID) (Member, bool) {
	s := p.String()
	for _, m := range d.Members {
		if m.PeerID == s {
			return m, true
		}
	}
	return Member{}, false
}

// IsAdmin reports whether p is an admin.
func (d *Document) IsAdmin(p peer.ID) bool { return slices.Contains(d.Admins, p.String()) }

// Sign adds key's signature. The signer must be an admin of prev (for
// genesis, of d itself).
func (d *Document) Sign(key crypto.PrivKey) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	for _, s := range d.Signatures {
		if s.Signer == id.String() {
			return ErrAlreadySigned
		}
	}
	b, err := d.signingBytes()
	if err != nil {
		return fmt.Errorf("canonicalise document: %w", err)
	}
	sig, err := key.Sign(b)
	if err != nil {
		return fmt.Errorf("sign document: %w", err)
	}
	d.Signatures = append(d.Signatures, Signature{Signer: id.String(), Sig: base64.StdEncoding.EncodeToString(sig)})
	return nil
}

// validSigners returns the distinct peers, among admins, whose signatures
// over d verify. A signature that does not verify is an error: it was forged
// or the document was changed after signing.
func (d *Document) validSigners(admins []string) ([]string, error) {
	b, err := d.signingBytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var ok []string
	for _, s := range d.Signatures {
		if !slices.Contains(admins, s.Signer) || slices.Contains(ok, s.Signer) {
			continue
		}
		id, err := peer.Decode(s.Signer)
		if err != nil {
			return nil, fmt.Errorf("%w: signer %q: %v", ErrBadSignature, s.Signer, err)
		}
		pub, err := id.ExtractPublicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: signer %s: %v", ErrBadSignature, s.Signer, err)
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("%w: signer %s: %v", ErrBadSignature, s.Signer, err)
		}
		if good, err := pub.Verify(b, sig); err != nil || !good {
			return nil, fmt.Errorf("%w: signature of %s does not match the document", ErrBadSignature, s.Signer)
		}
		ok = append(ok, s.Signer)
	}
	return ok, nil
}

// checkShape validates fields that do not depend on history.
func (d *Document) checkShape() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(f, a...)) }
	if strings.TrimSpace(d.Name) == "" {
		return bad("name is empty")
	}
	if len(d.Admins) == 0 {
		return ErrLastAdmin
	}
	if d.Threshold < 1 || d.Threshold > len(d.Admins) {
		return fmt.Errorf("%w (threshold %d, %d admins)", ErrBadThreshold, d.Threshold, len(d.Admins))
	}
	seen := map[string]bool{}
	for i, m := range d.Members {
		if _, err := peer.Decode(m.PeerID); err != nil {
			return bad("members[%d].peerId %q: %v", i, m.PeerID, err)
		}
		if !m.Role.Valid() {
			return bad("members[%d].role %q is not agency or researcher", i, m.Role)
		}
		if seen[m.PeerID] {
			return bad("member %s listed twice", m.PeerID)
		}
		seen[m.PeerID] = true
	}
	for i, a := range d.Admins {
		if _, err := peer.Decode(a); err != nil {
			return bad("admins[%d] %q: %v", i, a, err)
		}
		if !seen[a] {
			return bad("admin %s is not a member", a)
		}
	}
	for i, b := range d.Bootstrap {
		m, err := ma.NewMultiaddr(b)
		if err != nil {
			return bad("bootstrap[%d] %q: %v", i, b, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			return bad("bootstrap[%d] %q needs /p2p/PEERID: %v", i, b, err)
		}
	}
	return nil
}

// VerifyGenesis checks a genesis document: shape, signatures by its own
// admins meeting its own threshold, and that its ID is its CID.
func VerifyGenesis(d *Document) error {
	if d.Seq != 0 || d.Prev != "" {
		return fmt.Errorf("%w: genesis must have seq 0 and no prev", ErrMalformed)
	}
	if err := d.checkShape(); err != nil {
		return err
	}
	c, err := genesisID(d)
	if err != nil {
		return err
	}
	if d.ID != c {
		return fmt.Errorf("%w: genesis id %q is not its CID %s", ErrMalformed, d.ID, c)
	}
	signers, err := d.validSigners(d.Admins)
	if err != nil {
		return err
	}
	if len(signers) < d.Threshold {
		return fmt.Errorf("%w: %d of %d", ErrNotEnoughSigs, len(signers), d.Threshold)
	}
	return nil
}

// genesisID is the CID of a genesis document with its ID field empty.
func genesisID(d *Document) (string, error) {
	g := *d
	g.ID = ""
	c, err := g.CID()
	if err != nil {
		return "", err
	}
	return c.String(), nil
}

// VerifyNext checks that next is a valid successor of cur: same federation,
// seq one more, prev = CID(cur), well formed, and signed by cur.Threshold
// distinct admins of cur.
func VerifyNext(cur, next *Document) error {
	if next.ID != cur.ID {
		return fmt.Errorf("%w: %s, not %s", ErrWrongFed, next.ID, cur.ID)
	}
	if next.Seq <= cur.Seq {
		return fmt.Errorf("%w: seq %d, have %d", ErrStale, next.Seq, cur.Seq)
	}
	if next.Seq != cur.Seq+1 {
		return fmt.Errorf("%w: seq %d after %d", ErrNotNext, next.Seq, cur.Seq)
	}
	c, err := cur.CID()
	if err != nil {
		return err
	}
	if next.Prev != c.String() {
		return fmt.Errorf("%w: prev %s, current is %s", ErrNotNext, next.Prev, c)
	}
	if err := next.checkShape(); err != nil {
		return err
	}
	signers, err := next.validSigners(cur.Admins)
	if err != nil {
		return err
	}
	if len(signers) < cur.Threshold {
		return fmt.Errorf("%w: %d of %d", ErrNotEnoughSigs, len(signers), cur.Threshold)
	}
	return nil
}

// VerifyChain checks a whole chain from genesis and returns its last
// document.
func VerifyChain(chain []*Document) (*Document, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrChainIncomplete)
	}
	if err := VerifyGenesis(chain[0]); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	for i := 1; i < len(chain); i++ {
		if err := VerifyNext(chain[i-1], chain[i]); err != nil {
			return nil, fmt.Errorf("version %d: %w", chain[i].Seq, err)
		}
	}
	return chain[len(chain)-1], nil
}

// NewGenesis makes and signs the first document of a federation whose only
// admin and member is the key's owner.
func NewGenesis(name, agency string, key crypto.PrivKey, bootstrap []string, now time.Time) (*Document, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	d := &Document{
		Name:      name,
		Admins:    []string{id.String()},
		Threshold: 1,
		Members:   []Member{{PeerID: id.String(), Name: agency, Role: RoleAgency}},
		Bootstrap: bootstrap,
		Issued:    now.UTC().Truncate(time.Second),
	}
	if err := d.checkShape(); err != nil {
		return nil, err
	}
	if d.ID, err = genesisID(d); err != nil {
		return nil, err
	}
	if err := d.Sign(key); err != nil {
		return nil, err
	}
	return d, nil
}

// Change is one membership edit applied by Next.
type Change struct {
	Op        string // add, role, revoke, add-admin, remove-admin, threshold, bootstrap
	PeerID    string
	Name      string
	Role      Role
	Threshold int
	Bootstrap []string
}

// Next derives the unsigned successor of d with change applied.
func (d *Document) Next(ch Change, now time.Time) (*Document, error) {
	c, err := d.CID()
	if err != nil {
		return nil, err
	}
	n := &Document{
		ID: d.ID, Name: d.Name, Seq: d.Seq + 1, Prev: c.String(),
		Admins: slices.Clone(d.Admins), Threshold: d.Threshold,
		Members: slices.Clone(d.Members), Bootstrap: slices.Clone(d.Bootstrap),
		Issued: now.UTC().Truncate(time.Second),
	}
	if ch.PeerID != "" {
		if _, err := peer.Decode(ch.PeerID); err != nil {
			return nil, fmt.Errorf("%w: peer ID %q: %v", ErrMalformed, ch.PeerID, err)
		}
	}
	idx := slices.IndexFunc(n.Members, func(m Member) bool { return m.PeerID == ch.PeerID })
	switch ch.Op {
	case "add":
		if idx >= 0 {
			return nil, fmt.Errorf("%w: %s", ErrMemberExists, ch.PeerID)
		}
		if !ch.Role.Valid() {
			return nil, fmt.Errorf("%w: role %q is not agency or researcher", ErrMalformed, ch.Role)
		}
		n.Members = append(n.Members, Member{PeerID: ch.PeerID, Name: ch.Name, Role: ch.Role})
	case "role":
		if idx < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNotMember, ch.PeerID)
		}
		if !ch.Role.Valid() {
			return nil, fmt.Errorf("%w: role %q is not agency or researcher", ErrMalformed, ch.Role)
		}
		if n.Members[idx].Role == ch.Role {
			return nil, fmt.Errorf("%w: %s is already %s", ErrNoChange, ch.PeerID, ch.Role)
		}
		n.Members[idx].Role = ch.Role
	case "revoke":
		if idx < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNotMember, ch.PeerID)
		}
		n.Members = slices.Delete(n.Members, idx, idx+1)
		n.Admins = slices.DeleteFunc(n.Admins, func(a string) bool { return a == ch.PeerID })
		n.Threshold = min(n.Threshold, len(n.Admins))
	case "add-admin":
		if idx < 0 {
			return nil, fmt.Errorf("%w: %s (invite it first)", ErrNotMember, ch.PeerID)
		}
		if slices.Contains(n.Admins, ch.PeerID) {
			return nil, fmt.Errorf("%w: %s is already an admin", ErrNoChange, ch.PeerID)
		}
		n.Admins = append(n.Admins, ch.PeerID)
	case "remove-admin":
		if !slices.Contains(n.Admins, ch.PeerID) {
			return nil, fmt.Errorf("%w: %s is not an admin", ErrNoChange, ch.PeerID)
		}
		n.Admins = slices.DeleteFunc(n.Admins, func(a string) bool { return a == ch.PeerID })
		n.Threshold = min(n.Threshold, len(n.Admins))
	case "threshold":
		if ch.Threshold == n.Threshold {
			return nil, fmt.Errorf("%w: the threshold is already %d", ErrNoChange, ch.Threshold)
		}
		n.Threshold = ch.Threshold
	case "bootstrap":
		n.Bootstrap = ch.Bootstrap
	default:
		return nil, fmt.Errorf("%w: unknown change %q", ErrMalformed, ch.Op)
	}
	sort.SliceStable(n.Members, func(i, j int) bool { return n.Members[i].PeerID < n.Members[j].PeerID })
	if err := n.checkShape(); err != nil {
		return nil, err
	}
	return n, nil
}

// Decode parses one document, rejecting unknown fields and oversized input.
func Decode(b []byte) (*Document, error) {
	if len(b) > maxDocBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), maxDocBytes)
	}
	var d Document
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return &d, nil
}
