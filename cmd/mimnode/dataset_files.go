package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/catalogsvc"
)

// mediaTypes are the media types of the files cities publish most, by
// extension; anything else is asked of the system's table, then
// application/octet-stream.
var mediaTypes = map[string]string{
	".csv":     "text/csv",
	".tsv":     "text/tab-separated-values",
	".json":    "application/json",
	".geojson": "application/geo+json",
	".jsonld":  "application/ld+json",
	".xml":     "application/xml",
	".gpkg":    "application/geopackage+sqlite3",
	".parquet": "application/vnd.apache.parquet",
	".zip":     "application/zip",
	".pdf":     "application/pdf",
	".txt":     "text/plain",
	".xlsx":    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// guessMediaType names the media type of a file from its extension.
func guessMediaType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if mt, ok := mediaTypes[ext]; ok {
		return mt
	}
	if mt := mime.TypeByExtension(ext); mt != "" {
		if base, _, err := mime.ParseMediaType(mt); err == nil {
			return base
		}
	}
	return "application/octet-stream"
}

// openForUpload opens path as the person running the command, and refuses
// what is not one readable regular file with a sentence that says why.
func openForUpload(path string) (*os.File, os.FileInfo, error) {
	return openInput(path, "add its files one by one")
}

// openInput opens a file a command reads, refusing what is not one
// readable regular file with a sentence that says why: a directory
// (dirHint says what to do instead), a FIFO or device (opening one blocks
// until a writer comes, past Ctrl-C), a file that is not there or not
// readable.
func openInput(path, dirHint string) (*os.File, os.FileInfo, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("%s: no such file", path)
	case errors.Is(err, fs.ErrPermission):
		return nil, nil, fmt.Errorf("%s: permission denied (the file is read by you, not by the daemon)", path)
	case err != nil:
		return nil, nil, err
	case st.IsDir():
		return nil, nil, fmt.Errorf("%s is a directory; %s", path, dirHint)
	case !st.Mode().IsRegular():
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) {
		return nil, nil, fmt.Errorf("%s: permission denied (the file is read by you, not by the daemon)", path)
	}
	if err != nil {
		return nil, nil, err
	}
	return f, st, nil
}

// maxInputFile bounds the description, policy, agreement and @context
// files commands read whole; the daemon refuses far smaller bodies.
const maxInputFile = 64 << 20

// readJSONInput is readInput for a file that must hold JSON.
func readJSONInput(path string) ([]byte, error) {
	b, err := readInput(path)
	if err == nil && !json.Valid(b) {
		return nil, fmt.Errorf("%s is not JSON", path)
	}
	return b, err
}

// readInput reads a whole file a command sends or checks (openInput says
// what it refuses).
func readInput(path string) ([]byte, error) {
	f, st, err := openInput(path, "give a file")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st.Size() > maxInputFile {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a command reads", path, st.Size(), maxInputFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func datasetFileCmds(g *globals) []*cobra.Command {
	var mediaType, name string
	add := &cobra.Command{
		Use:   "add-file ID PATH",
		Short: "Add a file (CSV, GeoJSON, ...) to one of this node's datasets",
		Long: `Add the file at PATH to the dataset, or replace the dataset's file of the same name.
The command reads the file itself and streams its bytes to the daemon, which keeps
them in its data directory (as content-addressed blocks): later changes to PATH do
not change what is served until the file is added again, and the daemon needs no
access to PATH. The dataset gets a new version whose manifest covers its entities
and all its files, and is announced; its DCAT record lists the file as a
distribution (name, media type, size, SHA-256). The media type is guessed from
the extension unless --media-type says it.`,
		Example: `  mimnode dataset add-file urn:mim:dataset:aarhus:stations stations.csv
  mimnode dataset add-file urn:mim:dataset:aarhus:plan plan.gpkg --media-type application/geopackage+sqlite3`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, st, err := openForUpload(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			n := name
			if n == "" {
				n = filepath.Base(args[1])
			}
			mt := mediaType
			if mt == "" {
				mt = guessMediaType(n)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			c.http = &http.Client{} // no overall timeout: a big file takes a while; Ctrl-C cancels
			v := url.Values{"name": {n}, "mediaType": {mt}}
			var out catalogsvc.FileAdded
			if err := c.send(cmd.Context(), "POST", "/api/v1/datasets/"+url.PathEscape(args[0])+"/files?"+v.Encode(), mt, f, &out); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(out)
			}
			fmt.Fprintf(g.stdout, "added %s (%d bytes, %s, sha256 %s) to %s\nversion %s (catalogue sequence %d)\n",
				out.File.Name, st.Size(), out.File.MediaType, out.File.SHA256, out.Record.Dataset.ID, out.Record.Dataset.Version, out.Record.Seq)
			return nil
		},
	}
	add.Flags().StringVar(&mediaType, "media-type", "", "media type of the file, e.g. text/csv (default: from the extension)")
	add.Flags().StringVar(&name, "name", "", "name of the file in the dataset (default: the base name of PATH)")

	files := &cobra.Command{
		Use:     "files ID",
		Short:   "List a dataset's files (this node's, or any in the federated index)",
		Example: "  mimnode dataset files urn:mim:dataset:aarhus:stations",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list := []catalog.File{}
			if err := g.call(cmd.Context(), "GET", "/api/v1/datasets/"+url.PathEscape(args[0])+"/files", nil, &list); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.stdout, "no files (add one with 'mimnode dataset add-file ID PATH')")
			}
			for _, f := range list {
				fmt.Fprintf(g.stdout, "%-32s %12d  %-28s sha256 %s\n", f.Name, f.Size, f.MediaType, f.SHA256)
			}
			return nil
		},
	}
	rm := &cobra.Command{
		Use:     "rm-file ID NAME",
		Short:   "Remove a file from one of this node's datasets (a new version is announced)",
		Example: "  mimnode dataset rm-file urn:mim:dataset:aarhus:stations stations.csv",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rec catalog.Record
			if err := g.call(cmd.Context(), "DELETE", "/api/v1/datasets/"+url.PathEscape(args[0])+"/files/"+url.PathEscape(args[1]), nil, &rec); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rec)
			}
			fmt.Fprintf(g.stdout, "removed %s from %s\nversion %s (catalogue sequence %d)\n", args[1], rec.Dataset.ID, rec.Dataset.Version, rec.Seq)
			return nil
		},
	}
	return []*cobra.Command{add, files, rm}
}
