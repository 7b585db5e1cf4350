package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node"
)

func initCmd(g *globals) *cobra.Command {
	var o node.InitOptions
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a data directory: identity key, config.toml, API token",
		Long: `Create a node's data directory with a new Ed25519 identity (its peer ID is the
agency's identity on the network), a config.toml with defaults and an API token.
An existing identity is never replaced unless --force is given. On a directory
that already has one, the flags given (--name, --listen, --api) are applied to
its config.toml and the identity is kept; stop the node first, it reads its
config when it starts.`,
		Example: `  mimnode init --name "Aarhus Environment Office"
  mimnode init --data /srv/mimnode --listen /ip4/0.0.0.0/tcp/7410 --listen /ip4/0.0.0.0/udp/7410/quic-v1 --api 127.0.0.1:7480`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := g.dataDir()
			if err != nil {
				return err
			}
			_, err = os.Stat(filepath.Join(dir, node.KeyFile))
			kept := err == nil && !o.Force
			_, err = os.Stat(filepath.Join(dir, node.ConfigFile))
			lostConfig := kept && errors.Is(err, fs.ErrNotExist)
			cfg, err := node.Init(dir, o)
			if err != nil {
				return err
			}
			id, err := node.PeerIDOf(dir)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"dataDir": dir, "peerId": id.String()})
			}
			if lostConfig {
				fmt.Fprintf(g.stdout, "wrote %s again with the defaults and the flags given (identity kept; review its ports and name)\npeer ID: %s\nstart the node with: mimnode run --data %s\n",
					filepath.Join(dir, node.ConfigFile), id, dir)
				return nil
			}
			if kept {
				fmt.Fprintf(g.stdout, "updated %s (identity kept)\npeer ID: %s\nstart the node with: mimnode run --data %s\n",
					filepath.Join(dir, node.ConfigFile), id, dir)
				return nil
			}
			fmt.Fprintf(g.stdout, "initialised %s\npeer ID: %s\nname:    %s%s\nconfig:  %s\nstart the node with: mimnode run --data %s\n",
				dir, id, cfg.Name, defaultNameNote(cfg.Name), filepath.Join(dir, node.ConfigFile), dir)
			return nil
		},
	}
	c.Flags().StringVar(&o.Name, "name", "", "agency name shown to federation peers")
	c.Flags().StringArrayVar(&o.Listen, "listen", nil, "libp2p listen multiaddr (repeatable; default TCP and QUIC on port 7410)")
	c.Flags().StringVar(&o.API, "api", "", "local API address host:port (default 127.0.0.1:7480)")
	c.Flags().BoolVar(&o.Force, "force", false, "replace an existing identity (the peer ID changes; config.toml is kept, with the flags given applied)")
	return c
}

// defaultNameNote says, after a name init was not given, that every
// federation member sees it and how to set the agency's own.
func defaultNameNote(name string) string {
	if name != node.Default().Name {
		return ""
	}
	return ` (the default, which federation members see beside your peer ID: give your agency's with mimnode init --name "...")`
}
