package main

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/policy"
)

func datasetCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "dataset",
		Short: "Publish and manage this node's datasets (DCAT-AP descriptions)",
	}
	c.AddCommand(&cobra.Command{
		Use:   "publish FILE",
		Short: "Publish (or update) a dataset described in a JSON or TOML file",
		Long: `Publish a dataset description (DCAT-AP terms: id, title, description, keywords,
themes, spatial, entityTypes, license, offers, dissemination). The node signs it and
announces it to its federations; every member can then find it with 'catalog search'.
A .toml file is read as TOML, anything else as JSON. An invalid description is
refused with the field named.`,
		Example: "  mimnode dataset publish air-quality.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readInput(args[0])
			if err != nil {
				return err
			}
			ct := "application/json"
			if strings.EqualFold(filepath.Ext(args[0]), ".toml") {
				ct = "application/toml"
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var rec published
			if err := c.doRaw(cmd.Context(), "POST", "/api/v1/datasets", ct, body, &rec); err != nil {
				return err
			}
			for _, w := range rec.Warnings {
				fmt.Fprintf(g.stderr, "warning: %s\n", w)
			}
			if g.json {
				return g.printJSON(rec.Record)
			}
			fmt.Fprintf(g.stdout, "published %s (catalogue sequence %d)\n", rec.Dataset.ID, rec.Seq)
			return nil
		},
	}, &cobra.Command{
		Use:     "list",
		Short:   "List this node's datasets",
		Example: "  mimnode dataset list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			recs := []catalog.Record{}
			if err := g.call(cmd.Context(), "GET", "/api/v1/datasets", nil, &recs); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(recs)
			}
			if len(recs) == 0 {
				fmt.Fprintln(g.stdout, "no datasets (publish one with 'mimnode dataset publish FILE')")
			}
			for _, r := range recs {
				state := string(r.Dataset.Dissemination)
				if r.Retired {
					state = "retired"
				}
				fmt.Fprintf(g.stdout, "%-45s %-10s %s\n", r.Dataset.ID, state, r.Dataset.Title)
			}
			return nil
		},
	}, &cobra.Command{
		Use:     "show ID",
		Short:   "Show a dataset (this node's, or any in the federated index)",
		Example: "  mimnode dataset show urn:mim:dataset:aarhus:air-quality",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec catalog.Record
			if err := g.call(cmd.Context(), "GET", "/api/v1/datasets/"+url.PathEscape(args[0]), nil, &rec); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rec)
			}
			printDataset(g, rec)
			return nil
		},
	}, &cobra.Command{
		Use:   "version ID",
		Short: "Build a dataset's version now (and announce it if it changed)",
		Long: `A version is the content-addressed id (manifest CID) of a dataset's data: the same
data always gives the same id, so an agreement or a result can name exactly what it
used. The node rebuilds versions by itself when the entities change
(catalog.version_interval); this command does it at once.`,
		Example: "  mimnode dataset version urn:mim:dataset:aarhus:air-quality",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec catalog.Record
			if err := g.call(cmd.Context(), "POST", "/api/v1/datasets/"+url.PathEscape(args[0])+"/version", nil, &rec); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rec)
			}
			fmt.Fprintf(g.stdout, "%s version %s (catalogue sequence %d)\n", rec.Dataset.ID, rec.Dataset.Version, rec.Seq)
			return nil
		},
	}, &cobra.Command{
		Use:     "retire ID",
		Short:   "Withdraw one of this node's datasets from the federation",
		Example: "  mimnode dataset retire urn:mim:dataset:aarhus:air-quality",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec catalog.Record
			if err := g.call(cmd.Context(), "POST", "/api/v1/datasets/"+url.PathEscape(args[0])+"/retire", nil, &rec); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rec)
			}
			fmt.Fprintf(g.stdout, "retired %s\n", rec.Dataset.ID)
			return nil
		},
	})
	c.AddCommand(datasetFileCmds(g)...)
	return c
}

func printDataset(g *globals, r catalog.Record) {
	d := r.Dataset
	fmt.Fprintf(g.stdout, "%s\n  %s\n  publisher:  %s (%s)\n  license:    %s\n  themes:     %s\n  keywords:   %s\n  types:      %s\n  visibility: %s\n",
		d.Title, d.ID, d.Publisher.Name, d.Publisher.PeerID, d.License, strings.Join(d.Themes, ", "),
		strings.Join(d.Keywords, ", "), strings.Join(d.EntityTypes, ", "), d.Dissemination)
	for i, o := range d.Offers {
		// A published offer is its policy (a template's name is not
		// part of what the publisher signs): it is shown in words.
		name := o.Template
		if name == "" {
			name = o.Policy.ID
		}
		if _, manual := o.Policy.Extra[policy.ManualApproval]; manual || o.Manual {
			name += ", each request approved by a person"
		}
		fmt.Fprintf(g.stdout, "  offer %d:    %s\n", i+1, name)
		for _, l := range strings.Split(strings.TrimRight(policy.Describe(o.Policy), "\n"), "\n")[1:] {
			fmt.Fprintf(g.stdout, "              %s\n", l)
		}
	}
	if d.Source != nil {
		for _, f := range d.Source.Files {
			fmt.Fprintf(g.stdout, "  file:       %s (%d bytes, %s)\n", f.Name, f.Size, f.MediaType)
		}
	}
	if d.Version != "" {
		fmt.Fprintf(g.stdout, "  version:    %s\n", d.Version)
	}
	if d.Description != "" {
		fmt.Fprintf(g.stdout, "  %s\n", d.Description)
	}
}

func catalogCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "catalog",
		Short: "Search the federation's datasets (answered locally from the federated index)",
	}
	var typ, theme, publisher, license, bbox string
	var limit int
	search := &cobra.Command{
		Use:   "search [TEXT]",
		Short: "Search datasets by text, entity type, theme, publisher, licence and area",
		Long: `Search every dataset this node may see in its federations. TEXT is ranked by
relevance (title, keywords, description); the flags filter exactly. The search is
answered from this node's own index: no other node is asked.`,
		Example: `  mimnode catalog search "air quality" --type AirQualityObserved
  mimnode catalog search --theme TRAN --bbox 10.1,56.1,10.3,56.2`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := url.Values{}
			if len(args) == 1 {
				v.Set("q", args[0])
			}
			for k, val := range map[string]string{"type": typ, "theme": theme, "publisher": publisher, "license": license, "bbox": bbox} {
				if val != "" {
					v.Set(k, val)
				}
			}
			if bbox != "" {
				if _, err := catalog.ParseBBox(bbox); err != nil {
					return fmt.Errorf("--bbox: %w", err)
				}
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: must be 0 (the default) or more", limit)
			}
			if limit > 0 {
				v.Set("limit", strconv.Itoa(limit))
			}
			var res catalogsvc.SearchResult
			if err := g.call(cmd.Context(), "GET", "/api/v1/catalog?"+v.Encode(), nil, &res); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.stdout, "%d datasets\n", res.Total)
			for _, h := range res.Hits {
				d := h.Record.Dataset
				fmt.Fprintf(g.stdout, "%-45s %-28s %s\n", d.ID, d.Publisher.Name, d.Title)
			}
			return nil
		},
	}
	search.Flags().StringVar(&typ, "type", "", "entity type (short name or IRI)")
	search.Flags().StringVar(&theme, "theme", "", "DCAT-AP theme code, e.g. ENVI, TRAN")
	search.Flags().StringVar(&publisher, "publisher", "", "publisher peer ID or name")
	search.Flags().StringVar(&license, "license", "", "licence, e.g. CC-BY-4.0")
	search.Flags().StringVar(&bbox, "bbox", "", "area minLon,minLat,maxLon,maxLat")
	search.Flags().IntVar(&limit, "limit", 0, "at most this many results")
	c.AddCommand(search)
	return c
}

// published is the answer of a publish: the record, and the node's
// warnings about it (catalogsvc.WarningHeader).
type published struct {
	catalog.Record
	Warnings []string
}

func (p *published) readHeader(h http.Header) { p.Warnings = h.Values(catalogsvc.WarningHeader) }
