package federation

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	mimproto "github.com/mimnode/mimnode/protocol"
)

// Rule says who may open a stream protocol on this node.
type Rule struct {
	// Member: the caller must share a federation with this node.
	Member bool
	// ServeAgencyOnly: this node must be an agency to serve the protocol
	// (researchers never serve data or catalogues).
	ServeAgencyOnly bool
}

// Rules is the per-protocol authorization table. A protocol missing from it
// is refused to everyone: adding a protocol means deciding who may use it.
var Rules = map[protocol.ID]Rule{
	SyncProtocol:                          {Member: true},
	protocol.ID(mimproto.CatalogProtocol): {Member: true, ServeAgencyOnly: true},
	// Both sides of a negotiation send messages (a provider answers a
	// researcher's request later, after manual approval), so researchers
	// accept negotiation streams too.
	protocol.ID(mimproto.NegotiationProtocol): {Member: true},
	// A provider tells its consumer when it suspends, completes or ends
	// a transfer (a revoked agreement ends them all), so researchers
	// accept transfer streams too; the transfer service serves data and
	// takes new transfer requests only on an agency (IsAgency).
	protocol.ID(mimproto.TransferProtocol): {Member: true},
}

// Authorize reports whether p may open proto here now.
func (s *Service) Authorize(proto protocol.ID, p peer.ID) bool {
	r, ok := Rules[proto]
	if !ok {
		return false
	}
	if r.ServeAgencyOnly && !s.IsAgency() {
		return false
	}
	if r.Member && len(s.SharedFederations(p)) == 0 {
		return false
	}
	return true
}

// Guard wraps a stream handler with the authorization table: a caller the
// table refuses gets its stream reset before the handler sees a byte.
func (s *Service) Guard(proto protocol.ID, h network.StreamHandler) network.StreamHandler {
	return func(st network.Stream) {
		if !s.Authorize(proto, st.Conn().RemotePeer()) {
			s.log.Debug("refused stream", "protocol", proto, "peer", st.Conn().RemotePeer())
			st.Reset()
			return
		}
		h(st)
	}
}
