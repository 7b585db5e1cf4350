package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Signer signs as one party; PeerID is that party's libp2p peer ID string.
// Sign returns a signature over msg made with the key behind PeerID.
type Signer interface {
	PeerID() string
	Sign(msg []byte) ([]byte, error)
}

// Verifier checks that sig is peerID's signature over msg. The node derives
// the public key from an Ed25519 peer ID, so no key registry is needed and
// verification works offline.
type Verifier interface {
	Verify(peerID string, msg, sig []byte) error
}

// AgreementFormat names the agreement document format and version; it is part
// of what is signed.
const AgreementFormat = "mimnode-agreement/1"

// signaturePrefix separates agreement signatures from anything else the same
// key signs (catalogue records, receipts): a signature over one can never be
// replayed as the other.
const signaturePrefix = "mimnode agreement signature v1\x00"

// Party roles in an agreement.
const (
	RoleProvider = "provider"
	RoleConsumer = "consumer"
)

// Agreement is a contract between a provider and a consumer about one
// version of one dataset, under a policy, for a time. It becomes binding when
// both parties have signed its canonical form.
type Agreement struct {
	ID       string // agreement id (URN)
	Dataset  string // dataset id; also the policy's target
	Version  string // dataset version (manifest CID); empty: whichever is current
	Provider string // provider peer ID; also the policy's assigner
	Consumer string // consumer peer ID; also the policy's assignee

	Policy Policy // an Agreement-typed policy

	Created   time.Time
	NotBefore time.Time // start of validity; elapsedTime counts from here
	NotAfter  time.Time // end of validity (exclusive); zero: open-ended

	Signatures []Signature
}

// Signature is one party's signature over the agreement's canonical form.
type Signature struct {
	Role  string // RoleProvider or RoleConsumer
	Peer  string // the signer's peer ID; must be the party's
	Value []byte
}

// NewAgreement turns agreed terms into an Agreement: it copies the offer's
// rules into an Agreement-typed policy with the agreement's id, naming the
// dataset and both parties,
// fills NotBefore from Created when zero, drops any signatures and checks
// that the result is complete and understood (ErrAgreement otherwise).
func NewAgreement(a Agreement) (Agreement, error) {
	p := a.Policy.Clone()
	// The agreed policy is a new policy (ODRL Agreement, as in DSP's
	// ContractAgreementMessage): it carries the agreement's id, not the offer's.
	p.Type = TypeAgreement
	p.ID = a.ID
	p.Target, p.Assigner, p.Assignee = a.Dataset, a.Provider, a.Consumer
	p.Compile()
	a.Policy = p
	a.Created = a.Created.UTC()
	if a.NotBefore.IsZero() {
		a.NotBefore = a.Created
	}
	a.NotBefore = a.NotBefore.UTC()
	if !a.NotAfter.IsZero() {
		a.NotAfter = a.NotAfter.UTC()
	}
	a.Signatures = nil
	if err := a.check(); err != nil {
		return Agreement{}, err
	}
	return a, nil
}

// check is what every agreement must satisfy before it is signed or trusted.
func (a Agreement) check() error {
	var errs []error
	need := func(v, name string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is missing", name))
		}
	}
	need(a.ID, "id")
	need(a.Dataset, "dataset")
	need(a.Provider, "provider")
	need(a.Consumer, "consumer")
	if a.Provider != "" && a.Provider == a.Consumer {
		errs = append(errs, fmt.Errorf("provider and consumer are the same peer"))
	}
	if a.Created.IsZero() {
		errs = append(errs, fmt.Errorf("created time is missing"))
	}
	if !a.NotAfter.IsZero() && !a.NotAfter.After(a.NotBefore) {
		errs = append(errs, fmt.Errorf("notAfter %s is not after notBefore %s", a.NotAfter.Format(time.RFC3339), a.NotBefore.Format(time.RFC3339)))
	}
	p := a.Policy
	if p.Type != TypeAgreement || p.Target != a.Dataset || p.Assigner != a.Provider || p.Assignee != a.Consumer {
		errs = append(errs, fmt.Errorf("policy must be an Agreement with target %q, assigner %q and assignee %q", a.Dataset, a.Provider, a.Consumer))
	}
	if err := Validate(p); err != nil {
		errs = append(errs, fmt.Errorf("policy: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrAgreement, errors.Join(errs...))
	}
	return nil
}

// termsJSON is the signed part of an agreement as a JSON value.
func (a Agreement) termsJSON() (map[string]any, error) {
	pol, err := policyJSON(a.Policy)
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		"format":    AgreementFormat,
		"id":        a.ID,
		"dataset":   a.Dataset,
		"provider":  a.Provider,
		"consumer":  a.Consumer,
		"created":   a.Created.UTC().Format(time.RFC3339Nano),
		"notBefore": a.NotBefore.UTC().Format(time.RFC3339Nano),
		"policy":    pol,
	}
	if a.Version != "" {
		m["version"] = a.Version
	}
	if !a.NotAfter.IsZero() {
		m["notAfter"] = a.NotAfter.UTC().Format(time.RFC3339Nano)
	}
	return m, nil
}

// Canonical returns the bytes both parties sign: the agreement's terms
// (everything but the signatures) in the JSON Canonicalization Scheme
// (RFC 8785), so any implementation that reads the same terms signs the
// same bytes.
func (a Agreement) Canonical() ([]byte, error) {
	if c, ok := appendTermsDirect(make([]byte, 0, 2048), a); ok {
		return c, nil
	}
	m, err := a.termsJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding agreement %s: %w", a.ID, err)
	}
	c, err := appendCanonical(make([]byte, 0, 2048), m)
	if err != nil {
		return nil, fmt.Errorf("canonicalising agreement %s: %w", a.ID, err)
	}
	return c, nil
}

// appendCanonical appends v, a JSON tree as termsJSON and decodeJSON make
// it, in the JSON Canonicalization Scheme (RFC 8785). It writes the bytes
// jcs.Transform(json.Marshal(v)) would, without encoding the tree and
// parsing it back: agreements are canonicalised several times per
// negotiation. Anything it does not write itself (other value types,
// strings that are not valid UTF-8, numbers outside the JSON grammar)
// takes that slow path, so the result is the same either way.
func appendCanonical(dst []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if t {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		if utf8.ValidString(t) {
			return appendCanonicalString(dst, t), nil
		}
	case json.Number:
		if f, err := strconv.ParseFloat(string(t), 64); err == nil && isJSONNumber(string(t)) {
			if n, err := jcs.NumberToJSON(f); err == nil {
				return append(dst, n...), nil
			}
		}
	case []any:
		dst = append(dst, '[')
		for i, x := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendCanonical(dst, x); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(t))
		ascii := true
		for k := range t {
			if !utf8.ValidString(k) {
				return appendCanonicalSlow(dst, v)
			}
			ascii = ascii && isASCII(k)
			keys = append(keys, k)
		}
		if ascii {
			slices.Sort(keys)
		} else {
			// RFC 8785 3.2.3: members sorted by their UTF-16 code units.
			slices.SortFunc(keys, func(a, b string) int {
				return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
			})
		}
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendCanonicalString(dst, k), ':')
			var err error
			if dst, err = appendCanonical(dst, t[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return appendCanonicalSlow(dst, v)
}

func appendCanonicalSlow(dst []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, err
	}
	return append(dst, c...), nil
}

// appendCanonicalString writes s (valid UTF-8) as RFC 8785 does: only the
// quote, the backslash and control characters are escaped, with the short
// forms where JSON has them.
func appendCanonicalString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func signedMessage(canonical []byte) []byte {
	return append([]byte(signaturePrefix), canonical...)
}

// Sign adds s's signature as provider or consumer, whichever s's peer ID is
// (ErrNotAParty if neither). Signing again replaces that party's signature.
func (a *Agreement) Sign(s Signer) error {
	role, err := a.signRole(s)
	if err != nil {
		return err
	}
	if err := a.check(); err != nil {
		return fmt.Errorf("signing agreement %s: %w", a.ID, err)
	}
	c, err := a.Canonical()
	if err != nil {
		return err
	}
	return a.signMessage(s, role, signedMessage(c))
}

// signRole returns the role s signs a as, or ErrNotAParty.
func (a *Agreement) signRole(s Signer) (string, error) {
	switch peer := s.PeerID(); peer {
	case a.Provider:
		return RoleProvider, nil
	case a.Consumer:
		return RoleConsumer, nil
	default:
		return "", fmt.Errorf("signing agreement %s as %s: %w (provider %s, consumer %s)", a.ID, peer, ErrNotAParty, a.Provider, a.Consumer)
	}
}

// signMessage adds s's signature as role over msg, a's signed message.
func (a *Agreement) signMessage(s Signer, role string, msg []byte) error {
	peer := s.PeerID()
	sig, err := s.Sign(msg)
	if err != nil {
		return fmt.Errorf("signing agreement %s as %s: %w", a.ID, role, err)
	}
	kept := a.Signatures[:0:0]
	for _, x := range a.Signatures {
		if x.Role != role {
			kept = append(kept, x)
		}
	}
	a.Signatures = sortSignatures(append(kept, Signature{Role: role, Peer: peer, Value: sig}))
	return nil
}

func sortSignatures(sigs []Signature) []Signature {
	out := make([]Signature, 0, len(sigs))
	for _, role := range []string{RoleProvider, RoleConsumer} {
		for _, s := range sigs {
			if s.Role == role {
				out = append(out, s)
			}
		}
	}
	for _, s := range sigs {
		if s.Role != RoleProvider && s.Role != RoleConsumer {
			out = append(out, s)
		}
	}
	return out
}

// Verify checks that the agreement is complete and understood, and carries
// valid signatures of both the provider and the consumer, each made by the
// peer the agreement names for that role.
func (a Agreement) Verify(v Verifier) error {
	return a.verify(v, RoleProvider, RoleConsumer)
}

// VerifySignature is Verify for one party's signature (RoleProvider or
// RoleConsumer) only: a party that is about to countersign, or that holds
// its own signature already, need not check that one again (an Ed25519
// verification costs more than the signature).
func (a Agreement) VerifySignature(v Verifier, role string) error {
	if role != RoleProvider && role != RoleConsumer {
		return fmt.Errorf("verifying agreement %s: %w: unknown role %q", a.ID, ErrBadSignature, role)
	}
	return a.verify(v, role)
}

func (a Agreement) verify(v Verifier, roles ...string) error {
	if err := a.check(); err != nil {
		return fmt.Errorf("verifying agreement %s: %w", a.ID, err)
	}
	c, err := a.Canonical()
	if err != nil {
		return err
	}
	return a.verifyMessage(v, signedMessage(c), roles...)
}

// verifyMessage checks the signatures of roles over msg, a's signed
// message.
func (a Agreement) verifyMessage(v Verifier, msg []byte, roles ...string) error {
	for _, role := range roles {
		peer := a.Provider
		if role == RoleConsumer {
			peer = a.Consumer
		}
		var found *Signature
		for i := range a.Signatures {
			s := &a.Signatures[i]
			if s.Role != role {
				continue
			}
			if found != nil {
				return fmt.Errorf("verifying agreement %s: %w: two %s signatures", a.ID, ErrBadSignature, role)
			}
			found = s
		}
		if found == nil {
			return fmt.Errorf("verifying agreement %s: %w: no %s signature", a.ID, ErrMissingSignature, role)
		}
		if found.Peer != peer {
			return fmt.Errorf("verifying agreement %s: %w: %s signature is by %s, but the %s is %s", a.ID, ErrBadSignature, role, found.Peer, role, peer)
		}
		if err := v.Verify(peer, msg, found.Value); err != nil {
			return fmt.Errorf("verifying agreement %s: %w: %s signature by %s: %w", a.ID, ErrBadSignature, role, peer, err)
		}
	}
	for _, s := range a.Signatures {
		if s.Role != RoleProvider && s.Role != RoleConsumer {
			return fmt.Errorf("verifying agreement %s: %w: signature with unknown role %q", a.ID, ErrBadSignature, s.Role)
		}
	}
	return nil
}

type signatureJSON struct {
	Role string `json:"role"`
	Peer string `json:"peer"`
	Sig  string `json:"sig"`
}

// MarshalJSON writes the agreement file form: {"agreement": terms,
// "signatures": [...]} in canonical JSON (RFC 8785), signatures as padded
// standard base64.
func (a Agreement) MarshalJSON() ([]byte, error) {
	c, err := a.Canonical()
	if err != nil {
		return nil, err
	}
	return a.appendFile(make([]byte, 0, len(c)+512), c)
}

// appendFile appends the agreement file of a, whose canonical terms are c,
// to dst: the canonical form of {"agreement": terms, "signatures": [...]},
// its members in that order, written around c as it is.
func (a Agreement) appendFile(dst, c []byte) ([]byte, error) {
	// The signatures are written directly, as appendCanonical writes
	// them from the tree below: members in sorted order (peer, role,
	// sig), strings as RFC 8785 writes them, base64 needing no escapes.
	// Strings that are not valid UTF-8 take the tree. A negotiation makes
	// three files.
	sorted := sortSignatures(a.Signatures)
	out := append(append(dst, `{"agreement":`...), c...)
	out = append(out, `,"signatures":[`...)
	for i, s := range sorted {
		if !utf8.ValidString(s.Peer) || !utf8.ValidString(s.Role) {
			return a.appendFileTree(dst, c)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = appendCanonicalString(append(out, `{"peer":`...), s.Peer)
		out = appendCanonicalString(append(out, `,"role":`...), s.Role)
		out = base64.StdEncoding.AppendEncode(append(out, `,"sig":"`...), s.Value)
		out = append(out, '"', '}')
	}
	return append(out, ']', '}'), nil
}

// appendFileTree is appendFile by way of a JSON tree.
func (a Agreement) appendFileTree(dst, c []byte) ([]byte, error) {
	sigs := make([]any, 0, len(a.Signatures))
	for _, s := range sortSignatures(a.Signatures) {
		sigs = append(sigs, map[string]any{"role": s.Role, "peer": s.Peer, "sig": base64.StdEncoding.EncodeToString(s.Value)})
	}
	out := append(append(dst, `{"agreement":`...), c...)
	out, err := appendCanonical(append(out, `,"signatures":`...), sigs)
	if err != nil {
		return nil, fmt.Errorf("canonicalising agreement %s: %w", a.ID, err)
	}
	return append(out, '}'), nil
}

// Seal is what a party does with an agreement at one step of a
// negotiation, checking it and making its canonical form once for all of
// it (Verify, Sign and MarshalJSON each do both): it verifies the
// signatures of the roles in verify, as VerifySignature does, then signs
// as s unless s is nil, as Sign does, and returns the canonical terms
// (Canonical) and the agreement file (MarshalJSON).
func (a *Agreement) Seal(v Verifier, verify []string, s Signer) (canonical, file []byte, err error) {
	for _, role := range verify {
		if role != RoleProvider && role != RoleConsumer {
			return nil, nil, fmt.Errorf("verifying agreement %s: %w: unknown role %q", a.ID, ErrBadSignature, role)
		}
	}
	var role string
	if s != nil {
		if role, err = a.signRole(s); err != nil {
			return nil, nil, err
		}
	}
	if err := a.check(); err != nil {
		if len(verify) > 0 {
			return nil, nil, fmt.Errorf("verifying agreement %s: %w", a.ID, err)
		}
		return nil, nil, fmt.Errorf("signing agreement %s: %w", a.ID, err)
	}
	c, err := a.Canonical()
	if err != nil {
		return nil, nil, err
	}
	msg := signedMessage(c)
	if len(verify) > 0 {
		if err := a.verifyMessage(v, msg, verify...); err != nil {
			return nil, nil, err
		}
	}
	if s != nil {
		if err := a.signMessage(s, role, msg); err != nil {
			return nil, nil, err
		}
	}
	file, err = a.appendFile(make([]byte, 0, len(c)+512), c)
	if err != nil {
		return nil, nil, err
	}
	return c, file, nil
}

// UnmarshalJSON reads the file form leniently about layout (it may be
// embedded in another document and re-encoded), but still refuses terms the
// model would not keep exactly: the signed bytes must be the bytes the
// evaluator reads.
func (a *Agreement) UnmarshalJSON(data []byte) error {
	got, err := decodeAgreement(data)
	if err != nil {
		return err
	}
	*a = got
	return nil
}

// ParseAgreement reads an agreement file written by MarshalJSON (one trailing
// newline allowed). The file must be exactly in canonical form, and exactly
// the file MarshalJSON writes for what it reads: its signatures member
// present (an empty list included) and the signatures in role order,
// provider's first. So no byte of it can change without either breaking a
// signature or being refused here (ErrNotCanonical). It does not verify
// signatures: call Verify.
func ParseAgreement(data []byte) (Agreement, error) {
	body := bytes.TrimSuffix(data, []byte("\n"))
	canon, err := jcs.Transform(body)
	if err != nil {
		return Agreement{}, fmt.Errorf("%w: reading agreement file: %w", ErrSyntax, err)
	}
	if !bytes.Equal(canon, body) {
		// Some other JSON document (a dataset, an offer) is not an edited
		// agreement: say what it lacks instead.
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil || top["agreement"] == nil {
			return Agreement{}, fmt.Errorf("%w: not an agreement file: it has no \"agreement\" object (an agreement file is what 'mimnode agreement export' writes)", ErrSyntax)
		}
		return Agreement{}, fmt.Errorf("reading agreement file: %w: its bytes were changed after it was written (reformatted or edited); export it again with 'mimnode agreement export'", ErrNotCanonical)
	}
	a, err := decodeAgreement(body)
	if err != nil {
		return Agreement{}, err
	}
	// Canonical JSON is not yet the one file MarshalJSON writes: it always
	// writes the signatures, an empty list included, and in their role
	// order. A file that leaves them out or lists them otherwise means
	// the same agreement in other bytes.
	if out, err := a.MarshalJSON(); err != nil || !bytes.Equal(out, body) {
		return Agreement{}, fmt.Errorf("reading agreement file: %w: not the file an export writes (its signatures are left out or reordered); export it again with 'mimnode agreement export'", ErrNotCanonical)
	}
	return a, nil
}

// ParseReformattedAgreement reads an agreement file that may have been
// reformatted since it was written (pretty-printed, its members reordered
// by another tool): the signatures cover the agreement's canonical form
// (RFC 8785), which any such reformatting keeps, so the file is read as
// that form. reformatted says whether its bytes differed from it. Nodes
// store and exchange only the canonical bytes (ParseAgreement); this is
// for files people hand around.
func ParseReformattedAgreement(data []byte) (a Agreement, reformatted bool, err error) {
	body := bytes.TrimSuffix(data, []byte("\n"))
	canon, err := jcs.Transform(body)
	if err != nil {
		return Agreement{}, false, fmt.Errorf("%w: reading agreement file: %w", ErrSyntax, err)
	}
	a, err = ParseAgreement(canon)
	return a, err == nil && !bytes.Equal(canon, body), err
}

func decodeAgreement(data []byte) (Agreement, error) {
	v, ok := quickTree(data)
	if !ok {
		var err error
		if v, err = decodeJSON(data); err != nil {
			return Agreement{}, fmt.Errorf("%w: reading agreement: %w", ErrSyntax, err)
		}
	}
	top, ok := v.(map[string]any)
	if !ok {
		return Agreement{}, fmt.Errorf("%w: an agreement file must be a JSON object", ErrSyntax)
	}
	for k := range top {
		if k != "agreement" && k != "signatures" {
			return Agreement{}, fmt.Errorf("%w: agreement file has unknown member %q", ErrSyntax, k)
		}
	}
	terms, ok := top["agreement"].(map[string]any)
	if !ok {
		return Agreement{}, fmt.Errorf("%w: agreement file has no \"agreement\" object", ErrSyntax)
	}
	a, err := decodeTerms(terms)
	if err != nil {
		return Agreement{}, err
	}
	// What is signed is the canonical form of the terms as written; what is
	// evaluated is the model. They must be the same bytes.
	signedForm, err := appendCanonical(make([]byte, 0, 2048), terms)
	if err != nil {
		return Agreement{}, fmt.Errorf("%w: canonicalising agreement terms: %w", ErrSyntax, err)
	}
	modelForm, err := a.Canonical()
	if err != nil {
		return Agreement{}, err
	}
	if !bytes.Equal(signedForm, modelForm) {
		return Agreement{}, fmt.Errorf("reading agreement %s: %w: the terms contain content or spellings the policy model does not keep", a.ID, ErrNotCanonical)
	}
	sigs, ok := top["signatures"].([]any)
	if !ok && top["signatures"] != nil {
		return Agreement{}, fmt.Errorf("%w: agreement signatures must be an array", ErrSyntax)
	}
	for i, x := range sigs {
		obj, ok := x.(map[string]any)
		if !ok {
			return Agreement{}, fmt.Errorf("%w: signatures[%d] must be an object", ErrSyntax, i)
		}
		// Read by exact key: encoding/json would also accept "Peer" or "SIG",
		// letting a byte change pass unnoticed.
		role, okR := obj["role"].(string)
		peer, okP := obj["peer"].(string)
		sig, okS := obj["sig"].(string)
		if !okR || !okP || !okS || len(obj) != 3 {
			return Agreement{}, fmt.Errorf("%w: signatures[%d] must have exactly role, peer and sig strings", ErrSyntax, i)
		}
		s := signatureJSON{Role: role, Peer: peer, Sig: sig}
		val, err := base64.StdEncoding.Strict().DecodeString(s.Sig)
		if err != nil {
			return Agreement{}, fmt.Errorf("%w: signatures[%d].sig is not base64: %w", ErrSyntax, i, err)
		}
		a.Signatures = append(a.Signatures, Signature{Role: s.Role, Peer: s.Peer, Value: val})
	}
	return a, nil
}

func decodeTerms(m map[string]any) (Agreement, error) {
	var a Agreement
	str := func(k string, required bool) (string, error) {
		v, ok := m[k]
		if !ok {
			if required {
				return "", fmt.Errorf("%w: agreement has no %q", ErrSyntax, k)
			}
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%w: agreement %q must be a string", ErrSyntax, k)
		}
		return s, nil
	}
	tm := func(k string, required bool) (time.Time, error) {
		s, err := str(k, required)
		if err != nil || s == "" {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: agreement %q is not an RFC 3339 time: %w", ErrSyntax, k, err)
		}
		return t.UTC(), nil
	}
	format, err := str("format", true)
	if err != nil {
		return a, err
	}
	if format != AgreementFormat {
		return a, fmt.Errorf("%w: agreement format %q is not %q", ErrSyntax, format, AgreementFormat)
	}
	known := map[string]bool{"format": true, "id": true, "dataset": true, "version": true, "provider": true, "consumer": true, "created": true, "notBefore": true, "notAfter": true, "policy": true}
	for k := range m {
		if !known[k] {
			return a, fmt.Errorf("%w: agreement has unknown member %q", ErrSyntax, k)
		}
	}
	for _, f := range []struct {
		k   string
		dst *string
		req bool
	}{{"id", &a.ID, true}, {"dataset", &a.Dataset, true}, {"version", &a.Version, false}, {"provider", &a.Provider, true}, {"consumer", &a.Consumer, true}} {
		if *f.dst, err = str(f.k, f.req); err != nil {
			return a, err
		}
	}
	if a.Created, err = tm("created", true); err != nil {
		return a, err
	}
	if a.NotBefore, err = tm("notBefore", true); err != nil {
		return a, err
	}
	if a.NotAfter, err = tm("notAfter", false); err != nil {
		return a, err
	}
	pol, ok := m["policy"].(map[string]any)
	if !ok {
		return a, fmt.Errorf("%w: agreement has no policy object", ErrSyntax)
	}
	if a.Policy, err = parsePolicy(pol); err != nil {
		return a, fmt.Errorf("reading agreement policy: %w", err)
	}
	a.Policy.Compile()
	return a, nil
}

// Reasons specific to agreements.
const (
	CodeNotConsumer     Code = "not-consumer"
	CodeOutsideValidity Code = "outside-validity"
)

// Evaluate decides a transfer under the agreement: the requester must be the
// consumer, Now must be within the validity window, and the policy must
// permit the request in the transfer scope. Usage.AgreementStart defaults to
// NotBefore. It does not check signatures; call Verify once when the
// agreement is received.
func (a Agreement) Evaluate(req Request) Decision {
	if req.Usage.AgreementStart.IsZero() {
		req.Usage.AgreementStart = a.NotBefore
	}
	d := Evaluate(a.Policy, req, ScopeTransfer)
	if req.PeerID != a.Consumer {
		d.addExtra(CodeNotConsumer, fmt.Sprintf("%s is not the agreement's consumer %s", orNone(req.PeerID), a.Consumer))
	}
	if req.Now.Before(a.NotBefore) || (!a.NotAfter.IsZero() && !req.Now.Before(a.NotAfter)) {
		end := "open-ended"
		if !a.NotAfter.IsZero() {
			end = a.NotAfter.Format(time.RFC3339)
		}
		d.addExtra(CodeOutsideValidity, fmt.Sprintf("%s is outside the agreement's validity %s to %s", req.Now.UTC().Format(time.RFC3339), a.NotBefore.Format(time.RFC3339), end))
	}
	return d
}

// Describe says the agreement in words, with its policy.
func (a Agreement) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Agreement %s\n  dataset: %s\n", a.ID, a.Dataset)
	if a.Version != "" {
		fmt.Fprintf(&b, "  version: %s\n", a.Version)
	}
	fmt.Fprintf(&b, "  provider: %s\n  consumer: %s\n  created: %s\n  valid from: %s\n", a.Provider, a.Consumer, a.Created.Format(time.RFC3339), a.NotBefore.Format(time.RFC3339))
	if !a.NotAfter.IsZero() {
		fmt.Fprintf(&b, "  valid until: %s\n", a.NotAfter.Format(time.RFC3339))
	}
	for _, s := range a.Signatures {
		fmt.Fprintf(&b, "  signed by %s %s\n", s.Role, s.Peer)
	}
	b.WriteString(Describe(a.Policy))
	return b.String()
}
