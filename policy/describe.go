package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Validate reports everything in p the evaluator does not understand, each
// as an error wrapping ErrNotUnderstood that names where it is. A policy that
// validates is evaluated as written; one that does not is denied.
//
// An Agreement must also name its assigner and assignee: those are the
// parties whose signatures make it binding.
func Validate(p Policy) error {
	prog := p.prog
	if prog == nil {
		q := p
		q.Compile()
		prog = q.prog
	}
	var errs []error
	for _, pr := range prog.problems {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrNotUnderstood, pr.where, pr.text))
	}
	switch p.Type {
	case TypeSet, TypeOffer, "":
	case TypeAgreement:
		if p.Assigner == "" || p.Assignee == "" {
			errs = append(errs, fmt.Errorf("%w: an Agreement must name its assigner and assignee", ErrNotUnderstood))
		}
	default:
		errs = append(errs, fmt.Errorf("%w: policy type %q is not Set, Offer or Agreement", ErrNotUnderstood, p.Type))
	}
	if len(p.Permissions) == 0 {
		errs = append(errs, fmt.Errorf("%w: the policy has no permission, so it permits nothing", ErrNotUnderstood))
	}
	return errors.Join(errs...)
}

// Describe says the policy in words, one rule per paragraph, for people
// deciding whether to publish or accept it ("mimnode policy check").
func Describe(p Policy) string {
	var b strings.Builder
	t := p.Type
	if t == "" {
		t = TypeSet
	}
	fmt.Fprintf(&b, "%s", t)
	if p.ID != "" {
		fmt.Fprintf(&b, " %s", p.ID)
	}
	b.WriteString("\n")
	line := func(label, v string) {
		if v != "" {
			fmt.Fprintf(&b, "  %s: %s\n", label, v)
		}
	}
	line("about", p.Target)
	line("granted by", p.Assigner)
	line("granted to", p.Assignee)
	line("licence", p.Licence)
	if p.Assignee == "" {
		b.WriteString("  granted to: any peer that satisfies the constraints\n")
	}
	for i, r := range p.Permissions {
		fmt.Fprintf(&b, "Permission %d: may %s\n", i+1, r.Action)
		describeRule(&b, r)
		for _, d := range r.Duties {
			fmt.Fprintf(&b, "  duty: must %s\n", dutyWords(d.Action))
			describeConstraints(&b, d.Constraints, "    ")
		}
	}
	for i, r := range p.Prohibitions {
		fmt.Fprintf(&b, "Prohibition %d: must not %s\n", i+1, r.Action)
		describeRule(&b, r)
	}
	for i, r := range p.Obligations {
		fmt.Fprintf(&b, "Obligation %d: must %s\n", i+1, dutyWords(r.Action))
		describeRule(&b, r)
	}
	if len(p.Prohibitions) > 0 && len(p.Permissions) > 0 {
		b.WriteString("A prohibition that applies overrides every permission.\n")
	}
	if err := Validate(p); err != nil {
		b.WriteString("NOT UNDERSTOOD - every request under this policy will be denied:\n")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(&b, "  - %s\n", strings.TrimPrefix(line, ErrNotUnderstood.Error()+": "))
		}
	}
	return b.String()
}

func describeRule(b *strings.Builder, r Rule) {
	if r.Assignee != "" {
		fmt.Fprintf(b, "  only for: %s\n", r.Assignee)
	}
	describeConstraints(b, r.Constraints, "  ")
}

func describeConstraints(b *strings.Builder, cs []Constraint, indent string) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(b, "%sif all of these hold:\n", indent)
	for i := range cs {
		fmt.Fprintf(b, "%s  - %s\n", indent, constraintWords(&cs[i]))
	}
}

func dutyWords(a Action) string {
	switch a {
	case ActionAttribute:
		return "attribute the source"
	case ActionInform:
		return "inform the provider"
	case ActionObtainConsent:
		return "hold the data subjects' consent for the purpose (checked at every transfer)"
	case ActionCompensate:
		return "pay"
	case ActionDelete:
		return "delete the data"
	}
	return fmt.Sprintf("%q (unknown duty)", a)
}
