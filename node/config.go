package node

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mimnode/mimnode/node/ngsild"
)

// Default ports, documented in the README. 7410 carries libp2p over TCP and
// QUIC; 7480 is the local HTTP API.
const (
	DefaultP2PPort = 7410
	DefaultAPIPort = 7480
)

// Config is a node's configuration, kept as DATA/config.toml. DataDir is not
// part of the file: it is where the file was found.
type Config struct {
	// DataDir is the node's data directory (key, config.toml, badger/, ...).
	DataDir string `toml:"-"`
	// Name is the agency's human-readable name, shown to federation peers.
	Name string `toml:"name"`

	Network   NetworkConfig  `toml:"network"`
	API       APIConfig      `toml:"api"`
	Resources ResourceConfig `toml:"resources"`
	ConnMgr   ConnMgrConfig  `toml:"connmgr"`
	Store     StoreConfig    `toml:"store"`
	Catalog   CatalogConfig  `toml:"catalog"`
	NGSILD    NGSILDConfig   `toml:"ngsild"`
	Log       LogConfig      `toml:"log"`
}

// NetworkConfig configures the libp2p host.
type NetworkConfig struct {
	// Listen lists the multiaddrs the host listens on (TCP and QUIC).
	Listen []string `toml:"listen"`
	// Announce, when set, replaces the addresses told to peers (for a node
	// behind NAT with a known public address).
	Announce []string `toml:"announce"`
	// MDNS enables LAN discovery.
	MDNS bool `toml:"mdns"`
	// TCPDialer, when set, makes every outbound TCP connection (not in the
	// file: testnet uses it to shape links with latency and bandwidth).
	TCPDialer tcp.DialerForAddr `toml:"-"`
}

// APIConfig configures the local HTTP API.
type APIConfig struct {
	// Listen is host:port; port 0 picks a free port. Anything but a loopback
	// host requires the API token on every request.
	Listen string `toml:"listen"`
}

// ResourceConfig sets the libp2p resource manager's system-wide limits.
type ResourceConfig struct {
	MaxMemoryMiB   int `toml:"max_memory_mib"`
	MaxConnections int `toml:"max_connections"`
	MaxStreams     int `toml:"max_streams"`
	MaxFDs         int `toml:"max_fds"`
}

// ConnMgrConfig sets the connection manager's watermarks.
type ConnMgrConfig struct {
	Low         int      `toml:"low"`
	High        int      `toml:"high"`
	GracePeriod Duration `toml:"grace_period"`
}

// StoreConfig tunes the badger store.
type StoreConfig struct {
	CacheMiB int64 `toml:"cache_mib"`
}

// CatalogConfig tunes the node's catalogue.
type CatalogConfig struct {
	// VersionInterval is how often the versions of the node's datasets are
	// rebuilt when their entities changed.
	VersionInterval Duration `toml:"version_interval"`
	// ResyncInterval is how often, on average (jittered), the node pulls
	// each connected publisher's whole catalogue to withdraw datasets that
	// publisher has since hidden from it.
	ResyncInterval Duration `toml:"resync_interval"`
}

// NGSILDConfig tunes the node's NGSI-LD service.
type NGSILDConfig struct {
	// NotifyAllow lists where subscriptions may send notifications:
	// address ranges ("10.20.0.0/16") and host patterns
	// ("https://*.city.example", "receiver.lan:8080"). A name pattern admits
	// public addresses only, unless a range lists them. The default is
	// loopback only; anything else must be listed (node/ngsild/notifyallow.go).
	NotifyAllow []string `toml:"notify_allow"`
	// ValidateModels checks entities of the types bound to a data model
	// (the shipped Smart Data Models, and those an admin binds) against
	// its JSON Schema on every write, refusing one that does not match
	// (MIM2). Turn it off for clients that create entities in parts (an
	// IoT agent sending a model's required attributes later).
	ValidateModels bool `toml:"validate_models"`
	// Tenants are tenant names (the NGSILD-Tenant header) the node answers
	// as its own data, for clients that always name one: the FIWARE IoT
	// Agent sends its fiware-service. A request naming another tenant is
	// refused: the node holds one agency's data, with no tenants.
	Tenants []string `toml:"tenants"`
}

// LogConfig selects the daemon's log output.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// Duration is a time.Duration written as a string ("30s") in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the configuration a new node starts with.
func Default() Config {
	return Config{
		Name: "mimnode",
		Network: NetworkConfig{
			Listen: []string{
				fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultP2PPort),
				fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultP2PPort),
			},
		},
		API:       APIConfig{Listen: fmt.Sprintf("127.0.0.1:%d", DefaultAPIPort)},
		Resources: ResourceConfig{MaxMemoryMiB: 256, MaxConnections: 512, MaxStreams: 4096, MaxFDs: 512},
		ConnMgr:   ConnMgrConfig{Low: 64, High: 192, GracePeriod: Duration{time.Minute}},
		Store:     StoreConfig{CacheMiB: 32},
		Catalog:   CatalogConfig{VersionInterval: Duration{time.Minute}, ResyncInterval: Duration{10 * time.Minute}},
		NGSILD:    NGSILDConfig{NotifyAllow: slices.Clone(ngsild.DefaultNotifyAllow), ValidateModels: true},
		Log:       LogConfig{Level: "info", Format: "text"},
	}
}

// ErrInvalidConfig is wrapped by every error Validate and LoadConfig return
// for a configuration a user wrote wrongly.
var ErrInvalidConfig = errors.New("invalid configuration")

// Validate checks every field and names the first one that is wrong.
func (c *Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, a...))
	}
	if strings.TrimSpace(c.Name) == "" {
		return bad("name", "must not be empty")
	}
	if len(c.Network.Listen) == 0 {
		return bad("network.listen", "needs at least one multiaddr")
	}
	for i, s := range c.Network.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return bad(fmt.Sprintf("network.listen[%d]", i), "%q is not a multiaddr: %v%s", s, err, multiaddrHint(s))
		}
	}
	for i, s := range c.Network.Announce {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return bad(fmt.Sprintf("network.announce[%d]", i), "%q is not a multiaddr: %v%s", s, err, multiaddrHint(s))
		}
	}
	host, port, err := net.SplitHostPort(c.API.Listen)
	if err != nil {
		return bad("api.listen", "%q is not host:port: %v", c.API.Listen, err)
	}
	if host == "" {
		return bad("api.listen", "%q has no host (use 127.0.0.1 for local use only)", c.API.Listen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return bad("api.listen", "bad port %q", port)
	}
	if c.Resources.MaxMemoryMiB < 16 {
		return bad("resources.max_memory_mib", "%d is below the minimum of 16", c.Resources.MaxMemoryMiB)
	}
	for field, v := range map[string]int{
		"resources.max_connections": c.Resources.MaxConnections,
		"resources.max_streams":     c.Resources.MaxStreams,
		"resources.max_fds":         c.Resources.MaxFDs,
	} {
		if v < 1 {
			return bad(field, "must be at least 1, got %d", v)
		}
	}
	if c.ConnMgr.Low < 1 || c.ConnMgr.High < c.ConnMgr.Low {
		return bad("connmgr", "need 1 <= low <= high, got low=%d high=%d", c.ConnMgr.Low, c.ConnMgr.High)
	}
	if c.Store.CacheMiB < 1 {
		return bad("store.cache_mib", "must be at least 1, got %d", c.Store.CacheMiB)
	}
	if c.Catalog.VersionInterval.Duration < time.Second {
		return bad("catalog.version_interval", "must be at least 1s, got %s", c.Catalog.VersionInterval.Duration)
	}
	if c.Catalog.ResyncInterval.Duration < time.Second {
		return bad("catalog.resync_interval", "must be at least 1s, got %s", c.Catalog.ResyncInterval.Duration)
	}
	if _, err := ngsild.ParseNotifyAllow(c.NGSILD.NotifyAllow); err != nil {
		return bad("ngsild.notify_allow", "%v", err)
	}
	for _, t := range c.NGSILD.Tenants {
		if strings.TrimSpace(t) == "" || t != strings.TrimSpace(t) {
			return bad("ngsild.tenants", "%q is not a tenant name (empty, or with spaces around it)", t)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", "%q is not text or json", c.Log.Format)
	}
	return nil
}

// LoadConfig reads path over Default and validates the result. Unknown keys
// are errors, so a misspelt setting is never silently ignored.
func LoadConfig(path string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("read config: %w (to write it again with the defaults, keeping the node's identity: mimnode init --data %s, with --name, --listen or --api for other settings)", err, filepath.Dir(path))
	}
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		// init always writes every setting: an empty file was truncated
		// (a full disk, a copy cut short), and the defaults it would fall
		// back to listen on every interface.
		return c, fmt.Errorf("%w: %s is empty (init writes every setting; restore it from a backup, or copy the one that `mimnode init` writes into a new directory)", ErrInvalidConfig, path)
	}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return c, fmt.Errorf("%w: %s line %d: %s", ErrInvalidConfig, path, pe.Position.Line, pe.Message)
		}
		return c, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("%w: %s: unknown key %s", ErrInvalidConfig, path, strings.Join(keys, ", "))
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteConfig writes c to path as TOML, with a header saying what the file is.
func WriteConfig(path string, c Config) error {
	var buf bytes.Buffer
	buf.WriteString("# mimnode node configuration. See `mimnode help init` and the README.\n")
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := writeFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// multiaddrHint suggests the multiaddr an address written as host:port
// (what most tools take) stands for, or says nothing.
func multiaddrHint(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Sprintf(" (for host %s port %s, write /dns/%s/tcp/%s)", host, port, host, port)
	}
	v := "ip4"
	if ip.Is6() {
		v = "ip6"
	}
	return fmt.Sprintf(" (for %s, write /%s/%s/tcp/%s, and /%s/%s/udp/%s/quic-v1 for QUIC)", s, v, ip, port, v, ip, port)
}
