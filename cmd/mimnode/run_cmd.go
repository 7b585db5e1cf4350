package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node"
)

func runCmd(g *globals) *cobra.Command {
	var level, format string
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the node in the foreground",
		Long: `Run the node daemon in the foreground until Ctrl-C or SIGTERM. A data directory
that does not exist yet is initialised with defaults first. The daemon writes
its API address to DATA/api, so other mimnode commands find it.`,
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
				if f, ok := g.stdout.(*os.File); ok {
					f.Sync()
				}
			}
			<-cmd.Context().Done()
			log.Info("shutting down")
			if err := n.Close(); err != nil {
				return fmt.Errorf("shut down: %w", err)
			}
			log.Info("stopped", "data", filepath.Clean(dir))
			return nil
		},
	}
	c.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	c.Flags().StringVar(&format, "log-format", "text", "log format: text or json")
	return c
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
