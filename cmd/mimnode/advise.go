package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mimnode/mimnode/node"
)

// advise adds what to do to the errors of a command line whose cause the
// message alone does not tell a user: it runs once, after the command, so
// that every command that meets the cause says the same.
func (g *globals) advise(err error) error {
	if err == nil {
		return nil
	}
	dir, derr := g.dataDir()
	if derr != nil {
		return err
	}
	if errors.Is(err, errNoDaemon) {
		// The advice to start a daemon there would create a new node in a
		// mistyped directory.
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("data directory %s does not exist: check the path (--data or $%s); if you meant to make a new node there, that is 'mimnode init --data %s' or 'mimnode run --data %s'",
				dir, node.EnvDataDir, dir, dir)
		}
		return err
	}
	if port, ok := apiPortInUse(err, dir); ok {
		return fmt.Errorf("%w: another node (or another program) uses port %s; give this node another API address in [api] listen in %s, e.g. listen = \"127.0.0.1:0\" for any free port (other mimnode commands find it in %s)",
			err, port, filepath.Join(dir, node.ConfigFile), filepath.Join(dir, node.APIFile))
	}
	return err
}

// apiPortInUse reports whether err is the node failing to listen on the
// API address of dir's config.toml because the port is taken, and the port.
// The libp2p listeners can fail the same way; their ports are set elsewhere
// ([network] listen), so the address must be the API's.
func apiPortInUse(err error, dir string) (string, bool) {
	var op *net.OpError
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &op) || op.Op != "listen" || op.Addr == nil {
		return "", false
	}
	cfg, cerr := node.LoadConfig(filepath.Join(dir, node.ConfigFile))
	if cerr != nil {
		return "", false
	}
	_, want, werr := net.SplitHostPort(cfg.API.Listen)
	_, got, gerr := net.SplitHostPort(op.Addr.String())
	if werr != nil || gerr != nil || want != got {
		return "", false
	}
	return got, true
}
