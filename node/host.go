package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// userAgent is what identify tells peers this node runs.
var userAgent = "mimnode/" + Version

// newHost builds the node's libp2p host: TCP and QUIC, Noise and TLS, yamux,
// a resource manager with the configured limits, a connection manager,
// identify (always on in libp2p) and ping.
func newHost(c Config, key crypto.PrivKey, gater connmgr.ConnectionGater, reg prometheus.Registerer) (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	scaled := limits.Scale(int64(c.Resources.MaxMemoryMiB)<<20, c.Resources.MaxFDs)
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Memory:  rcmgr.LimitVal64(int64(c.Resources.MaxMemoryMiB) << 20),
			Conns:   rcmgr.LimitVal(c.Resources.MaxConnections),
			Streams: rcmgr.LimitVal(c.Resources.MaxStreams),
			FD:      rcmgr.LimitVal(c.Resources.MaxFDs),
		},
	}
	rcmgr.MustRegisterWith(reg)
	str, err := rcmgr.NewStatsTraceReporter()
	if err != nil {
		return nil, fmt.Errorf("resource manager metrics: %w", err)
	}
	limiter := rcmgr.NewFixedLimiter(partial.Build(scaled))
	rm, err := rcmgr.NewResourceManager(limiter, rcmgr.WithTraceReporter(str))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := basicconnmgr.NewConnManager(c.ConnMgr.Low, c.ConnMgr.High, basicconnmgr.WithGracePeriod(c.ConnMgr.GracePeriod.Duration))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(c.Network.Listen...),
		tcpTransport(c.Network.TCPDialer),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(gater),
		libp2p.Ping(false), // the node runs its own ping service (Node.ping)
		libp2p.UserAgent(userAgent),
		libp2p.PrometheusRegisterer(reg),
	}
	if len(c.Network.Announce) > 0 {
		announce := make([]ma.Multiaddr, 0, len(c.Network.Announce))
		for _, s := range c.Network.Announce {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("network.announce: %w", err)
			}
			announce = append(announce, a)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		// The swarm joins its listen errors as text: errors.Is cannot
		// find the cause.
		return nil, fmt.Errorf("start libp2p host: %w: another node (or another program) uses a port of [network] listen in this node's config.toml (%s); give this node other ports there (each node on one machine needs its own)",
			err, strings.Join(c.Network.Listen, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// tcpTransport is the TCP transport, dialling through d when it is set.
//
// Without SO_REUSEPORT: libp2p sets it by default so that outgoing
// connections leave from the listening port, which only NAT hole punching
// needs (the node does none), and with it a second node started on the
// same machine and port binds that port too, silently, and the kernel
// then shares incoming connections between the two. Without it the
// second node cannot open the port and says so (unopened).
func tcpTransport(d tcp.DialerForAddr) libp2p.Option {
	if d == nil {
		return libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport())
	}
	return libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport(), tcp.WithDialerForAddr(d))
}

// unopened returns the configured listen addresses the host has no
// listener for. libp2p starts when at least one of them opens, and reports
// the others only in its own log, which the node's log does not carry: a
// port taken by another program, or a transport the system cannot run,
// would otherwise leave the node unreachable there without a word. A
// configured port 0 matches any port; a listener may add certificate
// hashes after the configured components (WebTransport).
func unopened(configured []string, listening []ma.Multiaddr) []string {
	var out []string
	for _, s := range configured {
		want, err := ma.NewMultiaddr(s)
		if err == nil && slices.ContainsFunc(listening, func(got ma.Multiaddr) bool { return opens(want, got) }) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// opens says whether listener address got serves the configured want.
func opens(want, got ma.Multiaddr) bool {
	if len(got) < len(want) {
		return false
	}
	for i := range want {
		w, g := &want[i], &got[i]
		if w.Code() != g.Code() {
			return false
		}
		if (w.Code() == ma.P_TCP || w.Code() == ma.P_UDP) && w.Value() == "0" {
			continue
		}
		if w.Value() != g.Value() {
			return false
		}
	}
	for i := len(want); i < len(got); i++ {
		if got[i].Code() != ma.P_CERTHASH {
			return false
		}
	}
	return true
}
