package policy

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// gen makes random policies and requests from small value pools, so that
// matches, misses, deferrals and not-understood terms all occur often.
type gen struct {
	r *rand.Rand
	// sloppy policies get deliberate errors (unknown terms, bad operands);
	// the others only the ones that come from fitting operators loosely.
	sloppy *bool
}

// oops is true now and then, in sloppy policies only.
func (g gen) oops(oneIn int) bool { return *g.sloppy && g.r.Intn(oneIn) == 0 }

func (g gen) pick(xs ...string) string { return xs[g.r.Intn(len(xs))] }

func (g gen) subset(xs ...string) []string {
	var out []string
	for _, x := range xs {
		if g.r.Intn(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

var (
	genPurposes = []string{"research", "education", "marketing"}
	genPeers    = []string{"peer-A", "peer-B", "peer-C"}
	genFeds     = []string{"fed-nl", "fed-eu", "fed-de"}
	genPlaces   = []string{"EU", "NL", "US"}
	genOps      = []Operator{OpEq, OpNeq, OpLt, OpLteq, OpGt, OpGteq, OpIsA, OpIsPartOf, OpHasPart, OpIsAnyOf, OpIsAllOf, OpIsNoneOf}
	genLefts    = []LeftOperand{LeftPurpose, LeftDateTime, LeftElapsedTime, LeftSpatial, LeftCount, LeftRecipient, LeftRole, LeftFederation, LeftPayAmount}
)

func (g gen) strings(pool []string) Operand {
	n := 1 + g.r.Intn(2)
	if !g.oops(4) {
		n = 1 // most operators take one value; two is sometimes wrong on purpose
	}
	var vs []string
	for i := 0; i < n; i++ {
		vs = append(vs, pool[g.r.Intn(len(pool))])
	}
	return Lit(vs...)
}

func (g gen) atomic() Constraint {
	left := genLefts[g.r.Intn(len(genLefts))]
	if g.oops(15) {
		left = "partner"
	}
	fits := map[LeftOperand][]Operator{
		LeftPurpose: genOps[6:], LeftRecipient: genOps[6:], LeftRole: genOps[6:], LeftFederation: genOps[6:], "partner": genOps[:1],
		LeftSpatial: {OpEq, OpNeq, OpIsPartOf, OpIsAnyOf, OpIsAllOf, OpIsNoneOf},
	}[left]
	if fits == nil {
		fits = genOps[:6]
	}
	fits = append(fits, OpEq, OpNeq) // eq and neq fit every operand
	op := fits[g.r.Intn(len(fits))]
	switch {
	case g.oops(15):
		op = genOps[g.r.Intn(len(genOps))] // may not fit
	case g.oops(15):
		op = "startsWith"
	}
	var right Operand
	switch left {
	case LeftPurpose, "partner":
		right = g.strings(genPurposes)
	case LeftRecipient:
		right = g.strings(genPeers)
	case LeftRole:
		right = g.strings([]string{RoleAgency, RoleResearcher})
		if g.oops(10) {
			right = Lit("admin")
		}
	case LeftFederation:
		right = g.strings(genFeds)
	case LeftSpatial:
		if g.r.Intn(2) == 0 {
			right = g.strings(genPlaces)
		} else {
			x, y := float64(g.r.Intn(4)), float64(g.r.Intn(4))
			right = Area(orb.Polygon{{{x, y}, {x + 2, y}, {x + 2, y + 2}, {x, y + 2}, {x, y}}})
		}
	case LeftDateTime:
		at := t0.Add(time.Duration(g.r.Intn(5)-2) * time.Hour)
		if g.oops(10) {
			right = Lit(at.Format("2006-01-02T15:04:05")) // no zone: not understood
		} else {
			right = Lit(at.Format(time.RFC3339))
		}
	case LeftElapsedTime:
		switch g.r.Intn(10) {
		case 0:
			right = DurationOp("P" + strconv.Itoa(g.r.Intn(20)) + "D")
			if g.oops(2) {
				right = DurationOp(g.pick("soon", "P1DT"))
			}
		case 1, 2, 3:
			right = DurationOp("PT" + strconv.Itoa(g.r.Intn(300)) + "H")
		default:
			right = DurationOp("P" + strconv.Itoa(g.r.Intn(20)) + "D")
		}
	case LeftCount:
		right = Num(float64(g.r.Intn(5)))
		if g.oops(10) {
			right = Num(1.5)
		}
	case LeftPayAmount:
		right = Num(float64(g.r.Intn(4) * 5))
	}
	c := Atomic(left, op, right)
	if left == LeftPayAmount && g.r.Intn(3) == 0 {
		c.Unit = g.pick("EUR", "USD")
	}
	return c
}

func (g gen) constraint(depth int) Constraint {
	if depth < 2 && g.r.Intn(4) == 0 {
		logic := []Logic{LogicAnd, LogicOr, LogicXone, LogicAndSequence}[g.r.Intn(4)]
		n := 1 + g.r.Intn(3)
		var kids []Constraint
		for i := 0; i < n; i++ {
			kids = append(kids, g.constraint(depth+1))
		}
		return Logical(logic, kids...)
	}
	return g.atomic()
}

func (g gen) constraints() []Constraint {
	var cs []Constraint
	for i := g.r.Intn(4); i > 0; i-- {
		cs = append(cs, g.constraint(0))
	}
	return cs
}

func (g gen) action() Action {
	as := []Action{ActionUse, ActionRead, ActionDistribute, ActionAggregate, ActionDerive, ActionDelete}
	if g.oops(20) {
		return "print"
	}
	return as[g.r.Intn(len(as))]
}

func (g gen) requestAction() Action {
	if g.r.Intn(30) == 0 {
		return "print"
	}
	return []Action{ActionUse, ActionRead, ActionDistribute, ActionAggregate, ActionDerive, ActionDelete}[g.r.Intn(6)]
}

func (g gen) duty() Rule {
	as := []Action{ActionAttribute, ActionInform, ActionObtainConsent, ActionCompensate, ActionDelete}
	d := Rule{Action: as[g.r.Intn(len(as))]}
	if g.r.Intn(2) == 0 {
		d.Constraints = []Constraint{g.constraint(1)}
	}
	return d
}

func (g gen) policy() Policy {
	*g.sloppy = g.r.Intn(4) == 0
	p := Policy{Type: TypeOffer}
	if g.r.Intn(6) == 0 {
		p.Assignee = g.pick(genPeers...)
	}
	for i := 1 + g.r.Intn(3); i > 0; i-- {
		r := Rule{Action: g.action(), Constraints: g.constraints()}
		if g.r.Intn(4) == 0 {
			r.Duties = []Rule{g.duty()}
		}
		if g.r.Intn(10) == 0 {
			r.Assignee = g.pick(genPeers...)
		}
		p.Permissions = append(p.Permissions, r)
	}
	for i := g.r.Intn(3); i > 0; i-- {
		p.Prohibitions = append(p.Prohibitions, Rule{Action: g.action(), Constraints: g.constraints()})
	}
	if g.r.Intn(5) == 0 {
		p.Obligations = []Rule{g.duty()}
	}
	return p
}

func (g gen) request() Request {
	*g.sloppy = true // requests may always be odd
	req := Request{
		Now:         t0.Add(time.Duration(g.r.Intn(5)-2) * time.Hour),
		Action:      g.requestAction(),
		PeerID:      g.pick(append(genPeers, "")...),
		Role:        g.pick(RoleAgency, RoleResearcher, ""),
		Federations: g.subset(genFeds...),
		Purpose:     g.pick(append(genPurposes, "")...),
		Places:      g.subset(genPlaces...),
		PayAmount:   float64(g.r.Intn(4) * 5),
		Currency:    g.pick("EUR", "USD"),
		Usage:       Usage{Count: g.r.Intn(5), AgreementStart: t0.Add(-time.Duration(g.r.Intn(400)) * time.Hour)},
	}
	if g.r.Intn(8) == 0 {
		req.Action = ""
	}
	if g.r.Intn(6) != 0 {
		req.Location = orb.Point{float64(g.r.Intn(60)) / 10, float64(g.r.Intn(60)) / 10}
	}
	if g.r.Intn(10) == 0 {
		req.Usage.AgreementStart = time.Time{}
	}
	if g.r.Intn(2) == 0 {
		req.Consents = []Consent{{
			ID:        "c",
			Purposes:  g.subset(genPurposes...),
			Given:     t0.Add(time.Duration(g.r.Intn(5)-3) * time.Hour),
			Expires:   t0.Add(time.Duration(g.r.Intn(5)-1) * time.Hour),
			Withdrawn: g.r.Intn(5) == 0,
		}}
	}
	return req
}

// TestEvaluateMatchesNaive compares Evaluate with the naive evaluator on
// random policies and requests: the verdict, which permissions are granted
// and which prohibitions apply must agree.
func TestEvaluateMatchesNaive(t *testing.T) {
	g := gen{rand.New(rand.NewSource(7)), new(bool)}
	const n = 20000
	var permits, understood int
	for i := 0; i < n; i++ {
		p := g.policy()
		p.Compile()
		req := g.request()
		scope := Scope(1 + g.r.Intn(3))
		d := Evaluate(p, req, scope)
		want := naiveEvaluate(p, req, scope)
		granted, applies := map[int]bool{}, map[int]bool{}
		for _, r := range d.Reasons() {
			var idx int
			if r.Code == CodePermissionGranted && r.Path == "" {
				fmt.Sscanf(r.Rule, "permission[%d]", &idx)
				granted[idx] = true
			}
			if r.Code == CodeProhibitionApplies {
				fmt.Sscanf(r.Rule, "prohibition[%d]", &idx)
				applies[idx] = true
			}
		}
		if d.Permit != want.permit || !sameSet(granted, want.granted) || !sameSet(applies, want.applies) {
			js, _ := MarshalIndent(p)
			t.Fatalf("case %d (scope %s): Evaluate permit=%v granted=%v applies=%v; naive permit=%v granted=%v applies=%v\npolicy: %s\nrequest: %+v\n%s",
				i, scope, d.Permit, granted, applies, want.permit, want.granted, want.applies, js, req, d)
		}
		if d.Permit {
			permits++
		}
		if Validate(p) == nil {
			understood++
		}
	}
	// The generator must exercise both outcomes, or the comparison says little.
	if permits < n/20 || permits > n*19/20 {
		t.Errorf("only %d of %d permitted: generator is lopsided", permits, n)
	}
	if understood < n/2 {
		t.Errorf("only %d of %d policies understood", understood, n)
	}
	t.Logf("%d cases, %d permits, %d policies understood", n, permits, understood)
}

func sameSet(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// Random policies also survive Marshal then Parse with the same decisions.
func TestRandomPoliciesRoundTrip(t *testing.T) {
	g := gen{rand.New(rand.NewSource(11)), new(bool)}
	for i := 0; i < 2000; i++ {
		p := g.policy()
		p.Compile()
		js, err := Marshal(p)
		if err != nil {
			t.Fatalf("case %d: Marshal: %v", i, err)
		}
		q, err := Parse(js)
		if err != nil {
			t.Fatalf("case %d: Parse(Marshal(p)): %v\n%s", i, err, js)
		}
		for j := 0; j < 5; j++ {
			req := g.request()
			scope := Scope(1 + g.r.Intn(3))
			a, b := Evaluate(p, req, scope), Evaluate(q, req, scope)
			if a.Permit != b.Permit || len(a.Reasons()) != len(b.Reasons()) {
				t.Fatalf("case %d: decision changed by round trip: %v vs %v\n%s", i, a.Permit, b.Permit, js)
			}
			ra, rb := a.Reasons(), b.Reasons()
			for k := range ra {
				if ra[k].String() != rb[k].String() {
					t.Fatalf("case %d: reason %d changed: %q vs %q", i, k, ra[k], rb[k])
				}
			}
		}
		if Describe(p) != Describe(q) {
			t.Fatalf("case %d: description changed:\n%s\nvs\n%s", i, Describe(p), Describe(q))
		}
		if strings.Contains(Describe(p), "%!") {
			t.Fatalf("case %d: formatting error in %s", i, Describe(p))
		}
	}
}
