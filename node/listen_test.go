package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestUnopened(t *testing.T) {
	listening := []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/41234"),
		ma.StringCast("/ip4/0.0.0.0/tcp/4001"),
		ma.StringCast("/ip4/127.0.0.1/udp/5555/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g"),
	}
	for _, c := range []struct {
		configured string
		open       bool
	}{
		{"/ip4/127.0.0.1/tcp/0", true},                      // port 0: any port
		{"/ip4/0.0.0.0/tcp/4001", true},                     // the same port
		{"/ip4/0.0.0.0/tcp/4002", false},                    // another port
		{"/ip4/10.0.0.1/tcp/0", false},                      // another address
		{"/ip4/127.0.0.1/udp/0/quic-v1", false},             // no QUIC listener of its own;
		{"/ip4/127.0.0.1/udp/0/quic-v1/webtransport", true}, // the listener adds a certificate hash
		{"/ip6/::1/tcp/0", false},
		{"not a multiaddr", false},
	} {
		got := !slices.Contains(unopened([]string{c.configured}, listening), c.configured)
		if got != c.open {
			t.Errorf("%s opened = %v, want %v", c.configured, got, c.open)
		}
	}
}

// A node whose configured port is taken by another program still starts
// on its other addresses, and its log names the one it could not open.
func TestNodeWarnsOfAListenAddressItCouldNotOpen(t *testing.T) {
	busy := takenPort(t)
	c := testConfig(t, "/ip4/127.0.0.1/tcp/0", busy)
	var logs bytes.Buffer
	n, err := New(context.Background(), c, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New with one of two listen addresses taken: %v", err)
	}
	defer n.Close()
	var tcp []ma.Multiaddr
	for _, a := range n.Host().Network().ListenAddresses() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			tcp = append(tcp, a)
		}
	}
	if len(tcp) != 1 || opens(ma.StringCast(busy), tcp[0]) {
		t.Errorf("listening on TCP %v, want only on the free port, not %s", tcp, busy)
	}
	var warned []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "not listening on a configured address") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "address="+busy) {
		t.Errorf("warnings %q, want one naming %s", warned, busy)
	}
}

// A second node started on the TCP port of one already running on the
// machine does not share it (libp2p's default SO_REUSEPORT would let it
// bind the port too, and the kernel would hand each node part of the
// other's incoming connections): it warns, as for any port in use.
func TestSecondNodeDoesNotShareATCPPort(t *testing.T) {
	first, err := New(context.Background(), testConfig(t, "/ip4/127.0.0.1/tcp/0"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var taken string
	for _, a := range first.Host().Network().ListenAddresses() {
		if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			taken = "/ip4/127.0.0.1/tcp/" + port
		}
	}
	if taken == "" {
		t.Fatalf("first node listens on no TCP address: %v", first.Host().Network().ListenAddresses())
	}
	var logs bytes.Buffer
	second, err := New(context.Background(), testConfig(t, "/ip4/127.0.0.1/tcp/0", taken), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("New with one of two listen addresses taken by another node: %v", err)
	}
	defer second.Close()
	for _, a := range second.Host().Network().ListenAddresses() {
		if opens(ma.StringCast(taken), a) {
			t.Errorf("second node listens on %s, the first node's port", a)
		}
	}
	if !strings.Contains(logs.String(), "address="+taken) {
		t.Errorf("second node's log does not name %s as not opened:\n%s", taken, logs.String())
	}
}

// A node whose addresses all open (TCP and QUIC, as init configures them)
// warns of none.
func TestNodeOnFreeAddressesWarnsOfNone(t *testing.T) {
	var logs bytes.Buffer
	n, err := New(context.Background(), testConfig(t), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if strings.Contains(logs.String(), "not listening on a configured address") {
		t.Errorf("warned though every address opened (%v):\n%s", n.Host().Network().ListenAddresses(), logs.String())
	}
}

// TestNodeWhoseOnlyPortIsTakenSaysWhatToChange: with every listen address
// taken, the node does not start, and says which setting to change
// rather than only libp2p's "failed to listen on any addresses".
func TestNodeWhoseOnlyPortIsTakenSaysWhatToChange(t *testing.T) {
	busy := takenPort(t)
	n, err := New(context.Background(), testConfig(t, busy), slog.New(slog.DiscardHandler))
	if err == nil {
		n.Close()
		t.Fatal("a node started with its only listen address taken")
	}
	if !strings.Contains(err.Error(), "[network] listen") || !strings.Contains(err.Error(), busy) {
		t.Errorf("error %q, want it to name [network] listen and %s", err, busy)
	}
}

// takenPort holds a loopback TCP port until the test ends and returns its
// multiaddr.
func takenPort(t *testing.T) string {
	t.Helper()
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", taken.Addr().(*net.TCPAddr).Port)
}
