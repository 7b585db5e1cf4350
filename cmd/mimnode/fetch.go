package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mimnode/mimnode/node/transfer"
)

func fetchCmd(g *globals) *cobra.Command {
	var live, full bool
	cmd := &cobra.Command{
		Use:   "fetch AGREEMENT-ID",
		Short: "Fetch a dataset from its provider under an agreement",
		Long: `fetch asks the provider named in the agreement for the dataset version the
agreement allows, fetches its blocks over parallel streams (verifying each),
and lands the entities in this node's store, where the NGSI-LD API serves
them like local data. An interrupted fetch resumes where it stopped.

A later fetch under the same agreement moves and lands only what changed in the
provider's data since the version landed last. Received entities changed or deleted on
this node stay as they are then; --full lands every entity of the version again,
putting them back as the provider has them.

With --live the transfer stays open afterwards: the provider pushes every
change to the dataset's entities as it happens, until the agreement ends,
either side suspends the transfer, or you press Ctrl-C; the transfer then
stays open, and fetch --live again resumes after the last change received.

On a terminal a progress bar shows bytes, blocks, entities, rate and ETA;
otherwise plain progress lines are printed.`,
		Example: `  mimnode fetch urn:uuid:9b0d... --data /tmp/lab
  mimnode fetch urn:uuid:9b0d... --live --data /tmp/lab`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := g.client()
			if err != nil {
				return err
			}
			again := "'mimnode fetch " + args[0]
			if live {
				again += " --live"
			}
			again += "'"
			interrupted := func() error {
				return fmt.Errorf("fetch interrupted: the daemon keeps what it received so far, and %s resumes from there", again)
			}
			body, err := cl.stream(cmd.Context(), "/api/v1/transfers", transfer.FetchRequest{Agreement: args[0], Live: live, Full: full})
			if err != nil && cmd.Context().Err() != nil {
				return interrupted()
			}
			if err != nil {
				return err
			}
			defer body.Close()
			r := &fetchRenderer{out: g.stdout, json: g.json, bar: !g.json && isTerminal(g.stdout), start: time.Now()}
			err = r.run(body)
			if live && r.following && cmd.Context().Err() != nil {
				// Ctrl-C is how a live fetch is meant to end: the
				// transfer stays open at the last change landed.
				r.finish()
				fmt.Fprintf(g.stderr, "stopped following the live feed; 'mimnode fetch %s --live' resumes it after the last change received, 'mimnode transfer terminate %s' ends it\n", args[0], r.transfer)
				return nil
			}
			if err != nil && cmd.Context().Err() != nil {
				// Interrupted here (Ctrl-C): the daemon is fine, and
				// ends the fetch with this command.
				r.finish()
				return interrupted()
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&live, "live", false, "keep receiving changes after the snapshot")
	cmd.Flags().BoolVar(&full, "full", false, "land every entity of the version, putting back received entities changed or deleted here")
	cmd.MarkFlagsMutuallyExclusive("live", "full")
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stream POSTs body and returns the answer body for reading as it
// arrives; no client timeout, since a live fetch runs until stopped.
func (c *client) stream(ctx context.Context, path string, body any) (io.ReadCloser, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	c.authorize(req)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var p struct{ Title, Detail string }
		if json.Unmarshal(data, &p) == nil && p.Title != "" {
			return nil, fmt.Errorf("%s: %s", p.Title, p.Detail)
		}
		return nil, fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// fetchRenderer shows the events of a fetch: a progress bar on a
// terminal, plain lines otherwise, or the events themselves with --json.
type fetchRenderer struct {
	out   io.Writer
	json  bool
	bar   bool
	start time.Time

	pb        *progressbar.ProgressBar
	phase     string
	lastDecil int64
	following bool   // the snapshot landed and the live feed runs
	transfer  string // the live feed's transfer
}

func (r *fetchRenderer) run(body io.Reader) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev transfer.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("reading the daemon's progress: %w", err)
		}
		if r.json {
			fmt.Fprintln(r.out, sc.Text())
		}
		switch {
		case ev.Progress != nil:
			r.progress(*ev.Progress)
		case ev.Change != nil && !r.json:
			fmt.Fprintf(r.out, "change %d: %s %s\n", ev.Change.Seq, ev.Change.Op, ev.Change.ID)
		case ev.Done != nil:
			r.finish()
			if !r.json {
				d := ev.Done
				fmt.Fprintf(r.out, "transfer %s %s: version %s, %d entities, %d blocks fetched (%d already held), %s moved in %s\n",
					d.ID, d.State, d.Version, d.Usage.Entities, d.Usage.Blocks, d.Usage.Skipped, humanBytes(d.Usage.Bytes), d.Usage.Duration.Round(time.Millisecond))
				if d.FilesDir != "" {
					fmt.Fprintf(r.out, "files in %s\n", d.FilesDir)
				}
				if d.NotLanded > 0 {
					fmt.Fprintf(r.out, "%d entities not landed: this node holds entities with the same ids that are its own or came from another provider or dataset, which a transfer never replaces, or their types are not among those the dataset's catalogue description declares (the node log names some and says which)\n", d.NotLanded)
				}
			}
			return nil
		case ev.Error != nil:
			r.finish()
			msg := ev.Error.Message
			if len(ev.Error.Reasons) > 0 {
				msg = fmt.Sprintf("refused [%s]:\n  %s", ev.Error.Code, strings.Join(ev.Error.Reasons, "\n  "))
			}
			return errors.New(msg)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("lost the daemon during the fetch (%w): if it stopped, start it again ('mimnode run') and fetch again; the transfer resumes with the blocks already received", err)
	}
	return errors.New("the daemon ended the fetch without an outcome: if it stopped, start it again ('mimnode run') and fetch again; the transfer resumes with the blocks already received")
}

func (r *fetchRenderer) finish() {
	if r.pb != nil {
		_ = r.pb.Finish()
		fmt.Fprintln(r.out)
		r.pb = nil
	}
}

func (r *fetchRenderer) progress(p transfer.Progress) {
	if p.Phase == "live" {
		r.following, r.transfer = true, p.Transfer
	}
	if r.json {
		return
	}
	switch p.Phase {
	case "live":
		r.finish()
		fmt.Fprintf(r.out, "snapshot landed; receiving changes as they happen on transfer %s (Ctrl-C to stop)\n", p.Transfer)
		return
	case "interrupted":
		fmt.Fprintf(r.out, "lost the provider (%s); reconnecting until it answers again (Ctrl-C to stop)\n", p.Note)
		return
	case "resumed":
		fmt.Fprintln(r.out, "reconnected; receiving changes again, from the last one landed")
		return
	}
	if r.bar && p.TotalBytes > 0 {
		if r.pb == nil {
			r.pb = progressbar.NewOptions64(p.TotalBytes, progressbar.OptionSetWriter(r.out), progressbar.OptionShowBytes(true),
				progressbar.OptionShowTotalBytes(true), progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionShowDescriptionAtLineEnd())
		}
		r.pb.Describe(fmt.Sprintf("%s: blocks %d/%d, entities %d/%d", p.Phase, p.Blocks, p.TotalBlocks, p.Entities, p.TotalEntities))
		_ = r.pb.Set64(p.Bytes)
		return
	}
	// Plain lines: one per phase and per tenth of the blocks or entities.
	var decil int64
	switch {
	case p.Phase == "blocks" && p.TotalBlocks > 0:
		decil = p.Blocks * 10 / p.TotalBlocks
	case p.Phase == "landing" && p.TotalEntities > 0:
		decil = p.Entities * 10 / p.TotalEntities
	}
	if p.Phase == r.phase && decil == r.lastDecil {
		return
	}
	r.phase, r.lastDecil = p.Phase, decil
	fmt.Fprintln(r.out, plainLine(p, time.Since(r.start)))
}

// plainLine is one progress line: bytes, blocks, entities, rate and ETA.
func plainLine(p transfer.Progress, elapsed time.Duration) string {
	line := fmt.Sprintf("%-8s %s/%s  blocks %d/%d  entities %d/%d", p.Phase, humanBytes(p.Bytes), humanBytes(p.TotalBytes),
		p.Blocks, p.TotalBlocks, p.Entities, p.TotalEntities)
	if secs := elapsed.Seconds(); secs > 0 && p.Bytes > 0 && p.Phase == "blocks" {
		rate := float64(p.Bytes) / secs
		eta := time.Duration(float64(p.TotalBytes-p.Bytes) / rate * float64(time.Second))
		line += fmt.Sprintf("  %s/s  eta %s", humanBytes(int64(rate)), eta.Round(time.Second))
	}
	return line
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
