package catalog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/policy"
)

// testKey signs with Ed25519; its peer ID is "ed25519:" + the public key,
// so testVerifier needs no key registry (as the node's libp2p IDs).
type testKey struct{ priv ed25519.PrivateKey }

func newTestKey(seed byte) testKey {
	return testKey{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))}
}

func (k testKey) PeerID() string {
	return "ed25519:" + base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}

func (k testKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

type testVerifier struct{}

func (testVerifier) Verify(peerID string, msg, sig []byte) error {
	raw, ok := strings.CutPrefix(peerID, "ed25519:")
	if !ok {
		return fmt.Errorf("peer ID %q is not an ed25519 test ID", peerID)
	}
	pub, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("peer ID %q: bad key", peerID)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

var (
	_  policy.Signer   = testKey{}
	_  policy.Verifier = testVerifier{}
	t0                 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func exampleDataset(t testing.TB) Dataset {
	t.Helper()
	d, err := ParseDataset(readTestdata(t, "air-quality.json"), "json")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPutSignsVerifiableRecords(t *testing.T) {
	key := newTestKey(1)
	c, err := NewCatalog(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Put(exampleDataset(t), t0)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if r.Seq != 1 || r.Publisher != key.PeerID() || r.Dataset.Publisher.PeerID != key.PeerID() {
		t.Errorf("record seq %d publisher %q, want 1 and %q", r.Seq, r.Publisher, key.PeerID())
	}
	if !r.Dataset.Issued.Equal(t0) || !r.Dataset.Modified.Equal(t0) {
		t.Errorf("issued/modified = %v/%v, want %v", r.Dataset.Issued, r.Dataset.Modified, t0)
	}
	if got := r.Dataset.Offers[0].Policy.Assigner; got != key.PeerID() {
		t.Errorf("offer assigner = %q, want the publisher", got)
	}
	if err := r.Verify(testVerifier{}); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	wire, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRecord(wire)
	if err != nil {
		t.Fatalf("DecodeRecord: %v\n%s", err, wire)
	}
	if err := back.Verify(testVerifier{}); err != nil {
		t.Fatalf("Verify after decoding: %v", err)
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(wire, again) {
		t.Errorf("decode/encode changed the record:\n%s\n%s", wire, again)
	}
}

// mutate decodes the wire form into generic JSON, applies f and encodes it.
func mutate(t *testing.T, wire []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(wire, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func body(m map[string]any) map[string]any { return m["record"].(map[string]any) }
func ds(m map[string]any) map[string]any   { return body(m)["dataset"].(map[string]any) }

func TestTamperedRecordsAreRejected(t *testing.T) {
	key := newTestKey(1)
	other := newTestKey(2)
	c, _ := NewCatalog(key, nil)
	r, err := c.Put(exampleDataset(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := json.Marshal(r)
	forged := r
	forged.Publisher = other.PeerID()
	forged.Dataset.Publisher.PeerID = other.PeerID()
	cases := []struct {
		name string
		wire []byte
	}{
		{"title changed", mutate(t, wire, func(m map[string]any) { ds(m)["title"] = "Air quality, Aarhus (edited)" })},
		{"dissemination widened", mutate(t, wire, func(m map[string]any) {
			ds(m)["dissemination"] = "restricted"
			ds(m)["audience"] = []any{other.PeerID()}
		})},
		{"sequence number raised", mutate(t, wire, func(m map[string]any) { body(m)["seq"] = 7 })},
		{"retired flag set", mutate(t, wire, func(m map[string]any) { body(m)["retired"] = true })},
		{"offer replaced", mutate(t, wire, func(m map[string]any) {
			m["offers"] = []any{map[string]any{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "permission": []any{map[string]any{"action": "use"}}}}
		})},
		{"offer digest replaced", mutate(t, wire, func(m map[string]any) {
			body(m)["offers"] = []any{"sha256:0000000000000000000000000000000000000000000000000000000000000000"}
			m["offers"] = []any{}
		})},
		{"signature flipped", mutate(t, wire, func(m map[string]any) {
			s, _ := base64.StdEncoding.DecodeString(m["signature"].(string))
			s[3] ^= 1
			m["signature"] = base64.StdEncoding.EncodeToString(s)
		})},
		{"publisher claimed by another peer", mutate(t, wire, func(m map[string]any) {
			body(m)["publisher"] = other.PeerID()
			ds(m)["publisher"] = map[string]any{"peerId": other.PeerID()}
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRecord(tc.wire)
			if err == nil {
				err = got.Verify(testVerifier{})
			}
			if err == nil {
				t.Fatalf("tampered record was accepted")
			}
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrNotCanonical) {
				t.Errorf("error %v is neither ErrBadSignature nor ErrNotCanonical", err)
			}
		})
	}
	t.Run("signed by someone else", func(t *testing.T) {
		f := forged
		if err := f.Sign(key); err == nil {
			t.Errorf("Sign by a key other than the publisher's succeeded")
		}
		f.Signature = r.Signature
		if err := f.Verify(testVerifier{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify(record re-attributed to another publisher) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("in-memory edit", func(t *testing.T) {
		e := r
		e.Dataset.License = "CC0-1.0"
		if err := e.Verify(testVerifier{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify(edited licence) = %v, want ErrBadSignature", err)
		}
	})
}

func TestNonCanonicalBodiesAreRejected(t *testing.T) {
	key := newTestKey(1)
	c, _ := NewCatalog(key, nil)
	r, _ := c.Put(exampleDataset(t), t0)
	wire, _ := json.Marshal(r)
	cases := []struct {
		name string
		f    func(m map[string]any)
	}{
		{"unknown body field", func(m map[string]any) { body(m)["note"] = "x" }},
		{"unknown dataset field", func(m map[string]any) { ds(m)["colour"] = "blue" }},
		{"offers inline in the signed body", func(m map[string]any) { ds(m)["offers"] = m["offers"] }},
		{"time not in UTC", func(m map[string]any) { ds(m)["issued"] = "2026-03-01T13:00:00+01:00" }},
		{"altitude added", func(m map[string]any) {
			ds(m)["spatial"] = map[string]any{"type": "Point", "coordinates": []any{10.2, 56.1, 30}}
		}},
		{"wrong format", func(m map[string]any) { body(m)["format"] = "mimnode-catalog-record/2" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeRecord(mutate(t, wire, tc.f)); err == nil {
				t.Errorf("DecodeRecord accepted it")
			}
		})
	}
}

func TestCatalogSequence(t *testing.T) {
	key := newTestKey(1)
	c, _ := NewCatalog(key, nil)
	d := exampleDataset(t)
	r1, _ := c.Put(d, t0)
	same, err := c.Put(d, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if same.Seq != r1.Seq || c.Seq() != 1 {
		t.Errorf("publishing the same description again made seq %d (catalogue %d), want no change", same.Seq, c.Seq())
	}
	d2 := d
	d2.ID = "urn:mim:dataset:aarhus:noise"
	d2.Title = "Noise levels, Aarhus"
	r2, _ := c.Put(d2, t0.Add(time.Hour))
	d.Description = "Hourly readings, now with PM1."
	r3, err := c.Put(d, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Seq != 2 || r3.Seq != 3 {
		t.Errorf("seqs %d, %d; want 2, 3", r2.Seq, r3.Seq)
	}
	if !r3.Dataset.Issued.Equal(t0) || !r3.Dataset.Modified.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("update: issued %v modified %v; want issued kept, modified now", r3.Dataset.Issued, r3.Dataset.Modified)
	}
	me := Viewer{PeerID: key.PeerID()}
	if got := seqs(c.Since(0, me)); got != "2,3" {
		t.Errorf("Since(0) = %s, want 2,3 (only the latest record of each dataset)", got)
	}
	if got := seqs(c.Since(2, me)); got != "3" {
		t.Errorf("Since(2) = %s, want 3", got)
	}
	r4, err := c.Retire(d2.ID, t0.Add(3*time.Hour))
	if err != nil || !r4.Retired || r4.Seq != 4 {
		t.Fatalf("Retire = %+v, %v; want retired record with seq 4", r4, err)
	}
	if err := r4.Verify(testVerifier{}); err != nil {
		t.Errorf("retired record does not verify: %v", err)
	}
	if _, err := c.Put(d2, t0.Add(4*time.Hour)); !errors.Is(err, ErrRetired) {
		t.Errorf("Put(retired id) = %v, want ErrRetired", err)
	}
	if _, err := c.Retire("urn:mim:dataset:nope", t0); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("Retire(unknown) = %v, want ErrUnknownDataset", err)
	}

	// A restarted node rebuilds the same catalogue from its persisted records.
	var stored []Record
	for _, r := range c.All() {
		b, _ := json.Marshal(r)
		x, err := DecodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, x)
	}
	c2, err := NewCatalog(key, stored)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Seq() != 4 || seqs(c2.Since(0, me)) != "3,4" {
		t.Errorf("reloaded catalogue: seq %d, Since(0) %s; want 4 and 3,4", c2.Seq(), seqs(c2.Since(0, me)))
	}
	r5, err := c2.Put(exampleDataset(t), t0.Add(5*time.Hour))
	if err != nil || r5.Seq != 5 {
		t.Errorf("Put after reload: seq %d, %v; want 5", r5.Seq, err)
	}
	if _, err := NewCatalog(newTestKey(2), stored); err == nil {
		t.Errorf("NewCatalog accepted another publisher's records")
	}
}

func seqs(rs []Record) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprint(r.Seq))
	}
	return strings.Join(s, ",")
}

func TestVisibility(t *testing.T) {
	pub, member, outsider := newTestKey(1), newTestKey(2), newTestKey(3)
	c, _ := NewCatalog(pub, nil)
	base := exampleDataset(t)
	put := func(id string, diss Dissemination, audience []string, offers ...Offer) Record {
		d := base
		d.ID, d.Dissemination, d.Audience = "urn:mim:dataset:aarhus:"+id, diss, audience
		if offers != nil {
			d.Offers = offers
		}
		r, err := c.Put(d, t0)
		if err != nil {
			t.Fatalf("Put %s: %v", id, err)
		}
		return r
	}
	internal := Offer{Template: "agency-internal", Params: OfferParams{Federation: "aarhus-region"}}
	open := Offer{Template: "open-data"}
	fed := put("fed", Federation, nil)
	restricted := put("restricted", Restricted, []string{member.PeerID()})
	private := put("private", Private, nil)
	mixed := put("mixed", Federation, nil, internal, open)
	internalOnly := put("internal", Federation, nil, internal)

	memberV := Viewer{PeerID: member.PeerID(), Role: policy.RoleAgency, Federations: []string{"aarhus-region"}, Now: t0}
	outsiderV := Viewer{PeerID: outsider.PeerID(), Role: policy.RoleResearcher, Federations: []string{"other"}, Now: t0}
	cases := []struct {
		name       string
		rec        Record
		v          Viewer
		wantOK     bool
		wantOffers int
	}{
		{"federation dataset, member", fed, memberV, true, 1},
		{"federation dataset, researcher", fed, outsiderV, true, 1},
		{"restricted, in audience", restricted, memberV, true, 1},
		{"restricted, not in audience", restricted, outsiderV, false, 0},
		{"private, member", private, memberV, false, 0},
		{"private, publisher", private, Viewer{PeerID: pub.PeerID()}, true, 1},
		{"offers filtered by catalog scope, member sees both", mixed, memberV, true, 2},
		{"offers filtered by catalog scope, outsider sees open-data only", mixed, outsiderV, true, 1},
		{"no offer visible hides the dataset", internalOnly, outsiderV, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Visible(tc.rec, tc.v)
			if ok != tc.wantOK || len(got.Dataset.Offers) != tc.wantOffers {
				t.Fatalf("Visible = %v with %d offers, want %v with %d", ok, len(got.Dataset.Offers), tc.wantOK, tc.wantOffers)
			}
			if !ok {
				if _, err := c.Lookup(tc.rec.Dataset.ID, tc.v); !errors.Is(err, ErrUnknownDataset) {
					t.Errorf("Lookup of an invisible dataset = %v, want ErrUnknownDataset", err)
				}
				return
			}
			// The filtered copy still verifies after a trip over the wire.
			b, _ := json.Marshal(got)
			back, err := DecodeRecord(b)
			if err != nil {
				t.Fatalf("DecodeRecord(filtered copy): %v", err)
			}
			if err := back.Verify(testVerifier{}); err != nil {
				t.Errorf("filtered copy does not verify: %v", err)
			}
		})
	}
	if n := len(c.Since(0, outsiderV)); n != 2 {
		t.Errorf("Since(0) for an outsider has %d records, want 2 (fed, mixed)", n)
	}
}

// TestNewVersionKeepsOffers is the node's version update: get the record,
// set the version, put it back. The offers resolve to the same policies.
func TestNewVersionKeepsOffers(t *testing.T) {
	c, _ := NewCatalog(newTestKey(1), nil)
	d, _ := ParseDataset(readTestdata(t, "full.json"), "json")
	d.Audience = []string{newTestKey(1).PeerID()}
	r1, err := c.Put(d, t0)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := c.Get(d.ID)
	cur.Dataset.Version = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
	r2, err := c.Put(cur.Dataset, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r2.Seq != r1.Seq+1 || r2.Dataset.Version != cur.Dataset.Version {
		t.Errorf("version update: seq %d version %q", r2.Seq, r2.Dataset.Version)
	}
	if fmt.Sprint(r1.OfferDigests) != fmt.Sprint(r2.OfferDigests) {
		t.Errorf("offers changed with the version:\n%v\n%v", r1.OfferDigests, r2.OfferDigests)
	}
	if err := r2.Verify(testVerifier{}); err != nil {
		t.Error(err)
	}
}
