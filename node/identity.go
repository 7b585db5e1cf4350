package node

import (
	"errors"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/policy"
)

// KeySigner signs agreements, catalogue records and receipts with a node's
// libp2p identity key, as policy.Signer.
type KeySigner struct {
	key crypto.PrivKey
	id  peer.ID
}

var _ policy.Signer = (*KeySigner)(nil)

// NewKeySigner wraps a private key.
func NewKeySigner(k crypto.PrivKey) (*KeySigner, error) {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("derive peer ID: %w", err)
	}
	return &KeySigner{key: k, id: id}, nil
}

// PeerID is the signer's peer ID.
func (s *KeySigner) PeerID() string { return s.id.String() }

// Sign signs msg with the identity key.
func (s *KeySigner) Sign(msg []byte) ([]byte, error) { return s.key.Sign(msg) }

// PeerIDVerifier checks signatures against the public key embedded in an
// Ed25519 peer ID, so verification needs no key registry and works offline.
type PeerIDVerifier struct{}

var _ policy.Verifier = PeerIDVerifier{}

// ErrSignature is returned for a signature that does not match.
var ErrSignature = errors.New("signature does not match the peer's key")

// peerKeys caches the public keys extracted from peer IDs: a negotiation
// checks signatures of the same few peers over and over, and decoding the
// ID and its key each time was a few percent of its CPU.
var peerKeys, _ = lru.New[string, crypto.PubKey](1024)

// publicKey returns the public key embedded in peerID.
func publicKey(peerID string) (crypto.PubKey, error) {
	if pub, ok := peerKeys.Get(peerID); ok {
		return pub, nil
	}
	id, err := peer.Decode(peerID)
	if err != nil {
		return nil, fmt.Errorf("peer ID %q: %w", peerID, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer ID %s carries no public key: %w", peerID, err)
	}
	peerKeys.Add(peerID, pub)
	return pub, nil
}

// Verify checks that sig is peerID's signature over msg.
func (PeerIDVerifier) Verify(peerID string, msg, sig []byte) error {
	pub, err := publicKey(peerID)
	if err != nil {
		return err
	}
	ok, err := pub.Verify(msg, sig)
	if err != nil {
		return fmt.Errorf("verify signature of %s: %w", peerID, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w", peerID, ErrSignature)
	}
	return nil
}

// Signer is the node's own signer.
func (n *Node) Signer() *KeySigner {
	s, _ := NewKeySigner(n.key)
	return s
}
