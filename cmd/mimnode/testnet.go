package main

import (
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/testnet"
)

// maxDemoEntities bounds --entities: every agency seeds that many entities
// of each of its data models, all on this machine.
const maxDemoEntities = 10000

func testnetCmd(g *globals) *cobra.Command {
	var shape testnet.Shape
	var dir string
	var entities int
	var grace time.Duration
	c := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local demo federation: several real nodes on this machine, with data",
		Long: `Start a federation of real mimnode nodes on loopback: for each city a few agencies
(environment, transport, parking, utilities) seeded with real Smart Data Models
entities, plus researcher nodes. Each node has its own data directory and API, so
every mimnode command works against it with --data. Runs until Ctrl-C.
Stopping waits for the nodes to close their stores, at most --shutdown-timeout;
a second Ctrl-C stops at once.`,
		Example: `  mimnode testnet
  mimnode testnet --cities 3 --agencies 4 --researchers 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if shape.Cities < 1 || shape.Cities > len(testnet.Cities()) {
				return fmt.Errorf("--cities must be between 1 and %d", len(testnet.Cities()))
			}
			if shape.AgenciesPerCity < 1 || shape.Researchers < 0 || shape.Size() > 60 {
				return fmt.Errorf("--agencies must be at least 1, --researchers at least 0, and at most 60 nodes in all")
			}
			if entities < 0 || entities > maxDemoEntities {
				return fmt.Errorf("--entities must be between 0 and %d", maxDemoEntities)
			}
			if grace <= 0 {
				return fmt.Errorf("--shutdown-timeout %s: must be positive", grace)
			}
			start := time.Now()
			if dir != "" {
				// The nodes of an earlier run are federated already: a
				// second federation of the same name cannot be made there.
				if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
					return fmt.Errorf("--dir %s is not empty (an earlier testnet's nodes?): give a new or empty directory, or remove it first", dir)
				}
			}
			if dir == "" {
				d, err := os.MkdirTemp("", "mimnode-testnet-")
				if err != nil {
					return err
				}
				dir = d
				defer os.RemoveAll(d)
			}
			fmt.Fprintf(g.stderr, "starting %d nodes in %s ...\n", shape.Size(), dir)
			net, err := testnet.Start(cmd.Context(), shape, testnet.Options{Dir: dir, EntitiesPerModel: entities})
			if err != nil {
				return err
			}
			// Closing is bounded as `mimnode run` bounds it: a node whose
			// store cannot close must not keep the demo from exiting.
			log := slog.New(slog.NewTextHandler(g.stderr, nil))
			closed := false
			defer func() {
				if !closed {
					_ = closeWithin(net.Close, grace, log)
				}
			}()
			if net.Federate(); net.Err() != nil {
				return net.Err()
			}
			if net.Seed(); net.Err() != nil {
				return net.Err()
			}
			if net.Publish(); net.Err() != nil {
				return net.Err()
			}
			if g.json {
				type row struct {
					Name   string `json:"name"`
					Role   string `json:"role"`
					PeerID string `json:"peerId"`
					API    string `json:"api"`
					Data   string `json:"data"`
				}
				var rows []row
				for _, m := range net.Members {
					nd := m.Node()
					rows = append(rows, row{m.Name, string(m.Role), nd.ID().String(), nd.APIURL(), m.DataDir()})
				}
				if err := g.printJSON(map[string]any{"federation": net.Fed, "nodes": rows}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "federation %s ready in %s: %d nodes\n\n", net.Fed, time.Since(start).Round(time.Millisecond), len(net.Members))
				tw := tabwriter.NewWriter(g.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tPEER ID\tAPI\tDATA")
				for _, m := range net.Members {
					nd := m.Node()
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Role, nd.ID(), nd.APIURL(), m.DataDir())
				}
				tw.Flush()
				first := net.Members[0]
				last := net.Members[len(net.Members)-1]
				fmt.Fprintf(g.stdout, `
Try this (in another terminal):
  mimnode status --data %[1]s
  mimnode federation show %[3]s --data %[1]s
  mimnode peers --data %[2]s
  curl -s '%[4]s/ngsi-ld/v1/entities?type=AirQualityObserved&limit=2' -H 'Link: <https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
  mimnode catalog search "air quality" --data %[2]s

Ctrl-C stops every node.
`, first.DataDir(), last.DataDir(), net.Fed, first.Node().APIURL())
			}
			<-cmd.Context().Done()
			fmt.Fprintln(g.stderr, "stopping ...")
			closed = true
			if err := closeWithin(net.Close, grace, log); err != nil {
				return fmt.Errorf("stop the demo federation: %w", err)
			}
			return nil
		},
	}
	c.Flags().IntVar(&shape.Cities, "cities", 2, "number of cities")
	c.Flags().IntVar(&shape.AgenciesPerCity, "agencies", 2, "agencies per city")
	c.Flags().IntVar(&shape.Researchers, "researchers", 1, "researcher nodes")
	c.Flags().StringVar(&dir, "dir", "", "keep the nodes' data directories here (default: a temporary directory, removed at exit)")
	c.Flags().IntVar(&entities, "entities", 20, "entities per data model per agency")
	c.Flags().DurationVar(&grace, "shutdown-timeout", 30*time.Second, "how long to wait for the nodes to stop before exiting anyway")
	return c
}
