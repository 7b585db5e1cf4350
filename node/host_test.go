package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
)

// TestConnectionSecurity checks which channel security connections get:
// TLS 1.3 between two nodes (it is the first they offer), and Noise or TLS
// with a peer that offers only that one, as a node of an earlier release
// that preferred Noise, or another libp2p program, may.
func TestConnectionSecurity(t *testing.T) {
	b := startNode(t, testConfig(t))
	ai := addrWith(t, b, ma.P_TCP)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	a := startNode(t, testConfig(t))
	if err := a.Host().Connect(ctx, ai); err != nil {
		t.Fatalf("node to node: %v", err)
	}
	if got := securityTo(t, a.Host(), b); got != libp2ptls.ID {
		t.Errorf("node to node: security %q, want %q", got, libp2ptls.ID)
	}

	for _, tc := range []struct {
		id  protocol.ID
		opt libp2p.Option
	}{
		{noise.ID, libp2p.Security(noise.ID, noise.New)},
		{libp2ptls.ID, libp2p.Security(libp2ptls.ID, libp2ptls.New)},
	} {
		t.Run(string(tc.id), func(t *testing.T) {
			h, err := libp2p.New(tc.opt, libp2p.NoListenAddrs)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if err := h.Connect(ctx, ai); err != nil {
				t.Fatalf("a peer offering only %s: %v", tc.id, err)
			}
			if got := securityTo(t, h, b); got != tc.id {
				t.Errorf("security %q, want %q", got, tc.id)
			}
			if _, err := b.Ping(ctx, h.ID()); err != nil {
				t.Errorf("ping over %s: %v", tc.id, err)
			}
		})
	}
}

// securityTo is the security protocol of h's connection to n.
func securityTo(t *testing.T, h host.Host, n *Node) protocol.ID {
	t.Helper()
	conns := h.Network().ConnsToPeer(n.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections to the node, want 1", len(conns))
	}
	return conns[0].ConnState().Security
}
