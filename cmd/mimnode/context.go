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
			if err := checkContextURL(args[0]); err != nil {
				return err
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
		Use:     "remove URL",
		Short:   "Remove the @context document stored for URL (a cached copy or one this node hosts)",
		Example: "  mimnode context remove https://example.org/city/context.jsonld",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return contextOp(cmd, g, args[0], "", "removed")
		},
	}, &cobra.Command{
		Use:   "reload URL",
		Short: "Fetch the @context at URL again and replace the stored copy (kept when the fetch fails)",
		Long: `Fetches the document at URL again and stores it in place of the cached copy. When the
URL cannot be fetched, or answers with something that is not a JSON-LD context, the stored
copy stays and the command fails. Contexts this node hosts have no URL elsewhere to reload
from.`,
		Example: "  mimnode context reload https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return contextOp(cmd, g, args[0], "?reload=true", "reloaded")
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

// contextOp sends DELETE for the stored @context u, with query (reload),
// and says done.
func contextOp(cmd *cobra.Command, g *globals, u, query, done string) error {
	if err := checkContextURL(u); err != nil {
		return err
	}
	if err := g.call(cmd.Context(), "DELETE", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(u)+query, nil, nil); err != nil {
		return err
	}
	if g.json {
		return g.printJSON(map[string]string{"url": u, "status": done})
	}
	fmt.Fprintf(g.stdout, "%s %s\n", done, u)
	return nil
}

// checkContextURL refuses an empty context URL argument.
func checkContextURL(u string) error {
	if strings.TrimSpace(u) == "" {
		return fmt.Errorf("the URL is empty: give the URL clients name the context by (mimnode context list shows those stored)")
	}
	return nil
}
