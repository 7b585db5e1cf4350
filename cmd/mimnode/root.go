package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node"
)

// globals are the flags every command has. They live in the command tree
// built by run, never in package state, so tests can run commands
// concurrently.
type globals struct {
	dataFlag  string
	dataGiven bool // --data was on the command line
	json      bool
	stdout    io.Writer
	stderr    io.Writer
}

// dataDir resolves --data, then $MIMNODE_DATA, then ~/.mimnode. An empty
// --data given on purpose (a variable a script forgot to set) is refused,
// not taken for the default directory.
func (g *globals) dataDir() (string, error) {
	if g.dataGiven && strings.TrimSpace(g.dataFlag) == "" {
		return "", fmt.Errorf("--data is empty: name the data directory, or leave the flag out for $%s or ~/.mimnode", node.EnvDataDir)
	}
	return node.ResolveDataDir(g.dataFlag)
}

// printJSON writes v as indented JSON to stdout.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// run executes one mimnode command line. main is a thin shell around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "mimnode",
		Short: "A peer-to-peer data exchange node for cities (OASC MIMs)",
		Long: `mimnode is one binary per city agency. It stores the agency's context data behind
an NGSI-LD API, advertises datasets to the agency's federation over libp2p,
negotiates usage contracts peer to peer and moves data directly between nodes.

Start a node with 'mimnode run'; the other commands talk to the running node.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.PersistentFlags().StringVar(&g.dataFlag, "data", "", "data directory (default $"+node.EnvDataDir+" or ~/.mimnode)")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print machine-readable JSON")
	root.AddCommand(
		initCmd(g),
		runCmd(g),
		statusCmd(g),
		peersCmd(g),
		connectCmd(g),
		versionCmd(g),
		federationCmd(g),
		policyCmd(g),
		agreementCmd(g),
		contextCmd(g),
		contractCmd(g),
		auditCmd(g),
		datasetCmd(g),
		catalogCmd(g),
		testnetCmd(g),
		benchCmd(g),
		fetchCmd(g),
		transferCmd(g),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return fmt.Errorf("no command %q (see 'mimnode --help')", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	})
	refuseUnknownSubcommands(root)
	root.PersistentPreRun = func(c *cobra.Command, _ []string) { g.dataGiven = c.Flags().Changed("data") }
	return root.ExecuteContext(ctx)
}

// refuseUnknownSubcommands makes each command that only groups others
// (federation, dataset, ...) fail on an argument that names none of them:
// cobra prints such a group's help and exits 0, so a script running
// `mimnode federation revok PEER` went on as if the member were revoked.
// Without arguments the group still prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], c.CommandPath(), c.CommandPath())
			}
			return c.Help()
		}
	}
}
