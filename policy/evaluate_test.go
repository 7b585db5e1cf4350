package policy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// amsterdam is a rough box around Amsterdam; the request stands in it.
var amsterdam = orb.Polygon{{{4.7, 52.3}, {5.1, 52.3}, {5.1, 52.45}, {4.7, 52.45}, {4.7, 52.3}}}

func baseReq() Request {
	return Request{
		Now:         t0,
		Action:      ActionUse,
		PeerID:      "peer-A",
		Role:        RoleAgency,
		Federations: []string{"fed-nl", "fed-eu"},
		Purpose:     "research",
		Location:    orb.Point{4.9, 52.37},
		Places:      []string{"urn:place:amsterdam", "NL", "EU"},
		PayAmount:   10,
		Currency:    "EUR",
		Usage:       Usage{Count: 2, AgreementStart: t0.AddDate(0, 0, -10)},
	}
}

func onePermission(cs ...Constraint) Policy {
	p := Policy{Type: TypeOffer, Permissions: []Rule{{Action: ActionUse, Constraints: cs}}}
	p.Compile()
	return p
}

// reasonAt finds the reason for a rule or constraint ("permission[0].constraint[0]").
func reasonAt(t *testing.T, d Decision, where string) Reason {
	t.Helper()
	for _, r := range d.Reasons() {
		if r.Where() == where {
			return r
		}
	}
	var all []string
	for _, r := range d.Reasons() {
		all = append(all, r.String())
	}
	t.Fatalf("no reason at %s; reasons:\n%s", where, strings.Join(all, "\n"))
	return Reason{}
}

type opCase struct {
	name  string
	c     Constraint
	req   func(*Request)
	scope Scope // zero: transfer
	want  Code  // reason code for permission[0].constraint[0]
}

func runOpCases(t *testing.T, cases []opCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := baseReq()
			if tc.req != nil {
				tc.req(&req)
			}
			scope := tc.scope
			if scope == 0 {
				scope = ScopeTransfer
			}
			p := onePermission(tc.c)
			if err := Validate(p); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			d := Evaluate(p, req, scope)
			r := reasonAt(t, d, "permission[0].constraint[0]")
			if r.Code != tc.want {
				t.Errorf("Eval(%s) code = %s, want %s (%s)", constraintWords(&tc.c), r.Code, tc.want, r.Text())
			}
			wantPermit := tc.want == CodeSatisfied || tc.want == CodeDeferred
			if d.Permit != wantPermit {
				t.Errorf("Eval(%s) permit = %v, want %v\n%s", constraintWords(&tc.c), d.Permit, wantPermit, d)
			}
			if !wantPermit {
				if len(d.Why()) == 0 {
					t.Errorf("deny without reasons marked in Why()")
				}
				if !r.Denies {
					t.Errorf("the failing constraint is not marked as a cause of the deny")
				}
			}
			if r.Text() == "" || strings.Contains(r.Text(), "%!") {
				t.Errorf("bad reason text %q", r.Text())
			}
		})
	}
}

func TestLeftOperandPurpose(t *testing.T) {
	runOpCases(t, []opCase{
		{"eq match", Atomic(LeftPurpose, OpEq, Lit("research")), nil, 0, CodeSatisfied},
		{"eq other", Atomic(LeftPurpose, OpEq, Lit("marketing")), nil, 0, CodeNotSatisfied},
		{"neq match", Atomic(LeftPurpose, OpNeq, Lit("marketing")), nil, 0, CodeSatisfied},
		{"neq same", Atomic(LeftPurpose, OpNeq, Lit("research")), nil, 0, CodeNotSatisfied},
		{"isA", Atomic(LeftPurpose, OpIsA, Lit("research")), nil, 0, CodeSatisfied},
		{"isAnyOf hit", Atomic(LeftPurpose, OpIsAnyOf, Lit("education", "research")), nil, 0, CodeSatisfied},
		{"isAnyOf miss", Atomic(LeftPurpose, OpIsAnyOf, Lit("education", "marketing")), nil, 0, CodeNotSatisfied},
		{"isNoneOf ok", Atomic(LeftPurpose, OpIsNoneOf, Lit("marketing", "profiling")), nil, 0, CodeSatisfied},
		{"isNoneOf hit", Atomic(LeftPurpose, OpIsNoneOf, Lit("marketing", "research")), nil, 0, CodeNotSatisfied},
		{"isPartOf", Atomic(LeftPurpose, OpIsPartOf, Lit("research", "education")), nil, 0, CodeSatisfied},
		{"isAllOf one", Atomic(LeftPurpose, OpIsAllOf, Lit("research")), nil, 0, CodeSatisfied},
		{"isAllOf two", Atomic(LeftPurpose, OpIsAllOf, Lit("research", "education")), nil, 0, CodeNotSatisfied},
		{"hasPart", Atomic(LeftPurpose, OpHasPart, Lit("research")), nil, 0, CodeSatisfied},
		{"missing purpose", Atomic(LeftPurpose, OpNeq, Lit("marketing")), func(r *Request) { r.Purpose = "" }, 0, CodeMissingValue},
		{"deferred in catalog", Atomic(LeftPurpose, OpEq, Lit("marketing")), nil, ScopeCatalog, CodeDeferred},
		{"checked in negotiation", Atomic(LeftPurpose, OpEq, Lit("marketing")), nil, ScopeNegotiation, CodeNotSatisfied},
	})
}

func TestLeftOperandDateTime(t *testing.T) {
	before, after := t0.Add(-time.Hour), t0.Add(time.Hour)
	runOpCases(t, []opCase{
		{"lteq future", Atomic(LeftDateTime, OpLteq, DateTimeOp(after)), nil, 0, CodeSatisfied},
		{"lteq now", Atomic(LeftDateTime, OpLteq, DateTimeOp(t0)), nil, 0, CodeSatisfied},
		{"lteq past", Atomic(LeftDateTime, OpLteq, DateTimeOp(before)), nil, 0, CodeNotSatisfied},
		{"lt now", Atomic(LeftDateTime, OpLt, DateTimeOp(t0)), nil, 0, CodeNotSatisfied},
		{"lt future", Atomic(LeftDateTime, OpLt, DateTimeOp(after)), nil, 0, CodeSatisfied},
		{"gt past", Atomic(LeftDateTime, OpGt, DateTimeOp(before)), nil, 0, CodeSatisfied},
		{"gt now", Atomic(LeftDateTime, OpGt, DateTimeOp(t0)), nil, 0, CodeNotSatisfied},
		{"gteq now", Atomic(LeftDateTime, OpGteq, DateTimeOp(t0)), nil, 0, CodeSatisfied},
		{"gteq future", Atomic(LeftDateTime, OpGteq, DateTimeOp(after)), nil, 0, CodeNotSatisfied},
		{"eq now", Atomic(LeftDateTime, OpEq, DateTimeOp(t0)), nil, 0, CodeSatisfied},
		{"neq now", Atomic(LeftDateTime, OpNeq, DateTimeOp(t0)), nil, 0, CodeNotSatisfied},
		{"DSP form without seconds", Atomic(LeftDateTime, OpLteq, Lit("2026-03-01T12:00Z")), nil, 0, CodeSatisfied},
		{"other zone", Atomic(LeftDateTime, OpLt, Lit("2026-03-01T12:30:00+01:00")), nil, 0, CodeNotSatisfied},
		{"checked in catalog", Atomic(LeftDateTime, OpLteq, DateTimeOp(before)), nil, ScopeCatalog, CodeNotSatisfied},
		{"missing clock", Atomic(LeftDateTime, OpLteq, DateTimeOp(after)), func(r *Request) { r.Now = time.Time{} }, 0, CodeMissingValue},
	})
}

func TestLeftOperandElapsedTime(t *testing.T) {
	// The agreement started 10 days before t0.
	runOpCases(t, []opCase{
		{"within 30 days", Atomic(LeftElapsedTime, OpLteq, DurationOp("P30D")), nil, 0, CodeSatisfied},
		{"exactly 10 days", Atomic(LeftElapsedTime, OpLteq, DurationOp("P10D")), nil, 0, CodeSatisfied},
		{"past 9 days", Atomic(LeftElapsedTime, OpLteq, DurationOp("P9D")), nil, 0, CodeNotSatisfied},
		{"lt 10 days", Atomic(LeftElapsedTime, OpLt, DurationOp("P10D")), nil, 0, CodeNotSatisfied},
		{"gt 1 week", Atomic(LeftElapsedTime, OpGt, DurationOp("P1W")), nil, 0, CodeSatisfied},
		{"gteq 240 hours", Atomic(LeftElapsedTime, OpGteq, DurationOp("PT240H")), nil, 0, CodeSatisfied},
		{"eq 240 hours", Atomic(LeftElapsedTime, OpEq, DurationOp("PT240H")), nil, 0, CodeSatisfied},
		{"neq 1 day", Atomic(LeftElapsedTime, OpNeq, DurationOp("P1D")), nil, 0, CodeSatisfied},
		{"month is calendar month", Atomic(LeftElapsedTime, OpLteq, DurationOp("P1M")), func(r *Request) {
			// 31 Jan + 1 month = 3 Mar (2026 is not a leap year); 2 Mar is within.
			r.Usage.AgreementStart = time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
			r.Now = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		}, 0, CodeSatisfied},
		{"deferred in negotiation", Atomic(LeftElapsedTime, OpLteq, DurationOp("P1D")), nil, ScopeNegotiation, CodeDeferred},
		{"no agreement start", Atomic(LeftElapsedTime, OpLteq, DurationOp("P30D")), func(r *Request) { r.Usage.AgreementStart = time.Time{} }, 0, CodeMissingValue},
	})
}

func TestLeftOperandSpatial(t *testing.T) {
	utrecht := orb.Polygon{{{5.0, 52.0}, {5.2, 52.0}, {5.2, 52.15}, {5.0, 52.15}, {5.0, 52.0}}}
	runOpCases(t, []opCase{
		{"point within area", Atomic(LeftSpatial, OpIsPartOf, Area(amsterdam)), nil, 0, CodeSatisfied},
		{"point outside area", Atomic(LeftSpatial, OpIsPartOf, Area(utrecht)), nil, 0, CodeNotSatisfied},
		{"multipolygon area", Atomic(LeftSpatial, OpIsPartOf, Area(orb.MultiPolygon{utrecht, amsterdam})), nil, 0, CodeSatisfied},
		{"line inside", Atomic(LeftSpatial, OpIsPartOf, Area(amsterdam)), func(r *Request) {
			r.Location = orb.LineString{{4.8, 52.35}, {5.0, 52.4}}
		}, 0, CodeSatisfied},
		{"line leaving", Atomic(LeftSpatial, OpIsPartOf, Area(amsterdam)), func(r *Request) {
			r.Location = orb.LineString{{4.8, 52.35}, {5.3, 52.4}}
		}, 0, CodeNotSatisfied},
		{"polygon spilling over between vertices", Atomic(LeftSpatial, OpIsPartOf, Area(orb.Polygon{{{0, 0}, {10, 0}, {10, 10}, {5, 5}, {0, 10}, {0, 0}}})), func(r *Request) {
			// Both ends inside a V-shaped notch's arms, the edge crosses the notch.
			r.Location = orb.LineString{{2, 7}, {8, 7}}
		}, 0, CodeNotSatisfied},
		{"location covering a hole", Atomic(LeftSpatial, OpIsPartOf, Area(orb.Polygon{
			{{0, 0}, {10, 0}, {10, 10}, {0, 10}, {0, 0}},
			{{4, 4}, {6, 4}, {6, 6}, {4, 6}, {4, 4}},
		})), func(r *Request) {
			r.Location = orb.Polygon{{{1, 1}, {9, 1}, {9, 9}, {1, 9}, {1, 1}}}
		}, 0, CodeNotSatisfied},
		{"no location", Atomic(LeftSpatial, OpIsPartOf, Area(amsterdam)), func(r *Request) { r.Location = nil }, 0, CodeMissingValue},
		{"named eq", Atomic(LeftSpatial, OpEq, Lit("EU")), nil, 0, CodeSatisfied},
		{"named isPartOf", Atomic(LeftSpatial, OpIsPartOf, Lit("EU", "EEA")), nil, 0, CodeSatisfied},
		{"named isPartOf miss", Atomic(LeftSpatial, OpIsPartOf, Lit("US")), nil, 0, CodeNotSatisfied},
		{"named neq", Atomic(LeftSpatial, OpNeq, Lit("US")), nil, 0, CodeSatisfied},
		{"named isNoneOf", Atomic(LeftSpatial, OpIsNoneOf, Lit("NL")), nil, 0, CodeNotSatisfied},
		{"named isAllOf", Atomic(LeftSpatial, OpIsAllOf, Lit("NL", "EU")), nil, 0, CodeSatisfied},
		{"named isAnyOf", Atomic(LeftSpatial, OpIsAnyOf, Lit("BE", "NL")), nil, 0, CodeSatisfied},
		{"no places: neq does not pass", Atomic(LeftSpatial, OpNeq, Lit("US")), func(r *Request) { r.Places = nil }, 0, CodeMissingValue},
		{"deferred in catalog", Atomic(LeftSpatial, OpEq, Lit("US")), nil, ScopeCatalog, CodeDeferred},
	})
}

func TestLeftOperandCount(t *testing.T) {
	// Two transfers done; this is the third.
	runOpCases(t, []opCase{
		{"lteq 3", Atomic(LeftCount, OpLteq, Num(3)), nil, 0, CodeSatisfied},
		{"lteq 2", Atomic(LeftCount, OpLteq, Num(2)), nil, 0, CodeNotSatisfied},
		{"lt 3", Atomic(LeftCount, OpLt, Num(3)), nil, 0, CodeNotSatisfied},
		{"lt 4", Atomic(LeftCount, OpLt, Num(4)), nil, 0, CodeSatisfied},
		{"eq 3", Atomic(LeftCount, OpEq, Num(3)), nil, 0, CodeSatisfied},
		{"neq 3", Atomic(LeftCount, OpNeq, Num(3)), nil, 0, CodeNotSatisfied},
		{"gt 2", Atomic(LeftCount, OpGt, Num(2)), nil, 0, CodeSatisfied},
		{"gteq 4", Atomic(LeftCount, OpGteq, Num(4)), nil, 0, CodeNotSatisfied},
		{"first transfer", Atomic(LeftCount, OpLteq, Num(1)), func(r *Request) { r.Usage.Count = 0 }, 0, CodeSatisfied},
		{"deferred in negotiation", Atomic(LeftCount, OpLteq, Num(0)), nil, ScopeNegotiation, CodeDeferred},
	})
}

func TestLeftOperandRecipient(t *testing.T) {
	runOpCases(t, []opCase{
		{"eq", Atomic(LeftRecipient, OpEq, Lit("peer-A")), nil, 0, CodeSatisfied},
		{"eq other", Atomic(LeftRecipient, OpEq, Lit("peer-B")), nil, 0, CodeNotSatisfied},
		{"isAnyOf", Atomic(LeftRecipient, OpIsAnyOf, Lit("peer-B", "peer-A")), nil, ScopeCatalog, CodeSatisfied},
		{"isNoneOf", Atomic(LeftRecipient, OpIsNoneOf, Lit("peer-A")), nil, ScopeCatalog, CodeNotSatisfied},
		{"no peer id", Atomic(LeftRecipient, OpNeq, Lit("peer-B")), func(r *Request) { r.PeerID = "" }, 0, CodeMissingValue},
	})
}

func TestLeftOperandRole(t *testing.T) {
	runOpCases(t, []opCase{
		{"agency eq", Atomic(LeftRole, OpEq, Lit(RoleAgency)), nil, ScopeCatalog, CodeSatisfied},
		{"researcher eq", Atomic(LeftRole, OpEq, Lit(RoleResearcher)), nil, ScopeCatalog, CodeNotSatisfied},
		{"isAnyOf", Atomic(LeftRole, OpIsAnyOf, Lit(RoleResearcher, RoleAgency)), func(r *Request) { r.Role = RoleResearcher }, 0, CodeSatisfied},
		{"neq", Atomic(LeftRole, OpNeq, Lit(RoleResearcher)), nil, 0, CodeSatisfied},
		{"no role", Atomic(LeftRole, OpNeq, Lit(RoleResearcher)), func(r *Request) { r.Role = "" }, 0, CodeMissingValue},
	})
}

func TestLeftOperandFederation(t *testing.T) {
	runOpCases(t, []opCase{
		{"eq member", Atomic(LeftFederation, OpEq, Lit("fed-nl")), nil, ScopeCatalog, CodeSatisfied},
		{"eq non-member", Atomic(LeftFederation, OpEq, Lit("fed-de")), nil, ScopeCatalog, CodeNotSatisfied},
		{"neq", Atomic(LeftFederation, OpNeq, Lit("fed-de")), nil, 0, CodeSatisfied},
		{"hasPart", Atomic(LeftFederation, OpHasPart, Lit("fed-nl", "fed-eu")), nil, 0, CodeSatisfied},
		{"isAllOf miss", Atomic(LeftFederation, OpIsAllOf, Lit("fed-nl", "fed-de")), nil, 0, CodeNotSatisfied},
		{"isPartOf all inside", Atomic(LeftFederation, OpIsPartOf, Lit("fed-nl", "fed-eu", "fed-de")), nil, 0, CodeSatisfied},
		{"isPartOf one outside", Atomic(LeftFederation, OpIsPartOf, Lit("fed-nl")), nil, 0, CodeNotSatisfied},
		{"isAnyOf", Atomic(LeftFederation, OpIsAnyOf, Lit("fed-de", "fed-eu")), nil, 0, CodeSatisfied},
		{"isNoneOf", Atomic(LeftFederation, OpIsNoneOf, Lit("fed-de")), nil, 0, CodeSatisfied},
		{"isA", Atomic(LeftFederation, OpIsA, Lit("fed-eu")), nil, 0, CodeSatisfied},
		{"member of none", Atomic(LeftFederation, OpEq, Lit("fed-nl")), func(r *Request) { r.Federations = nil }, 0, CodeNotSatisfied},
		{"isPartOf with none", Atomic(LeftFederation, OpIsPartOf, Lit("fed-nl")), func(r *Request) { r.Federations = nil }, 0, CodeNotSatisfied},
	})
}

func TestLeftOperandPayAmount(t *testing.T) {
	withUnit := Atomic(LeftPayAmount, OpGteq, Num(10))
	withUnit.Unit = "EUR"
	runOpCases(t, []opCase{
		{"gteq paid", Atomic(LeftPayAmount, OpGteq, Num(10)), nil, 0, CodeSatisfied},
		{"gteq short", Atomic(LeftPayAmount, OpGteq, Num(10.5)), nil, 0, CodeNotSatisfied},
		{"gt", Atomic(LeftPayAmount, OpGt, Num(10)), nil, 0, CodeNotSatisfied},
		{"lt", Atomic(LeftPayAmount, OpLt, Num(100)), nil, 0, CodeSatisfied},
		{"lteq", Atomic(LeftPayAmount, OpLteq, Num(9.99)), nil, 0, CodeNotSatisfied},
		{"eq", Atomic(LeftPayAmount, OpEq, Num(10)), nil, 0, CodeSatisfied},
		{"neq", Atomic(LeftPayAmount, OpNeq, Num(10)), nil, 0, CodeNotSatisfied},
		{"unit matches", withUnit, nil, 0, CodeSatisfied},
		{"unit differs", withUnit, func(r *Request) { r.Currency = "USD" }, 0, CodeUnitMismatch},
		{"deferred in catalog", Atomic(LeftPayAmount, OpGteq, Num(1000)), nil, ScopeCatalog, CodeDeferred},
	})
}

// TestODRL_2_5_2_LogicalConstraints checks or / xone / and / andSequence
// ("at least one", "only one, and not more", "all", "all, in sequence"),
// including how constraints deferred in this scope combine.
func TestODRL_2_5_2_LogicalConstraints(t *testing.T) {
	yes := Atomic(LeftRole, OpEq, Lit(RoleAgency))
	no := Atomic(LeftRole, OpEq, Lit(RoleResearcher))
	later := Atomic(LeftCount, OpLteq, Num(0)) // deferred outside transfer, false in it
	cases := []struct {
		name  string
		c     Constraint
		scope Scope
		want  Code
	}{
		{"or one true", Logical(LogicOr, no, yes), ScopeTransfer, CodeSatisfied},
		{"or none true", Logical(LogicOr, no, no), ScopeTransfer, CodeNotSatisfied},
		{"or false and deferred", Logical(LogicOr, no, later), ScopeNegotiation, CodeDeferred},
		{"or true and deferred", Logical(LogicOr, yes, later), ScopeNegotiation, CodeSatisfied},
		{"xone exactly one", Logical(LogicXone, yes, no), ScopeTransfer, CodeSatisfied},
		{"xone two true", Logical(LogicXone, yes, yes), ScopeTransfer, CodeNotSatisfied},
		{"xone none", Logical(LogicXone, no, no), ScopeTransfer, CodeNotSatisfied},
		{"xone one true one deferred", Logical(LogicXone, yes, later), ScopeNegotiation, CodeDeferred},
		{"xone two true one deferred", Logical(LogicXone, yes, yes, later), ScopeNegotiation, CodeNotSatisfied},
		{"and all true", Logical(LogicAnd, yes, yes), ScopeTransfer, CodeSatisfied},
		{"and one false", Logical(LogicAnd, yes, no), ScopeTransfer, CodeNotSatisfied},
		{"and false beats deferred", Logical(LogicAnd, no, later), ScopeNegotiation, CodeNotSatisfied},
		{"and true and deferred", Logical(LogicAnd, yes, later), ScopeNegotiation, CodeDeferred},
		{"andSequence all true", Logical(LogicAndSequence, yes, yes), ScopeTransfer, CodeSatisfied},
		{"andSequence one false", Logical(LogicAndSequence, no, yes), ScopeTransfer, CodeNotSatisfied},
		{"nested or of and", Logical(LogicOr, Logical(LogicAnd, yes, no), Logical(LogicAnd, yes, yes)), ScopeTransfer, CodeSatisfied},
		{"deferred becomes false at transfer", Logical(LogicAnd, yes, later), ScopeTransfer, CodeNotSatisfied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(onePermission(tc.c), baseReq(), tc.scope)
			r := reasonAt(t, d, "permission[0].constraint[0]")
			if r.Code != tc.want {
				t.Errorf("Eval(%s) = %s, want %s", constraintWords(&tc.c), r.Code, tc.want)
			}
			wantPermit := tc.want != CodeNotSatisfied
			if d.Permit != wantPermit {
				t.Errorf("permit = %v, want %v\n%s", d.Permit, wantPermit, d)
			}
			// Every operand has its own reason too.
			for i := range tc.c.Constraints {
				reasonAt(t, d, "permission[0].constraint[0]."+string(tc.c.Logic)+"["+string(rune('0'+i))+"]")
			}
		})
	}
}

// TestODRL_ConflictProhibit_ProhibitionWins: with the prohibit conflict
// strategy a prohibition that applies overrides any permission, and one that
// does not apply (other action, constraints false) leaves the permission.
func TestODRL_ConflictProhibit_ProhibitionWins(t *testing.T) {
	outsideEU := Atomic(LeftSpatial, OpNeq, Lit("EU"))
	cases := []struct {
		name       string
		prohibit   Rule
		action     Action
		wantPermit bool
		wantCode   Code
	}{
		{"same action", Rule{Action: ActionDistribute}, ActionDistribute, false, CodeProhibitionApplies},
		{"prohibited use covers read", Rule{Action: ActionUse}, ActionRead, false, CodeProhibitionApplies},
		{"other action", Rule{Action: ActionDistribute}, ActionRead, true, CodeActionNotCovered},
		{"prohibited read does not cover use", Rule{Action: ActionRead}, ActionUse, true, CodeActionNotCovered},
		{"constraint false", Rule{Action: ActionDistribute, Constraints: []Constraint{outsideEU}}, ActionDistribute, true, CodeConstraintsNotSatisfied},
		{"constraint true", Rule{Action: ActionDistribute, Constraints: []Constraint{Atomic(LeftSpatial, OpEq, Lit("EU"))}}, ActionDistribute, false, CodeProhibitionApplies},
		{"for another assignee", Rule{Action: ActionDistribute, Assignee: "peer-B"}, ActionDistribute, true, CodeAssigneeMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Permissions: []Rule{{Action: ActionUse}}, Prohibitions: []Rule{tc.prohibit}}
			p.Compile()
			req := baseReq()
			req.Action = tc.action
			d := Evaluate(p, req, ScopeTransfer)
			if d.Permit != tc.wantPermit {
				t.Errorf("permit = %v, want %v\n%s", d.Permit, tc.wantPermit, d)
			}
			r := reasonAt(t, d, "prohibition[0]")
			if r.Code != tc.wantCode {
				t.Errorf("prohibition reason = %s, want %s (%s)", r.Code, tc.wantCode, r.Text())
			}
			if !tc.wantPermit && !r.Denies {
				t.Errorf("applying prohibition not marked as cause")
			}
			// The permission itself was granted: the deny is the prohibition's doing.
			if g := reasonAt(t, d, "permission[0]"); g.Code != CodePermissionGranted {
				t.Errorf("permission reason = %s, want granted", g.Code)
			}
		})
	}
}

// TestODRL_ActionUseIncludesOthers: ODRL's vocabulary puts read, distribute,
// aggregate, derive and delete under use; nothing is included in them.
func TestODRL_ActionUseIncludesOthers(t *testing.T) {
	for _, perm := range []Action{ActionUse, ActionRead, ActionDistribute, ActionAggregate, ActionDerive, ActionDelete} {
		for _, asked := range []Action{ActionUse, ActionRead, ActionDistribute, ActionAggregate, ActionDerive, ActionDelete} {
			p := Policy{Permissions: []Rule{{Action: perm}}}
			p.Compile()
			req := baseReq()
			req.Action = asked
			d := Evaluate(p, req, ScopeTransfer)
			want := perm == ActionUse || perm == asked
			if d.Permit != want {
				t.Errorf("permission %s, request %s: permit = %v, want %v", perm, asked, d.Permit, want)
			}
			if !want {
				if r := reasonAt(t, d, "permission[0]"); r.Code != CodeActionNotCovered {
					t.Errorf("permission %s, request %s: reason %s, want %s", perm, asked, r.Code, CodeActionNotCovered)
				}
				if r := reasonAt(t, d, "request"); r.Code != CodeNoPermission || !r.Denies {
					t.Errorf("want a no-permission reason marked as cause, got %v", r)
				}
			}
		}
	}
}

func TestDuties(t *testing.T) {
	consent := Consent{ID: "c1", Purposes: []string{"research"}, Given: t0.AddDate(0, -1, 0), Expires: t0.AddDate(1, 0, 0)}
	cases := []struct {
		name       string
		duty       Rule
		req        func(*Request)
		scope      Scope
		wantPermit bool
		wantCode   Code
	}{
		{"attribute is promised", Rule{Action: ActionAttribute}, nil, ScopeTransfer, true, CodeDutyPromised},
		{"compensate paid", Rule{Action: ActionCompensate, Constraints: []Constraint{Atomic(LeftPayAmount, OpGteq, Num(5))}}, nil, ScopeTransfer, true, CodeDutySatisfied},
		{"compensate unpaid", Rule{Action: ActionCompensate, Constraints: []Constraint{Atomic(LeftPayAmount, OpGteq, Num(50))}}, nil, ScopeTransfer, false, CodeConstraintsNotSatisfied},
		{"consent present", Rule{Action: ActionObtainConsent}, func(r *Request) { r.Consents = []Consent{consent} }, ScopeTransfer, true, CodeDutySatisfied},
		{"consent absent", Rule{Action: ActionObtainConsent}, nil, ScopeTransfer, false, CodeConsentMissing},
		{"consent for other purpose", Rule{Action: ActionObtainConsent}, func(r *Request) {
			c := consent
			c.Purposes = []string{"marketing"}
			r.Consents = []Consent{c}
		}, ScopeTransfer, false, CodeConsentMissing},
		{"consent expired", Rule{Action: ActionObtainConsent}, func(r *Request) {
			c := consent
			c.Expires = t0
			r.Consents = []Consent{c}
		}, ScopeTransfer, false, CodeConsentMissing},
		{"consent withdrawn", Rule{Action: ActionObtainConsent}, func(r *Request) {
			c := consent
			c.Withdrawn = true
			r.Consents = []Consent{c}
		}, ScopeTransfer, false, CodeConsentMissing},
		{"consent given later", Rule{Action: ActionObtainConsent}, func(r *Request) {
			c := consent
			c.Given = t0.Add(time.Second)
			r.Consents = []Consent{c}
		}, ScopeTransfer, false, CodeConsentMissing},
		{"consent deferred at negotiation", Rule{Action: ActionObtainConsent}, nil, ScopeNegotiation, true, CodeDeferred},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Permissions: []Rule{{Action: ActionUse, Duties: []Rule{tc.duty}}}}
			p.Compile()
			req := baseReq()
			if tc.req != nil {
				tc.req(&req)
			}
			d := Evaluate(p, req, tc.scope)
			if d.Permit != tc.wantPermit {
				t.Errorf("permit = %v, want %v\n%s", d.Permit, tc.wantPermit, d)
			}
			r := reasonAt(t, d, "permission[0].duty[0]")
			if r.Code != tc.wantCode {
				t.Errorf("duty reason = %s, want %s (%s)", r.Code, tc.wantCode, r.Text())
			}
			if !tc.wantPermit {
				if g := reasonAt(t, d, "permission[0]"); g.Code != CodeDutyNotSatisfied || !g.Denies {
					t.Errorf("permission reason = %v, want %s marked as cause", g, CodeDutyNotSatisfied)
				}
			}
		})
	}
}

func TestObligations(t *testing.T) {
	p := Policy{
		Permissions: []Rule{{Action: ActionUse}},
		Obligations: []Rule{{Action: ActionCompensate, Constraints: []Constraint{Atomic(LeftPayAmount, OpGteq, Num(20))}}},
	}
	p.Compile()
	d := Evaluate(p, baseReq(), ScopeTransfer)
	if d.Permit {
		t.Fatalf("unpaid obligation permitted:\n%s", d)
	}
	if r := reasonAt(t, d, "obligation[0]"); r.Code != CodeConstraintsNotSatisfied || !r.Denies {
		t.Errorf("obligation reason = %v", r)
	}
	if r := reasonAt(t, d, "obligation[0].constraint[0]"); r.Code != CodeNotSatisfied || !r.Denies {
		t.Errorf("obligation constraint reason = %v", r)
	}
	req := baseReq()
	req.PayAmount = 20
	if d := Evaluate(p, req, ScopeTransfer); !d.Permit {
		t.Errorf("paid obligation denied:\n%s", d)
	}
}

// TestScopes checks that each scope decides exactly the operands it can know.
func TestScopes(t *testing.T) {
	failing := map[string]Constraint{
		"recipient":   Atomic(LeftRecipient, OpEq, Lit("peer-B")),
		"role":        Atomic(LeftRole, OpEq, Lit(RoleResearcher)),
		"federation":  Atomic(LeftFederation, OpEq, Lit("fed-de")),
		"dateTime":    Atomic(LeftDateTime, OpLt, DateTimeOp(t0)),
		"purpose":     Atomic(LeftPurpose, OpEq, Lit("marketing")),
		"spatial":     Atomic(LeftSpatial, OpEq, Lit("US")),
		"payAmount":   Atomic(LeftPayAmount, OpGteq, Num(100)),
		"elapsedTime": Atomic(LeftElapsedTime, OpLteq, DurationOp("P1D")),
		"count":       Atomic(LeftCount, OpLteq, Num(1)),
	}
	decidedIn := map[string][]Scope{
		"recipient":   {ScopeCatalog, ScopeNegotiation, ScopeTransfer},
		"role":        {ScopeCatalog, ScopeNegotiation, ScopeTransfer},
		"federation":  {ScopeCatalog, ScopeNegotiation, ScopeTransfer},
		"dateTime":    {ScopeCatalog, ScopeNegotiation, ScopeTransfer},
		"purpose":     {ScopeNegotiation, ScopeTransfer},
		"spatial":     {ScopeNegotiation, ScopeTransfer},
		"payAmount":   {ScopeNegotiation, ScopeTransfer},
		"elapsedTime": {ScopeTransfer},
		"count":       {ScopeTransfer},
	}
	for name, c := range failing {
		for _, scope := range []Scope{ScopeCatalog, ScopeNegotiation, ScopeTransfer} {
			t.Run(name+"/"+scope.String(), func(t *testing.T) {
				decided := false
				for _, s := range decidedIn[name] {
					decided = decided || s == scope
				}
				d := Evaluate(onePermission(c), baseReq(), scope)
				if d.Permit == decided {
					t.Errorf("permit = %v, want %v\n%s", d.Permit, !decided, d)
				}
				want := CodeDeferred
				if decided {
					want = CodeNotSatisfied
				}
				if r := reasonAt(t, d, "permission[0].constraint[0]"); r.Code != want {
					t.Errorf("code = %s, want %s", r.Code, want)
				}
			})
		}
	}
}

// A prohibition whose constraint cannot be decided yet must not hide an
// offer in the catalogue, and must deny once it can be decided.
func TestProhibitionDeferredUntilDecidable(t *testing.T) {
	p := Policy{
		Permissions:  []Rule{{Action: ActionUse}},
		Prohibitions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftPurpose, OpEq, Lit("research"))}}},
	}
	p.Compile()
	d := Evaluate(p, baseReq(), ScopeCatalog)
	if !d.Permit {
		t.Fatalf("catalog deny:\n%s", d)
	}
	if r := reasonAt(t, d, "prohibition[0]"); r.Code != CodeDeferred || r.Result != Deferred {
		t.Errorf("prohibition reason = %v", r)
	}
	if d := Evaluate(p, baseReq(), ScopeNegotiation); d.Permit {
		t.Errorf("negotiation permit despite applying prohibition")
	}
}

func TestRequestProblems(t *testing.T) {
	p := onePermission()
	cases := []struct {
		name  string
		req   func(*Request)
		scope Scope
		want  Code
	}{
		{"no action at negotiation", func(r *Request) { r.Action = "" }, ScopeNegotiation, CodeMissingAction},
		{"unknown action", func(r *Request) { r.Action = "print" }, ScopeTransfer, CodeUnknownRequestAction},
		{"unknown scope", nil, Scope(9), CodeUnknownScope},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := baseReq()
			if tc.req != nil {
				tc.req(&req)
			}
			d := Evaluate(p, req, tc.scope)
			if d.Permit {
				t.Fatalf("permit")
			}
			if len(d.Why()) != 1 || d.Why()[0].Code != tc.want {
				t.Errorf("why = %v, want one %s", d.Why(), tc.want)
			}
		})
	}
	// In the catalogue an empty action means "could any use be granted".
	req := baseReq()
	req.Action = ""
	agg := Policy{Permissions: []Rule{{Action: ActionAggregate}}, Prohibitions: []Rule{{Action: ActionRead}}}
	agg.Compile()
	if d := Evaluate(agg, req, ScopeCatalog); !d.Permit {
		t.Errorf("catalog with any action denied an aggregate-only offer:\n%s", d)
	}
}

// TestUnknownTermsDeny: the two classic connector failures must not happen
// here: a constraint the engine does not understand is never ignored.
func TestUnknownTermsDeny(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		want Code
	}{
		{"unknown left operand", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic("partner", OpEq, Lit("gold"))}}}}, CodeUnknownLeftOperand},
		{"unknown operator", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftPurpose, "startsWith", Lit("res"))}}}}, CodeUnknownOperator},
		{"unknown action", Policy{Permissions: []Rule{{Action: "print"}}}, CodeUnknownAction},
		{"unknown duty action", Policy{Permissions: []Rule{{Action: ActionUse, Duties: []Rule{{Action: "watermark"}}}}}, CodeUnknownAction},
		{"unknown action in a prohibition", Policy{Permissions: []Rule{{Action: ActionUse}}, Prohibitions: []Rule{{Action: "print"}}}, CodeUnknownAction},
		{"unknown term in an or", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{
			Logical(LogicOr, Atomic(LeftRole, OpEq, Lit(RoleAgency)), Atomic("partner", OpEq, Lit("gold")))}}}}, CodeUnknownLeftOperand},
		{"unknown term in a permission that is not needed", Policy{Permissions: []Rule{{Action: ActionUse}, {Action: ActionUse, Constraints: []Constraint{Atomic("partner", OpEq, Lit("gold"))}}}}, CodeUnknownLeftOperand},
		{"operator not for operand", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftPurpose, OpLt, Lit("b"))}}}}, CodeUnsupportedOperator},
		{"ordered operator on set", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftCount, OpIsAnyOf, Lit("1"))}}}}, CodeUnsupportedOperator},
		{"area with eq", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftSpatial, OpEq, Area(amsterdam))}}}}, CodeUnsupportedOperator},
		{"date without zone", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftDateTime, OpLt, Lit("2023-12-31T06:00:00"))}}}}, CodeBadRightOperand},
		{"bad duration", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftElapsedTime, OpLt, DurationOp("30 days"))}}}}, CodeBadRightOperand},
		{"fractional count", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftCount, OpLt, Num(2.5))}}}}, CodeBadRightOperand},
		{"unknown role value", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftRole, OpEq, Lit("admin"))}}}}, CodeBadRightOperand},
		{"eq with two values", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftPurpose, OpEq, Lit("a", "b"))}}}}, CodeBadRightOperand},
		{"point as area", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftSpatial, OpIsPartOf, Area(orb.Point{1, 2}))}}}}, CodeBadRightOperand},
		{"unit on purpose", Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{{LeftOperand: LeftPurpose, Operator: OpEq, RightOperand: Lit("x"), Unit: "EUR"}}}}}, CodeUnsupportedFeature},
		{"refinement", Policy{Permissions: []Rule{{Action: ActionUse, Refinement: []Constraint{Atomic(LeftCount, OpLt, Num(3))}}}}, CodeUnsupportedFeature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Compile()
			d := Evaluate(tc.p, baseReq(), ScopeTransfer)
			if d.Permit {
				t.Fatalf("permit for a policy with %s", tc.name)
			}
			found := false
			for _, r := range d.Why() {
				found = found || r.Code == tc.want
				if r.Text() == "" {
					t.Errorf("empty text for %s", r.Code)
				}
			}
			if !found {
				t.Errorf("why = %v, want a %s", d.Why(), tc.want)
			}
			if err := Validate(tc.p); err == nil {
				t.Errorf("Validate accepted it")
			}
			if !strings.Contains(Describe(tc.p), "NOT UNDERSTOOD") {
				t.Errorf("Describe does not warn:\n%s", Describe(tc.p))
			}
		})
	}
}

func TestAssignee(t *testing.T) {
	p := Policy{Type: TypeAgreement, Assigner: "peer-P", Assignee: "peer-A", Permissions: []Rule{{Action: ActionUse}}}
	p.Compile()
	if d := Evaluate(p, baseReq(), ScopeTransfer); !d.Permit {
		t.Errorf("assignee denied:\n%s", d)
	}
	req := baseReq()
	req.PeerID = "peer-B"
	d := Evaluate(p, req, ScopeTransfer)
	if d.Permit {
		t.Fatalf("another peer permitted under an agreement for peer-A")
	}
	if r := reasonAt(t, d, "permission[0]"); r.Code != CodeAssigneeMismatch || !r.Denies {
		t.Errorf("reason = %v", r)
	}
}

func TestEvaluateUncompiledPolicy(t *testing.T) {
	// A Policy built by hand without Compile still evaluates correctly.
	p := Policy{Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftRole, OpEq, Lit(RoleResearcher))}}}}
	if d := Evaluate(p, baseReq(), ScopeTransfer); d.Permit {
		t.Errorf("permit for agency under researcher-only policy")
	}
}

func TestDecisionString(t *testing.T) {
	p, _ := LookupTemplate("research-only")
	pol, err := p.New(Params{})
	if err != nil {
		t.Fatal(err)
	}
	req := baseReq()
	req.Purpose = "marketing"
	s := Evaluate(pol, req, ScopeNegotiation).String()
	for _, want := range []string{"deny use (negotiation scope)", "the purpose is research: not satisfied (purpose: marketing)", "[not-satisfied]"} {
		if !strings.Contains(s, want) {
			t.Errorf("decision text lacks %q:\n%s", want, s)
		}
	}
}

// One compiled policy is evaluated from many goroutines at once (the node
// does this for concurrent transfers); run with -race.
func TestEvaluateConcurrently(t *testing.T) {
	p := tenConstraints()
	done := make(chan string)
	for g := 0; g < 8; g++ {
		go func(g int) {
			req := baseReq()
			req.Federations = []string{"fed-nl"}
			req.Usage.Count = g * 20 // goroutines past 100 transfers are denied
			d := Evaluate(p, req, ScopeTransfer)
			done <- fmt.Sprintf("%d:%v:%d", g, d.Permit, len(d.Why()))
		}(g)
	}
	got := map[string]bool{}
	for g := 0; g < 8; g++ {
		got[<-done] = true
	}
	for g := 0; g < 8; g++ {
		permit := g*20+1 <= 100
		why := 0
		if !permit {
			why = 3 // the count constraint, the permission, no-permission
		}
		if want := fmt.Sprintf("%d:%v:%d", g, permit, why); !got[want] {
			t.Errorf("missing result %s in %v", want, got)
		}
	}
}

func TestDurationWords(t *testing.T) {
	for in, want := range map[string]string{"P30D": "30 days", "P1Y2M": "1 year 2 months", "PT1H30M": "1 hour 30 minutes", "P2W": "14 days", "PT0.5S": "0.5 seconds", "P0D": "no time"} {
		d, err := parseDuration(in)
		if err != nil {
			t.Fatalf("parseDuration(%q): %v", in, err)
		}
		if got := d.words(); got != want {
			t.Errorf("words(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "30D", "P-1D", "P1.5D", "P1DT", "P1D1D", "PT1X", "P99999999999D"} {
		if _, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) accepted", bad)
		}
	}
}

func TestDecisionJSON(t *testing.T) {
	req := baseReq()
	req.Role = RoleResearcher
	d := Evaluate(onePermission(Atomic(LeftRole, OpEq, Lit(RoleAgency))), req, ScopeCatalog)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"permit":false,"scope":"catalog","action":"use","reasons":[` +
		`{"code":"not-satisfied","where":"permission[0].constraint[0]","result":"false","denies":true,"text":"the recipient's role is agency: not satisfied (role: researcher)"},` +
		`{"code":"constraints-not-satisfied","where":"permission[0]","result":"false","denies":true,"text":"permission to use not granted: its constraints do not hold"},` +
		`{"code":"no-permission","where":"request","result":"false","denies":true,"text":"no permission grants use"}]}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range []Scope{ScopeCatalog, ScopeNegotiation, ScopeTransfer} {
		got, err := ParseScope(s.String())
		if err != nil || got != s {
			t.Errorf("ParseScope(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseScope("browse"); err == nil {
		t.Errorf("ParseScope(browse) accepted")
	}
}

// The point fast path agrees with orb's planar containment on a grid of
// points around an area with a hole and a notch.
func TestPointWithinMatchesPlanar(t *testing.T) {
	area := orb.MultiPolygon{
		{{{0, 0}, {10, 0}, {10, 10}, {5, 5}, {0, 10}, {0, 0}}, {{2, 1}, {4, 1}, {4, 3}, {2, 3}, {2, 1}}},
		{{{20, 20}, {25, 20}, {25, 25}, {20, 25}, {20, 20}}},
	}
	b := area.Bound()
	exact := []struct {
		p    orb.Point
		want bool
	}{
		{orb.Point{0, 5}, true},   // outer edge: inside
		{orb.Point{5, 5}, true},   // notch vertex: inside
		{orb.Point{5, 6}, false},  // in the notch
		{orb.Point{2, 2}, false},  // hole edge: outside
		{orb.Point{3, 2}, false},  // in the hole
		{orb.Point{20, 22}, true}, // second polygon's edge
	}
	for _, c := range exact {
		if got := pointWithin(c.p, area, b); got != c.want {
			t.Errorf("pointWithin(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	for x := -10; x <= 260; x++ {
		for y := -10; y <= 260; y += 3 {
			p := orb.Point{float64(x) / 10, float64(y) / 10}
			if nearEdge(area, p) {
				continue // on the boundary up to rounding: either answer is right
			}
			if got, want := pointWithin(p, area, b), planar.MultiPolygonContains(area, p); got != want {
				t.Fatalf("pointWithin(%v) = %v, planar says %v", p, got, want)
			}
		}
	}
}

func nearEdge(area orb.MultiPolygon, p orb.Point) bool {
	for _, poly := range area {
		for _, r := range poly {
			for i := 0; i+1 < len(r); i++ {
				a, b := r[i], r[i+1]
				if planar.DistanceFromSegment(a, b, p) < 1e-9 {
					return true
				}
			}
		}
	}
	return false
}

// elapsedTime adds the duration to the agreement's start by the calendar:
// days and hours in UTC take a quicker way than time.AddDate, which must
// reach the same instant; everything else goes through AddDate.
func TestDurationAfter(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min, s, ns int) time.Time {
		return time.Date(y, m, d, h, min, s, ns, time.UTC)
	}
	cases := []struct {
		name, dur   string
		start, want time.Time
	}{
		{"days in UTC", "P30D", t0, utc(2026, 3, 31, 12, 0, 0, 0)},
		{"days and clock in UTC", "P1DT2H30M0.5S", t0, utc(2026, 3, 2, 14, 30, 0, 5e8)},
		{"weeks in UTC", "P2W", t0, utc(2026, 3, 15, 12, 0, 0, 0)},
		{"over a leap day", "P1D", utc(2028, 2, 28, 23, 0, 0, 0), utc(2028, 2, 29, 23, 0, 0, 0)},
		{"100 years of days", "P36500DT3H", t0, utc(2126, 2, 5, 15, 0, 0, 0)},
		{"more days than the quick way takes", "P36501D", t0, utc(2126, 2, 6, 12, 0, 0, 0)},
		{"calendar month", "P1M", utc(2026, 1, 31, 0, 0, 0, 0), utc(2026, 3, 3, 0, 0, 0, 0)},
		{"fixed zone", "P30D", t0.In(time.FixedZone("CET", 3600)), utc(2026, 3, 31, 12, 0, 0, 0)},
		{"from year 1", "P2D", utc(1, 1, 1, 0, 0, 0, 0), utc(1, 1, 3, 0, 0, 0, 0)},
		{"from before year 1", "P2D", utc(0, 12, 31, 0, 0, 0, 0), utc(1, 1, 2, 0, 0, 0, 0)},
		{"from year 9999", "P2D", utc(9999, 12, 31, 0, 0, 0, 0), utc(10000, 1, 2, 0, 0, 0, 0)},
	}
	if ams, err := time.LoadLocation("Europe/Amsterdam"); err == nil {
		// Summer time starts on 29 March 2026: that day has 23 hours.
		cases = append(cases, struct {
			name, dur   string
			start, want time.Time
		}{"across a clock change", "P1D", time.Date(2026, 3, 28, 12, 0, 0, 0, ams), utc(2026, 3, 29, 10, 0, 0, 0)})
	} else {
		t.Logf("no time zone data, clock change case left out: %v", err)
	}
	for _, c := range cases {
		d, err := parseDuration(c.dur)
		if err != nil {
			t.Fatalf("parseDuration(%q): %v", c.dur, err)
		}
		if got := d.after(c.start); !got.Equal(c.want) {
			t.Errorf("%s: %s after %v = %v, want %v", c.name, c.dur, c.start, got, c.want)
		}
	}
}

// A Decision kept by the caller reads the same after later evaluations of
// the same policy, and an agreement's extra reason added to one copy does not
// show in another: each Decision holds its own reasons and request. Both a
// policy whose reasons fit in the Decision and one whose do not.
func TestDecisionKeptByCaller(t *testing.T) {
	small := tenConstraints()
	big := tenConstraints()
	cs := big.Permissions[0].Constraints
	big.Permissions[0].Constraints = append(cs[:len(cs):len(cs)], cs...)
	big.Compile()
	for name, p := range map[string]Policy{"10 constraints": small, "20 constraints": big} {
		t.Run(name, func(t *testing.T) {
			req := baseReq()
			req.Federations = []string{"fed-nl"}
			kept := Evaluate(p, req, ScopeTransfer)
			if !kept.Permit {
				t.Fatalf("policy denies:\n%s", kept)
			}
			text, js := kept.String(), mustJSON(t, kept)
			n := len(kept.Reasons())
			for i := 0; i < 3; i++ {
				other := baseReq()
				other.PeerID, other.Purpose, other.Usage.Count = "peer-X", "marketing", 500+i
				if d := Evaluate(p, other, ScopeTransfer); d.Permit {
					t.Fatalf("other request permitted:\n%s", d)
				}
			}
			if got := kept.String(); got != text {
				t.Errorf("kept decision changed after later evaluations:\n%s\nwas\n%s", got, text)
			}
			if got := mustJSON(t, kept); got != js {
				t.Errorf("kept decision's JSON changed after later evaluations:\n%s\nwas\n%s", got, js)
			}

			a, b := kept, kept
			a.addExtra(CodeNotConsumer, "first copy")
			b.addExtra(CodeOutsideValidity, "second copy")
			for _, c := range []struct {
				d    Decision
				code Code
				text string
			}{{a, CodeNotConsumer, "first copy"}, {b, CodeOutsideValidity, "second copy"}} {
				rs := c.d.Reasons()
				if last := rs[len(rs)-1]; c.d.Permit || len(rs) != n+1 || last.Code != c.code || last.Text() != c.text {
					t.Errorf("copy with %s: permit %v, %d reasons, last %v; want deny, %d reasons, last %q", c.code, c.d.Permit, len(rs), last, n+1, c.text)
				}
			}
			if kept.String() != text || len(kept.Reasons()) != n {
				t.Errorf("adding reasons to copies changed the original:\n%s", kept)
			}
		})
	}
}

// Reasons beyond what a Decision holds inline are all kept, in order.
func TestDecisionManyReasons(t *testing.T) {
	var d Decision
	for i := 0; i < 3*inlineRecs; i++ {
		d.addExtra(CodeOutsideValidity, fmt.Sprint(i))
	}
	why := d.Why()
	if len(why) != 3*inlineRecs {
		t.Fatalf("%d reasons, want %d", len(why), 3*inlineRecs)
	}
	for i, r := range why {
		if r.Text() != fmt.Sprint(i) {
			t.Errorf("reason %d says %q, want %q", i, r.Text(), fmt.Sprint(i))
		}
	}
}

func mustJSON(t *testing.T, d Decision) string {
	t.Helper()
	js, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}
