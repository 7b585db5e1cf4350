package ngsild

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Notification endpoint allowlist.
//
// A subscription makes the node POST to a URL an API client chose, so
// without a limit any client could make the node reach addresses only it
// can reach (its own loopback services, the LAN, a cloud metadata
// endpoint): server-side request forgery. NotifyOptions.Allow (the node's
// `[ngsild] notify_allow`) lists what may be notified, each entry one of
//
//	"10.20.0.0/16", "192.0.2.7"       an address range or address
//	"https://*.city.example"         a host name pattern, optionally with
//	"receiver.city.example:8443"     scheme and port; "*." matches any
//	                                 subdomain (not the name itself)
//
// An endpoint whose host is an address is allowed when the address is in
// a listed range. A host name matched by a name pattern is allowed, but
// when it is notified its addresses must still be public ones (not
// loopback, private, link-local, shared or multicast) unless a listed
// range holds them; any other host name is allowed when it resolves into
// a listed range. The check runs when a subscription is created or its
// endpoint changed (BadRequestData naming the endpoint) and again at every
// connection, on the addresses actually dialled after DNS resolution, so a
// name that later resolves somewhere forbidden is refused. Redirects are
// not followed and proxies from the environment are not used.
//
// DefaultNotifyAllow, the default, allows loopback only: notifications to
// a local service work out of the box, anything else must be listed.

// DefaultNotifyAllow is the allowlist used when none is configured.
var DefaultNotifyAllow = []string{"127.0.0.0/8", "::1/128"}

// ErrEndpointNotAllowed is returned (wrapped) for a notification endpoint
// the allowlist does not admit.
var ErrEndpointNotAllowed = errors.New("notification endpoint not allowed")

// Resolver finds the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Allowlist is a parsed notification endpoint allowlist.
type Allowlist struct {
	nets     []netip.Prefix
	names    []nameRule
	resolver Resolver
}

// nameRule is a [scheme://]host[:port] entry.
type nameRule struct {
	scheme string // "" for any
	host   string // lower case, without "*."
	sub    bool   // "*.host": any subdomain of host
	port   string // "" for any
}

// ParseNotifyAllow parses allowlist entries (see the package notes in
// notifyallow.go); an error names the first bad entry.
func ParseNotifyAllow(entries []string) (*Allowlist, error) {
	a := &Allowlist{resolver: net.DefaultResolver}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			a.nets = append(a.nets, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			a.nets = append(a.nets, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		r, err := parseNameRule(e)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e, err)
		}
		a.names = append(a.names, r)
	}
	return a, nil
}

func parseNameRule(e string) (nameRule, error) {
	var r nameRule
	if e == "" {
		return r, errors.New("empty")
	}
	if i := strings.Index(e, "://"); i >= 0 {
		r.scheme, e = strings.ToLower(e[:i]), e[i+3:]
		if r.scheme != "http" && r.scheme != "https" {
			return r, fmt.Errorf("scheme %q is not http or https", r.scheme)
		}
	}
	e = strings.TrimSuffix(e, "/")
	if strings.ContainsAny(e, "/?#@[]") {
		return r, errors.New("want a CIDR, an address or [scheme://]host[:port]")
	}
	host := e
	if i := strings.LastIndexByte(e, ':'); i >= 0 {
		host, r.port = e[:i], e[i+1:]
		if n, err := strconv.Atoi(r.port); err != nil || n < 1 || n > 65535 {
			return r, fmt.Errorf("port %q is not a number from 1 to 65535", r.port)
		}
	}
	host = strings.ToLower(host)
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		r.sub, host = true, rest
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return r, errors.New("write an address as a CIDR or a bare address, without scheme or port")
	}
	if host == "" || strings.ContainsAny(host, "*_ ") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return r, fmt.Errorf("%q is not a host name (a leading \"*.\" is the only wildcard)", host)
	}
	r.host = host
	return r, nil
}

// named reports whether a name rule admits scheme://host:port.
func (a *Allowlist) named(scheme, host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, r := range a.names {
		if r.scheme != "" && r.scheme != scheme || r.port != "" && r.port != port {
			continue
		}
		if r.sub && strings.HasSuffix(host, "."+r.host) || !r.sub && host == r.host {
			return true
		}
	}
	return false
}

// listed reports whether a listed range holds ip.
func (a *Allowlist) listed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598, carrier-grade NAT

// public reports whether ip is a globally routed unicast address.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedSpace.Contains(ip)
}

// dialable reports whether a connection to ip may be opened for a host a
// name rule admitted (byName) or not.
func (a *Allowlist) dialable(ip netip.Addr, byName bool) bool {
	return a.listed(ip) || byName && public(ip)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Check decides whether uri may be a notification endpoint, resolving a
// host name that no name rule admits (with ctx).
func (a *Allowlist) Check(ctx context.Context, uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrEndpointNotAllowed, uri, err)
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if a.listed(ip) {
			return nil
		}
		return fmt.Errorf("%w: %s: address %s is not in [ngsild] notify_allow of the node's config.toml", ErrEndpointNotAllowed, uri, ip)
	}
	if a.named(u.Scheme, host, effectivePort(u)) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := a.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: %s: host %s matches no name in [ngsild] notify_allow of the node's config.toml and cannot be resolved: %v", ErrEndpointNotAllowed, uri, host, err)
	}
	for _, ip := range ips {
		if a.listed(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s: host %s matches no name in [ngsild] notify_allow of the node's config.toml and resolves to %v, outside its ranges", ErrEndpointNotAllowed, uri, host, ips)
}

// byNameKey carries, in a request's context, whether a name rule admitted
// its URL, for the dialer.
type byNameKey struct{}

// dial opens a connection to addr (host:port) only to addresses the
// allowlist admits, checking what the name resolves to now.
func (a *Allowlist) dial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad port in %q", addr)
		}
		byName, _ := ctx.Value(byNameKey{}).(bool)
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips, byName = []netip.Addr{ip}, false
		} else if ips, err = a.resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
		var dialErr error
		for _, ip := range ips {
			if !a.dialable(ip, byName) {
				continue
			}
			c, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip.Unmap(), uint16(port)).String())
			if err == nil {
				return c, nil
			}
			dialErr = err
		}
		if dialErr != nil {
			return nil, dialErr
		}
		return nil, fmt.Errorf("%w: %s resolves to %v, which [ngsild] notify_allow of the node's config.toml does not admit", ErrEndpointNotAllowed, host, ips)
	}
}

// client is the HTTP client notifications are posted with: keep-alive
// connections (idle ones kept for every worker of a receiver), dials
// checked against the allowlist, no redirects, no proxy.
func (a *Allowlist) client(timeout time.Duration, workers int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         a.dial(d),
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: max(workers, 2),
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// requestContext marks a notification request's context with whether a
// name rule admits its URL.
func (a *Allowlist) requestContext(ctx context.Context, u *url.URL) context.Context {
	return context.WithValue(ctx, byNameKey{}, a.named(u.Scheme, u.Hostname(), effectivePort(u)))
}
