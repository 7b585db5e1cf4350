package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node/audit"
)

func auditCmd(g *globals) *cobra.Command {
	var verify bool
	var from uint64
	var limit int
	c := &cobra.Command{
		Use:   "audit",
		Short: "Print the node's hash-chained transaction log; --verify checks the chain",
		Long: `Every negotiation step, policy decision, agreement and refusal is appended to the
node's transaction log (MIM3). Each entry's hash covers the one before, so --verify
finds any entry changed, removed or inserted, and names the first one. The command
fails when the chain is broken.`,
		Example: "  mimnode audit --verify\n  mimnode audit --from 100 --limit 20 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			path := "/api/v1/audit?from=" + strconv.FormatUint(from, 10) + "&limit=" + strconv.Itoa(limit)
			if verify {
				path += "&verify=true"
			}
			var out audit.Listing
			if err := cl.do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			if g.json {
				if err := g.printJSON(out); err != nil {
					return err
				}
			} else {
				for _, e := range out.Entries {
					fmt.Fprintf(g.stdout, "%6d  %s  %-24s %s", e.Seq, e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.Kind, e.Subject)
					if e.Peer != "" {
						fmt.Fprintf(g.stdout, "  peer %s", e.Peer)
					}
					if len(e.Data) > 0 {
						fmt.Fprintf(g.stdout, "\n        %s", compactJSON(e.Data))
					}
					fmt.Fprintln(g.stdout)
				}
				if out.Verified {
					fmt.Fprintf(g.stdout, "chain verified: %d entries, head %s\n", out.Report.Entries, out.Report.Head)
				}
			}
			if out.Broken != nil {
				return fmt.Errorf("audit log chain broken at entry %d: %s", out.Broken.Seq, out.Broken.Reason)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&verify, "verify", false, "check the whole hash chain")
	c.Flags().Uint64Var(&from, "from", 1, "first entry to print")
	c.Flags().IntVar(&limit, "limit", 0, "number of entries to print (0: all)")
	return c
}

func compactJSON(b json.RawMessage) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, _ := json.Marshal(v)
	return string(out)
}
