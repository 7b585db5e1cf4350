package policy

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

// testKey is a party with an Ed25519 key. Its peer ID embeds the public key,
// as an Ed25519 libp2p peer ID does, so the verifier needs nothing else.
type testKey struct{ priv ed25519.PrivateKey }

func newTestKey(seed byte) testKey {
	return testKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

func (k testKey) PeerID() string {
	return "ed25519:" + base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}

func (k testKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// impostor signs with its own key but claims another peer's ID.
type impostor struct {
	testKey
	claims string
}

func (i impostor) PeerID() string { return i.claims }

type testVerifier struct{}

func (testVerifier) Verify(peerID string, msg, sig []byte) error {
	raw, ok := strings.CutPrefix(peerID, "ed25519:")
	if !ok {
		return fmt.Errorf("peer ID %q is not an ed25519 test ID", peerID)
	}
	pub, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("peer ID %q holds no public key", peerID)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

var (
	_ Signer   = testKey{}
	_ Verifier = testVerifier{}
)

var provider, consumer, third = newTestKey(1), newTestKey(2), newTestKey(3)

func testAgreement(t *testing.T) Agreement {
	t.Helper()
	tpl, err := LookupTemplate("time-limited")
	if err != nil {
		t.Fatal(err)
	}
	offer, err := tpl.New(Params{Days: 30, Federation: "fed-nl"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAgreement(Agreement{
		ID: "urn:uuid:5b7c0a1e-agreement", Dataset: "urn:mimnode:dataset:air-quality <&> \u00e9",
		Version:  "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
		Provider: provider.PeerID(), Consumer: consumer.PeerID(),
		Policy: offer, Created: t0, NotAfter: t0.AddDate(0, 2, 0),
	})
	if err != nil {
		t.Fatalf("NewAgreement: %v", err)
	}
	return a
}

func signedFile(t *testing.T) (Agreement, []byte) {
	t.Helper()
	a := testAgreement(t)
	if err := a.Sign(provider); err != nil {
		t.Fatal(err)
	}
	if err := a.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	// json.Marshal escapes <, > and & in what MarshalJSON returned; the file
	// is written with MarshalJSON itself.
	file, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, file) && !bytes.Contains(b, []byte(`\u003c`)) {
		t.Fatalf("json.Marshal and MarshalJSON differ unexpectedly")
	}
	return a, file
}

func TestAgreementSignVerifyRoundTrip(t *testing.T) {
	a, file := signedFile(t)
	if err := a.Verify(testVerifier{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	b, err := ParseAgreement(file)
	if err != nil {
		t.Fatalf("ParseAgreement: %v", err)
	}
	if err := b.Verify(testVerifier{}); err != nil {
		t.Fatalf("Verify after reading the file: %v", err)
	}
	if _, err := ParseAgreement(append(append([]byte(nil), file...), '\n')); err != nil {
		t.Errorf("a trailing newline must be allowed: %v", err)
	}
	again, err := b.MarshalJSON()
	if err != nil || !bytes.Equal(again, file) {
		t.Errorf("re-encoding a read agreement changed its bytes")
	}
	if !strings.Contains(b.Describe(), "signed by consumer "+consumer.PeerID()) {
		t.Errorf("Describe:\n%s", b.Describe())
	}
}

// TestAgreementCanonicalIsRFC8785: the signed bytes are the JCS form, so
// another implementation that reads the same terms signs the same bytes.
func TestAgreementCanonicalIsRFC8785(t *testing.T) {
	a := testAgreement(t)
	c, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	again, err := jcs.Transform(c)
	if err != nil || !bytes.Equal(again, c) {
		t.Fatalf("Canonical is not a fixed point of JCS")
	}
	if !bytes.HasPrefix(c, []byte(`{"consumer":"`)) || bytes.Contains(c, []byte("\n")) || !bytes.Contains(c, []byte(`"format":"mimnode-agreement/1"`)) {
		t.Errorf("unexpected canonical form: %s", c)
	}
	if !bytes.Contains(c, []byte("<&> \u00e9")) {
		t.Errorf("JCS writes <, &, > and non-ASCII as themselves: %s", c)
	}
}

// TestAgreementTamperAnyByte flips bits in every byte of a signed agreement
// file: no change may survive ParseAgreement + Verify.
func TestAgreementTamperAnyByte(t *testing.T) {
	_, file := signedFile(t)
	rng := rand.New(rand.NewSource(3))
	for i := range file {
		for _, mask := range []byte{0x01, 0x20, byte(1 + rng.Intn(255))} {
			bad := append([]byte(nil), file...)
			bad[i] ^= mask
			a, err := ParseAgreement(bad)
			if err == nil {
				err = a.Verify(testVerifier{})
			}
			if err == nil {
				t.Fatalf("byte %d (%q) xor %#x accepted: ...%s...", i, file[i], mask, file[max(0, i-20):min(len(file), i+20)])
			}
		}
	}
	// Dropping a byte or adding one is caught too.
	for _, i := range []int{0, len(file) / 3, len(file) / 2, len(file) - 1} {
		cut := append(append([]byte(nil), file[:i]...), file[i+1:]...)
		if a, err := ParseAgreement(cut); err == nil && a.Verify(testVerifier{}) == nil {
			t.Errorf("deleting byte %d accepted", i)
		}
	}
	if _, err := ParseAgreement(append([]byte(" "), file...)); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("leading space: err = %v, want ErrNotCanonical", err)
	}
}

func TestAgreementWrongSigners(t *testing.T) {
	cases := []struct {
		name string
		edit func(a *Agreement) error
		want error
	}{
		{"third key cannot sign", func(a *Agreement) error { return a.Sign(third) }, ErrNotAParty},
		{"third key claiming to be the provider", func(a *Agreement) error {
			return a.Sign(impostor{third, provider.PeerID()})
		}, ErrBadSignature},
		{"provider signature moved to consumer", func(a *Agreement) error {
			for i := range a.Signatures {
				if a.Signatures[i].Role == RoleConsumer {
					a.Signatures[i].Value = a.Signatures[0].Value
				}
			}
			return nil
		}, ErrBadSignature},
		{"signature entry names a third peer", func(a *Agreement) error {
			a.Signatures[0].Peer = third.PeerID()
			return nil
		}, ErrBadSignature},
		{"consumer signature missing", func(a *Agreement) error {
			a.Signatures = a.Signatures[:1]
			return nil
		}, ErrMissingSignature},
		{"signature over other terms", func(a *Agreement) error {
			a.NotAfter = a.NotAfter.AddDate(1, 0, 0) // extend validity after signing
			return nil
		}, ErrBadSignature},
		{"duplicate role", func(a *Agreement) error {
			a.Signatures = append(a.Signatures, a.Signatures[0])
			return nil
		}, ErrBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := signedFile(t)
			err := tc.edit(&a)
			if err == nil {
				err = a.Verify(testVerifier{})
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewAgreementChecks(t *testing.T) {
	offer := Policy{ID: "urn:offer", Permissions: []Rule{{Action: ActionUse}}}
	good := Agreement{ID: "urn:a", Dataset: "urn:d", Provider: provider.PeerID(), Consumer: consumer.PeerID(), Policy: offer, Created: t0}
	cases := []struct {
		name string
		edit func(*Agreement)
		want string
	}{
		{"no consumer", func(a *Agreement) { a.Consumer = "" }, "consumer is missing"},
		{"same peer", func(a *Agreement) { a.Consumer = a.Provider }, "same peer"},
		{"no created", func(a *Agreement) { a.Created = time.Time{} }, "created time is missing"},
		{"ends before start", func(a *Agreement) { a.NotAfter = t0.Add(-time.Hour) }, "is not after notBefore"},
		{"policy not understood", func(a *Agreement) {
			a.Policy = Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic("partner", OpEq, Lit("gold"))}}}}
		}, `leftOperand "partner"`},
		{"policy permits nothing", func(a *Agreement) { a.Policy = Policy{} }, "no permission"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := good
			tc.edit(&a)
			_, err := NewAgreement(a)
			if !errors.Is(err, ErrAgreement) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrAgreement saying %q", err, tc.want)
			}
		})
	}
	a, err := NewAgreement(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.Policy.Type != TypeAgreement || a.Policy.ID != "urn:a" || a.Policy.Assignee != consumer.PeerID() || a.Policy.Target != "urn:d" || !a.NotBefore.Equal(t0) {
		t.Errorf("agreement policy not filled in: %+v", a.Policy)
	}
	if offer.Type != "" || offer.Assignee != "" || offer.ID != "urn:offer" {
		t.Errorf("NewAgreement changed the caller's offer")
	}
}

// Agreement files whose terms are valid JSON but not what the model would
// write (another spelling, an extra member) are refused: the bytes signed
// must be the bytes the evaluator reads.
func TestAgreementFileStrictness(t *testing.T) {
	_, file := signedFile(t)
	var doc map[string]any
	if err := json.Unmarshal(file, &doc); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(terms map[string]any)
		want error
	}{
		{"prefixed policy term", func(terms map[string]any) {
			pol := terms["policy"].(map[string]any)
			pol["odrl:permission"] = pol["permission"]
			delete(pol, "permission")
		}, ErrNotCanonical},
		{"time with offset", func(terms map[string]any) { terms["created"] = "2026-03-01T13:00:00+01:00" }, ErrNotCanonical},
		{"unknown member", func(terms map[string]any) { terms["price"] = "free" }, ErrSyntax},
		{"other format", func(terms map[string]any) { terms["format"] = "mimnode-agreement/2" }, ErrSyntax},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d map[string]any
			json.Unmarshal(file, &d)
			tc.edit(d["agreement"].(map[string]any))
			raw, _ := json.Marshal(d)
			canon, err := jcs.Transform(raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseAgreement(canon); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	indented, _ := json.MarshalIndent(doc, "", "  ")
	if _, err := ParseAgreement(indented); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("indented file: err = %v, want ErrNotCanonical", err)
	}
	// Another document given by mistake is not called an edited agreement.
	for _, other := range []string{`{"id": "urn:mim:dataset:x", "title": "Air quality"}`, `[1, 2]`, `{"@type": "Offer",  "uid": "x"}`} {
		_, err := ParseAgreement([]byte(other))
		if !errors.Is(err, ErrSyntax) || errors.Is(err, ErrNotCanonical) || !strings.Contains(err.Error(), "not an agreement file") {
			t.Errorf("ParseAgreement(%s) = %v, want it called not an agreement file", other, err)
		}
	}
}

// An agreement embedded in another JSON document (a negotiation record) is
// read back with json.Unmarshal and still verifies.
func TestAgreementEmbedded(t *testing.T) {
	a, _ := signedFile(t)
	type record struct {
		State     string    `json:"state"`
		Agreement Agreement `json:"agreement"`
	}
	b, err := json.MarshalIndent(record{"FINALIZED", a}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if err := r.Agreement.Verify(testVerifier{}); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestAgreementEvaluate(t *testing.T) {
	a, _ := signedFile(t) // time-limited 30 days, fed-nl, valid two months from t0
	req := Request{Now: t0.AddDate(0, 0, 10), Action: ActionRead, PeerID: consumer.PeerID(), Federations: []string{"fed-nl"}}
	cases := []struct {
		name string
		edit func(*Request)
		want Code // "" for permit
	}{
		{"consumer within 30 days", nil, ""},
		{"after 30 days", func(r *Request) { r.Now = t0.AddDate(0, 0, 31) }, CodeNotSatisfied},
		{"before validity", func(r *Request) { r.Now = t0.Add(-time.Minute) }, CodeOutsideValidity},
		{"after validity", func(r *Request) { r.Now = t0.AddDate(0, 2, 0) }, CodeOutsideValidity},
		{"not the consumer", func(r *Request) { r.PeerID = third.PeerID() }, CodeNotConsumer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			if tc.edit != nil {
				tc.edit(&r)
			}
			d := a.Evaluate(r)
			if d.Permit != (tc.want == "") {
				t.Fatalf("permit = %v\n%s", d.Permit, d)
			}
			if tc.want == "" {
				return
			}
			found := false
			for _, x := range d.Why() {
				found = found || x.Code == tc.want
			}
			if !found {
				t.Errorf("why = %v, want %s", d.Why(), tc.want)
			}
		})
	}
}

// The agreement operations a negotiation runs: the provider makes and signs
// one, the consumer reads, checks and countersigns it, the provider reads
// and checks the countersigned file.
func BenchmarkAgreementCanonical(b *testing.B) {
	a := testAgreement(&testing.T{})
	for b.Loop() {
		if _, err := a.Canonical(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAgreementSign(b *testing.B) {
	a := testAgreement(&testing.T{})
	for b.Loop() {
		if err := a.Sign(provider); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAgreementParseVerify(b *testing.B) {
	_, file := signedFile(&testing.T{})
	for b.Loop() {
		a, err := ParseAgreement(file)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Verify(testVerifier{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAgreementMarshal(b *testing.B) {
	a, _ := signedFile(&testing.T{})
	for b.Loop() {
		if _, err := a.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// canonicalSlow is what appendCanonical must agree with: the tree encoded
// by encoding/json and canonicalised by the jcs package.
func canonicalSlow(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

func TestAppendCanonicalMatchesJCS(t *testing.T) {
	strs := []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\b\f\n\r\t", "<&> html", "\u2028\u2029 seps",
		"é ü 中文", "emoji 😀", "\ue000 private", "\uffff last bmp", "bad \xff utf8", "del \x7f", "/slash"}
	nums := []json.Number{"0", "-0", "1", "1.0", "0.1", "1e2", "1E-7", "123456789012345678901234567890", "1e400", "-1.5e-300", "01", "+1", "0x10", ".5"}
	rng := rand.New(rand.NewSource(8))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.Intn(8); {
		case k == 0:
			return nil
		case k == 1:
			return rng.Intn(2) == 0
		case k == 2:
			return nums[rng.Intn(len(nums))]
		case k <= 4 || depth > 3:
			return strs[rng.Intn(len(strs))]
		case k == 5:
			l := make([]any, rng.Intn(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		default:
			m := map[string]any{}
			for range rng.Intn(5) {
				m[strs[rng.Intn(len(strs))]+strs[rng.Intn(len(strs))]] = gen(depth + 1)
			}
			return m
		}
	}
	cases := []any{map[string]any{"\ue000": 1, "😀": 2, "a": 3, "B": 4}, json.RawMessage(`{"b":1,"a":[2.50]}`), []string{"x", "y"}, 3.25}
	for range 5000 {
		cases = append(cases, gen(0))
	}
	for i, v := range cases {
		want, werr := canonicalSlow(v)
		got, gerr := appendCanonical(nil, v)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("case %d: appendCanonical(%#v) = %q, %v; jcs gives %q, %v", i, v, got, gerr, want, werr)
		}
	}
}

func FuzzAppendCanonical(f *testing.F) {
	_, file := signedFile(&testing.T{})
	f.Add(file)
	f.Add([]byte(`{"b":"\u00e9\n","a":[1.0,-0,1e21,null,true],"\ue000":{},"😀":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeJSON(data)
		if err != nil {
			return
		}
		want, werr := canonicalSlow(v)
		got, gerr := appendCanonical(nil, v)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("appendCanonical(%s) = %q, %v; jcs gives %q, %v", data, got, gerr, want, werr)
		}
	})
}

// TestVerifySignatureChecksOneParty: each party's signature is checked on
// its own, and a bad or missing one is found whichever party asks.
func TestVerifySignatureChecksOneParty(t *testing.T) {
	a := testAgreement(t)
	if err := a.Sign(provider); err != nil {
		t.Fatal(err)
	}
	if err := a.VerifySignature(testVerifier{}, RoleProvider); err != nil {
		t.Errorf("provider signature: %v", err)
	}
	if err := a.VerifySignature(testVerifier{}, RoleConsumer); !errors.Is(err, ErrMissingSignature) {
		t.Errorf("consumer signature before countersigning: %v, want ErrMissingSignature", err)
	}
	if err := a.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{RoleProvider, RoleConsumer} {
		if err := a.VerifySignature(testVerifier{}, role); err != nil {
			t.Errorf("VerifySignature(%s): %v", role, err)
		}
		bad := a
		bad.Signatures = append([]Signature(nil), a.Signatures...)
		for i := range bad.Signatures {
			if bad.Signatures[i].Role == role {
				v := append([]byte(nil), bad.Signatures[i].Value...)
				v[0] ^= 1
				bad.Signatures[i].Value = v
			}
		}
		if err := bad.VerifySignature(testVerifier{}, role); !errors.Is(err, ErrBadSignature) {
			t.Errorf("VerifySignature(%s) of a tampered signature = %v, want ErrBadSignature", role, err)
		}
		if err := bad.Verify(testVerifier{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify with a tampered %s signature = %v, want ErrBadSignature", role, err)
		}
	}
	if err := a.VerifySignature(testVerifier{}, "auditor"); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifySignature(auditor) = %v, want ErrBadSignature", err)
	}
}

// MarshalJSON writes the file around the canonical terms; it must be the
// canonical form of the whole file, as it was when it was made that way.
func TestMarshalJSONIsCanonicalFile(t *testing.T) {
	a, file := signedFile(t)
	terms, err := a.termsJSON()
	if err != nil {
		t.Fatal(err)
	}
	sigs := []any{}
	for _, s := range a.Signatures {
		sigs = append(sigs, map[string]any{"role": s.Role, "peer": s.Peer, "sig": base64.StdEncoding.EncodeToString(s.Value)})
	}
	want, err := canonicalSlow(map[string]any{"agreement": terms, "signatures": sigs})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, want) {
		t.Fatalf("MarshalJSON = %s\nwant %s", file, want)
	}
}

// Seal does what VerifySignature, Sign, Canonical and MarshalJSON do one
// after the other.
func TestSealIsVerifySignMarshal(t *testing.T) {
	byProvider := testAgreement(t)
	if err := byProvider.Sign(provider); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		verify  []string
		signer  Signer
		tamper  func(*Agreement)
		wantErr error
	}{
		{"provider signs", nil, provider, nil, nil},
		{"consumer checks the provider and countersigns", []string{RoleProvider}, consumer, nil, nil},
		{"provider checks the consumer", []string{RoleConsumer}, nil, func(a *Agreement) { _ = a.Sign(consumer) }, nil},
		{"both checked", []string{RoleProvider, RoleConsumer}, nil, func(a *Agreement) { _ = a.Sign(consumer) }, nil},
		{"consumer signature missing", []string{RoleConsumer}, nil, nil, ErrMissingSignature},
		{"provider signature forged", []string{RoleProvider}, consumer, func(a *Agreement) { a.Signatures[0].Value[0] ^= 1 }, ErrBadSignature},
		{"a third party cannot sign", nil, third, nil, ErrNotAParty},
		{"terms changed after signing", []string{RoleProvider}, consumer, func(a *Agreement) { a.Created = a.Created.Add(time.Second) }, ErrBadSignature},
		{"unknown role", []string{"witness"}, nil, nil, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := copyAgreement(byProvider), copyAgreement(byProvider)
			if tc.tamper != nil {
				tc.tamper(&a)
				tc.tamper(&b)
			}
			canon, file, err := a.Seal(testVerifier{}, tc.verify, tc.signer)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Seal: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			for _, role := range tc.verify {
				if err := b.VerifySignature(testVerifier{}, role); err != nil {
					t.Fatal(err)
				}
			}
			if tc.signer != nil {
				if err := b.Sign(tc.signer); err != nil {
					t.Fatal(err)
				}
			}
			wantCanon, _ := b.Canonical()
			wantFile, _ := b.MarshalJSON()
			if !bytes.Equal(canon, wantCanon) || !bytes.Equal(file, wantFile) {
				t.Fatalf("Seal = %s, %s\nwant %s, %s", canon, file, wantCanon, wantFile)
			}
			if !reflect.DeepEqual(a.Signatures, b.Signatures) {
				t.Fatalf("signatures %v, want %v", a.Signatures, b.Signatures)
			}
		})
	}
}

func copyAgreement(a Agreement) Agreement {
	a.Signatures = append([]Signature(nil), a.Signatures...)
	for i := range a.Signatures {
		a.Signatures[i].Value = bytes.Clone(a.Signatures[i].Value)
	}
	return a
}

// TestAppendFileIsTree: the agreement file's signatures written directly
// are the bytes the JSON tree gave, for plain, escaped, non-ASCII and
// invalid UTF-8 peers and roles, no signature and unknown roles.
func TestAppendFileIsTree(t *testing.T) {
	c := []byte(`{"id":"x"}`)
	for _, sigs := range [][]Signature{
		nil,
		{{Role: RoleProvider, Peer: "12D3KooWGeyaH1bXQjr3hi5WtWQhf4AhrFyvmFRLfx8Qwrnn3pFN", Value: []byte{1, 2, 3, 250, 251}}},
		{{Role: RoleConsumer, Peer: "b", Value: nil}, {Role: RoleProvider, Peer: "a", Value: make([]byte, 64)}},
		{{Role: "other", Peer: "q\"\\\n\u2028<&>é", Value: []byte("x")}, {Role: RoleProvider, Peer: "\x7f\x01", Value: []byte("yy")}},
		{{Role: RoleProvider, Peer: "bad \xff utf-8", Value: []byte("z")}},
	} {
		a := Agreement{ID: "x", Signatures: sigs}
		got, err := a.appendFile([]byte("pre"), c)
		want, werr := a.appendFileTree([]byte("pre"), c)
		if err != nil || werr != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendFile(%+v) = %s, %v\nby the tree: %s, %v", sigs, got, err, want, werr)
		}
	}
}

// TestParseAgreementOnlyMarshalJSONForm: ParseAgreement refuses canonical
// JSON that is not the file MarshalJSON writes: signatures left out
// (found by FuzzParseAgreement) or listed out of their role order.
func TestParseAgreementOnlyMarshalJSONForm(t *testing.T) {
	a := testAgreement(t)
	if err := a.Sign(provider); err != nil {
		t.Fatal(err)
	}
	if err := a.Sign(consumer); err != nil {
		t.Fatal(err)
	}
	file, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseAgreement(file); err != nil {
		t.Fatalf("ParseAgreement(MarshalJSON) = %v", err)
	}
	c, _ := a.Canonical()
	unsigned := a
	unsigned.Signatures = nil
	empty, _ := unsigned.MarshalJSON()
	if _, err := ParseAgreement(empty); err != nil {
		t.Fatalf("ParseAgreement(unsigned MarshalJSON) = %v", err)
	}
	swapped := a
	swapped.Signatures = []Signature{a.Signatures[1], a.Signatures[0]}
	reordered, _ := swapped.appendFileTreeUnsorted(c)
	for name, data := range map[string][]byte{
		"no signatures member": append(append([]byte(`{"agreement":`), c...), '}'),
		"consumer first":       reordered,
	} {
		if _, err := jcs.Transform(data); err != nil {
			t.Fatalf("%s: not JSON: %v", name, err)
		}
		if _, err := ParseAgreement(data); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("ParseAgreement(%s) = %v, want ErrNotCanonical", name, err)
		}
	}
}

// appendFileTreeUnsorted writes a's file with its signatures in the order
// they are in, canonical JSON otherwise.
func (a Agreement) appendFileTreeUnsorted(c []byte) ([]byte, error) {
	out := append(append([]byte(`{"agreement":`), c...), `,"signatures":[`...)
	for i, s := range a.Signatures {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"peer":"`+s.Peer+`","role":"`+s.Role+`","sig":"`+base64.StdEncoding.EncodeToString(s.Value)+`"}`...)
	}
	return append(out, ']', '}'), nil
}
