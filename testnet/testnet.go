package testnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/federation"
)

// Shape says how many nodes of which kind a testnet has.
type Shape struct {
	Cities          int // cities, each with its own agencies
	AgenciesPerCity int // agencies per city
	Researchers     int // read-only researcher nodes
}

// Size is the number of nodes in the shape.
func (s Shape) Size() int { return s.Cities*s.AgenciesPerCity + s.Researchers }

// Options tune a testnet.
type Options struct {
	// Dir holds the nodes' data directories; empty means a new temporary
	// directory, removed by Close.
	Dir string
	// Logger receives the nodes' logs; nil discards them.
	Logger *slog.Logger
	// EntitiesPerModel is how many entities Seed writes per data model per
	// agency (default 20).
	EntitiesPerModel int
	// Seed makes generated data reproducible (default 1).
	Seed uint64
	// Shaping lets Shape add latency and bandwidth limits between members.
	// The nodes then listen on TCP only: QUIC's packets cannot be delayed
	// from inside the process.
	Shaping bool
}

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Member is one node of a testnet.
type Member struct {
	Name string          // e.g. "Aarhus environment"
	City string          // empty for researchers
	Kind string          // environment, transport, parking, utilities, research
	Role federation.Role // agency or researcher

	cfg  node.Config
	mu   sync.Mutex // guards node
	node *node.Node // nil while stopped
}

// Node is the running node (nil while the member is stopped).
func (m *Member) Node() *node.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.node
}

// DataDir is the member's data directory.
func (m *Member) DataDir() string { return m.cfg.DataDir }

// Net is a set of real mimnode nodes in this process, on loopback.
type Net struct {
	Members []*Member
	// Fed is the federation ID once Federate has run.
	Fed string

	opts Options
	tb   TB

	linksMu sync.Mutex
	links   map[linkKey]Link // guarded by linksMu
	tempDir bool
	err     error // first error of a fluent call when there is no TB
}

// Start starts the nodes of shape. Each listens on loopback TCP and QUIC
// and serves its API on 127.0.0.1, all on free ports.
func Start(ctx context.Context, shape Shape, o Options) (*Net, error) {
	if shape.Cities < 0 || shape.AgenciesPerCity < 0 || shape.Researchers < 0 || shape.Size() == 0 {
		return nil, fmt.Errorf("testnet: shape %+v has no nodes", shape)
	}
	if shape.Cities > len(cities) {
		return nil, fmt.Errorf("testnet: at most %d cities", len(cities))
	}
	if o.EntitiesPerModel == 0 {
		o.EntitiesPerModel = 20
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	n := &Net{opts: o, links: map[linkKey]Link{}}
	if n.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "mimnode-testnet-")
		if err != nil {
			return nil, err
		}
		n.opts.Dir, n.tempDir = dir, true
	}
	for c := 0; c < shape.Cities; c++ {
		for a := 0; a < shape.AgenciesPerCity; a++ {
			kind := agencyKinds[a%len(agencyKinds)]
			name := fmt.Sprintf("%s %s", cities[c].Name, kind)
			if a >= len(agencyKinds) {
				name = fmt.Sprintf("%s %s %d", cities[c].Name, kind, a/len(agencyKinds)+1)
			}
			n.Members = append(n.Members, &Member{Name: name, City: cities[c].Name, Kind: kind, Role: federation.RoleAgency})
		}
	}
	for r := 0; r < shape.Researchers; r++ {
		n.Members = append(n.Members, &Member{Name: fmt.Sprintf("Research lab %d", r+1), Kind: "research", Role: federation.RoleResearcher})
	}
	listen := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	if o.Shaping {
		listen = listen[:1]
	}
	for i, m := range n.Members {
		dir := filepath.Join(n.opts.Dir, fmt.Sprintf("node%02d", i))
		cfg, err := node.Init(dir, node.InitOptions{Name: m.Name, Listen: listen, API: "127.0.0.1:0"})
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("testnet: init %s: %w", m.Name, err)
		}
		if o.Shaping {
			cfg.Network.TCPDialer = n.dialerFor(i)
		}
		m.cfg = cfg
		if err := n.startMember(ctx, m); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// New starts a testnet for a test; it is closed when the test ends, and
// every fluent call on it fails the test on error.
func New(tb TB, shape Shape, opts ...Options) *Net {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	n, err := Start(context.Background(), shape, o)
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	n.tb = tb
	tb.Cleanup(func() { n.Close() })
	return n
}

// fail records err: it fails the test, or is kept for Err.
func (n *Net) fail(err error) {
	if err == nil {
		return
	}
	if n.tb != nil {
		n.tb.Helper()
		n.tb.Fatalf("testnet: %v", err)
	}
	if n.err == nil {
		n.err = err
	}
}

// Err returns the first error of a fluent call made without a TB.
func (n *Net) Err() error { return n.err }

func (n *Net) startMember(ctx context.Context, m *Member) error {
	log := n.opts.Logger
	if log != nil {
		log = log.With("node", m.Name)
	}
	nd, err := node.New(ctx, m.cfg, log)
	if err != nil {
		return fmt.Errorf("testnet: start %s: %w", m.Name, err)
	}
	if err := nd.Start(ctx); err != nil {
		nd.Close()
		return fmt.Errorf("testnet: start %s: %w", m.Name, err)
	}
	m.mu.Lock()
	m.node = nd
	m.mu.Unlock()
	return nil
}

// Agencies and Researchers list the members of each role.
func (n *Net) Agencies() []*Member { return n.byRole(federation.RoleAgency) }

// Researchers lists the researcher members.
func (n *Net) Researchers() []*Member { return n.byRole(federation.RoleResearcher) }

func (n *Net) byRole(r federation.Role) []*Member {
	var out []*Member
	for _, m := range n.Members {
		if m.Role == r {
			out = append(out, m)
		}
	}
	return out
}

// Member finds a member by name.
func (n *Net) Member(name string) *Member {
	for _, m := range n.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Federate creates one federation on the first agency (its admin) and
// invites and joins every other member with its role, then waits until
// every member sees every other on the federation's topic.
func (n *Net) Federate() *Net {
	if n.tb != nil {
		n.tb.Helper()
	}
	n.fail(n.federate(context.Background()))
	return n
}

func (n *Net) federate(ctx context.Context) error {
	admin := n.Members[0].Node()
	in, err := admin.Federations().Create(ctx, "Testnet region", nil)
	if err != nil {
		return err
	}
	n.Fed = in.ID
	for _, m := range n.Members[1:] {
		nd := m.Node()
		tok, _, err := admin.Federations().Change(ctx, in.ID, federation.Change{Op: "add", PeerID: nd.ID().String(), Name: m.Name, Role: m.Role})
		if err != nil {
			return fmt.Errorf("invite %s: %w", m.Name, err)
		}
		if _, err := nd.Federations().Join(ctx, tok); err != nil {
			return fmt.Errorf("%s joins: %w", m.Name, err)
		}
	}
	patience := 90 * time.Second
	if raceEnabled {
		patience = 5 * time.Minute
	}
	// Ready when every member holds the latest membership document and sees
	// enough members on the topic for gossip to reach everyone: all of them
	// in a small federation, at least meshSize in a large one (the members
	// keep connecting to each other in the background).
	want := min(len(n.Members)-1, meshSize)
	head := uint64(len(n.Members) - 1)
	return n.waitFor(patience, func() string {
		return "every member has the membership and its topic peers: " + n.federationState(head, want)
	}, func() bool {
		for _, m := range n.Members {
			nd := m.Node()
			if nd == nil {
				return false
			}
			in, err := nd.Federations().Show(n.Fed)
			if err != nil || in.Seq != head || len(nd.Federations().TopicPeers(n.Fed)) < want {
				return false
			}
		}
		return true
	})
}

// federationState describes, for a Federate that timed out, each member
// still short of the membership version head or of want topic peers: its
// version, and which members it is connected to and sees on the topic.
func (n *Net) federationState(head uint64, want int) string {
	var b strings.Builder
	for i, m := range n.Members {
		nd := m.Node()
		if nd == nil {
			fmt.Fprintf(&b, "; %s stopped", m.Name)
			continue
		}
		in, err := nd.Federations().Show(n.Fed)
		topic := nd.Federations().TopicPeers(n.Fed)
		if err == nil && in.Seq == head && len(topic) >= want {
			continue
		}
		seq := "none"
		if err == nil {
			seq = fmt.Sprint(in.Seq)
		}
		var conns, peers []string
		for j, o := range n.Members {
			if j != i && n.Connected(i, j) {
				conns = append(conns, o.Name)
			}
		}
		for _, p := range topic {
			if j := n.Index(p); j >= 0 {
				peers = append(peers, n.Members[j].Name)
			} else {
				peers = append(peers, p.String())
			}
		}
		fmt.Fprintf(&b, "; %s (%s) has version %s of %d, connected to [%s], topic peers [%s]",
			m.Name, nd.ID(), seq, head, strings.Join(conns, ", "), strings.Join(peers, ", "))
	}
	return strings.TrimPrefix(b.String(), "; ")
}

// meshSize is how many topic peers each member of a large testnet needs
// before Federate returns (GossipSub's own mesh degree).
const meshSize = 6

// WaitFor polls cond until it holds or d passes: the harness never sleeps a
// fixed time, it waits for an event with a deadline.
func (n *Net) WaitFor(d time.Duration, what string, cond func() bool) error {
	if n.tb != nil {
		n.tb.Helper()
	}
	return n.waitFor(d, func() string { return what }, cond)
}

// waitFor is WaitFor with a description computed when it times out, so
// that it can say what was still missing.
func (n *Net) waitFor(d time.Duration, what func() string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			err := fmt.Errorf("not within %s: %s", d, what())
			if n.tb != nil {
				n.tb.Helper()
				n.tb.Fatalf("testnet: %v", err)
			}
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// ErrStopped is returned for an operation on a stopped member.
var ErrStopped = errors.New("member is stopped")

// Stop shuts member i down cleanly.
func (n *Net) Stop(i int) *Net {
	m := n.Members[i]
	m.mu.Lock()
	nd := m.node
	m.node = nil
	m.mu.Unlock()
	if nd == nil {
		n.fail(fmt.Errorf("stop %s: %w", m.Name, ErrStopped))
		return n
	}
	n.fail(nd.Close())
	return n
}

// Kill stops member i the way a crash would as far as its peers can tell:
// connections drop without any goodbye. (In one process the store is still
// closed normally, so its files stay usable; real SIGKILL durability is
// tested with the daemon as a subprocess in cmd/mimnode.)
func (n *Net) Kill(i int) *Net {
	m := n.Members[i]
	m.mu.Lock()
	nd := m.node
	m.node = nil
	m.mu.Unlock()
	if nd == nil {
		n.fail(fmt.Errorf("kill %s: %w", m.Name, ErrStopped))
		return n
	}
	nd.Host().Network().Close()
	nd.Close()
	return n
}

// Restart starts a stopped member again on the same data directory.
func (n *Net) Restart(i int) *Net {
	if n.tb != nil {
		n.tb.Helper()
	}
	n.fail(n.startMember(context.Background(), n.Members[i]))
	return n
}

// Partition cuts every connection between the members in a and those in b
// and keeps them from reconnecting until Heal.
func (n *Net) Partition(a, b []int) *Net {
	for _, i := range a {
		for _, j := range b {
			n.cut(i, j)
			n.cut(j, i)
		}
	}
	return n
}

func (n *Net) cut(i, j int) {
	ni, nj := n.Members[i].Node(), n.Members[j].Node()
	if ni == nil || nj == nil {
		return
	}
	ni.Gater().Block(nj.ID())
	ni.Host().Network().ClosePeer(nj.ID())
}

// Heal removes every partition.
func (n *Net) Heal() *Net {
	for _, m := range n.Members {
		nd := m.Node()
		if nd == nil {
			continue
		}
		for _, o := range n.Members {
			if od := o.Node(); od != nil {
				nd.Gater().Unblock(od.ID())
			}
		}
	}
	return n
}

// Connected reports whether members i and j have a connection.
func (n *Net) Connected(i, j int) bool {
	ni, nj := n.Members[i].Node(), n.Members[j].Node()
	return ni != nil && nj != nil && len(ni.Host().Network().ConnsToPeer(nj.ID())) > 0
}

// Index returns the position of the member with peer ID p, or -1.
func (n *Net) Index(p peer.ID) int {
	for i, m := range n.Members {
		if nd := m.Node(); nd != nil && nd.ID() == p {
			return i
		}
	}
	return -1
}

// Close stops every node and removes a temporary directory.
func (n *Net) Close() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range n.Members {
		m.mu.Lock()
		nd := m.node
		m.node = nil
		m.mu.Unlock()
		if nd == nil {
			continue
		}
		wg.Go(func() {
			err := nd.Close()
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n.tempDir {
		errs = append(errs, os.RemoveAll(n.opts.Dir))
	}
	return errors.Join(errs...)
}
