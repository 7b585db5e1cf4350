package federation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/federation"
	mimproto "github.com/mimnode/mimnode/protocol"
)

func newNode(t testing.TB, name string) *node.Node {
	t.Helper()
	return startAt(t, initDir(t, name))
}

func initDir(t testing.TB, name string) node.Config {
	t.Helper()
	c, err := node.Init(t.TempDir(), node.InitOptions{Name: name, API: "127.0.0.1:0",
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startAt(t testing.TB, c node.Config) *node.Node {
	t.Helper()
	n, err := node.New(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// eventually waits up to d for cond, polling; it is how these tests wait for
// something to spread over the network without sleeping a fixed time.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var ctx = context.Background()

// invite adds p to the federation on admin and returns the invitation token.
func invite(t testing.TB, admin *node.Node, fed string, p *node.Node, role federation.Role) string {
	t.Helper()
	tok, applied, err := admin.Federations().Change(ctx, fed, federation.Change{Op: "add", PeerID: p.ID().String(), Name: p.Config().Name, Role: role})
	if err != nil || !applied {
		t.Fatalf("invite %s: applied=%v err=%v", p.ID(), applied, err)
	}
	return tok
}

// federate creates a federation on nodes[0] and invites and joins the rest
// with the given roles.
func federate(t testing.TB, nodes []*node.Node, roles []federation.Role) string {
	t.Helper()
	in, err := nodes[0].Federations().Create(ctx, "Region", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes[1:] {
		tok := invite(t, nodes[0], in.ID, n, roles[i])
		if _, err := n.Federations().Join(ctx, tok); err != nil {
			t.Fatalf("join %d: %v", i+1, err)
		}
	}
	waitMesh(t, nodes, in.ID)
	return in.ID
}

// waitMesh waits until every node sees every other on the members topic,
// as in a federation that has been running for a while.
func waitMesh(t testing.TB, nodes []*node.Node, fed string) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, 20*time.Second, n.Config().Name+" sees all members on the topic", func() bool {
			return len(n.Federations().TopicPeers(fed)) == len(nodes)-1
		})
	}
}

func seqOf(n *node.Node, fed string) uint64 {
	in, err := n.Federations().Show(fed)
	if err != nil {
		return 0
	}
	return in.Seq
}

// assertShutOut checks that from cannot get a working connection to to.
// The dialler may see its half of the handshake complete before to's gater
// closes the connection; what counts is that it does not stay connected and
// no stream gets through.
func assertShutOut(t *testing.T, from, to *node.Node) {
	t.Helper()
	from.Host().Connect(ctx, to.AddrInfo())
	eventually(t, 5*time.Second, from.Config().Name+" not connected to "+to.Config().Name, func() bool {
		return to.Host().Network().Connectedness(from.ID()) != network.Connected
	})
	st, err := from.Host().NewStream(ctx, to.ID(), federation.SyncProtocol)
	if err != nil {
		return
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(5 * time.Second))
	mimproto.WriteFrame(st, []byte(`{"federation":"x","after":0}`))
	if _, err := mimproto.ReadFrame(st, 1<<20); err == nil {
		t.Fatalf("%s got an answer from %s", from.Config().Name, to.Config().Name)
	}
}

func TestCreateInviteJoinAgencyAndResearcher(t *testing.T) {
	a, b, r := newNode(t, "Transport"), newNode(t, "Environment"), newNode(t, "University")
	fed := federate(t, []*node.Node{a, b, r}, []federation.Role{federation.RoleAgency, federation.RoleResearcher})
	for _, n := range []*node.Node{a, b, r} {
		eventually(t, 5*time.Second, "every node has all three members", func() bool {
			in, err := n.Federations().Show(fed)
			return err == nil && len(in.Members) == 3 && in.Seq == 2
		})
	}
	if role, _ := a.Federations().RoleOf(fed, r.ID()); role != federation.RoleResearcher {
		t.Fatalf("researcher's role = %q", role)
	}
	if !b.Federations().IsAgency() || r.Federations().IsAgency() {
		t.Fatal("IsAgency wrong for agency or researcher")
	}
	eventually(t, 5*time.Second, "researcher connected to the other agency", func() bool {
		return r.Host().Network().Connectedness(b.ID()) == network.Connected
	})
}

// TestCreateRefusesATakenName checks that a node cannot create a second
// federation with the name of one it is in (in any case), which failed
// with an internal topic error when the two were made in one second.
func TestCreateRefusesATakenName(t *testing.T) {
	a := newNode(t, "Transport")
	if _, err := a.Federations().Create(context.Background(), "Aarhus region", nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Aarhus region", "aarhus REGION"} {
		if _, err := a.Federations().Create(context.Background(), name, nil); !errors.Is(err, federation.ErrNameTaken) {
			t.Errorf("second Create(%q): %v, want ErrNameTaken", name, err)
		}
	}
	if n := len(a.Federations().List()); n != 1 {
		t.Errorf("%d federations, want 1", n)
	}
}

func TestNonMemberCannotConnectOrOpenProtocols(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	fed := federate(t, []*node.Node{a, b}, []federation.Role{federation.RoleAgency})
	outsider := newNode(t, "Outsider")
	assertShutOut(t, outsider, a)
	// Even when the admin dials the outsider itself (explicitly allowed at
	// the connection level), no federation protocol is open to it.
	if _, err := a.Connect(ctx, outsider.P2PAddrs()[0]); err != nil {
		t.Fatalf("explicit connect: %v", err)
	}
	for proto := range federation.Rules {
		st, err := outsider.Host().NewStream(ctx, a.ID(), proto)
		if err != nil {
			continue // refused at negotiation: fine
		}
		st.SetDeadline(time.Now().Add(5 * time.Second))
		mimproto.WriteFrame(st, []byte(`{"federation":"`+fed+`","after":0}`))
		if _, err := mimproto.ReadFrame(st, 1<<20); err == nil {
			t.Errorf("outsider got an answer on %s", proto)
		}
		st.Close()
	}
}

func TestMemberMayOpenSyncProtocol(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	fed := federate(t, []*node.Node{a, b}, []federation.Role{federation.RoleAgency})
	eventually(t, 5*time.Second, "b connected to a", func() bool {
		return b.Host().Network().Connectedness(a.ID()) == network.Connected
	})
	st, err := b.Host().NewStream(ctx, a.ID(), federation.SyncProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mimproto.WriteFrame(st, []byte(`{"federation":"`+fed+`","after":0}`))
	if _, err := mimproto.ReadFrame(st, 1<<20); err != nil {
		t.Fatalf("member's sync request: %v", err)
	}
}

func TestRevokedMemberIsCutOffEverywhere(t *testing.T) {
	a, b, c := newNode(t, "A"), newNode(t, "B"), newNode(t, "C")
	fed := federate(t, []*node.Node{a, b, c}, []federation.Role{federation.RoleAgency, federation.RoleAgency})
	eventually(t, 5*time.Second, "b and c connected", func() bool {
		return b.Host().Network().Connectedness(c.ID()) == network.Connected &&
			b.Host().Network().Connectedness(a.ID()) == network.Connected
	})
	if _, _, err := a.Federations().Change(ctx, fed, federation.Change{Op: "revoke", PeerID: b.ID().String()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b disconnected from a and c", func() bool {
		return a.Host().Network().Connectedness(b.ID()) != network.Connected &&
			c.Host().Network().Connectedness(b.ID()) != network.Connected
	})
	for _, n := range []*node.Node{a, c} {
		assertShutOut(t, b, n)
	}
}

func TestForgedAndReplayedUpdatesAreRejected(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	fed := federate(t, []*node.Node{a, b}, []federation.Role{federation.RoleAgency})
	eventually(t, 5*time.Second, "b at seq 1", func() bool { return seqOf(b, fed) == 1 })
	chain := a.Federations().Chain(fed)
	// b is no admin: a change only b signed must not be accepted by a.
	_, _, err := b.Federations().Change(ctx, fed, federation.Change{Op: "add", PeerID: a.ID().String()})
	if !errors.Is(err, federation.ErrNotAdmin) {
		t.Fatalf("non-admin change: %v, want ErrNotAdmin", err)
	}
	forged, err := chain[1].Next(federation.Change{Op: "role", PeerID: b.ID().String(), Role: federation.RoleResearcher}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := federation.EncodeToken(federation.Token{Chain: chain, Proposal: forged})
	// Forged: only a non-admin signed. Applying it through sign-by-a would
	// add a real signature, so verify the raw chain instead.
	if _, err := federation.VerifyChain(append(slices.Clone(chain), forged)); !errors.Is(err, federation.ErrNotEnoughSigs) {
		t.Fatalf("unsigned update verified: %v", err)
	}
	_ = tok
	// Replayed: the token for the older version must not roll a node back.
	old, _ := federation.EncodeToken(federation.Token{Chain: chain[:1]})
	if _, err := b.Federations().Join(ctx, old); err == nil {
		if seqOf(b, fed) != 1 {
			t.Fatalf("replayed genesis rolled b back to seq %d", seqOf(b, fed))
		}
	}
}

func TestResearcherCannotPublishAndPeersDropItsAnnouncements(t *testing.T) {
	a, b, r := newNode(t, "A"), newNode(t, "B"), newNode(t, "Researcher")
	fed := federate(t, []*node.Node{a, b, r}, []federation.Role{federation.RoleAgency, federation.RoleResearcher})
	var sub *pubsub.Subscription
	for _, n := range []*node.Node{r, b, a} {
		s, err := n.Federations().CatalogTopicHandle(fed).Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Cancel()
		sub = s
	}
	if err := r.Federations().Announce(ctx, fed, []byte("researcher dataset")); !errors.Is(err, federation.ErrResearcher) {
		t.Fatalf("researcher Announce: %v, want ErrResearcher", err)
	}
	eventually(t, 5*time.Second, "topic meshes formed", func() bool {
		return len(r.Federations().CatalogTopicHandle(fed).ListPeers()) >= 2 &&
			len(b.Federations().CatalogTopicHandle(fed).ListPeers()) >= 2
	})
	// Bypass the local refusal, as a modified researcher node would.
	if err := r.Federations().CatalogTopicHandle(fed).Publish(ctx, []byte("forced")); err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	if err := b.Federations().Announce(ctx, fed, []byte("agency dataset")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		msg, err := sub.Next(rctx)
		if err != nil {
			t.Fatal("agency announcement did not arrive")
		}
		if string(msg.Data) == "forced" {
			t.Fatal("researcher's announcement was delivered")
		}
		if string(msg.Data) == "agency dataset" {
			break
		}
	}
}

func TestNodeDownDuringTwoChangesCatchesUp(t *testing.T) {
	a := newNode(t, "A")
	bc := initDir(t, "B")
	b := startAt(t, bc)
	fed := federate(t, []*node.Node{a, b}, []federation.Role{federation.RoleAgency})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"C", "D"} {
		n := newNode(t, name)
		invite(t, a, fed, n, federation.RoleAgency)
	}
	if seqOf(a, fed) != 3 {
		t.Fatalf("a at seq %d, want 3", seqOf(a, fed))
	}
	b = startAt(t, bc)
	eventually(t, 10*time.Second, "restarted b has the latest document", func() bool { return seqOf(b, fed) == 3 })
}

func TestKofNAdminRule(t *testing.T) {
	a, b, c := newNode(t, "A"), newNode(t, "B"), newNode(t, "C")
	fed := federate(t, []*node.Node{a, b}, []federation.Role{federation.RoleAgency})
	for _, ch := range []federation.Change{
		{Op: "add-admin", PeerID: b.ID().String()},
		{Op: "threshold", Threshold: 2},
	} {
		if _, applied, err := a.Federations().Change(ctx, fed, ch); err != nil || !applied {
			t.Fatalf("%s: applied=%v err=%v", ch.Op, applied, err)
		}
	}
	eventually(t, 5*time.Second, "b sees threshold 2", func() bool { return seqOf(b, fed) == 3 })
	tok, applied, err := a.Federations().Change(ctx, fed, federation.Change{Op: "add", PeerID: c.ID().String(), Role: federation.RoleAgency})
	if err != nil || applied {
		t.Fatalf("one signature of two applied=%v err=%v", applied, err)
	}
	if seqOf(a, fed) != 3 {
		t.Fatal("proposal with one signature changed the document")
	}
	if _, _, err := a.Federations().Sign(ctx, tok); !errors.Is(err, federation.ErrAlreadySigned) {
		t.Fatalf("same admin signing twice: %v, want ErrAlreadySigned", err)
	}
	tok2, applied, err := b.Federations().Sign(ctx, tok)
	if err != nil || !applied {
		t.Fatalf("second admin's signature: applied=%v err=%v", applied, err)
	}
	eventually(t, 5*time.Second, "a applied the 2-of-2 change", func() bool { return seqOf(a, fed) == 4 })
	if _, err := c.Federations().Join(ctx, tok2); err != nil {
		t.Fatalf("c joins with the 2-of-2 token: %v", err)
	}
}

func TestJoinRefusesTokenWithoutThisNode(t *testing.T) {
	a, b := newNode(t, "A"), newNode(t, "B")
	in, _ := a.Federations().Create(ctx, "Region", nil)
	tok, _ := a.Federations().InviteToken(in.ID)
	if _, err := b.Federations().Join(ctx, tok); !errors.Is(err, federation.ErrNotMember) {
		t.Fatalf("join without invitation: %v, want ErrNotMember", err)
	}
	// However it was cut short, a token says so.
	for cut := 8; cut <= 11; cut++ {
		if _, err := b.Federations().Join(ctx, tok[:len(tok)-cut]); err == nil || !strings.Contains(err.Error(), "when copied?") {
			t.Errorf("token cut short by %d: %v, want it to say it was cut short", cut, err)
		}
	}
}

func TestFederationSurvivesRestart(t *testing.T) {
	c := initDir(t, "A")
	a := startAt(t, c)
	in, _ := a.Federations().Create(ctx, "Region", nil)
	a.Close()
	a = startAt(t, c)
	got, err := a.Federations().Show(in.ID)
	if err != nil || got.Name != "Region" || !got.Admin {
		t.Fatalf("after restart: %+v, %v", got, err)
	}
}

// BenchmarkMembershipPropagation20 measures the time from a membership change
// on the admin until all 19 other members of a 20-node federation applied it.
func BenchmarkMembershipPropagation20(b *testing.B) {
	const size = 20
	nodes := make([]*node.Node, size)
	for i := range nodes {
		nodes[i] = newNode(b, fmt.Sprintf("agency-%d", i))
	}
	roles := make([]federation.Role, size-1)
	for i := range roles {
		roles[i] = federation.RoleAgency
	}
	fed := federate(b, nodes, roles)
	for _, n := range nodes {
		eventually(b, 20*time.Second, "everyone at the same seq", func() bool { return seqOf(n, fed) == uint64(size-1) })
	}
	// Let the members connect to each other as they would in a running
	// federation.
	waitMesh(b, nodes, fed)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		op := federation.Change{Op: "role", PeerID: nodes[1+i%(size-1)].ID().String(), Role: federation.RoleResearcher}
		if i%2 == 1 {
			op.Role = federation.RoleAgency
		}
		start := time.Now()
		if _, _, err := nodes[0].Federations().Change(ctx, fed, op); err != nil {
			b.Fatal(err)
		}
		want := seqOf(nodes[0], fed)
		for _, n := range nodes[1:] {
			eventually(b, 10*time.Second, "change reached every member", func() bool { return seqOf(n, fed) == want })
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

var _ = peer.ID("")
var _ = protocol.ID("")
