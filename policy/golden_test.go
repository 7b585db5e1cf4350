package policy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/policies/*.golden from the current output")

// goldenRequests are the peers who ask, the same for every example policy.
var goldenRequests = []struct {
	name string
	req  Request
}{
	{"randstad agency reading, in Amsterdam", Request{
		Now: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), Action: ActionRead,
		PeerID: "12D3KooWHaarlemTraffic", Role: RoleAgency, Federations: []string{"nl-randstad"},
		Purpose: "traffic-planning", Location: orb.Point{4.90, 52.37}, Places: []string{"NL", "EU"},
		Usage: Usage{Count: 3, AgreementStart: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
	}},
	{"researcher aggregating with consent, paying 50 EUR", Request{
		Now: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), Action: ActionAggregate,
		PeerID: "12D3KooWUvAResearchLab", Role: RoleResearcher, Federations: []string{"nl-research"},
		Purpose: "research", Location: orb.Point{4.95, 52.35}, Places: []string{"NL", "EU"},
		PayAmount: 50, Currency: "EUR",
		Usage:    Usage{Count: 12, AgreementStart: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		Consents: []Consent{{ID: "urn:consent:1", Purposes: []string{"research"}, Given: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}},
	{"marketing firm distributing, outside the area", Request{
		Now: time.Date(2027, 2, 1, 10, 0, 0, 0, time.UTC), Action: ActionDistribute,
		PeerID: "12D3KooWAdTech", Role: RoleResearcher, Purpose: "marketing",
		Location: orb.Point{2.35, 48.85}, Places: []string{"FR", "EU"},
		Usage: Usage{AgreementStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}},
}

// TestGoldenPolicies reads each example policy and compares what a person
// would see (the description and the decisions for a few peers in every
// scope) with the reviewed .golden file.
func TestGoldenPolicies(t *testing.T) {
	files, err := filepath.Glob("testdata/policies/*.jsonld")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var b strings.Builder
			b.WriteString(Describe(p))
			if err := Validate(p); err != nil {
				b.WriteString("\nValidate: not understood\n")
			} else {
				b.WriteString("\nValidate: ok\n")
			}
			for _, gr := range goldenRequests {
				for _, scope := range []Scope{ScopeCatalog, ScopeNegotiation, ScopeTransfer} {
					fmt.Fprintf(&b, "\n== %s\n%s", gr.name, Evaluate(p, gr.req, scope))
				}
			}
			golden := strings.TrimSuffix(f, ".jsonld") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("output differs from %s (run with -rewrite and review the diff):\n%s", golden, got)
			}
		})
	}
}
