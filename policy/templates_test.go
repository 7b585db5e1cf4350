package policy

import (
	"errors"
	"strings"
	"testing"
)

func mustTemplate(t *testing.T, name string, p Params) Policy {
	t.Helper()
	tpl, err := LookupTemplate(name)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := tpl.New(p)
	if err != nil {
		t.Fatalf("%s.New: %v", name, err)
	}
	if err := Validate(pol); err != nil {
		t.Fatalf("%s does not validate: %v", name, err)
	}
	return pol
}

func TestTemplatesListed(t *testing.T) {
	var names []string
	for _, tpl := range Templates() {
		names = append(names, tpl.Name)
		if tpl.Description == "" {
			t.Errorf("%s has no description", tpl.Name)
		}
	}
	want := "open-data research-only agency-internal time-limited personal-data aggregate-only"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("templates = %s, want %s", got, want)
	}
	if _, err := LookupTemplate("public"); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("LookupTemplate(public) = %v", err)
	}
}

func TestTemplateParams(t *testing.T) {
	cases := []struct {
		name string
		p    Params
	}{
		{"agency-internal", Params{}},
		{"time-limited", Params{}},
		{"time-limited", Params{Days: -1}},
		{"personal-data", Params{}},
		{"personal-data", Params{Purposes: []string{""}}},
	}
	for _, tc := range cases {
		tpl, _ := LookupTemplate(tc.name)
		if _, err := tpl.New(tc.p); !errors.Is(err, ErrTemplateParams) {
			t.Errorf("%s.New(%+v) = %v, want ErrTemplateParams", tc.name, tc.p, err)
		}
	}
}

// templateCase is one request against one template and what must happen.
type templateCase struct {
	name   string
	edit   func(*Request)
	scope  Scope
	permit bool
	why    Code // a reason code that must be among Why() on deny
}

func runTemplateCases(t *testing.T, pol Policy, cases []templateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := baseReq()
			if tc.edit != nil {
				tc.edit(&req)
			}
			scope := tc.scope
			if scope == 0 {
				scope = ScopeTransfer
			}
			d := Evaluate(pol, req, scope)
			if d.Permit != tc.permit {
				t.Fatalf("permit = %v, want %v\n%s", d.Permit, tc.permit, d)
			}
			if tc.permit {
				return
			}
			for _, r := range d.Why() {
				if r.Code == tc.why {
					return
				}
			}
			t.Errorf("why = %v, want a %s", d.Why(), tc.why)
		})
	}
}

func TestTemplateOpenData(t *testing.T) {
	pol := mustTemplate(t, "open-data", Params{Licence: "https://creativecommons.org/licenses/by/4.0/"})
	runTemplateCases(t, pol, []templateCase{
		{"agency", nil, 0, true, ""},
		{"researcher distributing", func(r *Request) { r.Role, r.Action = RoleResearcher, ActionDistribute }, 0, true, ""},
	})
	d := Evaluate(pol, baseReq(), ScopeTransfer)
	if r := reasonAt(t, d, "permission[0].duty[0]"); r.Code != CodeDutyPromised {
		t.Errorf("attribution duty reason = %v", r)
	}
	if s := Describe(pol); !strings.Contains(s, "licence: https://creativecommons.org/licenses/by/4.0/") || !strings.Contains(s, "must attribute the source") {
		t.Errorf("Describe:\n%s", s)
	}
	fed := mustTemplate(t, "open-data", Params{Federation: "fed-de"})
	runTemplateCases(t, fed, []templateCase{{"not a member", nil, ScopeCatalog, false, CodeNotSatisfied}})
}

func TestTemplateResearchOnly(t *testing.T) {
	pol := mustTemplate(t, "research-only", Params{})
	runTemplateCases(t, pol, []templateCase{
		{"agency researching", nil, 0, true, ""},
		{"researcher researching", func(r *Request) { r.Role = RoleResearcher }, 0, true, ""},
		{"marketing", func(r *Request) { r.Purpose = "marketing" }, ScopeNegotiation, false, CodeNotSatisfied},
		{"no purpose", func(r *Request) { r.Purpose = "" }, ScopeNegotiation, false, CodeMissingValue},
		{"distribute", func(r *Request) { r.Action = ActionDistribute }, 0, false, CodeProhibitionApplies},
		{"visible in catalogue before purpose is known", func(r *Request) { r.Purpose = "" }, ScopeCatalog, true, ""},
	})
}

func TestTemplateAgencyInternal(t *testing.T) {
	pol := mustTemplate(t, "agency-internal", Params{Federation: "fed-nl"})
	runTemplateCases(t, pol, []templateCase{
		{"agency member", nil, ScopeCatalog, true, ""},
		{"researcher member", func(r *Request) { r.Role = RoleResearcher }, ScopeCatalog, false, CodeNotSatisfied},
		{"agency elsewhere", func(r *Request) { r.Federations = []string{"fed-de"} }, ScopeCatalog, false, CodeNotSatisfied},
	})
}

func TestTemplateTimeLimited(t *testing.T) {
	pol := mustTemplate(t, "time-limited", Params{Days: 7})
	runTemplateCases(t, pol, []templateCase{
		{"day 7", func(r *Request) { r.Usage.AgreementStart = t0.AddDate(0, 0, -7) }, 0, true, ""},
		{"day 8", func(r *Request) { r.Usage.AgreementStart = t0.AddDate(0, 0, -8) }, 0, false, CodeNotSatisfied},
		{"negotiation is not limited", func(r *Request) { r.Usage.AgreementStart = t0.AddDate(-1, 0, 0) }, ScopeNegotiation, true, ""},
	})
}

func TestTemplatePersonalData(t *testing.T) {
	pol := mustTemplate(t, "personal-data", Params{Purposes: []string{"research", "public-health"}})
	consent := []Consent{{ID: "c", Purposes: []string{"research"}, Given: t0.AddDate(0, 0, -1)}}
	runTemplateCases(t, pol, []templateCase{
		{"research with consent", func(r *Request) { r.Consents = consent }, 0, true, ""},
		{"research without consent", nil, 0, false, CodeConsentMissing},
		{"negotiation before consent is checked", nil, ScopeNegotiation, true, ""},
		{"other purpose with consent for it", func(r *Request) {
			r.Purpose = "marketing"
			r.Consents = []Consent{{ID: "c", Purposes: []string{"marketing"}, Given: t0.AddDate(0, 0, -1)}}
		}, 0, false, CodeNotSatisfied},
		{"distribute", func(r *Request) { r.Consents, r.Action = consent, ActionDistribute }, 0, false, CodeProhibitionApplies},
	})
}

func TestTemplateAggregateOnly(t *testing.T) {
	pol := mustTemplate(t, "aggregate-only", Params{})
	runTemplateCases(t, pol, []templateCase{
		{"aggregate", func(r *Request) { r.Action = ActionAggregate }, 0, true, ""},
		{"read raw data", func(r *Request) { r.Action = ActionRead }, 0, false, CodeProhibitionApplies},
		{"distribute raw data", func(r *Request) { r.Action = ActionDistribute }, 0, false, CodeProhibitionApplies},
		{"use in general", nil, 0, false, CodeNoPermission},
		{"derive", func(r *Request) { r.Action = ActionDerive }, 0, false, CodeNoPermission},
	})
}

// Every template survives JSON-LD and reads back to the same decisions.
func TestTemplatesRoundTrip(t *testing.T) {
	for _, tpl := range Templates() {
		t.Run(tpl.Name, func(t *testing.T) {
			pol, err := tpl.New(Params{ID: "urn:p", Target: "urn:d", Assigner: "peer-P", Federation: "fed-nl", Days: 30, Purposes: []string{"research"}, Licence: "https://creativecommons.org/licenses/by/4.0/"})
			if err != nil {
				t.Fatal(err)
			}
			b, err := MarshalIndent(pol)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, b)
			}
			if !samePolicy(pol, back) {
				t.Errorf("round trip changed the policy:\n%s", b)
			}
			if Describe(pol) != Describe(back) {
				t.Errorf("description changed")
			}
		})
	}
}

func TestIsIRI(t *testing.T) {
	for s, want := range map[string]bool{
		"urn:mim:dataset:aarhus:air-quality":           true,
		"https://creativecommons.org/licenses/by/4.0/": true,
		"urn:uuid:0b6f": true,
		"not a urn":     false,
		"https://":      false,
		"air-quality":   false,
		"urn:x y":       false,
		"":              false,
	} {
		if got := IsIRI(s); got != want {
			t.Errorf("IsIRI(%q) = %v, want %v", s, got, want)
		}
	}
}
