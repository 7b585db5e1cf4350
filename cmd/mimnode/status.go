package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node/api"
)

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the running node's peer ID, addresses, uptime and store size",
		Example: "  mimnode status\n  mimnode status --json | jq -r .peerId",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.Status
			if err := g.call(cmd.Context(), "GET", "/api/v1/status", nil, &st); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			fmt.Fprintf(g.stdout, "name:     %s\nrole:     %s\npeer ID:  %s\nAPI:      %s\nversion:  %s\nuptime:   %s\npeers:    %d\nstore:    %.1f MiB\ndata:     %s\n",
				st.Name, st.Role, st.PeerID, st.API, st.Version, (time.Duration(st.UptimeSeconds) * time.Second).String(),
				st.ConnectedPeers, float64(st.StoreBytes)/(1<<20), st.DataDir)
			for _, a := range st.Addresses {
				fmt.Fprintf(g.stdout, "address:  %s\n", a)
			}
			return nil
		},
	}
}

func peersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "peers",
		Short:   "List the peers the running node is connected to",
		Example: "  mimnode peers\n  mimnode peers --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			peers := []api.Peer{}
			if err := g.call(cmd.Context(), "GET", "/api/v1/peers", nil, &peers); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(peers)
			}
			if len(peers) == 0 {
				fmt.Fprintln(g.stdout, "no connected peers")
				return nil
			}
			for _, p := range peers {
				addr := ""
				if len(p.Addresses) > 0 {
					addr = p.Addresses[0]
				}
				fmt.Fprintf(g.stdout, "%s  %-4s %-8s %s %s\n", p.PeerID, p.Transport, p.Direction, addr, p.Latency)
			}
			return nil
		},
	}
}

func connectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "connect MULTIADDR",
		Short: "Connect the running node to a peer and ping it",
		Long: `Connect the running node to the peer at MULTIADDR, which must end in
/p2p/PEERID (as printed by 'mimnode run' or 'mimnode status' on the other node).`,
		Example: "  mimnode connect /ip4/192.0.2.10/tcp/7410/p2p/12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res api.ConnectResult
			if err := g.call(cmd.Context(), "POST", "/api/v1/peers/connect", api.ConnectRequest{Addr: args[0]}, &res); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			if res.AlreadyConnected {
				fmt.Fprintf(g.stdout, "already connected to %s (round trip %s); the address given was not dialled\n", res.PeerID, res.Latency)
				return nil
			}
			fmt.Fprintf(g.stdout, "connected to %s (round trip %s)\n", res.PeerID, res.Latency)
			return nil
		},
	}
}

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary and of the running daemon",
		Long: `Print the version of this mimnode binary, and the running daemon's version when
one answers for the data directory (the command works without a daemon too).`,
		Example: "  mimnode version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := struct {
				Client string `json:"client"`
				Daemon string `json:"daemon,omitempty"`
			}{Client: version()}
			if c, err := g.client(); err == nil {
				var st api.Status
				if c.do(cmd.Context(), "GET", "/api/v1/status", nil, &st) == nil {
					out.Daemon = st.Version
				}
			}
			if g.json {
				return g.printJSON(out)
			}
			fmt.Fprintf(g.stdout, "mimnode %s\n", out.Client)
			if out.Daemon != "" {
				fmt.Fprintf(g.stdout, "daemon  %s\n", out.Daemon)
			}
			return nil
		},
	}
}
