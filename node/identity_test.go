package node

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mimnode/mimnode/policy/policytest"
)

func TestKeySignerAndPeerIDVerifierConformance(t *testing.T) {
	mk := func() *KeySigner {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewKeySigner(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	policytest.SignerVerifier(t, mk(), mk(), PeerIDVerifier{})
}
