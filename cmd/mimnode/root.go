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
	explainArgErrors(root)
	root.PersistentPreRun = func(c *cobra.Command, _ []string) { g.dataGiven = c.Flags().Changed("data") }
	return g.advise(root.ExecuteContext(ctx))
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
			if len(args) > 0 && looksLikeID(args[0]) {
				return fmt.Errorf("unknown command %q for %q: it takes a subcommand before the ID (%s) (see '%s --help')",
					args[0], c.CommandPath(), idSubcommands(c), c.CommandPath())
			}
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], c.CommandPath(), c.CommandPath())
			}
			return c.Help()
		}
	}
}

// looksLikeID tells an ID or token given in place of a subcommand (a URN, a
// URL, a peer ID, a CID) from a mistyped subcommand name, which is short
// and has no colon.
func looksLikeID(arg string) bool {
	return strings.Contains(arg, ":") || len(arg) >= 32
}

// idSubcommands lists the subcommands of group c that take an ID, as
// 'mimnode contract show NEGOTIATION-ID', for a user who gave the group an
// ID directly.
func idSubcommands(c *cobra.Command) string {
	var uses []string
	for _, sub := range c.Commands() {
		if names := positionals(sub); len(names) > 0 && strings.HasSuffix(names[0], "ID") {
			uses = append(uses, "'"+sub.CommandPath()+" "+strings.Join(names, " ")+"'")
		}
	}
	if len(uses) == 0 {
		return "none of its subcommands takes one"
	}
	return "e.g. " + strings.Join(uses, ", ")
}

// positionals returns the argument placeholders of c's Use line ("rm
// DATASET-ID OFFER-ID" gives DATASET-ID and OFFER-ID), up to the first
// optional part or flag.
func positionals(c *cobra.Command) []string {
	var names []string
	for _, w := range strings.Fields(c.Use)[1:] {
		if strings.HasPrefix(w, "[") || strings.HasPrefix(w, "(") || strings.HasPrefix(w, "-") {
			break
		}
		names = append(names, w)
	}
	return names
}

// explainArgErrors wraps the argument check of every command below c. A
// wrong number of arguments names the command's usage and points to --help,
// as a flag error does; cobra's own message ("accepts 1 arg(s), received
// 0") says neither. An empty ID is refused before any request: it comes from
// a script whose earlier command printed none (A=$(...) left empty), and
// sent to the API it only gave "no API route". The ID arguments are the
// ones whose placeholder in the Use line ends in ID, so a new command is
// covered by naming its arguments as the others do.
func explainArgErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		explainArgErrors(sub)
	}
	// A command without its own check (the root) keeps cobra's, which
	// is what reports an unknown command.
	if !c.HasParent() || c.Args == nil {
		return
	}
	check, names := c.Args, positionals(c)
	c.Args = func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			// cobra.NoArgs calls any argument an unknown command,
			// which misleads on a command that has no subcommands.
			if !c.HasSubCommands() && strings.HasPrefix(err.Error(), "unknown command") {
				err = fmt.Errorf("'%s' takes no arguments, got %q", c.CommandPath(), args[0])
			}
			return fmt.Errorf("%w; usage: %s (see '%s --help')", err, c.UseLine(), c.CommandPath())
		}
		for i, name := range names {
			if i < len(args) && strings.HasSuffix(name, "ID") {
				if err := requireID(idName(c, name), i, args[i]); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

// requireID refuses an empty or blank ID argument (the pos'th, from 0).
func requireID(name string, pos int, arg string) error {
	if strings.TrimSpace(arg) != "" {
		return nil
	}
	ordinal := [...]string{"first", "second", "third"}
	nth := fmt.Sprintf("argument %d", pos+1)
	if pos < len(ordinal) {
		nth = ordinal[pos] + " argument"
	}
	return fmt.Errorf("missing %s (the %s is empty; did a previous command fail to print one?)", name, nth)
}

// idName turns an ID placeholder into words: DATASET-ID is "dataset ID",
// PEERID "peer ID", and a bare ID is named after the command's group
// ("mimnode agreement export ID" takes an agreement ID).
func idName(c *cobra.Command, placeholder string) string {
	what := strings.TrimSuffix(strings.TrimSuffix(placeholder, "ID"), "-")
	if what == "" {
		what = c.Parent().Name()
	}
	return strings.ToLower(what) + " ID"
}
