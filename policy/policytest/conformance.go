// Package policytest holds the conformance suite for implementations of
// policy.Signer and policy.Verifier. The node's libp2p-backed implementation
// runs it from its own tests:
//
//	func TestAgreementKeys(t *testing.T) {
//		policytest.SignerVerifier(t, newSigner(key1), newSigner(key2), verifier{})
//	}
//
// so that every implementation rejects what the policy package relies on it
// to reject.
package policytest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/mimnode/mimnode/policy"
)

// SignerVerifier checks that a and b (two different parties) sign so that v
// accepts each party's own signatures and nothing else, and that agreements
// signed with them verify offline and break when changed.
func SignerVerifier(t *testing.T, a, b policy.Signer, v policy.Verifier) {
	t.Helper()
	if a.PeerID() == "" || b.PeerID() == "" || a.PeerID() == b.PeerID() {
		t.Fatalf("need two parties with distinct, non-empty peer IDs, got %q and %q", a.PeerID(), b.PeerID())
	}
	msg := []byte("mimnode conformance message")
	sigA, err := a.Sign(msg)
	if err != nil {
		t.Fatalf("a.Sign: %v", err)
	}
	sigB, err := b.Sign(msg)
	if err != nil {
		t.Fatalf("b.Sign: %v", err)
	}
	flipped := func(x []byte) []byte {
		y := bytes.Clone(x)
		if len(y) > 0 {
			y[len(y)/2] ^= 0x01
		}
		return y
	}
	cases := []struct {
		name   string
		peer   string
		msg    []byte
		sig    []byte
		accept bool
	}{
		{"own signature", a.PeerID(), msg, sigA, true},
		{"other party's own signature", b.PeerID(), msg, sigB, true},
		{"signature by another key", a.PeerID(), msg, sigB, false},
		{"signature checked against another peer", b.PeerID(), msg, sigA, false},
		{"changed message", a.PeerID(), flipped(msg), sigA, false},
		{"changed signature", a.PeerID(), msg, flipped(sigA), false},
		{"truncated signature", a.PeerID(), msg, sigA[:len(sigA)/2], false},
		{"empty signature", a.PeerID(), msg, nil, false},
		{"empty peer ID", "", msg, sigA, false},
		{"malformed peer ID", "not-a-peer-id", msg, sigA, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(tc.peer, tc.msg, tc.sig)
			if tc.accept && err != nil {
				t.Errorf("Verify rejected a good signature: %v", err)
			}
			if !tc.accept && err == nil {
				t.Errorf("Verify accepted it")
			}
		})
	}

	t.Run("agreement", func(t *testing.T) {
		tpl, err := policy.LookupTemplate("agency-internal")
		if err != nil {
			t.Fatal(err)
		}
		offer, err := tpl.New(policy.Params{Federation: "conformance"})
		if err != nil {
			t.Fatal(err)
		}
		ag, err := policy.NewAgreement(policy.Agreement{
			ID: "urn:mimnode:agreement:conformance", Dataset: "urn:mimnode:dataset:conformance",
			Provider: a.PeerID(), Consumer: b.PeerID(), Policy: offer,
			Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := ag.Sign(a); err != nil {
			t.Fatalf("provider Sign: %v", err)
		}
		if err := ag.Verify(v); !errors.Is(err, policy.ErrMissingSignature) {
			t.Errorf("Verify with one signature = %v, want ErrMissingSignature", err)
		}
		if err := ag.Sign(b); err != nil {
			t.Fatalf("consumer Sign: %v", err)
		}
		file, err := ag.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		read, err := policy.ParseAgreement(file)
		if err != nil {
			t.Fatalf("ParseAgreement: %v", err)
		}
		if err := read.Verify(v); err != nil {
			t.Fatalf("Verify of a file signed by both: %v", err)
		}
		// Swap the two signatures: each is valid, but by the wrong party.
		read.Signatures[0].Value, read.Signatures[1].Value = read.Signatures[1].Value, read.Signatures[0].Value
		if err := read.Verify(v); !errors.Is(err, policy.ErrBadSignature) {
			t.Errorf("Verify with swapped signatures = %v, want ErrBadSignature", err)
		}
	})
}
