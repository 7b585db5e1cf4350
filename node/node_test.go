package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mimnode/mimnode/node/problem"
)

// testConfig initialises a data directory in a temp dir with loopback
// listeners on free ports.
func testConfig(t *testing.T, listen ...string) Config {
	t.Helper()
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	c, err := Init(t.TempDir(), InitOptions{Name: "Test agency", Listen: listen, API: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startNode(t *testing.T, c Config) *Node {
	t.Helper()
	n, err := New(context.Background(), c, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// addrWith returns n's first listen address that carries protocol code.
func addrWith(t *testing.T, n *Node, code int) peer.AddrInfo {
	t.Helper()
	for _, a := range n.Host().Addrs() {
		if _, err := a.ValueForProtocol(code); err == nil {
			return peer.AddrInfo{ID: n.ID(), Addrs: []ma.Multiaddr{a}}
		}
	}
	t.Fatalf("node has no address with protocol %d: %v", code, n.Host().Addrs())
	return peer.AddrInfo{}
}

func TestTwoNodesConnectAndPing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      int
		transport string
	}{
		{"tcp", ma.P_TCP, "tcp"},
		{"quic", ma.P_QUIC_V1, "quic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, testConfig(t))
			b := startNode(t, testConfig(t))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ai := addrWith(t, b, tc.code)
			p2p, _ := peer.AddrInfoToP2pAddrs(&ai)
			res, err := a.Connect(ctx, p2p[0].String())
			if err != nil {
				t.Fatalf("Connect over %s: %v", tc.name, err)
			}
			if res.PeerID != b.ID().String() {
				t.Fatalf("connected to %s, want %s", res.PeerID, b.ID())
			}
			peers := a.Peers()
			if len(peers) != 1 || peers[0].PeerID != b.ID().String() || peers[0].Transport != tc.transport {
				t.Fatalf("Peers() = %+v, want one %s peer %s", peers, tc.transport, b.ID())
			}
			if _, err := b.Ping(ctx, a.ID()); err != nil {
				t.Fatalf("ping back: %v", err)
			}
		})
	}
}

func TestRestartKeepsPeerID(t *testing.T) {
	c := testConfig(t)
	n, err := New(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := n.ID()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, c)
	if n2.ID() != id {
		t.Fatalf("peer ID after restart = %s, want %s", n2.ID(), id)
	}
}

func TestSecondDaemonOnSameDataDirFails(t *testing.T) {
	c := testConfig(t)
	startNode(t, c)
	_, err := New(context.Background(), c, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second New on %s: err = %v, want ErrLocked", c.DataDir, err)
	}
	// Nor does init change the settings of a running node, which would
	// not see them before it restarts.
	if _, err := Init(c.DataDir, InitOptions{Name: "Changed while running"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Init with settings on a running node's dir: err = %v, want ErrLocked", err)
	}
	if got, _ := Load(c.DataDir); got.Name == "Changed while running" {
		t.Fatal("Init changed a running node's config.toml")
	}
}

func TestInitRefusesToOverwriteIdentity(t *testing.T) {
	c := testConfig(t)
	key1, _ := os.ReadFile(filepath.Join(c.DataDir, KeyFile))
	if _, err := Init(c.DataDir, InitOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("Init on existing dir: err = %v, want ErrExists", err)
	}
	key2, _ := os.ReadFile(filepath.Join(c.DataDir, KeyFile))
	if string(key1) != string(key2) {
		t.Fatal("refused Init still changed the key")
	}
	// Settings given change config.toml and keep the identity.
	if _, err := Init(c.DataDir, InitOptions{API: "127.0.0.1:0", Name: "Renamed office"}); err != nil {
		t.Fatalf("Init with settings on an existing dir: %v", err)
	}
	if key, _ := os.ReadFile(filepath.Join(c.DataDir, KeyFile)); string(key) != string(key1) {
		t.Fatal("Init with settings changed the key")
	}
	if got, err := Load(c.DataDir); err != nil || got.Name != "Renamed office" || got.API.Listen != "127.0.0.1:0" {
		t.Fatalf("after Init with settings: name %q, api %q, err %v", got.Name, got.API.Listen, err)
	}
	// A bad setting changes nothing.
	if _, err := Init(c.DataDir, InitOptions{API: "no port"}); err == nil {
		t.Fatal("Init with a bad API address succeeded")
	}
	if got, _ := Load(c.DataDir); got.API.Listen != "127.0.0.1:0" {
		t.Fatalf("a refused Init changed api.listen to %q", got.API.Listen)
	}
	if _, err := Init(c.DataDir, InitOptions{Force: true}); err != nil {
		t.Fatalf("Init --force: %v", err)
	}
	key3, _ := os.ReadFile(filepath.Join(c.DataDir, KeyFile))
	if string(key3) == string(key1) {
		t.Fatal("Init --force kept the old key")
	}
	fi, _ := os.Stat(filepath.Join(c.DataDir, KeyFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %o, want 600", fi.Mode().Perm())
	}
}

// TestInitForceKeepsConfig checks that a forced init replaces the key
// only: the agency's name, listen addresses and API address stay, and a
// flag given changes just its own setting.
func TestInitForceKeepsConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	if _, err := Init(dir, InitOptions{Name: "Keep Me", Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, InitOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Keep Me" || len(c.Network.Listen) != 1 || c.Network.Listen[0] != "/ip4/127.0.0.1/tcp/0" || c.API.Listen != "127.0.0.1:0" {
		t.Fatalf("after init --force: name %q, listen %v, api %q; want the settings before", c.Name, c.Network.Listen, c.API.Listen)
	}
	if _, err := Init(dir, InitOptions{Force: true, Name: "New Name"}); err != nil {
		t.Fatal(err)
	}
	if c, _ = Load(dir); c.Name != "New Name" || c.API.Listen != "127.0.0.1:0" {
		t.Fatalf("after init --force --name: name %q, api %q", c.Name, c.API.Listen)
	}
}

// TestLostKeyIsNotANewDirectory checks that a data directory with a
// configuration but no key is ErrKeyMissing, not ErrNotInitialized (which
// run answers by initialising it afresh, with a new identity and default
// settings), and that nothing is written.
func TestLostKeyIsNotANewDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n")
	if _, err := Init(dir, InitOptions{Name: "Water Utility", API: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	os.Remove(filepath.Join(dir, KeyFile))
	_, err := Load(dir)
	if !errors.Is(err, ErrKeyMissing) || errors.Is(err, ErrNotInitialized) {
		t.Fatalf("Load without the key: %v, want ErrKeyMissing", err)
	}
	if !strings.Contains(err.Error(), "backup") {
		t.Errorf("the error does not say how to recover: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ConfigFile)); string(after) != string(cfg) {
		t.Error("Load changed config.toml")
	}
	// A store alone is enough to say the directory was in use.
	os.Remove(filepath.Join(dir, ConfigFile))
	os.MkdirAll(filepath.Join(dir, StoreDir), 0o700)
	if _, err := Load(dir); !errors.Is(err, ErrKeyMissing) {
		t.Fatalf("Load with a store but no key: %v, want ErrKeyMissing", err)
	}
}

func TestBadInputs(t *testing.T) {
	t.Run("empty config", func(t *testing.T) {
		c := testConfig(t)
		os.WriteFile(filepath.Join(c.DataDir, ConfigFile), []byte("\n  \n"), 0o644)
		_, err := Load(c.DataDir)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "is empty") {
			t.Fatalf("Load with an empty config.toml: err = %v, want ErrInvalidConfig saying it is empty", err)
		}
	})
	t.Run("unknown config key", func(t *testing.T) {
		c := testConfig(t)
		path := filepath.Join(c.DataDir, ConfigFile)
		b, _ := os.ReadFile(path)
		os.WriteFile(path, append(b, []byte("\n[network]\nlisten_adress = []\n")...), 0o644)
		_, err := Load(c.DataDir)
		if err == nil || !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("Load: err = %v, want ErrInvalidConfig", err)
		}
	})
	t.Run("misspelt key names the key and file", func(t *testing.T) {
		c := testConfig(t)
		path := filepath.Join(c.DataDir, ConfigFile)
		os.WriteFile(path, []byte("name = \"x\"\nnmae = \"y\"\n"), 0o644)
		_, err := Load(c.DataDir)
		if err == nil || !strings.Contains(err.Error(), "nmae") || !strings.Contains(err.Error(), path) {
			t.Fatalf("Load: err = %v, want it to name key nmae and %s", err, path)
		}
	})
	t.Run("bad multiaddr", func(t *testing.T) {
		_, err := Init(t.TempDir(), InitOptions{Listen: []string{"/ip4/127.0.0.1/tcp/notaport"}})
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "network.listen[0]") {
			t.Fatalf("Init: err = %v, want ErrInvalidConfig naming network.listen[0]", err)
		}
	})
	t.Run("bad value names the field", func(t *testing.T) {
		c := testConfig(t)
		path := filepath.Join(c.DataDir, ConfigFile)
		os.WriteFile(path, []byte("[log]\nlevel = \"loud\"\n"), 0o644)
		_, err := Load(c.DataDir)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "log.level") {
			t.Fatalf("Load: err = %v, want ErrInvalidConfig naming log.level", err)
		}
	})
	t.Run("bad notify_allow entry names the field", func(t *testing.T) {
		c := testConfig(t)
		path := filepath.Join(c.DataDir, ConfigFile)
		os.WriteFile(path, []byte("[ngsild]\nnotify_allow = [\"127.0.0.0/8\", \"ftp://x.example\"]\n"), 0o644)
		_, err := Load(c.DataDir)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "ngsild.notify_allow") || !strings.Contains(err.Error(), "ftp://x.example") {
			t.Fatalf("Load: err = %v, want ErrInvalidConfig naming ngsild.notify_allow and the entry", err)
		}
	})
	t.Run("blank tenant names the field", func(t *testing.T) {
		c := testConfig(t)
		path := filepath.Join(c.DataDir, ConfigFile)
		os.WriteFile(path, []byte("[ngsild]\ntenants = [\"openiot\", \" \"]\n"), 0o644)
		_, err := Load(c.DataDir)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "ngsild.tenants") {
			t.Fatalf("Load: err = %v, want ErrInvalidConfig naming ngsild.tenants", err)
		}
	})
	t.Run("unwritable data directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			// root ignores permission bits; use a path under a regular file instead.
			f := filepath.Join(t.TempDir(), "file")
			os.WriteFile(f, nil, 0o644)
			if _, err := Init(filepath.Join(f, "data"), InitOptions{}); err == nil {
				t.Fatal("Init under a regular file succeeded")
			}
			return
		}
		dir := t.TempDir()
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		if _, err := Init(filepath.Join(dir, "data"), InitOptions{}); err == nil {
			t.Fatal("Init in a read-only directory succeeded")
		}
	})
	t.Run("corrupt key file", func(t *testing.T) {
		c := testConfig(t)
		os.WriteFile(filepath.Join(c.DataDir, KeyFile), []byte("not a key"), 0o600)
		_, err := New(context.Background(), c, nil)
		if !errors.Is(err, ErrCorruptKey) {
			t.Fatalf("New: err = %v, want ErrCorruptKey", err)
		}
		// The failed start must release the directory.
		if _, err := lockDir(c.DataDir); err != nil {
			t.Fatalf("directory still locked after failed start: %v", err)
		}
	})
	t.Run("key readable by others", func(t *testing.T) {
		c := testConfig(t)
		os.Chmod(filepath.Join(c.DataDir, KeyFile), 0o644)
		if _, err := New(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("New: err = %v, want advice to chmod 600", err)
		}
	})
	t.Run("API token readable by others", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no Unix modes")
		}
		c := testConfig(t)
		os.Chmod(filepath.Join(c.DataDir, TokenFile), 0o644)
		_, err := New(context.Background(), c, nil)
		if err == nil || !strings.Contains(err.Error(), "API token") || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("New: err = %v, want advice to chmod 600 the token", err)
		}
		if _, err := lockDir(c.DataDir); err != nil {
			t.Fatalf("directory still locked after failed start: %v", err)
		}
	})
	t.Run("uninitialised data directory", func(t *testing.T) {
		if _, err := Load(t.TempDir()); !errors.Is(err, ErrNotInitialized) {
			t.Fatalf("Load: err = %v, want ErrNotInitialized", err)
		}
	})
}

func TestAPITokenRequiredOffLoopback(t *testing.T) {
	c, err := Init(t.TempDir(), InitOptions{Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "0.0.0.0:0"})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, c)
	// The server listens on all interfaces; clients on this machine are
	// given its loopback address (not "http://[::]:PORT"), which must not
	// make the token optional.
	if !strings.HasPrefix(n.APIURL(), "http://127.0.0.1:") || !n.APIOpen() {
		t.Errorf("APIURL %s, open %v; want a loopback URL to an open API", n.APIURL(), n.APIOpen())
	}
	url := n.APIURL() + "/api/v1/status"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("GET without token = %d %s, want 401 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+n.Token())
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ PeerID string }
	json.NewDecoder(resp.Body).Decode(&st)
	if resp.StatusCode != 200 || st.PeerID != n.ID().String() {
		t.Fatalf("GET with token = %d peer %q, want 200 and %s", resp.StatusCode, st.PeerID, n.ID())
	}
}

func TestAPIFileWrittenAndRemoved(t *testing.T) {
	c := testConfig(t)
	n := startNode(t, c)
	b, err := os.ReadFile(filepath.Join(c.DataDir, APIFile))
	if err != nil || strings.TrimSpace(string(b)) != n.APIURL() {
		t.Fatalf("DATA/api = %q, %v; want %s", b, err, n.APIURL())
	}
	n.Close()
	if _, err := os.Stat(filepath.Join(c.DataDir, APIFile)); !os.IsNotExist(err) {
		t.Fatalf("DATA/api still there after Close: %v", err)
	}
}

func TestMetricsExposeLibp2pAndNodeMetrics(t *testing.T) {
	a := startNode(t, testConfig(t))
	b := startNode(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.P2PAddrs()[0]); err != nil {
		t.Fatal(err)
	}
	created, err := http.Post(a.APIURL()+"/ngsi-ld/v1/entities", "application/json",
		strings.NewReader(`{"id": "urn:ngsi-ld:WeatherObserved:m1", "type": "WeatherObserved", "temperature": {"type": "Property", "value": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	created.Body.Close()
	if created.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", created.StatusCode)
	}
	resp, err := http.Get(a.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"libp2p_rcmgr_",             // resource manager
		"mimnode_connected_peers 1", // the node's own gauge, with the peer just dialled
		"mimnode_store_bytes",
		"mimnode_uptime_seconds",
		"mimnode_disk_free_bytes",
		`mimnode_entities{type="https://uri.etsi.org/ngsi-ld/default-context/WeatherObserved"} 1`,
	} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The store's size is its files' size: badger's own reading was 0
	// unless its metrics were on.
	found := false
	for _, line := range strings.Split(body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "mimnode_store_bytes "); ok {
			found = true
			if v == "0" || strings.HasPrefix(v, "-") {
				t.Errorf("mimnode_store_bytes is %s", v)
			}
		}
	}
	if !found {
		t.Error("/metrics has no unlabelled mimnode_store_bytes sample")
	}
}

// TestAPIErrorsAreProblemDetails checks the API's error answers are
// problem details; where typ is given, of that type (NGSI-LD types under
// /ngsi-ld/, mimnode's own elsewhere), and where allow is given, with that
// Allow header.
func TestAPIErrorsAreProblemDetails(t *testing.T) {
	n := startNode(t, testConfig(t))
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		typ, allow               string
	}{
		{"unknown route", "GET", "/api/v1/nope", "", 404, problem.TypeBase + "not-found", ""},
		{"wrong method", "DELETE", "/api/v1/status", "", 405, problem.TypeBase + "method-not-allowed", "GET"},
		{"NGSI-LD operation not offered", "GET", "/ngsi-ld/v1/csourceRegistrations", "", 404, problem.NGSILDTypeBase + "ResourceNotFound", ""},
		{"NGSI-LD wrong method", "PUT", "/ngsi-ld/v1/entities", "", 405, problem.NGSILDTypeBase + "OperationNotSupported", "GET, POST"},
		{"malformed JSON", "POST", "/api/v1/peers/connect", "{", 400, "", ""},
		{"unknown field", "POST", "/api/v1/peers/connect", `{"address":"x"}`, 400, "", ""},
		{"bad multiaddr", "POST", "/api/v1/peers/connect", `{"addr":"/ip4/1.2.3"}`, 400, "", ""},
		{"no peer id", "POST", "/api/v1/peers/connect", `{"addr":"/ip4/127.0.0.1/tcp/1"}`, 400, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, n.APIURL()+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Type, Title string
				Status      int
			}
			json.NewDecoder(resp.Body).Decode(&p)
			if resp.StatusCode != tc.status || p.Status != tc.status || p.Title == "" ||
				resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s %s = %d %+v (%s), want %d problem details", tc.method, tc.path, resp.StatusCode, p, resp.Header.Get("Content-Type"), tc.status)
			}
			if tc.typ != "" && p.Type != tc.typ {
				t.Errorf("%s %s: type %q, want %q", tc.method, tc.path, p.Type, tc.typ)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
			}
		})
	}
}

// TestValidateModelsSetting checks [ngsild] validate_models: on by
// default, an entity of a Smart Data Models type without the model's
// required attributes is refused; with it off (a client that creates
// entities in parts) it is stored. A config.toml that does not name the
// setting keeps the default.
func TestValidateModelsSetting(t *testing.T) {
	partial := `{"id": "urn:ngsi-ld:AirQualityObserved:partial", "type": "AirQualityObserved", "no2": {"type": "Property", "value": 12}}`
	post := func(n *Node) int {
		t.Helper()
		req, _ := http.NewRequest("POST", n.APIURL()+"/ngsi-ld/v1/entities", strings.NewReader(partial))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Link", `<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := testConfig(t)
	if !c.NGSILD.ValidateModels {
		t.Fatal("validate_models is off by default")
	}
	if code := post(startNode(t, c)); code != http.StatusBadRequest {
		t.Errorf("partial entity with validation on: %d, want 400", code)
	}
	c = testConfig(t)
	path := filepath.Join(c.DataDir, ConfigFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "validate_models = true", "validate_models = false", 1)), 0o644)
	if c, _ = Load(c.DataDir); c.NGSILD.ValidateModels {
		t.Fatalf("config.toml says validate_models = false, loaded %v", c.NGSILD.ValidateModels)
	}
	if code := post(startNode(t, c)); code != http.StatusCreated {
		t.Errorf("partial entity with validation off: %d, want 201", code)
	}
}

// A web page the user visits cannot drive the loopback API, which asks
// for no token: not by a cross-site request (a form or fetch carrying the
// page's Origin, or a text/plain body), nor by DNS rebinding (its own name
// resolved to 127.0.0.1, sent as Host). Clients that are not browsers
// work as before.
func TestAPIRefusesWhatABrowserPageWouldSend(t *testing.T) {
	n := startNode(t, testConfig(t))
	base := n.APIURL()
	do := func(method, path, body string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			if header[i] == "Host" {
				req.Host = header[i+1]
				continue
			}
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	fed := `{"name": "evil"}`
	if code, body := do("POST", "/api/v1/federations", fed, "Content-Type", "application/json", "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d %s, want 403", code, body)
	}
	if code, body := do("POST", "/api/v1/federations", fed, "Content-Type", "text/plain"); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST: %d %s, want 415", code, body)
	}
	if code, body := do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": "T"}`, "Content-Type", "application/json", "Origin", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("cross-origin NGSI-LD POST: %d %s, want 403", code, body)
	}
	if code, body := do("GET", "/api/v1/federations", "", "Host", "evil.example"); code != http.StatusForbidden {
		t.Errorf("GET with a foreign Host (DNS rebinding): %d %s, want 403", code, body)
	}
	if code, body := do("GET", "/api/v1/federations", ""); code != http.StatusOK || strings.Contains(body, "evil") {
		t.Errorf("after the refused requests: %d %s, want 200 and no federation evil", code, body)
	}
	if code, _ := do("GET", "/ngsi-ld/v1/entities/urn:x:1", ""); code != http.StatusNotFound {
		t.Errorf("the refused NGSI-LD POST created the entity (GET answered %d)", code)
	}
	// The page's own origin, localhost, and no Origin at all are fine.
	_, port, _ := strings.Cut(strings.TrimPrefix(base, "http://"), ":")
	if code, body := do("POST", "/api/v1/federations", `{"name": "ok"}`, "Content-Type", "application/json", "Host", "localhost:"+port, "Origin", "http://localhost:"+port); code != http.StatusCreated && code != http.StatusOK {
		t.Errorf("same-origin POST to localhost: %d %s", code, body)
	}
}
