package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

func contractCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "contract",
		Aliases: []string{"negotiation"},
		Short:   "Negotiate usage contracts with other nodes (Dataspace Protocol over libp2p)",
		Long: `A consumer asks a provider for a dataset under one of its offers; the provider's node
decides from the offer's policy (or queues the request for a person when the offer asks
for manual approval), and both end with an agreement signed by both, or a refusal with
its reasons. Every step is kept in the node's audit log ('mimnode audit').`,
	}
	c.AddCommand(contractRequestCmd(g), contractListCmd(g), contractShowCmd(g), contractPendingCmd(g),
		contractApproveCmd(g), contractRejectCmd(g), contractOfferCmd(g))
	return c
}

// printNegotiation prints one negotiation: the agreement id when it is
// finalized, the code and reasons when it terminated.
func printNegotiation(g *globals, in contract.Info) error {
	if g.json {
		return g.printJSON(in)
	}
	fmt.Fprintf(g.stdout, "negotiation: %s\nrole:        %s\nstate:       %s\npeer:        %s\ndataset:     %s\n",
		in.ID, in.Role, in.State, peerAndName(in), in.Dataset)
	if in.OfferID != "" {
		fmt.Fprintf(g.stdout, "offer:       %s\n", in.OfferID)
	}
	if in.Purpose != "" {
		fmt.Fprintf(g.stdout, "purpose:     %s\n", in.Purpose)
	}
	if in.Pending {
		fmt.Fprintf(g.stdout, "waiting for: approval ('mimnode contract approve %s' or 'reject')\n", in.ID)
		if in.Held != "" {
			fmt.Fprintf(g.stdout, "held:        %s\n", in.Held)
		}
	}
	if in.AgreementID != "" {
		fmt.Fprintf(g.stdout, "agreement:   %s\n", in.AgreementID)
	}
	if in.State == negotiation.Terminated {
		fmt.Fprintf(g.stdout, "ended:       %s\n", in.Code)
		for _, r := range in.Reasons {
			fmt.Fprintf(g.stdout, "  - %s\n", r)
		}
	}
	return nil
}

func contractRequestCmd(g *globals) *cobra.Command {
	var provider, offerID, offerFile, purpose string
	var wait bool
	var waitSeconds int
	c := &cobra.Command{
		Use:   "request DATASET-ID [--provider PEER]",
		Short: "Ask a provider for a dataset under one of its offers",
		Long: `Start a negotiation as consumer. The provider is the dataset's publisher in the
federated catalogue unless --provider names it. The offer is taken from --offer-file (the
ODRL offer as the provider advertises it), or looked up by --offer (policy id, template
name or position, default the first) in the catalogue and the offers this node knows.
With --wait, the command waits until the negotiation ends and prints the agreement id,
or the provider's reasons for refusing; it then fails if there is no agreement.`,
		Example: `  mimnode contract request urn:ngsi-ld:Dataset:noise --provider 12D3KooW... --purpose research --wait`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if waitSeconds <= 0 {
				return fmt.Errorf("--wait-seconds %d: must be at least 1", waitSeconds)
			}
			var offer []byte
			if offerFile != "" {
				var err error
				if offer, err = readJSONInput(offerFile); err != nil {
					return err
				}
			}
			cl, err := g.client()
			if err != nil {
				return err
			}
			if provider == "" {
				var rec catalog.Record
				if err := cl.do(cmd.Context(), "GET", "/api/v1/datasets/"+url.PathEscape(args[0]), nil, &rec); err != nil {
					return fmt.Errorf("find the publisher of %s: %w%s", args[0], err, providerHint(err, offerFile))
				}
				provider = rec.Publisher
			}
			body := contract.NegotiationRequest{Dataset: args[0], Provider: provider, OfferID: offerID,
				Purpose: purpose, Wait: wait, WaitSeconds: waitSeconds, Offer: offer}
			var in contract.Info
			if err := cl.do(cmd.Context(), "POST", "/api/v1/negotiations", body, &in); err != nil {
				return err
			}
			if !wait {
				if g.json {
					return g.printJSON(in)
				}
				fmt.Fprintf(g.stdout, "negotiation %s: %s\n", in.ID, in.State)
				fmt.Fprintf(g.stderr, "'mimnode contract show %s' follows it, and names the agreement once it is FINALIZED\n", in.ID)
				return nil
			}
			if g.json {
				if err := g.printJSON(in); err != nil {
					return err
				}
			}
			switch in.State {
			case negotiation.Finalized:
				if !g.json {
					fmt.Fprintf(g.stdout, "agreement %s\n", in.AgreementID)
				}
				return nil
			case negotiation.Terminated:
				// The reasons are part of the error, so they go to stderr:
				// a script reading the agreement id from stdout
				// (`A=$(mimnode contract request ... | sed ...)`) must not
				// swallow them.
				var reasons strings.Builder
				for _, r := range in.Reasons {
					fmt.Fprintf(&reasons, "\n  - %s", r)
				}
				return fmt.Errorf("negotiation %s ended without an agreement: refused (%s): %s%s", in.ID, string(in.Code), describeCode(in.Code), reasons.String())
			}
			why := ""
			switch {
			case in.Unreached != "":
				why = fmt.Sprintf(": the provider has not been reached (is it online, and does it share a federation with this node?); this node keeps trying. Last attempt: %s", in.Unreached)
			case in.State == negotiation.Requested:
				why = ": the provider has not decided yet (a person approves its offer, or approves new requests of a consumer whose earlier agreement for the dataset it revoked)"
			}
			return fmt.Errorf("negotiation %s still %s%s; follow it with 'mimnode contract show %s'", in.ID, in.State, why, in.ID)
		},
	}
	c.Flags().StringVar(&provider, "provider", "", "peer ID of the provider")
	c.Flags().StringVar(&offerID, "offer", "", "offer id (default: the dataset's first offer known here)")
	c.Flags().StringVar(&offerFile, "offer-file", "", "file with the ODRL offer as the provider advertises it")
	c.Flags().StringVar(&purpose, "purpose", "", "purpose of use stated to the provider's policy (e.g. research)")
	c.Flags().BoolVar(&wait, "wait", false, "wait until the negotiation ends")
	c.Flags().IntVar(&waitSeconds, "wait-seconds", 30, "how long --wait waits")
	return c
}

// providerHint says when --provider helps after the dataset's publisher
// could not be found in the catalogue: when the id names datasets of several
// publishers, or when the offer came in a file (so the dataset need not be
// in the catalogue at all). For a mistyped id it would only mislead.
func providerHint(err error, offerFile string) string {
	switch {
	case strings.Contains(err.Error(), catalogsvc.ErrAmbiguous.Error()):
		return "; give the one you mean with --provider PEER"
	case offerFile != "":
		return "; with --offer-file, name the peer that made the offer with --provider PEER"
	}
	return ""
}

func describeCode(c protocol.Code) string {
	if info, ok := protocol.Lookup(c); ok {
		return info.Description
	}
	return string(c)
}

func contractListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List this node's negotiations, as consumer and as provider",
		Example: "  mimnode contract list --data /tmp/lab",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return listNegotiations(g, cmd, "/api/v1/negotiations")
		},
	}
}

func contractPendingCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "pending",
		Short:   "List requests waiting for a person's approval",
		Example: "  mimnode contract pending --data /tmp/env",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return listNegotiations(g, cmd, "/api/v1/negotiations/pending")
		},
	}
}

func listNegotiations(g *globals, cmd *cobra.Command, path string) error {
	var list []contract.Info
	if err := g.call(cmd.Context(), "GET", path, nil, &list); err != nil {
		return err
	}
	if g.json {
		return g.printJSON(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(g.stdout, "no negotiations")
		return nil
	}
	for _, in := range list {
		extra := in.AgreementID
		if in.State == negotiation.Terminated {
			extra = string(in.Code)
		}
		if in.Pending {
			extra = "awaiting approval"
			if in.Held != "" {
				extra += " (an earlier agreement was revoked)"
			}
		}
		fmt.Fprintf(g.stdout, "%s  %-8s %-10s %s  %s  %s\n", in.ID, in.Role, in.State, peerAndName(in), in.Dataset, extra)
	}
	return nil
}

func contractShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show NEGOTIATION-ID",
		Short:   "Show one negotiation, with the refusal reasons if it was refused",
		Example: "  mimnode contract show urn:uuid:3f2a... --data /tmp/lab",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in contract.Info
			if err := g.call(cmd.Context(), "GET", "/api/v1/negotiations/"+url.PathEscape(args[0]), nil, &in); err != nil {
				return err
			}
			return printNegotiation(g, in)
		},
	}
}

func contractApproveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "approve NEGOTIATION-ID",
		Short:   "Approve a request waiting for approval; the agreement is signed and sent",
		Example: "  mimnode contract approve urn:uuid:3f2a... --data /tmp/env   # an id 'contract pending' lists",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in contract.Info
			if err := g.call(cmd.Context(), "POST", "/api/v1/negotiations/"+url.PathEscape(args[0])+"/approve", struct{}{}, &in); err != nil {
				return err
			}
			return printNegotiation(g, in)
		},
	}
}

func contractRejectCmd(g *globals) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:     "reject NEGOTIATION-ID --reason TEXT",
		Short:   "Reject a request waiting for approval; the reason goes to the consumer",
		Example: `  mimnode contract reject urn:uuid:... --reason "send us your research plan first"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in contract.Info
			if err := g.call(cmd.Context(), "POST", "/api/v1/negotiations/"+url.PathEscape(args[0])+"/reject",
				contract.RejectRequest{Reason: reason}, &in); err != nil {
				return err
			}
			return printNegotiation(g, in)
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, for the consumer")
	return c
}

func contractOfferCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "offer",
		Short: "Offers this node makes or knows (interim, until the catalogue provides them)",
	}
	var id, template, federation, file string
	var days int
	var purposes []string
	var manual bool
	add := &cobra.Command{
		Use:   "add DATASET-ID (--template NAME | --file ODRL.json)",
		Short: "Record an offer for a dataset: a policy template or an ODRL offer",
		Long: `Record an offer. Offers made by this node are what it evaluates requests against; an
offer read from another node's catalogue (--file) lets 'contract request --offer ID'
find it. --manual marks the offer for manual approval ("mim:manualApproval": true):
requests the policy permits then wait for 'mimnode contract approve'. Prints the offer
as the node advertises it.`,
		Example: `  mimnode contract offer add urn:ngsi-ld:Dataset:noise --template research-only --manual`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := contract.OfferRequest{Dataset: args[0], ID: id, Template: template, Federation: federation,
				Days: days, Purposes: purposes, Manual: manual}
			if file != "" {
				b, err := readJSONInput(file)
				if err != nil {
					return err
				}
				body.ODRL = b
			}
			var out json.RawMessage
			if err := g.call(cmd.Context(), "POST", "/api/v1/offers", body, &out); err != nil {
				return err
			}
			return g.printJSON(out)
		},
	}
	add.Flags().StringVar(&id, "id", "", "offer id (default: a new urn:uuid)")
	add.Flags().StringVar(&template, "template", "", "policy template ('mimnode policy templates')")
	add.Flags().StringVar(&federation, "federation", "", "federation id, for templates that need one")
	add.Flags().IntVar(&days, "days", 0, "days, for time-limited")
	add.Flags().StringSliceVar(&purposes, "purpose", nil, "purposes, for personal-data")
	add.Flags().StringVar(&file, "file", "", "ODRL offer file instead of a template")
	add.Flags().BoolVar(&manual, "manual", false, "require manual approval of requests")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the offers recorded with 'offer add' (a published dataset's own offers are in its record: 'mimnode dataset show ID')",
		Example: "  mimnode contract offer list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var out []json.RawMessage
			if err := g.call(cmd.Context(), "GET", "/api/v1/offers", nil, &out); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(out)
			}
			if len(out) == 0 {
				fmt.Fprintln(g.stdout, "no offers recorded with 'mimnode contract offer add'; the offers of a dataset this node publishes are in its record ('mimnode dataset show ID')")
			}
			for _, o := range out {
				var h struct {
					ID     string `json:"@id"`
					Target string `json:"target"`
					Manual bool   `json:"mim:manualApproval"`
				}
				json.Unmarshal(o, &h)
				m := ""
				if h.Manual {
					m = "  (manual approval)"
				}
				fmt.Fprintf(g.stdout, "%s  %s%s\n", h.Target, h.ID, m)
			}
			return nil
		},
	}
	rm := &cobra.Command{
		Use:     "rm DATASET-ID OFFER-ID",
		Short:   "Remove an offer (negotiations under it keep their copy of its terms)",
		Example: "  mimnode contract offer rm urn:mim:dataset:aarhus:air-quality urn:uuid:0b6f...",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := url.Values{"dataset": {args[0]}, "id": {args[1]}}
			if err := g.call(cmd.Context(), "DELETE", "/api/v1/offers?"+v.Encode(), nil, nil); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"dataset": args[0], "id": args[1], "status": "removed"})
			}
			fmt.Fprintf(g.stdout, "removed offer %s of %s\n", args[1], args[0])
			return nil
		},
	}
	c.AddCommand(add, list, rm)
	return c
}

// agreementExportCmd is `mimnode agreement export ID`: the agreement file,
// byte for byte as stored, which `mimnode agreement verify` checks.
func agreementExportCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:     "export ID",
		Short:   "Write a finalized agreement to a file (or stdout) for 'mimnode agreement verify'",
		Example: "  mimnode agreement export urn:uuid:... --out agreement.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := g.call(cmd.Context(), "GET", "/api/v1/agreements/"+url.PathEscape(args[0]), nil, &raw); err != nil {
				return err
			}
			data := append([]byte(strings.TrimSpace(string(raw))), '\n')
			if out == "" || out == "-" {
				_, err := g.stdout.Write(data)
				return err
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"id": args[0], "file": out})
			}
			fmt.Fprintf(g.stdout, "wrote %s\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "file to write (default stdout)")
	return c
}

// agreementListCmd is `mimnode agreement list`.
func agreementListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the agreements this node holds",
		Example: "  mimnode agreement list --data /tmp/lab",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var list []contract.AgreementInfo
			if err := g.call(cmd.Context(), "GET", "/api/v1/agreements", nil, &list); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.stdout, "no agreements (ask for one with 'mimnode contract request DATASET-ID')")
			}
			for _, a := range list {
				other := a.Provider
				if a.Role == "provider" {
					other = a.Consumer
				}
				revoked := ""
				if a.Revoked != nil {
					revoked = "  REVOKED " + a.Revoked.Time.Local().Format(time.DateTime)
					if a.Revoked.Told {
						revoked = "  REVOKED (its provider said so at " + a.Revoked.Time.Local().Format(time.DateTime) + ")"
					}
				}
				fmt.Fprintf(g.stdout, "%s  %-8s %s  %s%s\n", a.ID, a.Role, other, a.Dataset, revoked)
			}
			return nil
		},
	}
}

// agreementRevokeCmd is `mimnode agreement revoke`.
func agreementRevokeCmd(g *globals) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "revoke AGREEMENT-ID [--reason TEXT]",
		Short: "Withdraw an agreement this node granted: every transfer under it is refused from now on",
		Long: `Revoke an agreement this node signed as provider. From now on the node refuses every
transfer under it; the transfers running under it are terminated and their live feeds stop
at once, with the reason, which the consumer sees. The agreement file itself is unchanged
(its signatures still prove what was agreed); the revocation is recorded beside it and in
the transaction log ('mimnode audit'). It cannot be undone. The consumer's later requests
for the dataset wait for a person ('mimnode contract pending'), whatever the offer says.
Only the provider's node enforces an agreement, so only it can revoke one.`,
		Example: `  mimnode agreement revoke urn:uuid:... --reason "the dataset holds personal data"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out contract.RevokeResult
			if err := g.call(cmd.Context(), "POST", "/api/v1/agreements/"+url.PathEscape(args[0])+"/revoke",
				contract.RevokeRequest{Reason: reason}, &out); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(out)
			}
			if out.AlreadyRevoked {
				fmt.Fprintf(g.stdout, "agreement %s was already revoked at %s", out.Agreement, out.Time.Local().Format(time.DateTime))
				if out.Reason != "" {
					fmt.Fprintf(g.stdout, ": %s", out.Reason)
				}
				fmt.Fprintln(g.stdout)
			} else {
				fmt.Fprintf(g.stdout, "revoked agreement %s: %s can no longer fetch under it\n", out.Agreement, out.Consumer)
			}
			for _, id := range out.EndedTransfers {
				fmt.Fprintf(g.stdout, "terminated transfer %s\n", id)
			}
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, for the consumer and the log")
	return c
}

// peerAndName is a negotiation's peer ID, with who it is when a shared
// federation names it: a person approving a request sees who asks.
func peerAndName(in contract.Info) string {
	if in.PeerName == "" {
		return in.Peer
	}
	return in.Peer + " (" + in.PeerName + ")"
}
