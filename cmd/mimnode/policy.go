package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/policy"
)

func policyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Usage policies: ready-made templates and checking ODRL files",
	}
	c.AddCommand(policyTemplatesCmd(g), policyCheckCmd(g))
	return c
}

func policyTemplatesCmd(g *globals) *cobra.Command {
	var show string
	var p policy.Params
	c := &cobra.Command{
		Use:   "templates",
		Short: "List the ready-made policy templates, or print one as ODRL",
		Long: `List the ready-made policies a dataset offer can name ("offers": [{"template": NAME}]).
With --show NAME, print that template as ODRL JSON-LD, filled in with the flags it needs.`,
		Example: `  mimnode policy templates
  mimnode policy templates --show time-limited --days 30
  mimnode policy templates --show agency-internal --federation bagu...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if show == "" {
				type row struct {
					Name        string   `json:"name"`
					Description string   `json:"description"`
					Needs       []string `json:"needs,omitempty"`
				}
				var rows []row
				for _, t := range policy.Templates() {
					rows = append(rows, row{t.Name, t.Description, t.Needs})
				}
				if g.json {
					return g.printJSON(rows)
				}
				for _, r := range rows {
					needs := ""
					if len(r.Needs) > 0 {
						needs = " (needs " + strings.Join(r.Needs, ", ") + ")"
					}
					fmt.Fprintf(g.stdout, "%-16s %s%s\n", r.Name, r.Description, needs)
				}
				fmt.Fprintln(g.stdout, `
In a dataset file, an offer names a template and gives what it needs as params:
  "offers": [{"template": "agency-internal", "params": {"federation": "FEDERATION-ID"}}]
'mimnode policy templates --show NAME' prints one as ODRL, given the same as flags (--federation ID).`)
				return nil
			}
			t, err := policy.LookupTemplate(show)
			if err != nil {
				return err
			}
			if p.Federation != "" {
				// Federation ids are CIDs (of the federation's first
				// document); a policy naming anything else grants no one.
				if _, err := cid.Decode(p.Federation); err != nil {
					return fmt.Errorf("--federation %q is not a federation ID (mimnode federation list shows them)", p.Federation)
				}
			}
			if p.Licence != "" && !policy.IsIRI(p.Licence) {
				return fmt.Errorf("--licence %q is not an IRI (e.g. https://creativecommons.org/licenses/by/4.0/)", p.Licence)
			}
			pol, err := t.New(p)
			if err != nil {
				return err
			}
			b, err := policy.MarshalIndent(pol)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, string(b))
			return nil
		},
	}
	c.Flags().StringVar(&show, "show", "", "print this template as ODRL JSON-LD")
	c.Flags().StringVar(&p.Federation, "federation", "", "federation ID (agency-internal)")
	c.Flags().IntVar(&p.Days, "days", 0, "days after the agreement starts (time-limited)")
	c.Flags().StringSliceVar(&p.Purposes, "purposes", nil, "consented purposes (personal-data)")
	c.Flags().StringVar(&p.Licence, "licence", "", "licence IRI to attribute (open-data)")
	return c
}

// errPolicyInvalid makes `policy check` exit non-zero after printing.
var errPolicyInvalid = errors.New("the policy uses terms mimnode does not understand; every request under it would be denied")

func policyCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate an ODRL policy file and print what it says in words",
		Long: `Read an ODRL policy (JSON-LD, compact or expanded; or a DSP message or DCAT dataset
carrying policies), check that mimnode understands every term, and print each policy
in words. Exits non-zero when a policy is invalid: mimnode denies every request under
a policy it does not fully understand, so such a file would block all use.`,
		Example: "  mimnode policy check offer.jsonld",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[0])
			if err != nil {
				return err
			}
			pols, err := policy.FindPolicies(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if len(pols) == 0 {
				return fmt.Errorf("%s: no ODRL policy found: a policy is a JSON object with \"@type\" Offer, Set or Agreement and its rules (permission, prohibition, obligation), alone or inside a DSP message or DCAT dataset; 'mimnode policy templates --show NAME' prints examples", args[0])
			}
			type result struct {
				ID          string `json:"id,omitempty"`
				Valid       bool   `json:"valid"`
				Error       string `json:"error,omitempty"`
				Description string `json:"description"`
			}
			var out []result
			invalid := false
			for _, p := range pols {
				r := result{ID: p.ID, Valid: true, Description: policy.Describe(p)}
				if err := policy.Validate(p); err != nil {
					r.Valid, r.Error, invalid = false, err.Error(), true
				}
				out = append(out, r)
			}
			if g.json {
				if err := g.printJSON(out); err != nil {
					return err
				}
			} else {
				for _, r := range out {
					status := "valid"
					if !r.Valid {
						status = "INVALID: " + r.Error
					}
					fmt.Fprintf(g.stdout, "%s\n%s\n\n", status, r.Description)
				}
			}
			if invalid {
				return errPolicyInvalid
			}
			return nil
		},
	}
}

func agreementCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "agreement",
		Short: "Signed usage agreements",
	}
	c.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Check an agreement's two signatures offline and print its terms",
		Long: `Verify a signed agreement file (as written by 'mimnode agreement export'): both the
provider's and the consumer's signatures over its canonical form (RFC 8785), checked
against the public keys inside their peer IDs. A file reformatted since (pretty-printed,
say) verifies as its canonical form. Needs no daemon and no network, so it cannot tell
whether the provider has revoked the agreement since.`,
		Example: "  mimnode agreement verify agreement.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readInput(args[0])
			if err != nil {
				return err
			}
			a, reformatted, err := policy.ParseReformattedAgreement(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if err := a.Verify(node.PeerIDVerifier{}); err != nil {
				return fmt.Errorf("%s does not verify: %w", args[0], err)
			}
			if g.json {
				return g.printJSON(map[string]any{"valid": true, "reformatted": reformatted, "id": a.ID, "dataset": a.Dataset,
					"provider": a.Provider, "consumer": a.Consumer, "description": a.Describe()})
			}
			fmt.Fprintf(g.stdout, "valid: signed by provider %s and consumer %s\n", a.Provider, a.Consumer)
			if reformatted {
				fmt.Fprintln(g.stdout, "(the file was reformatted since it was written; its canonical form, which the signatures cover, is what verified)")
			}
			fmt.Fprintln(g.stdout, a.Describe())
			fmt.Fprintln(g.stdout, "A revocation is not checked offline: 'mimnode agreement list' on the provider's or consumer's node shows one.")
			return nil
		},
	})
	c.AddCommand(agreementExportCmd(g), agreementListCmd(g), agreementRevokeCmd(g))
	return c
}
