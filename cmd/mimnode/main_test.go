package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node"
)

// binary is the mimnode executable built once for the subprocess tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mimnode-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "mimnode")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build mimnode: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs one command line in-process and returns stdout, stderr, error.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, args, &out, &errb)
	return out.String(), errb.String(), err
}

// initDir initialises a data directory with loopback listeners on free ports.
func initDir(t testing.TB) string {
	t.Helper()
	return initDirAt(t, filepath.Join(t.TempDir(), "data"))
}

// initDirAt is initDir in dir.
func initDirAt(t testing.TB, dir string) string {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"init", "--data", dir, "--name", "Test agency",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1", "--api", "127.0.0.1:0"}, &out, &errb)
	if err != nil {
		t.Fatalf("init: %v\n%s", err, errb.String())
	}
	return dir
}

// daemon is a `mimnode run` subprocess.
type daemon struct {
	cmd    *exec.Cmd
	dir    string
	stdout *bytes.Buffer
	stderr *syncBuffer // read while the process writes
	done   chan error
}

// startDaemon starts `mimnode run` on dir, with any further flags, and
// waits until its API answers.
func startDaemon(t testing.TB, dir string, flags ...string) *daemon {
	t.Helper()
	d := &daemon{dir: dir, stdout: &bytes.Buffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(binary, append([]string{"run", "--data", dir}, flags...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.kill() })
	daemons.Store(dir, d)
	if err := waitReady(dir, d.done, 30*time.Second); err != nil {
		t.Fatalf("daemon on %s: %v\nstderr:\n%s", dir, err, d.stderr)
	}
	return d
}

// daemons holds the daemon startDaemon started last on each directory.
var daemons sync.Map

// stopDaemon kills the daemon running on dir (started by startDaemon).
func stopDaemon(t testing.TB, dir string) {
	t.Helper()
	d, ok := daemons.Load(dir)
	if !ok {
		t.Fatalf("no daemon was started on %s", dir)
	}
	d.(*daemon).kill()
}

func (d *daemon) kill() {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Kill()
		<-d.done
	}
}

// waitReady polls the daemon's API until GET /api/v1/status answers, the
// process exits, or the deadline passes.
func waitReady(dir string, exited chan error, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		var out, errb bytes.Buffer
		if run(context.Background(), []string{"status", "--json", "--data", dir}, &out, &errb) == nil {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("API not ready within %s", within)
}

func statusOf(t *testing.T, dir string) map[string]any {
	t.Helper()
	out, _, err := cli(t, "status", "--json", "--data", dir)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	return st
}

// init without --name says that the agency is named "mimnode", which every
// federation member would see, and how to name it; with --name it shows
// the name given.
func TestInitSaysTheDefaultName(t *testing.T) {
	out, _, err := cli(t, "init", "--data", t.TempDir(), "--api", "127.0.0.1:0")
	if err != nil || !strings.Contains(out, "name:    mimnode (the default") || !strings.Contains(out, "--name") {
		t.Fatalf("init without --name: %v\n%s", err, out)
	}
	out, _, err = cli(t, "init", "--data", t.TempDir(), "--name", "Aarhus Environment Office", "--api", "127.0.0.1:0")
	if err != nil || !strings.Contains(out, "name:    Aarhus Environment Office\n") {
		t.Fatalf("init with --name: %v\n%s", err, out)
	}
}

// init on a directory that has its identity applies the flags given to
// config.toml and keeps the peer ID, as its help says; without flags it
// has nothing to do and says how to change settings.
func TestInitAgainAppliesSettings(t *testing.T) {
	dir := initDir(t)
	before, err := node.PeerIDOf(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, "init", "--data", dir, "--name", "Renamed office", "--api", "127.0.0.1:0")
	if err != nil || !strings.Contains(out, "identity kept") {
		t.Fatalf("init with settings again: %v\n%s", err, out)
	}
	if after, _ := node.PeerIDOf(dir); after != before {
		t.Fatalf("peer ID changed from %s to %s", before, after)
	}
	if c, err := node.Load(dir); err != nil || c.Name != "Renamed office" {
		t.Fatalf("config name %q after init --name, err %v", c.Name, err)
	}
	if _, _, err := cli(t, "init", "--data", dir); err == nil || !strings.Contains(err.Error(), "--name, --listen or --api") {
		t.Fatalf("init without flags on an existing directory: %v, want it to say how to change settings", err)
	}

	// A lost config.toml: run says how to write it again, and init does,
	// keeping the identity.
	if err := os.Remove(filepath.Join(dir, node.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, "run", "--data", dir); err == nil || !strings.Contains(err.Error(), "mimnode init --data "+dir) {
		t.Fatalf("run without config.toml: %v, want it to say how to write it again", err)
	}
	out, _, err = cli(t, "init", "--data", dir, "--api", "127.0.0.1:0")
	if err != nil || !strings.Contains(out, "again with the defaults") {
		t.Fatalf("init without config.toml: %v\n%s", err, out)
	}
	if after, _ := node.PeerIDOf(dir); after != before {
		t.Fatalf("peer ID changed from %s to %s", before, after)
	}
	if _, err := node.Load(dir); err != nil {
		t.Fatalf("config after init wrote it again: %v", err)
	}
}

func TestInitRunStatusConnect(t *testing.T) {
	a, b := initDir(t), initDir(t)
	startDaemon(t, a)
	startDaemon(t, b)
	idOut, _, err := cli(t, "init", "--data", a)
	if err == nil {
		t.Fatalf("second init succeeded: %s", idOut)
	}
	// Nor are a running node's settings changed under it.
	if out, _, err := cli(t, "init", "--data", a, "--name", "Renamed"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("init with settings on a running node's directory: %v (%s), want it refused as in use", err, out)
	}
	sa, sb := statusOf(t, a), statusOf(t, b)
	if !strings.HasPrefix(sa["peerId"].(string), "12D3KooW") {
		t.Fatalf("status peerId = %v", sa["peerId"])
	}
	addr := sb["addresses"].([]any)[0].(string)
	// Flags after the positional argument, as users type them.
	out, _, err := cli(t, "connect", addr, "--data", a, "--json")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	var res map[string]any
	json.Unmarshal([]byte(out), &res)
	if res["peerId"] != sb["peerId"] {
		t.Fatalf("connect answered %v, want peer %v", res, sb["peerId"])
	}
	// Connected already, libp2p dials nothing: the answer says so rather
	// than vouch for an address nobody tried.
	bogus := "/ip4/127.0.0.1/tcp/1/p2p/" + sb["peerId"].(string)
	if out, _, err := cli(t, "connect", bogus, "--data", a); err != nil || !strings.Contains(out, "already connected") {
		t.Errorf("connect to a connected peer at another address: %q, %v; want it to say the address was not dialled", out, err)
	}
	// A peer ID cut short parses as a multihash; it is refused, not dialled.
	if _, _, err := cli(t, "connect", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWAAAA", "--data", a); err == nil || !strings.Contains(err.Error(), "not end in a valid peer ID") {
		t.Errorf("connect to a peer ID cut short: %v, want it refused as no valid peer ID", err)
	}
	out, _, err = cli(t, "peers", "--data", b)
	if err != nil || !strings.Contains(out, sa["peerId"].(string)) {
		t.Fatalf("peers on b = %q, %v; want a's peer ID", out, err)
	}
}

func TestCommandWithoutDaemonSaysSoInOneLine(t *testing.T) {
	dir := initDir(t)
	for _, cmd := range []string{"status", "peers"} {
		_, _, err := cli(t, cmd, "--data", dir)
		if err == nil || !strings.Contains(err.Error(), "no mimnode daemon is running") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s without daemon: err = %q, want one line saying no daemon runs", cmd, err)
		}
	}
	out, _, err := cli(t, "version", "--data", dir, "--json")
	if err != nil || !strings.Contains(out, `"client"`) {
		t.Errorf("version without daemon = %q, %v; want the client version", out, err)
	}
}

func TestSecondDaemonFailsAtOnce(t *testing.T) {
	dir := initDir(t)
	startDaemon(t, dir)
	cmd := exec.Command(binary, "run", "--data", dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another mimnode daemon") {
		t.Fatalf("second run: %v\n%s", err, out)
	}
}

func TestSIGTERMShutsDownCleanlyAndKeepsIdentity(t *testing.T) {
	dir := initDir(t)
	d := startDaemon(t, dir)
	id := statusOf(t, dir)["peerId"]
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30s of SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(dir, "api")); !os.IsNotExist(err) {
		t.Fatalf("DATA/api left behind after clean shutdown: %v", err)
	}
	startDaemon(t, dir)
	if got := statusOf(t, dir)["peerId"]; got != id {
		t.Fatalf("peer ID after restart = %v, want %v", got, id)
	}
}

func TestRunInitialisesMissingDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	cmd := exec.Command(binary, "run", "--data", dir)
	// Run it only long enough to see it initialise: it listens on the
	// default ports, which may be taken on a shared machine.
	done := make(chan error, 1)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.Start()
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// api.token is the last file init writes.
		if _, err := os.Stat(filepath.Join(dir, "api.token")); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-done
	if _, err := os.Stat(filepath.Join(dir, "key")); err != nil {
		t.Fatalf("run did not initialise %s: %v\n%s", dir, err, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "config.toml")); err != nil {
		t.Fatalf("run did not write config.toml: %v", err)
	}
}

// TestRunRefusesALostKey checks that run on a data directory that has
// lost its key fails with a clear error and writes nothing: no new
// identity, and config.toml as it was (it used to be rewritten with the
// defaults, which listen on every interface).
func TestRunRefusesALostKey(t *testing.T) {
	dir := initDir(t)
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.toml"))
	os.Remove(filepath.Join(dir, "key"))
	_, stderr, err := cli(t, "run", "--data", dir)
	if err == nil || !strings.Contains(err.Error()+stderr, "lost its identity key") {
		t.Fatalf("run without the key: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "key")); err == nil {
		t.Error("run made a new key")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "config.toml")); string(after) != string(cfg) {
		t.Error("run rewrote config.toml")
	}
}

func TestDataDirFromEnvironment(t *testing.T) {
	dir := initDir(t)
	t.Setenv("MIMNODE_DATA", dir)
	startDaemon(t, dir)
	out, _, err := cli(t, "status", "--json")
	if err != nil || !strings.Contains(out, dir) {
		t.Fatalf("status with MIMNODE_DATA=%s: %q, %v", dir, out, err)
	}
}

func TestBadFlagsAndArguments(t *testing.T) {
	dir := initDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"status", "--bogus", "--data", dir}, "unknown flag: --bogus"},
		{"connect without address", []string{"connect", "--data", dir}, "accepts 1 arg"},
		{"bad listen multiaddr", []string{"init", "--data", filepath.Join(t.TempDir(), "x"), "--listen", "/ip4/nope"}, "network.listen[0]"},
		{"listen as host:port", []string{"init", "--data", filepath.Join(t.TempDir(), "z"), "--listen", "127.0.0.1:7410"}, "write /ip4/127.0.0.1/tcp/7410"},
		{"bad api address", []string{"init", "--data", filepath.Join(t.TempDir(), "y"), "--api", "localhost"}, "api.listen"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cli(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("mimnode %v: err = %v, want it to mention %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestCorruptConfigFileIsNamed(t *testing.T) {
	dir := initDir(t)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte("name = \"x\"\n[api]\nlisten = 7480\n"), 0o644)
	out, err := exec.Command(binary, "run", "--data", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "config.toml") {
		t.Fatalf("run with a wrong-typed api.listen: %v\n%s", err, out)
	}
}

func TestHelpExplainsEachCommand(t *testing.T) {
	for _, cmd := range []string{"init", "run", "status", "peers", "connect", "version"} {
		out, _, err := cli(t, "help", cmd)
		if err != nil || !strings.Contains(out, "Examples:") || !strings.Contains(out, "mimnode "+cmd) {
			t.Errorf("help %s = %q, %v; want usage with an example", cmd, out, err)
		}
	}
}

// BenchmarkRunToReady measures the time from starting `mimnode run` to its
// API answering, and reports the idle daemon's resident memory.
func BenchmarkRunToReady(b *testing.B) {
	var rssKiB int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := initDir(b)
		cmd := exec.Command(binary, "run", "--data", dir)
		done := make(chan error, 1)
		b.StartTimer()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		if err := waitReady(dir, done, 30*time.Second); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if i == 0 {
			// Let start-up work settle, then read the idle RSS.
			time.Sleep(3 * time.Second)
			rssKiB = readRSS(b, cmd.Process.Pid)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	}
	b.ReportMetric(float64(rssKiB)/1024, "idle-RSS-MiB")
}

func readRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			var kib int64
			fmt.Sscan(f[1], &kib)
			return kib
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// TestUnknownSubcommandFails checks that a mistyped subcommand of a group
// fails (a script must not go on as if it ran), that the group alone
// still prints its help, and that help on an unknown topic fails too.
func TestUnknownSubcommandFails(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		unknown string
	}{
		{[]string{"federation", "revok", "12D3KooWx"}, "revok"},
		{[]string{"dataset", "publsh", "f.json"}, "publsh"},
		{[]string{"contract", "offer", "bogus"}, "bogus"},
	} {
		_, _, err := cli(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("unknown command %q", tc.unknown)) {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
	out, _, err := cli(t, "federation")
	if err != nil || !strings.Contains(out, "Available Commands") {
		t.Errorf("federation alone: %v\n%s", err, out)
	}
	if _, _, err := cli(t, "help", "threshold"); err == nil {
		t.Error("help on an unknown topic succeeded")
	}
	if out, _, err := cli(t, "help", "federation", "threshold"); err != nil || !strings.Contains(out, "threshold") {
		t.Errorf("help federation threshold: %v\n%s", err, out)
	}
}

// TestStaleAPIFileReachesNoOtherNode checks that a command for a data
// directory whose DATA/api names another node's daemon (its own daemon
// was killed, and another took the address; or the directory is a copy
// of the running node's) is refused, not carried out on the other node.
func TestStaleAPIFileReachesNoOtherNode(t *testing.T) {
	gone, other := initDir(t), initDir(t)
	startDaemon(t, other)
	addr, err := os.ReadFile(filepath.Join(other, "api"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gone, "api"), addr, 0o600); err != nil {
		t.Fatal(err)
	}
	// A copy of the running node's directory (a backup, say) holds its
	// api and token files: its commands do not reach the original either.
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copied, os.DirFS(other)); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{gone, copied} {
		for _, args := range [][]string{{"status"}, {"federation", "create", "Stale region"}, {"fetch", "urn:uuid:0"}} {
			_, _, err := cli(t, append(args, "--data", dir)...)
			if err == nil || !strings.Contains(err.Error(), "no daemon holds this directory") {
				t.Errorf("%v on %s: %v, want it refused", args, dir, err)
			}
		}
	}
	if out, _, err := cli(t, "federation", "list", "--data", other, "--json"); err != nil || strings.Contains(out, "Stale region") {
		t.Errorf("the other node: %q, %v", out, err)
	}
	if _, _, err := cli(t, "status", "--data", other); err != nil {
		t.Errorf("status of the running node: %v", err)
	}
}

// TestBadFlagValuesAreRefused checks flag values that used to be taken
// without a word: an empty --data (it fell back to ~/.mimnode, which init
// then initialised), a negative --limit, a --wait-seconds that cannot
// wait, a --binary that is not there (bench started a run of minutes).
func TestBadFlagValuesAreRefused(t *testing.T) {
	// Should the empty --data ever be taken for the default again, the
	// directory it initialises is this test's, not the real ~/.mimnode.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("MIMNODE_DATA", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", "--data", ""}, "--data is empty"},
		{[]string{"status", "--data", " "}, "--data is empty"},
		{[]string{"catalog", "search", "air", "--limit", "-1"}, "--limit -1"},
		{[]string{"contract", "request", "urn:mim:dataset:x", "--wait-seconds", "0"}, "--wait-seconds 0"},
		{[]string{"bench", "--binary", filepath.Join(t.TempDir(), "nothing")}, "not an executable file"},
	} {
		_, _, err := cli(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestEmptyListsSaySo checks that a list with nothing in it says so and
// how to get something into it, as the other lists do, rather than
// printing nothing.
func TestEmptyListsSaySo(t *testing.T) {
	dir := initDir(t)
	startDaemon(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agreement", "list"}, "no agreements"},
		{[]string{"contract", "offer", "list"}, "no offers"},
	} {
		out, _, err := cli(t, append(tc.args, "--data", dir)...)
		if err != nil || !strings.HasPrefix(out, tc.want) {
			t.Errorf("%v: %q, %v; want it to start with %q", tc.args, out, err, tc.want)
		}
	}
}

// A command cut short by Ctrl-C says it was interrupted and exits 130; a
// command that failed otherwise keeps its message and exits 1, also when
// its error is a cancellation that no signal caused.
func TestFailureSaysInterrupted(t *testing.T) {
	for _, c := range []struct {
		interrupted bool
		err         error
		msg         string
		code        int
	}{
		{true, context.Canceled, "mimnode: interrupted", 130},
		{true, fmt.Errorf("open store: %w", context.Canceled), "mimnode: interrupted: open store: context canceled", 130},
		{true, errors.New("no such agreement"), "mimnode: no such agreement", 1},
		{false, context.Canceled, "mimnode: context canceled", 1},
		{false, fmt.Errorf("fetch: %w", context.Canceled), "mimnode: fetch: context canceled", 1},
	} {
		if msg, code := failure(c.interrupted, c.err); msg != c.msg || code != c.code {
			t.Errorf("failure(%v, %v) = %q, %d; want %q, %d", c.interrupted, c.err, msg, code, c.msg, c.code)
		}
	}
}
