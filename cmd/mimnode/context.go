package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func contextCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "context",
		Short: "Manage the node's JSON-LD @context store (for networks without internet)",
		Long: `The node resolves @context URLs from its own store: the NGSI-LD core context and the
Smart Data Models contexts are preloaded, other remote contexts are fetched once and
cached. On an isolated network, add the contexts your clients use by hand.`,
	}
	c.AddCommand(&cobra.Command{
		Use:     "add URL FILE",
		Short:   "Store FILE as the @context document served for URL",
		Example: "  mimnode context add https://example.org/city/context.jsonld ./context.jsonld",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(args[0]) == "" {
				return fmt.Errorf("the URL is empty: give the URL clients name the context by")
			}
			body, err := readInput(args[1])
			if err != nil {
				return err
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			if err := cl.doRaw(cmd.Context(), "POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(args[0]), "application/ld+json", body, nil); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"url": args[0], "status": "stored"})
			}
			fmt.Fprintf(g.stdout, "stored %s (%d bytes)\n", args[0], len(body))
			return nil
		},
	}, &cobra.Command{
		Use:     "list",
		Short:   "List the @context documents the node holds: kind (Cached: a copy of the document at its URL; Hosted: served by this node), when stored, URL",
		Example: "  mimnode context list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []any
			if err := g.call(cmd.Context(), "GET", "/ngsi-ld/v1/jsonldContexts?details=true", nil, &list); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(list)
			}
			for _, c := range list {
				switch v := c.(type) {
				case string: // a daemon that lists URLs only
					fmt.Fprintln(g.stdout, v)
				case map[string]any:
					fmt.Fprintf(g.stdout, "%-7v %v  %v\n", v["kind"], v["timestamp"], v["URL"])
				}
			}
			return nil
		},
	})
	return c
}
