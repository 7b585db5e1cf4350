package policy_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/policy/policytest"
)

// The test key scheme (peer ID = "ed25519:" + public key) passes the
// conformance suite the node's libp2p keys must pass too.

type key struct{ priv ed25519.PrivateKey }

func (k key) PeerID() string {
	return "ed25519:" + base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey))
}
func (k key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

type verifier struct{}

func (verifier) Verify(peerID string, msg, sig []byte) error {
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

func TestSignerVerifierConformance(t *testing.T) {
	a := key{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	b := key{ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))}
	policytest.SignerVerifier(t, a, b, verifier{})
}
