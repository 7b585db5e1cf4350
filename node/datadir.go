package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Files inside a data directory.
const (
	KeyFile    = "key"
	ConfigFile = "config.toml"
	APIFile    = "api"
	TokenFile  = "api.token"
	LockFile   = "lock"
	StoreDir   = "badger"
	BlocksDir  = "blocks"
)

// EnvDataDir names the environment variable that selects the data directory
// when no --data flag is given.
const EnvDataDir = "MIMNODE_DATA"

// Sentinel errors for data directory problems a user can cause.
var (
	// ErrExists is returned by Init when the directory already holds an
	// identity and force is false.
	ErrExists = errors.New("data directory already has an identity")
	// ErrNotInitialized is returned when a data directory has no identity.
	ErrNotInitialized = errors.New("data directory is not initialised")
	// ErrLocked is returned when another daemon uses the data directory.
	ErrLocked = errors.New("data directory is in use by another mimnode daemon")
	// ErrCorruptKey is returned when the key file cannot be decoded.
	ErrCorruptKey = errors.New("identity key file is corrupt")
	// ErrKeyMissing is returned when a data directory that was in use (it
	// has a configuration or a store) has lost its identity key: the node
	// must not start under a new identity, nor be initialised afresh.
	ErrKeyMissing = errors.New("data directory has lost its identity key")
)

// ResolveDataDir picks the data directory: the flag value, else $MIMNODE_DATA,
// else ~/.mimnode.
func ResolveDataDir(flag string) (string, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv(EnvDataDir)
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory for the default data directory (set --data or %s): %w", EnvDataDir, err)
		}
		dir = filepath.Join(home, ".mimnode")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve data directory %q: %w", dir, err)
	}
	return abs, nil
}

// InitOptions are the choices `mimnode init` offers.
type InitOptions struct {
	Name   string   // agency name; empty keeps the default
	Listen []string // libp2p listen multiaddrs; empty keeps the defaults
	API    string   // API host:port; empty keeps the default
	Force  bool     // replace an existing identity
}

// settings reports whether o changes any setting of config.toml.
func (o InitOptions) settings() bool { return o.Name != "" || len(o.Listen) > 0 || o.API != "" }

// Init creates a data directory: identity key (0600), config.toml and the API
// token. It validates the configuration before writing anything, and never
// replaces an existing identity unless o.Force. A configuration already
// there (a forced init, or a directory whose key was lost) is kept, with
// the options given applied to it; one that cannot be read stops Init.
//
// On a directory that has its identity, Init with settings (name, listen
// addresses, API address) applies them to config.toml and keeps the
// identity, as `mimnode init --help` says; without any it is ErrExists,
// unless config.toml is missing: it is written with the defaults.
// The directory must not be in use: a running node would not see the
// change until it restarts, so that is refused (ErrLocked).
func Init(dir string, o InitOptions) (Config, error) {
	c := Default()
	_, err := os.Stat(filepath.Join(dir, ConfigFile))
	hasConfig := err == nil
	if hasConfig {
		if c, err = LoadConfig(filepath.Join(dir, ConfigFile)); err != nil {
			return c, fmt.Errorf("%w (fix it, or remove it for the defaults)", err)
		}
	}
	c.DataDir = dir
	if o.Name != "" {
		c.Name = o.Name
	}
	if len(o.Listen) > 0 {
		c.Network.Listen = o.Listen
	}
	if o.API != "" {
		c.API.Listen = o.API
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil && !o.Force {
		// A lost config.toml is written again, with the defaults and the
		// settings given.
		if !o.settings() && hasConfig {
			return c, fmt.Errorf("%w: %s (nothing to do: give --name, --listen or --api to change its config.toml, keeping the identity; "+
				"--force makes a new identity, and the peer ID changes)", ErrExists, dir)
		}
		unlock, err := lockDir(dir)
		if err != nil {
			return c, err
		}
		defer unlock()
		return c, WriteConfig(filepath.Join(dir, ConfigFile), c)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, fmt.Errorf("create data directory: %w", err)
	}
	// A running daemon must not see its identity replaced under it.
	unlock, err := lockDir(dir)
	if err != nil {
		return c, err
	}
	defer unlock()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return c, fmt.Errorf("generate identity key: %w", err)
	}
	kb, err := crypto.MarshalPrivateKey(priv)
	if err != nil {
		return c, fmt.Errorf("encode identity key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, KeyFile), kb, 0o600); err != nil {
		return c, fmt.Errorf("write identity key: %w", err)
	}
	if err := WriteConfig(filepath.Join(dir, ConfigFile), c); err != nil {
		return c, err
	}
	if _, err := ensureToken(dir); err != nil {
		return c, err
	}
	return c, nil
}

// Load reads the data directory's configuration. It does not lock the
// directory. A directory without an identity key is ErrNotInitialized when
// nothing else is there either, and ErrKeyMissing when a configuration or
// a store is: that node's key is lost, not yet to be made.
func Load(dir string) (Config, error) {
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); errors.Is(err, fs.ErrNotExist) {
		for _, f := range []string{ConfigFile, StoreDir} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return Config{}, fmt.Errorf("%w: %s has %s but no %s. Restore the key from a backup to keep this node's identity; "+
					"`mimnode init --force` makes a new one (the peer ID changes: federations, catalogues and agreements no longer know this node)",
					ErrKeyMissing, dir, f, KeyFile)
			}
		}
		return Config{}, fmt.Errorf("%w: %s has no %s (run `mimnode init`)", ErrNotInitialized, dir, KeyFile)
	}
	c, err := LoadConfig(filepath.Join(dir, ConfigFile))
	c.DataDir = dir
	return c, err
}

// loadKey reads the identity key. The file must be private to its owner
// (on Unix, where its mode says so).
func loadKey(dir string) (crypto.PrivKey, error) {
	path := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (run `mimnode init`)", ErrNotInitialized, dir, KeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity key: %w", err)
	}
	// On Windows the mode bits say only whether the file is read-only
	// (every writable file reads as 0666); what protects the key there is
	// its ACL, inherited from the data directory, which is not checked.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity key %s is readable by others (mode %o): run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v (restore it from a backup, or run `mimnode init --force` for a new identity)", ErrCorruptKey, path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: %s holds a %s key, want Ed25519", ErrCorruptKey, path, k.Type())
	}
	return k, nil
}

// ensureToken returns the API token, creating it on first use.
func ensureToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) >= 32 {
			// Whoever reads it controls the node through an API open
			// beyond loopback, as whoever reads the key is the node.
			if fi, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
				return "", fmt.Errorf("API token %s is readable by others (mode %o): run `chmod 600 %s`", path, fi.Mode().Perm(), path)
			}
			return tok, nil
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate API token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write API token: %w", err)
	}
	return tok, nil
}

// ReadToken returns the API token of a data directory, for CLI clients.
func ReadToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// lockDir takes an exclusive lock on DATA/lock, held until unlock is called
// or the process dies (the operating system drops the lock with its
// process, so a crashed daemon never leaves the directory locked). The
// lock itself is platform code: flock in lock_unix.go, LockFileEx in
// lock_windows.go.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	locked, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !locked {
		f.Close()
		return nil, fmt.Errorf("%w: %s (stop the other daemon, or use another --data directory)", ErrLocked, dir)
	}
	return func() {
		unlockFile(f)
		f.Close()
	}, nil
}

// writeFileAtomic writes data to a temporary file in the same directory,
// syncs it and renames it over path, so a crash leaves the old file or the
// new one, never half of one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// PeerIDOf returns the peer ID of the identity in a data directory.
func PeerIDOf(dir string) (peer.ID, error) {
	k, err := loadKey(dir)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(k)
}

// Running reports whether a daemon holds data directory dir: whether its
// lock is taken. A CLI command checks it before it trusts DATA/api, which
// in a copy of a running node's directory (a backup being restored, say)
// names the original's daemon. A directory without a lock file has never
// been run.
func Running(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	locked, err := tryLock(f)
	if err != nil {
		return false, err
	}
	if locked {
		unlockFile(f)
		return false, nil
	}
	return true, nil
}
