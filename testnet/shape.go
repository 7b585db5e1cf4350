package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Link describes the network between two members: one-way latency and, in
// each direction, a bandwidth in bytes per second (0: unlimited).
type Link struct {
	Latency   time.Duration
	Bandwidth int64
}

// ErrNoShaping is returned by Shape on a testnet started without
// Options.Shaping.
var ErrNoShaping = errors.New("testnet: started without Options.Shaping")

// links are the shaped links of a testnet, keyed by the unordered pair of
// member indexes; guarded by linksMu.
type linkKey struct{ a, b int }

func keyOf(i, j int) linkKey {
	if i > j {
		i, j = j, i
	}
	return linkKey{i, j}
}

// Shape sets the link between members i and j and drops their current
// connections, so they reconnect through it. Shaping works on TCP, the only
// transport a shaping testnet listens on (QUIC packets cannot be delayed
// from inside the process).
func (n *Net) Shape(i, j int, l Link) *Net {
	if !n.opts.Shaping {
		n.fail(ErrNoShaping)
		return n
	}
	n.linksMu.Lock()
	n.links[keyOf(i, j)] = l
	n.linksMu.Unlock()
	n.reconnect(i, j)
	return n
}

// Unshape gives members i and j an unshaped link again.
func (n *Net) Unshape(i, j int) *Net {
	n.linksMu.Lock()
	delete(n.links, keyOf(i, j))
	n.linksMu.Unlock()
	n.reconnect(i, j)
	return n
}

func (n *Net) reconnect(i, j int) {
	ni, nj := n.Members[i].Node(), n.Members[j].Node()
	if ni == nil || nj == nil {
		return
	}
	ni.Host().Network().ClosePeer(nj.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.fail(ni.Host().Connect(ctx, nj.AddrInfo()))
}

// dialerFor is member from's TCP dialer: it shapes connections to members
// that have a link with it.
func (n *Net) dialerFor(from int) tcp.DialerForAddr {
	return func(raddr ma.Multiaddr) (tcp.ContextDialer, error) {
		return shapingDialer{n: n, from: from, raddr: raddr}, nil
	}
}

type shapingDialer struct {
	n     *Net
	from  int
	raddr ma.Multiaddr
}

func (d shapingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	to := d.n.ownerOf(address)
	if to < 0 {
		return c, nil
	}
	d.n.linksMu.Lock()
	l, ok := d.n.links[keyOf(d.from, to)]
	d.n.linksMu.Unlock()
	if !ok {
		return c, nil
	}
	return newShapedConn(c, l), nil
}

// ownerOf returns the member listening on a host:port, or -1.
func (n *Net) ownerOf(address string) int {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return -1
	}
	for i, m := range n.Members {
		nd := m.Node()
		if nd == nil {
			continue
		}
		for _, a := range nd.Host().Addrs() {
			if p, err := a.ValueForProtocol(ma.P_TCP); err == nil && p == port {
				return i
			}
		}
	}
	return -1
}

// shapedConn delays and paces both directions of a connection: what is
// written reaches the wire Latency later and at most Bandwidth bytes per
// second; what arrives is handed to the reader Latency later, paced the same
// way. A round trip therefore takes at least twice the latency.
type shapedConn struct {
	net.Conn
	link Link

	out     chan chunk // written, waiting for its time on the wire
	in      chan chunk // received, waiting to be read
	pending []byte     // rest of the chunk Read is handing out
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex // guards outDue, deadline, writeErr
	outDue   time.Time
	deadline time.Time
	writeErr error
}

type chunk struct {
	data []byte
	due  time.Time
	err  error
}

func newShapedConn(c net.Conn, l Link) *shapedConn {
	s := &shapedConn{Conn: c, link: l, out: make(chan chunk, 64), in: make(chan chunk, 64), closed: make(chan struct{})}
	go s.writer()
	go s.reader()
	return s
}

// due returns when a chunk of size bytes, ready now, is delivered on a link
// whose previous chunk was delivered at prev.
func (s *shapedConn) due(prev time.Time, size int) time.Time {
	t := time.Now().Add(s.link.Latency)
	if s.link.Bandwidth > 0 {
		if paced := prev.Add(time.Duration(int64(size) * int64(time.Second) / s.link.Bandwidth)); paced.After(t) {
			t = paced
		}
	}
	return t
}

func (s *shapedConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	err := s.writeErr
	s.outDue = s.due(s.outDue, len(p))
	due := s.outDue
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case s.out <- chunk{data: append([]byte(nil), p...), due: due}:
		return len(p), nil
	case <-s.closed:
		return 0, net.ErrClosed
	}
}

func (s *shapedConn) writer() {
	for {
		select {
		case c := <-s.out:
			time.Sleep(time.Until(c.due))
			if _, err := s.Conn.Write(c.data); err != nil {
				s.mu.Lock()
				s.writeErr = err
				s.mu.Unlock()
				return
			}
		case <-s.closed:
			return
		}
	}
}

func (s *shapedConn) reader() {
	var prev time.Time
	for {
		buf := make([]byte, 32<<10)
		k, err := s.Conn.Read(buf)
		if k > 0 {
			prev = s.due(prev, k)
			select {
			case s.in <- chunk{data: buf[:k], due: prev}:
			case <-s.closed:
				return
			}
		}
		if err != nil {
			select {
			case s.in <- chunk{err: err, due: time.Now().Add(s.link.Latency)}:
			case <-s.closed:
			}
			return
		}
	}
}

func (s *shapedConn) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		s.mu.Lock()
		dl := s.deadline
		s.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			t := time.NewTimer(time.Until(dl))
			defer t.Stop()
			timeout = t.C
		}
		var c chunk
		select {
		case c = <-s.in:
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		case <-s.closed:
			return 0, net.ErrClosed
		}
		time.Sleep(time.Until(c.due))
		if c.err != nil {
			if c.err == io.EOF {
				return 0, io.EOF
			}
			return 0, c.err
		}
		s.pending = c.data
	}
	k := copy(p, s.pending)
	s.pending = s.pending[k:]
	return k, nil
}

// SetReadDeadline bounds Read; writes never block on the wire, so write
// deadlines are kept only on the underlying connection.
func (s *shapedConn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline and the underlying write deadline.
func (s *shapedConn) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.Conn.SetWriteDeadline(t)
}

func (s *shapedConn) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.Conn.Close()
}

func (l Link) String() string {
	bw := "unlimited"
	if l.Bandwidth > 0 {
		bw = strconv.FormatInt(l.Bandwidth, 10) + " B/s"
	}
	return fmt.Sprintf("latency %s, bandwidth %s", l.Latency, bw)
}
