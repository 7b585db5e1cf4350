package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/audit"
)

func auditCmd(g *globals) *cobra.Command {
	var verify bool
	var anchors []string
	var from uint64
	var limit int
	c := &cobra.Command{
		Use:   "audit",
		Short: "Print the node's hash-chained transaction log; --verify checks the chain",
		Long: `Every negotiation step, policy decision, agreement and refusal is appended to the
node's transaction log (MIM3). Each entry's hash covers the one before, so --verify
finds any entry changed, removed or inserted, and names the first one. The command
fails when the chain is broken.

Someone who can write the data directory could rewrite the log from some entry on,
or cut its end, and recompute the chain. --verify prints an anchor (SEQ:HASH) for the
head: keep it somewhere else (a ticket, the other agency's records), and pass it
back with --anchor later; the check then fails unless that entry is still there,
unchanged.`,
		Example: "  mimnode audit --verify\n  mimnode audit --verify --anchor 1832:9f3c…(64 hex digits)\n  mimnode audit --from 100 --limit 20 --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var parsed []audit.Anchor
			path := "/api/v1/audit?from=" + strconv.FormatUint(from, 10) + "&limit=" + strconv.Itoa(limit)
			for _, a := range anchors {
				an, err := audit.ParseAnchor(a)
				if err != nil {
					return fmt.Errorf("--anchor: %w", err)
				}
				parsed = append(parsed, an)
				path += "&anchor=" + url.QueryEscape(a)
			}
			if verify || len(anchors) > 0 {
				path += "&verify=true"
			}
			var out audit.Listing
			cl, err := g.client()
			dir, offline := nodeDirWithoutDaemon(g, err)
			switch {
			case offline:
				// A stopped node or a backup: its log is read from the
				// store itself, without starting the node.
				if out, err = node.ReadAuditOffline(dir, from, limit, verify || len(anchors) > 0, parsed); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "no daemon runs for %s: read its transaction log from the store directly\n", dir)
			case err != nil:
				return err
			default:
				if err := cl.do(cmd.Context(), "GET", path, nil, &out); err != nil {
					return err
				}
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
					if len(anchors) > 0 {
						fmt.Fprintf(g.stdout, "anchors found unchanged: %s\n", strings.Join(anchors, ", "))
					}
					if out.Report.Anchor != "" {
						fmt.Fprintf(g.stdout, "anchor for a later check (keep it outside this node): %s\n", out.Report.Anchor)
					}
				}
			}
			if out.Broken != nil {
				return fmt.Errorf("audit log chain broken at entry %d: %s", out.Broken.Seq, out.Broken.Reason)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&verify, "verify", false, "check the whole hash chain")
	c.Flags().StringArrayVar(&anchors, "anchor", nil, "an anchor an earlier --verify printed (SEQ:HASH) that must still be in the log; implies --verify; repeatable")
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

// nodeDirWithoutDaemon returns the data directory when finding its daemon
// failed with err because none runs and the directory holds a node (its
// config file): one that does not is a mistyped --data, which advise
// names.
func nodeDirWithoutDaemon(g *globals, err error) (string, bool) {
	if !errors.Is(err, errNoDaemon) {
		return "", false
	}
	dir, err := g.dataDir()
	if err != nil {
		return "", false
	}
	_, err = os.Stat(filepath.Join(dir, node.ConfigFile))
	return dir, err == nil
}
