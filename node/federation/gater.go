package federation

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is the node's connection gater: after the secure handshake, when the
// remote peer ID is known, it admits only members of a federation this node
// belongs to and peers the node was explicitly told to dial. A node that
// belongs to no federation yet admits everyone, so it can be connected to
// and invited.
//
// It is built before the host (libp2p needs it at construction) and fed by
// the Service whenever a membership document changes.
type Gater struct {
	mu       sync.RWMutex
	members  map[peer.ID]bool // guarded by mu; members of any of our federations
	explicit map[peer.ID]bool // guarded by mu; peers we were told to dial
	blocked  map[peer.ID]bool // guarded by mu; partitions injected by testnet
	closed   bool             // guarded by mu; true once we belong to a federation
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

// NewGater returns an open gater (no federation yet).
func NewGater() *Gater {
	return &Gater{members: map[peer.ID]bool{}, explicit: map[peer.ID]bool{}, blocked: map[peer.ID]bool{}}
}

// Allowed reports whether p may be connected to.
func (g *Gater) Allowed(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.blocked[p] {
		return false
	}
	return !g.closed || g.members[p] || g.explicit[p]
}

// AllowExplicit lets p in although it is not a member: the operator asked
// to dial it (`mimnode connect`).
func (g *Gater) AllowExplicit(p peer.ID) {
	g.mu.Lock()
	g.explicit[p] = true
	g.mu.Unlock()
}

// Block cuts p off regardless of membership (a network partition in tests);
// Unblock undoes it.
func (g *Gater) Block(p peer.ID) {
	g.mu.Lock()
	g.blocked[p] = true
	g.mu.Unlock()
}

// Unblock undoes Block.
func (g *Gater) Unblock(p peer.ID) {
	g.mu.Lock()
	delete(g.blocked, p)
	g.mu.Unlock()
}

// setMembers replaces the member set. Revoked peers also lose an explicit
// allowance, so a revocation is never undone by an old `connect`.
func (g *Gater) setMembers(members map[peer.ID]bool, revoked []peer.ID, closed bool) {
	g.mu.Lock()
	g.members = members
	g.closed = closed
	for _, p := range revoked {
		delete(g.explicit, p)
	}
	g.mu.Unlock()
}

// InterceptPeerDial refuses to dial peers that would not be admitted.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Allowed(p) }

// InterceptAddrDial admits every address of an admitted peer.
func (g *Gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

// InterceptAccept admits the raw connection; the peer is checked once its
// identity is proven, in InterceptSecured.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured admits a connection whose remote peer is allowed.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.Allowed(p)
}

// InterceptUpgraded admits every upgraded connection (already checked).
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
