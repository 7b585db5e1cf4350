package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node"
)

func runCmd(g *globals) *cobra.Command {
	var level, format string
	var grace time.Duration
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the node in the foreground",
		Long: `Run the node daemon in the foreground until Ctrl-C or SIGTERM. A data directory
that does not exist yet is initialised with defaults first. The daemon writes
its API address to DATA/api, so other mimnode commands find it.

Stopping waits for the node to close its store, at most --shutdown-timeout;
a second Ctrl-C or SIGTERM stops it at once. Either way nothing acknowledged
is lost: acknowledged writes are in the store's logs on disk, which the next
start replays.`,
		Example: `  mimnode run
  mimnode run --data /srv/mimnode --log-format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			cfg, err := node.Load(dir)
			if errors.Is(err, node.ErrNotInitialized) {
				if cfg, err = node.Init(dir, node.InitOptions{}); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "initialised new data directory %s\n", dir)
			}
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("log-level") {
				cfg.Log.Level = level
			}
			if cmd.Flags().Changed("log-format") {
				cfg.Log.Format = format
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cfg.Log, g.stderr)
			n, err := node.New(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer n.Close()
			if err := n.Start(cmd.Context()); err != nil {
				return err
			}
			go releaseStartGarbage()
			if g.json {
				st := n.Status()
				if err := g.printJSON(map[string]any{"peerId": st.PeerID, "addresses": st.Addresses, "api": n.APIURL()}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "mimnode %s running\nagency:  %s\npeer ID: %s\n", node.Version, cfg.Name, n.ID())
				for _, a := range n.P2PAddrs() {
					fmt.Fprintf(g.stdout, "listen:  %s\n", a)
				}
				fmt.Fprintf(g.stdout, "API:     %s\n", n.APIURL())
				if n.APIOpen() {
					fmt.Fprintf(g.stdout, "         listening on %s beyond loopback: every request needs 'Authorization: Bearer' with the token in %s, sent in clear over HTTP (put a TLS reverse proxy in front for other machines)\n",
						n.APIListenAddr(), filepath.Join(dir, node.TokenFile))
				}
				if f, ok := g.stdout.(*os.File); ok {
					f.Sync()
				}
			}
			<-cmd.Context().Done()
			log.Info("shutting down")
			if err := closeWithin(n.Close, grace, log); err != nil {
				return fmt.Errorf("shut down: %w", err)
			}
			log.Info("stopped", "data", filepath.Clean(dir))
			return nil
		},
	}
	c.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	c.Flags().StringVar(&format, "log-format", "text", "log format: text or json")
	c.Flags().DurationVar(&grace, "shutdown-timeout", 30*time.Second, "how long to wait for the node to stop before exiting anyway")
	c.PreRunE = func(*cobra.Command, []string) error {
		if grace <= 0 {
			return fmt.Errorf("--shutdown-timeout %s: must be positive", grace)
		}
		return nil
	}
	return c
}

// closeWithin runs close and waits for it at most grace, or until the
// process is told to stop again (Ctrl-C, SIGTERM). A store whose directory
// has gone, or whose disk fails, can keep close retrying forever (badger
// retries a memtable flush every second); the daemon must still stop when
// told to. Exiting then loses nothing acknowledged: acknowledged writes were
// synced to the store's logs, which the next start replays.
func closeWithin(close func() error, grace time.Duration, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- close() }()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	hint := time.NewTimer(min(5*time.Second, grace/2))
	defer hint.Stop()
	limit := time.NewTimer(grace)
	defer limit.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-hint.C:
			log.Warn("still shutting down; send Ctrl-C or SIGTERM again to stop at once", "waiting-at-most", grace)
		case <-limit.C:
			return fmt.Errorf("the node did not stop within %s (see the errors above); stopped anyway: the next start replays what the store had not yet written to its tables", grace)
		case s := <-again:
			return fmt.Errorf("stopped at once on a second %s, before the node had finished shutting down: the next start replays what the store had not yet written to its tables", s)
		}
	}
}

func newLogger(c node.LogConfig, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
