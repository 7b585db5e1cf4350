package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node/transfer"
)

func transferCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transfer",
		Short: "List and control this node's data transfers",
	}
	cmd.AddCommand(transferListCmd(g), transferShowCmd(g),
		transferControlCmd(g, "suspend", "Pause a started transfer (a live feed stops until resumed)", true),
		transferControlCmd(g, "resume", "Resume a suspended transfer", false),
		transferControlCmd(g, "terminate", "End a transfer for good", true))
	return cmd
}

func transferListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List transfers, as consumer and as provider, newest first",
		Example: "  mimnode transfer list --data /tmp/lab",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []transfer.Info
			if err := g.call(cmd.Context(), "GET", "/api/v1/transfers", nil, &list); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.stdout, "no transfers")
				return nil
			}
			for _, in := range list {
				fmt.Fprintf(g.stdout, "%s  %-8s %-10s %-14s %s  %d entities  %s\n", in.ID, in.Role, in.State, in.Format, in.Agreement,
					in.Usage.Entities, humanBytes(in.Usage.Bytes))
			}
			return nil
		},
	}
}

func transferShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show one transfer with its usage record and, if refused, the reasons",
		Example: "  mimnode transfer show urn:uuid:7c1e... --data /tmp/lab",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in transfer.Info
			if err := g.call(cmd.Context(), "GET", "/api/v1/transfers/"+url.PathEscape(args[0]), nil, &in); err != nil {
				return err
			}
			return printTransfer(g, in)
		},
	}
}

func printTransfer(g *globals, in transfer.Info) error {
	if g.json {
		return g.printJSON(in)
	}
	w := g.stdout
	fmt.Fprintf(w, "transfer   %s (%s)\nstate      %s\nagreement  %s\ndataset    %s\nprovider   %s\nconsumer   %s\nformat     %s\n",
		in.ID, in.Role, in.State, in.Agreement, in.Dataset, in.Provider, in.Consumer, in.Format)
	if in.Version != "" {
		fmt.Fprintf(w, "version    %s\n", in.Version)
	}
	u := in.Usage
	fmt.Fprintf(w, "usage      %d entities, %d blocks fetched, %d already held, %d refetched, %s moved, %s\n",
		u.Entities, u.Blocks, u.Skipped, u.Refetched, humanBytes(u.Bytes), u.Duration)
	if in.Receipt {
		fmt.Fprintln(w, "receipt    signed by the provider, acknowledged by the consumer")
	}
	if in.Code != "" {
		fmt.Fprintf(w, "code       %s (%s)\n", in.Code, describeCode(in.Code))
		for _, r := range in.Reasons {
			fmt.Fprintf(w, "  - %s\n", r)
		}
	}
	return nil
}

func transferControlCmd(g *globals, verb, short string, withReason bool) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     verb + " ID",
		Short:   short,
		Example: "  mimnode transfer " + verb + " urn:uuid:7c1e... --data /tmp/lab   # an id 'transfer list' shows",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			var body any
			if reason != "" {
				body = transfer.ControlRequest{Reason: reason}
			}
			var in transfer.Info
			if err := cl.do(cmd.Context(), "POST", "/api/v1/transfers/"+url.PathEscape(args[0])+"/"+verb, body, &in); err != nil {
				return fmt.Errorf("%s %s: %w", verb, args[0], err)
			}
			if g.json {
				return g.printJSON(in)
			}
			fmt.Fprintf(g.stdout, "transfer %s is %s\n", in.ID, strings.ToUpper(string(in.State)))
			return nil
		},
	}
	if withReason {
		cmd.Flags().StringVar(&reason, "reason", "", "why, for the peer and the audit log")
	}
	return cmd
}
