package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/testnet"
)

// benchCmd is `mimnode bench`: the benchmark scenarios of every issue on a
// local testnet, each against a baseline measured in the same run, written
// as the markdown report the README's performance section shows.
func benchCmd(g *globals) *cobra.Command {
	var quick bool
	var out, binary, profile string
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure the node against its performance targets and write a report",
		Long: `Run the benchmark scenarios (node start, NGSI-LD ingest and queries, subscriptions,
membership and catalogue propagation, catalogue search, policy evaluation, version
building, negotiation, transfer and the live feed) on real nodes on this machine,
each with a baseline measured in the same run, and write a markdown report: one row
per performance target, with value, baseline, ratio, target and pass/fail, headed by
the machine it ran on. --quick uses smaller sizes and finishes in under 3 minutes on
a 2-core machine; the full run uses the sizes the targets name and takes longer.

Node start and idle memory are measured on 'mimnode run' as a subprocess of this
executable (or --binary).`,
		Example: `  mimnode bench --quick
  mimnode bench --out report.md
  mimnode bench --quick --json > report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check the output paths before a run of minutes, not after.
			if profile != "" {
				if st, err := os.Stat(profile); err != nil || !st.IsDir() {
					return fmt.Errorf("bench: --profile %s: not an existing directory", profile)
				}
			}
			var f *os.File
			if out != "" {
				var err error
				if f, err = os.Create(out); err != nil {
					return fmt.Errorf("bench: the report file: %w", err)
				}
				defer f.Close()
			}
			if binary != "" {
				if st, err := os.Stat(binary); err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 && runtime.GOOS != "windows" {
					return fmt.Errorf("bench: --binary %s: not an executable file", binary)
				}
			}
			if binary == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench: find this executable for the node start measurement (use --binary): %w", err)
				}
				binary = exe
			}
			// Interrupted, the run still reports what it measured, then
			// says it was cut short.
			rep, runErr := testnet.RunBench(cmd.Context(), testnet.BenchOptions{Quick: quick, Progress: g.stderr,
				Binary: binary, Date: time.Now(), ProfileDir: profile})
			var buf bytes.Buffer
			if g.json {
				if err := (&globals{stdout: &buf}).printJSON(rep); err != nil {
					return err
				}
			} else if err := rep.Markdown(&buf); err != nil {
				return err
			}
			if f != nil {
				if _, err := f.Write(buf.Bytes()); err != nil {
					return fmt.Errorf("bench: write %s: %w", out, err)
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("bench: write %s: %w", out, err)
				}
				fmt.Fprintf(g.stderr, "report written to %s\n", out)
				return runErr
			}
			if _, err := g.stdout.Write(buf.Bytes()); err != nil {
				return err
			}
			return runErr
		},
	}
	c.Flags().BoolVar(&quick, "quick", false, "smaller sizes: the whole run in under 3 minutes")
	c.Flags().StringVar(&out, "out", "", "write the report to this file (default: standard output)")
	c.Flags().StringVar(&profile, "profile", "", "write a CPU profile of each scenario and federation step into this existing directory")
	c.Flags().StringVar(&binary, "binary", "", "mimnode executable for the node start and memory measurement (default: this one)")
	return c
}
