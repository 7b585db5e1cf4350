package federation

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newKey(t testing.TB) (crypto.PrivKey, string) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id.String()
}

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func TestGenesisIDIsItsCID(t *testing.T) {
	k, _ := newKey(t)
	g, err := NewGenesis("Region", "Agency", k, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyGenesis(g); err != nil {
		t.Fatalf("VerifyGenesis: %v", err)
	}
	g2, _ := NewGenesis("Region", "Agency", k, nil, t0)
	if g.ID != g2.ID {
		t.Fatalf("same genesis gave IDs %s and %s", g.ID, g2.ID)
	}
	g.Name = "Other"
	if err := VerifyGenesis(g); err == nil {
		t.Fatal("renamed genesis still verifies")
	}
}

func TestUpdateRules(t *testing.T) {
	ka, _ := newKey(t)
	kb, b := newKey(t)
	kc, c := newKey(t)
	g, _ := NewGenesis("Region", "A", ka, nil, t0)
	add := func(cur *Document, p string, signers ...crypto.PrivKey) *Document {
		n, err := cur.Next(Change{Op: "add", PeerID: p, Role: RoleAgency}, t0)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range signers {
			n.Sign(k)
		}
		return n
	}
	d1 := add(g, b, ka)
	if err := VerifyNext(g, d1); err != nil {
		t.Fatalf("admin-signed add: %v", err)
	}
	for _, tc := range []struct {
		name string
		cur  *Document
		next func() *Document
		want error
	}{
		{"signed by a non-admin", g, func() *Document { return add(g, b, kb) }, ErrNotEnoughSigs},
		{"unsigned", g, func() *Document { return add(g, b) }, ErrNotEnoughSigs},
		{"replayed old version", d1, func() *Document { return d1 }, ErrStale},
		{"skips a version", g, func() *Document {
			n := add(d1, c, ka)
			return n
		}, ErrNotNext},
		{"tampered after signing", g, func() *Document {
			n := add(g, b, ka)
			n.Members[0].Role = RoleResearcher
			return n
		}, ErrBadSignature},
		{"other federation", g, func() *Document {
			kx, _ := newKey(t)
			gx, _ := NewGenesis("Other", "X", kx, nil, t0)
			return add(gx, b, kx)
		}, ErrWrongFed},
		{"forged prev", g, func() *Document {
			n := add(g, b)
			n.Prev = "bafyfake"
			n.Sign(ka)
			return n
		}, ErrNotNext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyNext(tc.cur, tc.next()); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyNext = %v, want %v", err, tc.want)
			}
		})
	}
	_ = kc
}

// TestNoOpChangesAreRefused checks that a proposed change that would
// leave the membership as it is fails with ErrNoChange instead of being
// signed as a new version: an admin who typed a wrong peer ID, or
// repeated a change, hears so.
func TestNoOpChangesAreRefused(t *testing.T) {
	ka, a := newKey(t)
	_, b := newKey(t)
	g, _ := NewGenesis("Region", "A", ka, nil, t0)
	d1, err := g.Next(Change{Op: "add", PeerID: b, Role: RoleAgency}, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ch   Change
	}{
		{"role it has", Change{Op: "role", PeerID: b, Role: RoleAgency}},
		{"admin already", Change{Op: "add-admin", PeerID: a}},
		{"not an admin", Change{Op: "remove-admin", PeerID: b}},
		{"same threshold", Change{Op: "threshold", Threshold: d1.Threshold}},
	} {
		if _, err := d1.Next(tc.ch, t0); !errors.Is(err, ErrNoChange) {
			t.Errorf("%s: %v, want ErrNoChange", tc.name, err)
		}
	}
	// The real changes still go through.
	for _, ch := range []Change{{Op: "role", PeerID: b, Role: RoleResearcher}, {Op: "add-admin", PeerID: b}} {
		if _, err := d1.Next(ch, t0); err != nil {
			t.Errorf("%s: %v", ch.Op, err)
		}
	}
}

func TestKofNThreshold(t *testing.T) {
	ka, a := newKey(t)
	kb, b := newKey(t)
	kc, c := newKey(t)
	_, d := newKey(t)
	chain := []*Document{}
	g, _ := NewGenesis("Region", "A", ka, nil, t0)
	chain = append(chain, g)
	step := func(ch Change, signers ...crypto.PrivKey) error {
		cur := chain[len(chain)-1]
		n, err := cur.Next(ch, t0)
		if err != nil {
			return err
		}
		for _, k := range signers {
			n.Sign(k)
		}
		if err := VerifyNext(cur, n); err != nil {
			return err
		}
		chain = append(chain, n)
		return nil
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(step(Change{Op: "add", PeerID: b, Role: RoleAgency}, ka))
	must(step(Change{Op: "add", PeerID: c, Role: RoleAgency}, ka))
	must(step(Change{Op: "add-admin", PeerID: b}, ka))
	must(step(Change{Op: "add-admin", PeerID: c}, ka))
	must(step(Change{Op: "threshold", Threshold: 2}, ka))
	if err := step(Change{Op: "add", PeerID: d, Role: RoleResearcher}, kb); !errors.Is(err, ErrNotEnoughSigs) {
		t.Fatalf("1 of 3 with threshold 2: %v", err)
	}
	if err := step(Change{Op: "add", PeerID: d, Role: RoleResearcher}, kb, kb); !errors.Is(err, ErrNotEnoughSigs) {
		t.Fatalf("same admin twice counted as two: %v", err)
	}
	must(step(Change{Op: "add", PeerID: d, Role: RoleResearcher}, kb, kc))
	if err := step(Change{Op: "threshold", Threshold: 4}, ka, kb); !errors.Is(err, ErrBadThreshold) {
		t.Fatalf("threshold above admin count: %v", err)
	}
	if _, err := VerifyChain(chain); err != nil {
		t.Fatalf("whole chain: %v", err)
	}
	_ = a
}

func TestDecodeRejectsBadDocuments(t *testing.T) {
	k, _ := newKey(t)
	g, _ := NewGenesis("Region", "A", k, nil, t0)
	good, _ := json.Marshal(g)
	if _, err := Decode(good); err != nil {
		t.Fatalf("Decode(good): %v", err)
	}
	for name, in := range map[string]string{
		"not JSON":      "{",
		"unknown field": `{"name":"x","admins":[],"bogus":1}`,
		"trailing data": string(good) + "{}",
		"wrong type":    `{"seq":"one"}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%s) = %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	k, _ := newKey(f)
	g, _ := NewGenesis("Region", "A", k, []string{"/ip4/127.0.0.1/tcp/7410/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"}, t0)
	b, _ := json.Marshal(g)
	f.Add(b)
	f.Add([]byte(`{"id":"x","name":"n","seq":1,"admins":["a"],"threshold":1,"members":[{"peerId":"a","role":"agency"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			return
		}
		// Whatever decodes must verify or fail with an error, never panic.
		_ = VerifyGenesis(d)
		_ = VerifyNext(g, d)
	})
}

func FuzzDecodeToken(f *testing.F) {
	k, _ := newKey(f)
	g, _ := NewGenesis("Region", "A", k, nil, t0)
	tok, _ := EncodeToken(Token{Chain: []*Document{g}})
	f.Add(tok)
	f.Add(TokenPrefix + "e30")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := DecodeToken(s)
		if err != nil {
			return
		}
		_, _ = VerifyChain(tk.Chain)
	})
}
