package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
)

// Version is mimnode's version, reported by `mimnode version`, the API and
// identify.
const Version = "0.1.0-dev"

// Node is one running mimnode: identity, store, libp2p host and local API.
type Node struct {
	cfg       Config
	log       *slog.Logger
	key       crypto.PrivKey
	unlock    func()
	store     *store.DB
	host      host.Host
	ping      *ping.PingService
	gater     *federation.Gater
	pubsub    *pubsub.PubSub
	fed       *federation.Service
	audit     *audit.Log
	offers    *contract.Registry
	deals     *contract.Service
	catalog   *catalogsvc.Service
	transfers *transfer.Service
	ngsi      *ngsild.Service
	mdns      mdns.Service
	metrics   *prometheus.Registry
	api       *api.Server
	token     string
	started   time.Time

	apiLn  net.Listener // bound in New, served from Start
	apiURL string

	stopBG context.CancelFunc // ends background loops started by Start
	bg     sync.WaitGroup     // background loops started by Start

	mu      sync.Mutex // guards serving and closed
	serving bool
	closed  bool
}

// New opens the node's data directory (locking it), its store and its libp2p
// host. The host listens at once; Start serves the API. On error everything
// opened so far is closed again.
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Node, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: data directory not set", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, metrics: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			n.closeParts()
		}
	}()
	if n.unlock, err = lockDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if n.key, err = loadKey(cfg.DataDir); err != nil {
		return nil, err
	}
	if n.token, err = ensureToken(cfg.DataDir); err != nil {
		return nil, err
	}
	n.store, err = store.Open(filepath.Join(cfg.DataDir, StoreDir), store.Options{Logger: log, CacheMiB: cfg.Store.CacheMiB,
		BlobsDir: filepath.Join(cfg.DataDir, BlocksDir)})
	if err != nil {
		return nil, err
	}
	if err = checkFormat(n.store, cfg.DataDir); err != nil {
		return nil, err
	}
	n.gater = federation.NewGater()
	if n.host, err = newHost(cfg, n.key, n.gater, n.metrics); err != nil {
		return nil, err
	}
	for _, a := range unopened(cfg.Network.Listen, n.host.Network().ListenAddresses()) {
		log.Warn("not listening on a configured address: libp2p could not open it (the port in use, or the transport not available here); peers cannot reach the node there", "address", a)
	}
	n.ping = ping.NewPingService(n.host)
	n.pubsub, err = pubsub.NewGossipSub(ctx, n.host,
		pubsub.WithMessageSigning(true),
		// Send our own announcements to every subscribed member, not only
		// to the mesh: a federation is small enough, it halves latency, and
		// nothing published before the first heartbeat is lost.
		pubsub.WithFloodPublish(true),
		pubsub.WithStrictSignatureVerification(true),
		pubsub.WithPeerFilter(func(p peer.ID, topic string) bool {
			// Only exchange a federation's topics with its members.
			return n.fed != nil && n.fed.TopicPeerAllowed(p, topic)
		}),
		pubsub.WithLogger(quieter(log.With("component", "pubsub"))),
	)
	if err != nil {
		return nil, fmt.Errorf("start GossipSub: %w", err)
	}
	n.fed, err = federation.New(federation.Options{
		Host: n.host, Store: n.store, Key: n.key, PubSub: n.pubsub, Gater: n.gater,
		Agency: cfg.Name, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	n.audit = audit.Open(n.store)
	signer, err := NewKeySigner(n.key)
	if err != nil {
		return nil, err
	}
	n.catalog, err = catalogsvc.New(catalogsvc.Options{
		Host: n.host, Store: n.store, Signer: signer, Verifier: PeerIDVerifier{},
		Federations: n.fed, Agency: cfg.Name, ResyncInterval: cfg.Catalog.ResyncInterval.Duration, Logger: log,
		Warn: n.datasetWarnings,
	})
	if err != nil {
		return nil, err
	}
	// Offers are looked up in the catalogue; the offers registry holds
	// offers recorded by hand for datasets that are not in it.
	n.offers = contract.NewRegistry(n.store)
	n.deals, err = contract.New(contract.Options{
		Host: n.host, Store: n.store, Audit: n.audit, Members: n.fed, Signer: signer,
		Verifier: PeerIDVerifier{}, Offers: offerSources{n.catalog, n.offers}, OpenTo: n.catalog.OpenTo, Logger: log,
		Metrics: n.metrics,
	})
	if err != nil {
		return nil, err
	}
	n.registerMetrics()
	// Bind the API now: its address is part of the NGSI-LD service's
	// configuration, and a taken port should fail before anything starts.
	n.apiLn, err = net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for the API on %s: %w", cfg.API.Listen, err)
	}
	n.apiURL = apiURLOf(n.apiLn.Addr())
	n.ngsi, err = ngsild.New(n.store, ngsild.Options{Logger: log.With("component", "ngsild"), BaseURL: n.apiURL,
		Notify: ngsild.NotifyOptions{Allow: cfg.NGSILD.NotifyAllow}, SkipValidation: !cfg.NGSILD.ValidateModels, Tenants: cfg.NGSILD.Tenants})
	if err != nil {
		return nil, err
	}
	n.api = api.New(api.Options{
		Backend:      n,
		Token:        n.token,
		RequireToken: !isLoopback(cfg.API.Listen),
		Metrics:      n.metrics,
		Logger:       log,
	})
	n.api.Mount(n.fed.Register)
	n.api.Mount(n.ngsi.Register)
	n.api.Mount(n.audit.Register)
	n.api.Mount(n.deals.Register)
	n.api.Mount(n.catalog.Register)
	n.transfers, err = transfer.New(transfer.Options{
		Host: n.host, Store: n.store, NGSILD: n.ngsi, Agreements: n.deals, Purposes: n.deals, Revocations: n.deals, Audit: n.audit,
		Members: n.fed, Datasets: transfer.PublishedDatasets{Catalog: n.catalog, Self: n.host.ID().String()},
		Signer: signer, Verifier: PeerIDVerifier{}, FilesDir: filepath.Join(cfg.DataDir, "received"), Logger: log,
		Metrics: n.metrics, Described: n.described,
	})
	if err != nil {
		return nil, err
	}
	n.catalog.UseFiles(n.transfers)
	n.deals.UseTransfers(n.transfers)
	n.api.Mount(n.transfers.Register)
	n.api.Mount(func(mux *http.ServeMux) { mux.HandleFunc("POST /api/v1/datasets/{id}/version", n.handleVersion) })
	n.api.Mount(func(mux *http.ServeMux) { n.offers.RegisterHTTP(mux, n.host.ID().String()) })
	return n, nil
}

// quieter returns l without its info records unless l logs debug ones:
// for a library whose info lines tell an operator nothing (pubsub says
// "processloop shutting down" on every stop).
func quieter(l *slog.Logger) *slog.Logger {
	if l.Enabled(context.Background(), slog.LevelDebug) {
		return l
	}
	return slog.New(warnAndUp{l.Handler()})
}

// warnAndUp passes on records of level warn and above.
type warnAndUp struct{ slog.Handler }

func (h warnAndUp) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnAndUp) WithAttrs(as []slog.Attr) slog.Handler { return warnAndUp{h.Handler.WithAttrs(as)} }
func (h warnAndUp) WithGroup(n string) slog.Handler       { return warnAndUp{h.Handler.WithGroup(n)} }

// described returns provider's dataset as the federation's catalogue
// describes it, when this node has indexed it (transfer.Options.Described).
func (n *Node) described(provider, dataset string) (catalog.Dataset, bool) {
	r, err := n.catalog.Get(provider + "/" + dataset)
	if err != nil || r.Publisher != provider {
		return catalog.Dataset{}, false
	}
	return r.Dataset, true
}

// apiURLOf is the URL clients on this machine reach a listener at: an API
// bound to every interface (0.0.0.0, ::) is reached on loopback, not at
// "http://[::]:7480".
func apiURLOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		// Go listens on "::" for IPv4 too (dual stack).
		return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port))
	}
	return "http://" + a.String()
}

// APIOpen reports whether the API listens beyond loopback, where every
// request needs the bearer token in DATA/api.token.
func (n *Node) APIOpen() bool { return !isLoopback(n.cfg.API.Listen) }

// isLoopback reports whether host:port binds only to the loopback interface.
func isLoopback(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (n *Node) registerMetrics() {
	n.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mimnode_uptime_seconds", Help: "Seconds since the node started.",
		}, func() float64 { return time.Since(n.started).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mimnode_connected_peers", Help: "Peers with an open connection.",
		}, func() float64 { return float64(len(n.host.Network().Peers())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mimnode_disk_free_bytes", Help: "Free space on the disk holding the store; below 100 MiB the node stops writing.",
		}, func() float64 {
			free, err := n.store.DiskFree()
			if err != nil {
				return math.NaN()
			}
			return float64(free)
		}),
		entityCollector{n, prometheus.NewDesc("mimnode_entities", "NGSI-LD entities in the store, by type (expanded IRI).", []string{"type"}, nil)},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mimnode_store_bytes", Help: "Disk space the node's store takes (database files and blobs), measured at most every 10 s.",
		}, func() float64 { return float64(n.store.DiskBytes()) }),
	)
}

// Start serves the local API and writes its URL to DATA/api so CLI commands
// find it.
func (n *Node) Start(ctx context.Context) error {
	n.started = time.Now()
	if err := n.fed.Start(ctx); err != nil {
		return err
	}
	if err := n.ngsi.Start(ctx); err != nil {
		return err
	}
	if err := n.catalog.Start(ctx); err != nil {
		return err
	}
	if err := n.deals.Start(ctx); err != nil {
		return err
	}
	if err := n.transfers.Start(ctx); err != nil {
		return err
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.stopBG = cancel
	// Transfers of agreements revoked just before the node stopped end
	// now (a revocation ends them after it is stored).
	n.bg.Go(func() {
		if err := n.deals.EndRevoked(); err != nil {
			n.log.Error("ending the transfers of revoked agreements", "err", err)
		}
	})
	n.bg.Go(func() { n.versionLoop(bg, n.cfg.Catalog.VersionInterval.Duration) })
	if n.cfg.Network.MDNS {
		n.mdns = mdns.NewMdnsService(n.host, mdnsService, mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			return fmt.Errorf("start mDNS: %w", err)
		}
	}
	url := n.APIURL()
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, APIFile), []byte(url+"\n"), 0o644); err != nil {
		return fmt.Errorf("write API address file: %w", err)
	}
	n.mu.Lock()
	ln := n.apiLn
	n.serving = true
	n.mu.Unlock()
	go func() {
		if err := n.api.Serve(ln); err != nil {
			n.log.Error("API server stopped", "err", err)
		}
	}()
	n.log.Info("node started", "peer", n.host.ID(), "name", n.cfg.Name, "api", url)
	return nil
}

// Close stops the API, the host and the store, and releases the data
// directory. It is safe to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	serving := n.serving
	n.mu.Unlock()
	if serving {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.api.Shutdown(ctx)
		cancel()
		os.Remove(filepath.Join(n.cfg.DataDir, APIFile))
	}
	return n.closeParts()
}

// closeParts closes whatever New managed to open, store last so that nothing
// writes to it after it is closed.
func (n *Node) closeParts() error {
	var errs []error
	if n.stopBG != nil {
		n.stopBG()
		n.bg.Wait()
	}
	if n.apiLn != nil {
		n.apiLn.Close() // no-op once the server has shut down
	}
	if n.transfers != nil {
		errs = append(errs, n.transfers.Close())
	}
	if n.deals != nil {
		errs = append(errs, n.deals.Close())
	}
	if n.catalog != nil {
		errs = append(errs, n.catalog.Close())
	}
	if n.ngsi != nil {
		errs = append(errs, n.ngsi.Close())
	}
	if n.mdns != nil {
		errs = append(errs, n.mdns.Close())
	}
	if n.fed != nil {
		errs = append(errs, n.fed.Close())
	}
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.unlock != nil {
		n.unlock()
	}
	return errors.Join(errs...)
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Store is the node's database.
func (n *Node) Store() *store.DB { return n.store }

// Federations is the node's federation service.
func (n *Node) Federations() *federation.Service { return n.fed }

// Contracts is the node's contract negotiation service.
func (n *Node) Contracts() *contract.Service { return n.deals }

// Offers is the interim offers registry (until the catalogue provides
// offers).
func (n *Node) Offers() *contract.Registry { return n.offers }

// Audit is the node's hash-chained transaction log.
func (n *Node) Audit() *audit.Log { return n.audit }

// Gater is the node's connection gater.
func (n *Node) Gater() *federation.Gater { return n.gater }

// Config is the configuration the node runs with.
func (n *Node) Config() Config { return n.cfg }

// APIURL is the base URL of the API (bound in New, served after Start).
func (n *Node) APIURL() string { return n.apiURL }

// APIListenAddr is the address the API listens on, as bound (the port a
// configured port 0 got).
func (n *Node) APIListenAddr() string { return n.apiLn.Addr().String() }

// NGSILD is the node's entity store and NGSI-LD API.
func (n *Node) NGSILD() *ngsild.Service { return n.ngsi }

// Token is the API token.
func (n *Node) Token() string { return n.token }

// AddrInfo is the node's peer ID and listen addresses, for dialling it.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// P2PAddrs are the node's listen multiaddrs with /p2p/PEERID appended.
func (n *Node) P2PAddrs() []string {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Status implements api.Backend.
func (n *Node) Status() api.Status {
	// An agency in any federation is an agency (federation.IsAgency).
	role := "stand-alone"
	for _, r := range n.fed.Roles() {
		if role = string(r); r == federation.RoleAgency {
			break
		}
	}
	return api.Status{
		PeerID:         n.host.ID().String(),
		Name:           n.cfg.Name,
		Role:           role,
		API:            n.apiURL,
		Addresses:      n.P2PAddrs(),
		Version:        Version,
		UptimeSeconds:  time.Since(n.started).Seconds(),
		StoreBytes:     n.store.DiskBytes(),
		ConnectedPeers: len(n.host.Network().Peers()),
		DataDir:        n.cfg.DataDir,
	}
}

// Peers implements api.Backend.
func (n *Node) Peers() []api.Peer {
	var out []api.Peer
	for _, p := range n.host.Network().Peers() {
		conns := n.host.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		c := conns[0]
		ap := api.Peer{
			PeerID:    p.String(),
			Direction: strings.ToLower(c.Stat().Direction.String()),
			Transport: transportOf(c.RemoteMultiaddr()),
		}
		for _, c := range conns {
			ap.Addresses = append(ap.Addresses, c.RemoteMultiaddr().String())
		}
		if l := n.host.Peerstore().LatencyEWMA(p); l > 0 {
			ap.Latency = l.String()
		}
		if v, err := n.host.Peerstore().Get(p, "AgentVersion"); err == nil {
			ap.Agent, _ = v.(string)
		}
		out = append(out, ap)
	}
	return out
}

func transportOf(a ma.Multiaddr) string {
	if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
		return "quic"
	}
	return "tcp"
}

// Connect implements api.Backend: it dials addr and pings the peer once.
func (n *Node) Connect(ctx context.Context, addr string) (api.ConnectResult, error) {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return api.ConnectResult{}, api.BadRequest("%q is not a multiaddr: %v", addr, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return api.ConnectResult{}, api.BadRequest("%q must end in /p2p/PEERID: %v", addr, err)
	}
	if ai.ID == n.host.ID() {
		return api.ConnectResult{}, api.BadRequest("%s is this node itself", ai.ID)
	}
	// A key-bearing ID (12D3KooW...) cut short still parses as a
	// multihash; dialling it could only fail later, and less clearly.
	if _, err := ai.ID.ExtractPublicKey(); err != nil && !errors.Is(err, peer.ErrNoPublicKey) {
		return api.ConnectResult{}, api.BadRequest("%q does not end in a valid peer ID: %v", addr, err)
	}
	n.gater.AllowExplicit(ai.ID)
	// libp2p does not dial a peer it is connected to: say so, rather than
	// let the answer vouch for an address nobody tried.
	already := n.host.Network().Connectedness(ai.ID) == network.Connected
	if err := n.host.Connect(ctx, *ai); err != nil {
		return api.ConnectResult{}, fmt.Errorf("connect to %s: %w", ai.ID, err)
	}
	rtt, err := n.Ping(ctx, ai.ID)
	if err != nil {
		return api.ConnectResult{}, err
	}
	return api.ConnectResult{PeerID: ai.ID.String(), Latency: rtt.String(), AlreadyConnected: already}, nil
}

// Ping measures one round trip to a connected peer.
func (n *Node) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	ctx = network.WithAllowLimitedConn(ctx, "ping")
	select {
	case res := <-n.ping.Ping(ctx, p):
		if res.Error != nil {
			return 0, fmt.Errorf("ping %s: %w", p, res.Error)
		}
		return res.RTT, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("ping %s: %w", p, ctx.Err())
	}
}

// mdnsService is the mDNS service name mimnode nodes advertise on a LAN.
const mdnsService = "_mimnode._udp"

// mdnsNotifee dials LAN peers found by mDNS; the gater still decides whether
// the connection is admitted.
type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.host.ID() || !m.n.gater.Allowed(ai.ID) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.n.host.Connect(ctx, ai)
}

// Transfers is the node's data transfer service.
func (n *Node) Transfers() *transfer.Service { return n.transfers }

// Catalog is the node's catalogue service.
func (n *Node) Catalog() *catalogsvc.Service { return n.catalog }

// offerSources looks an offer up in each source in turn.
type offerSources []contract.Offers

func (o offerSources) Offer(dataset, offerID string) (policy.Policy, error) {
	var first error
	for _, src := range o {
		p, err := src.Offer(dataset, offerID)
		if err == nil {
			return p, nil
		}
		if first == nil {
			first = err
		}
	}
	return policy.Policy{}, first
}

// entityCollector exports the store's entity counts by type, read when
// scraped (the counters the NGSI-LD /types answers come from).
type entityCollector struct {
	n    *Node // its NGSI-LD service is made after the metrics
	desc *prometheus.Desc
}

func (c entityCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c entityCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.ngsi == nil {
		return
	}
	counts, err := c.n.ngsi.EntityCounts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for t, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), t)
	}
}

// datasetWarnings says which of a published dataset's entity types no
// entity stored here has (a typo in entityTypes leaves every version
// empty, and consumers would get agreements for nothing). A type matches
// as a version build matches it: its IRI, or a short name for any stored
// type with that local name.
func (n *Node) datasetWarnings(d catalog.Dataset) []string {
	v, ok := d.EffectiveView()
	if !ok || n.ngsi == nil || n.transfers == nil {
		return nil
	}
	stored, err := n.ngsi.StoredTypes()
	if err != nil {
		return nil
	}
	var out []string
	for _, t := range v.EntityTypes {
		if !slices.ContainsFunc(stored, n.transfers.TypeMatch([]string{t})) {
			names := make([]string, 0, len(stored))
			for _, st := range stored {
				names = append(names, catalog.ShortType(st))
			}
			slices.Sort(names)
			have := "this node stores no entities yet"
			if names = slices.Compact(names); len(names) > 0 {
				have = "stored types: " + strings.Join(names, ", ")
			}
			out = append(out, fmt.Sprintf("no entity stored on this node has type %q (%s): the dataset's versions hold none until such entities are written; check entityTypes", t, have))
		}
	}
	return out
}
