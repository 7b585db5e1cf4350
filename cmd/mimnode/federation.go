package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mimnode/mimnode/node/federation"
)

func federationCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "federation",
		Aliases: []string{"fed"},
		Short:   "Create, join and manage federations (signed membership)",
		Long: `A federation is a region's group of agencies (and read-only researchers). Its
membership is a chain of documents signed by its admins; every member holds and checks
it, and only members can connect to each other.`,
	}
	c.AddCommand(
		fedCreateCmd(g), fedInviteCmd(g), fedJoinCmd(g), fedListCmd(g), fedShowCmd(g),
		fedRevokeCmd(g), fedRoleCmd(g), fedAdminCmd(g), fedThresholdCmd(g), fedSignCmd(g), fedTokenCmd(g),
	)
	return c
}

func printFed(g *globals, in federation.Info) error {
	if g.json {
		return g.printJSON(in)
	}
	role := string(in.Role)
	if role == "" {
		role = "not a member (revoked)"
	}
	if in.Admin {
		role += ", admin"
	}
	fmt.Fprintf(g.stdout, "federation: %s\nid:         %s\nversion:    %d\nthis node:  %s\nadmins:     %d (changes need %d signatures)\nconnected:  %d of %d members\n",
		in.Name, in.ID, in.Seq, role, len(in.Admins), in.Threshold, in.Connected, len(in.Members)-1)
	for _, m := range in.Members {
		admin := ""
		for _, a := range in.Admins {
			if a == m.PeerID {
				admin = " admin"
			}
		}
		fmt.Fprintf(g.stdout, "  %s  %-10s %s%s\n", m.PeerID, m.Role, m.Name, admin)
	}
	return nil
}

// printChange reports a membership change. The token is printed when
// someone needs it: the other admins, while signatures are missing, and
// the new member, for an applied invitation (joins says whether the
// change may be one). An applied revocation or role change prints none:
// nobody is to be handed the chain then.
func printChange(g *globals, res federation.ChangeResult, what string, joins bool) error {
	if g.json {
		return g.printJSON(res)
	}
	switch {
	case !res.Applied:
		fmt.Fprintf(g.stdout, "%s: needs more admin signatures; give this token to another admin ('mimnode federation sign TOKEN'):\n", what)
	case joins:
		fmt.Fprintf(g.stdout, "%s: done; the new member joins with this token ('mimnode federation join TOKEN'):\n", what)
	default:
		fmt.Fprintf(g.stdout, "%s: done\n", what)
		return nil
	}
	fmt.Fprintln(g.stdout, res.Token)
	return nil
}

func fedCreateCmd(g *globals) *cobra.Command {
	var bootstrap []string
	c := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a federation; this node becomes its first admin and member",
		Example: `  mimnode federation create "Aarhus region"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var in federation.Info
			body := map[string]any{"name": args[0]}
			if len(bootstrap) > 0 {
				body["bootstrap"] = bootstrap
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/federations", body, &in); err != nil {
				return err
			}
			return printFed(g, in)
		},
	}
	c.Flags().StringArrayVar(&bootstrap, "bootstrap", nil, "bootstrap multiaddr with /p2p/ (repeatable; default: this node's addresses)")
	return c
}

// change posts one membership change.
func change(g *globals, cmd *cobra.Command, fed string, req federation.ChangeRequest, what string) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	if fed == "" {
		fed = "default"
		var list []federation.Info
		if err := c.do(cmd.Context(), "GET", "/api/v1/federations", nil, &list); err != nil {
			return err
		}
		if len(list) != 1 {
			return fmt.Errorf("this node belongs to %d federations: name one with --federation", len(list))
		}
		fed = list[0].ID
	}
	var res federation.ChangeResult
	if err := c.do(cmd.Context(), "POST", "/api/v1/federations/"+fed+"/changes", req, &res); err != nil {
		return err
	}
	return printChange(g, res, what, req.Op == "add")
}

func fedInviteCmd(g *globals) *cobra.Command {
	var fed, role, name string
	c := &cobra.Command{
		Use:   "invite PEERID",
		Short: "Add a member and print the token it joins with",
		Long: `Add PEERID to the federation as an agency or a researcher, and print one token: the
signed membership chain plus addresses to reach the federation. The new member runs
'mimnode federation join TOKEN'.`,
		Example: `  mimnode federation invite 12D3KooW... --role researcher --name "University lab"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := federation.Role(role)
			if !r.Valid() {
				return fmt.Errorf("--role %q: want agency or researcher", role)
			}
			return change(g, cmd, fed, federation.ChangeRequest{Op: "add", PeerID: args[0], Role: r, Name: name}, "invite "+args[0])
		},
	}
	c.Flags().StringVar(&fed, "federation", "", "federation ID, ID prefix or name (default: the only one)")
	c.Flags().StringVar(&role, "role", "agency", "agency or researcher")
	c.Flags().StringVar(&name, "name", "", "the member's agency name")
	return c
}

func fedJoinCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "join TOKEN",
		Short:   "Join a federation with the token an admin's 'invite' printed",
		Example: "  mimnode federation join mimfed1:eyJjaGFpbi...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in federation.Info
			if err := postToken(g, cmd, "/api/v1/federations/join", args[0], &in); err != nil {
				return err
			}
			if err := printFed(g, in); err != nil {
				return err
			}
			if !g.json && in.Connected == 0 && len(in.Members) > 1 {
				// The token is checked here alone; only the members can
				// tell whether this node is still one of them.
				fmt.Fprintln(g.stderr, "no member answered yet: they may be offline or unreachable from here, or this node may have been removed since the invitation (an admin's 'mimnode federation show' tells)")
			}
			return nil
		},
	}
}

func fedListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the federations this node belongs to",
		Example: "  mimnode federation list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			list := []federation.Info{}
			if err := g.call(cmd.Context(), "GET", "/api/v1/federations", nil, &list); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.stdout, "no federations (create one with 'mimnode federation create NAME' or join with a token)")
			}
			for _, in := range list {
				fmt.Fprintf(g.stdout, "%s  %-20s v%-3d %-10s %d members\n", in.ID, in.Name, in.Seq, in.Role, len(in.Members))
			}
			return nil
		},
	}
}

func fedShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Short:   "Show a federation's members, admins and rule",
		Example: `  mimnode federation show "Aarhus region"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in federation.Info
			if err := g.call(cmd.Context(), "GET", "/api/v1/federations/"+args[0], nil, &in); err != nil {
				return err
			}
			return printFed(g, in)
		},
	}
}

func fedTokenCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "token ID",
		Short:   "Print a fresh join token for a federation (its chain and this node's addresses)",
		Example: "  mimnode federation token bagu...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res map[string]string
			if err := g.call(cmd.Context(), "GET", "/api/v1/federations/"+args[0]+"/token", nil, &res); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			fmt.Fprintln(g.stdout, res["token"])
			return nil
		},
	}
}

func fedRevokeCmd(g *globals) *cobra.Command {
	var fed string
	c := &cobra.Command{
		Use:     "revoke PEERID",
		Short:   "Remove a member; every node cuts it off as the change arrives",
		Example: "  mimnode federation revoke 12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return change(g, cmd, fed, federation.ChangeRequest{Op: "revoke", PeerID: args[0]}, "revoke "+args[0])
		},
	}
	c.Flags().StringVar(&fed, "federation", "", "federation ID, ID prefix or name (default: the only one)")
	return c
}

func fedRoleCmd(g *globals) *cobra.Command {
	var fed string
	c := &cobra.Command{
		Use:     "role PEERID agency|researcher",
		Short:   "Change a member's role",
		Example: "  mimnode federation role 12D3KooW... researcher",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return change(g, cmd, fed, federation.ChangeRequest{Op: "role", PeerID: args[0], Role: federation.Role(args[1])}, "role of "+args[0])
		},
	}
	c.Flags().StringVar(&fed, "federation", "", "federation ID, ID prefix or name (default: the only one)")
	return c
}

func fedAdminCmd(g *globals) *cobra.Command {
	var fed string
	c := &cobra.Command{
		Use:     "admin add|remove PEERID",
		Short:   "Make a member an admin, or remove an admin",
		Example: "  mimnode federation admin add 12D3KooW...",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "add", "remove":
			default:
				return fmt.Errorf("want 'admin add PEERID' or 'admin remove PEERID', got %q", args[0])
			}
			return change(g, cmd, fed, federation.ChangeRequest{Op: args[0] + "-admin", PeerID: args[1]}, args[0]+" admin "+args[1])
		},
	}
	c.Flags().StringVar(&fed, "federation", "", "federation ID, ID prefix or name (default: the only one)")
	return c
}

func fedThresholdCmd(g *globals) *cobra.Command {
	var fed string
	var k int
	c := &cobra.Command{
		Use:     "threshold K",
		Short:   "Require K admin signatures for every later change (k of n)",
		Example: "  mimnode federation threshold 2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := fmt.Sscanf(args[0], "%d", &k); err != nil || k < 1 {
				return fmt.Errorf("threshold %q: want a whole number of at least 1", args[0])
			}
			return change(g, cmd, fed, federation.ChangeRequest{Op: "threshold", Threshold: k}, "threshold")
		},
	}
	c.Flags().StringVar(&fed, "federation", "", "federation ID, ID prefix or name (default: the only one)")
	return c
}

func fedSignCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "sign TOKEN",
		Short:   "Add this admin's signature to a proposed change (k-of-n federations)",
		Example: "  mimnode federation sign mimfed1:eyJjaGFpbi...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res federation.ChangeResult
			if err := postToken(g, cmd, "/api/v1/federations/sign", args[0], &res); err != nil {
				return err
			}
			return printChange(g, res, "sign", true)
		},
	}
}

// postToken sends a federation token to the daemon and decodes the answer.
func postToken(g *globals, cmd *cobra.Command, path, token string, out any) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	return c.do(cmd.Context(), "POST", path, map[string]string{"token": strings.TrimSpace(token)}, out)
}
