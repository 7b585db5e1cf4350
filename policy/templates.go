package policy

import (
	"fmt"
	"strconv"
)

// Params are the values a city fills in when it picks a template.
type Params struct {
	ID       string // policy @id; optional
	Target   string // dataset id; optional for a reusable policy
	Assigner string // provider peer ID; optional

	Federation string   // federation id (agency-internal requires it; open-data uses it when set)
	Days       int      // time-limited: days after the agreement starts
	Purposes   []string // personal-data: the purposes consented to
	Licence    string   // open-data: licence IRI to attribute (optional)
}

// Template is a ready-made policy a city can pick by name.
type Template struct {
	Name        string
	Description string
	// Needs names the Params fields the template requires ("federation",
	// "days", "purposes"), for CLI help.
	Needs []string
	build func(Params) (Policy, error)
}

// New builds the template's policy (an Offer) and compiles it.
func (t Template) New(p Params) (Policy, error) {
	pol, err := t.build(p)
	if err != nil {
		return Policy{}, fmt.Errorf("building template %s: %w", t.Name, err)
	}
	pol.Type = TypeOffer
	pol.ID, pol.Target, pol.Assigner = p.ID, p.Target, p.Assigner
	pol.Compile()
	return pol, nil
}

// Purpose used by the research-only template.
const PurposeResearch = "research"

// Templates returns the built-in templates, in a fixed order.
func Templates() []Template {
	return []Template{
		{
			Name:        "open-data",
			Description: "Any member may use the data; users must attribute the source (and licence). With a federation, only its members.",
			build: func(p Params) (Policy, error) {
				perm := Rule{Action: ActionUse, Duties: []Rule{{Action: ActionAttribute}}}
				if p.Federation != "" {
					perm.Constraints = []Constraint{Atomic(LeftFederation, OpEq, Lit(p.Federation))}
				}
				return Policy{Licence: p.Licence, Permissions: []Rule{perm}}, nil
			},
		},
		{
			Name:        "research-only",
			Description: "Use for research only, by researchers and agencies; the data must not be distributed further.",
			build: func(Params) (Policy, error) {
				return Policy{
					Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{
						Atomic(LeftPurpose, OpEq, Lit(PurposeResearch)),
						Atomic(LeftRole, OpIsAnyOf, Lit(RoleResearcher, RoleAgency)),
					}}},
					Prohibitions: []Rule{{Action: ActionDistribute}},
				}, nil
			},
		},
		{
			Name:        "agency-internal",
			Description: "Only agencies that are members of the named federation may use the data.",
			Needs:       []string{"federation"},
			build: func(p Params) (Policy, error) {
				if p.Federation == "" {
					return Policy{}, fmt.Errorf("%w: agency-internal needs a federation: give the offer \"params\": {\"federation\": \"ID or name\"} ('mimnode federation list' shows them)", ErrTemplateParams)
				}
				return Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{
					Atomic(LeftRole, OpEq, Lit(RoleAgency)),
					Atomic(LeftFederation, OpEq, Lit(p.Federation)),
				}}}}, nil
			},
		},
		{
			Name:        "time-limited",
			Description: "Use is allowed for a number of days after the agreement starts; transfers after that are refused.",
			Needs:       []string{"days"},
			build: func(p Params) (Policy, error) {
				if p.Days <= 0 || p.Days > 36500 {
					return Policy{}, fmt.Errorf("%w: time-limited needs days between 1 and 36500, got %d", ErrTemplateParams, p.Days)
				}
				perm := Rule{Action: ActionUse, Constraints: []Constraint{
					Atomic(LeftElapsedTime, OpLteq, DurationOp("P"+strconv.Itoa(p.Days)+"D")),
				}}
				if p.Federation != "" {
					perm.Constraints = append(perm.Constraints, Atomic(LeftFederation, OpEq, Lit(p.Federation)))
				}
				return Policy{Permissions: []Rule{perm}}, nil
			},
		},
		{
			Name:        "personal-data",
			Description: "Personal data (MIM4): use only for the listed purposes, only with the data subjects' consent for that purpose (checked at every transfer); no further distribution.",
			Needs:       []string{"purposes"},
			build: func(p Params) (Policy, error) {
				if len(p.Purposes) == 0 {
					return Policy{}, fmt.Errorf("%w: personal-data needs at least one purpose", ErrTemplateParams)
				}
				for _, s := range p.Purposes {
					if s == "" {
						return Policy{}, fmt.Errorf("%w: personal-data purposes must not be empty", ErrTemplateParams)
					}
				}
				purposes := Lit(p.Purposes...)
				perm := Rule{
					Action:      ActionUse,
					Constraints: []Constraint{Atomic(LeftPurpose, OpIsAnyOf, purposes)},
					Duties:      []Rule{{Action: ActionObtainConsent, Constraints: []Constraint{Atomic(LeftPurpose, OpIsAnyOf, purposes)}}},
				}
				if p.Federation != "" {
					perm.Constraints = append(perm.Constraints, Atomic(LeftFederation, OpEq, Lit(p.Federation)))
				}
				return Policy{Permissions: []Rule{perm}, Prohibitions: []Rule{{Action: ActionDistribute}}}, nil
			},
		},
		{
			Name:        "aggregate-only",
			Description: "Only aggregate results may leave the holder (compute-to-data); reading or distributing the raw data is refused.",
			build: func(p Params) (Policy, error) {
				perm := Rule{Action: ActionAggregate}
				if p.Federation != "" {
					perm.Constraints = []Constraint{Atomic(LeftFederation, OpEq, Lit(p.Federation))}
				}
				return Policy{
					Permissions:  []Rule{perm},
					Prohibitions: []Rule{{Action: ActionRead}, {Action: ActionDistribute}},
				}, nil
			},
		},
	}
}

// LookupTemplate finds a template by name.
func LookupTemplate(name string) (Template, error) {
	for _, t := range Templates() {
		if t.Name == name {
			return t, nil
		}
	}
	return Template{}, fmt.Errorf("%w: %q (known: open-data, research-only, agency-internal, time-limited, personal-data, aggregate-only)", ErrUnknownTemplate, name)
}
