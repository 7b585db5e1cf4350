package policy

import (
	"time"

	"github.com/paulmach/orb"
)

// Result is the value of a constraint or rule in one evaluation.
type Result uint8

const (
	// False: the constraint does not hold (or the rule does not apply / is not satisfiable).
	False Result = iota
	// True: it holds.
	True
	// Deferred: it cannot be decided in this scope and will be checked in a
	// later one; it does not deny now.
	Deferred
)

func (r Result) String() string {
	switch r {
	case True:
		return "true"
	case Deferred:
		return "deferred"
	}
	return "false"
}

// Decision is the outcome of Evaluate: permit or deny, with a reason for the
// request, for every rule and for every constraint that was evaluated.
//
// Reasons are recorded compactly and turned into Reason values (with their
// text) only when asked for, so that evaluating stays cheap. Their text reads
// the request's slices (Federations, Places) as they are then: do not modify
// them while the Decision is in use.
type Decision struct {
	Permit bool
	Scope  Scope
	Action Action

	// What the reasons need to explain themselves later. It is held by value,
	// with the reasons inline when they fit, so that Evaluate allocates
	// nothing for policies of up to about a dozen constraints and a copy of
	// a Decision shares nothing that a later evaluation writes.
	prog  *program
	req   Request
	extra []problem // reasons added after evaluation (Agreement.Evaluate)
	nrecs int32
	inl   [inlineRecs]reasonRec
	more  []reasonRec // every reason, instead of inl, when they do not fit
}

// inlineRecs is how many reasons a Decision holds without allocating. A
// policy has one per rule and constraint plus the verdict's, so a single
// permission with 13 constraints fits, and the 10-constraint benchmark policy
// with both of Agreement.Evaluate's extra reasons.
const inlineRecs = 16

// add appends a reason.
func (d *Decision) add(r reasonRec) {
	if d.more == nil {
		if int(d.nrecs) < len(d.inl) {
			d.inl[d.nrecs] = r
			d.nrecs++
			return
		}
		d.more = append(make([]reasonRec, 0, 2*len(d.inl)), d.inl[:d.nrecs]...)
	}
	d.more = append(d.more, r)
}

// Unconditional reports whether d permits its request whatever the
// constraints it could not decide in its scope (Deferred) turn out to be,
// and at any later time: a permission granted with none of its
// constraints or duties deferred and no dateTime bound, and no
// prohibition left undecided or bounded by dateTime. A consumer deciding once whether it
// may pass received data on (distribute), without the later requests'
// purpose or time, takes only such a permit.
func (d Decision) Unconditional() bool {
	if !d.Permit {
		return false
	}
	outright := false
	for _, r := range d.recs() {
		if r.kind != refRule {
			continue
		}
		rule := d.prog.rules[r.ref]
		switch {
		case r.code == cPermissionGranted && r.result == True && !timeBound(rule.cons):
			// A permission bounded by dateTime ends, whatever it
			// says at the instant asked.
			outright = true
		case r.code == cDeferred:
			return false // a prohibition that may apply
		case rule.kind == kindProhibition && r.code == cConstraintsNotSatisfied && timeBound(rule.cons):
			return false // a prohibition that applies from some date
		}
	}
	return outright
}

// timeBound reports whether a constraint tree names dateTime anywhere.
func timeBound(nodes []*cnode) bool {
	for _, n := range nodes {
		if n.left == lDateTime || timeBound(n.kids) {
			return true
		}
	}
	return false
}

// recs returns the reasons; the slice aliases d.
func (d *Decision) recs() []reasonRec {
	if d.more != nil {
		return d.more
	}
	return d.inl[:d.nrecs]
}

type refKind uint8

const (
	refRequest refKind = iota
	refRule
	refNode
	refProblem
	refExtra
)

// reasonRec is one reason, without pointers: a slice of them costs the
// garbage collector nothing to scan.
type reasonRec struct {
	code   codeIdx
	result Result
	denies bool
	kind   refKind
	ref    int32
}

// Evaluate decides whether req may happen under p in scope. Deny is a result,
// never an error. The rules, in order:
//
//  1. A policy with anything the evaluator does not understand denies
//     (Validate lists those things; they are also the reasons).
//  2. The request's action must be known (empty means "any" in the catalog
//     scope only).
//  3. Every obligation must be satisfiable.
//  4. A prohibition whose action covers the request (use covers every action)
//     and whose constraints all hold applies, and wins over any permission
//     (ODRL conflict strategy "prohibit").
//  5. Some permission must cover the action, have all its constraints hold
//     (or deferred) and all its duties satisfiable.
//
// Constraints on an operand the scope cannot know yet are deferred: they
// count as holding for permissions and duties, and as not holding for
// prohibitions, and are decided in a later scope. In the transfer scope
// nothing is deferred.
func Evaluate(p Policy, req Request, scope Scope) (d Decision) {
	prog := p.prog
	if prog == nil {
		q := p
		q.Compile()
		prog = q.prog
	}
	d.Scope, d.Action, d.prog, d.req = scope, req.Action, prog, req
	if prog.maxReasons > len(d.inl) {
		d.more = make([]reasonRec, 0, prog.maxReasons)
	}
	e := evaluator{prog: prog, req: &d.req, scope: scope, d: &d}
	e.run()
	return d
}

type evaluator struct {
	prog  *program
	req   *Request
	scope Scope
	d     *Decision

	scopeBit uint8 // 1<<scope, for cnode.scopes
}

func (e *evaluator) addRule(code codeIdx, r *crule, res Result, denies bool) {
	e.d.add(reasonRec{code: code, result: res, denies: denies, kind: refRule, ref: r.idx})
}

func (e *evaluator) addNode(code codeIdx, n *cnode, res Result) {
	e.d.add(reasonRec{code: code, result: res, kind: refNode, ref: n.idx})
}

func (e *evaluator) deny(code codeIdx) {
	e.d.add(reasonRec{code: code, result: False, denies: true, kind: refRequest})
	e.d.Permit = false
}

func (e *evaluator) run() {
	if e.scope < ScopeCatalog || e.scope > ScopeTransfer {
		e.deny(cUnknownScope)
		return
	}
	e.scopeBit = 1 << e.scope
	if len(e.prog.problems) > 0 {
		for i, pr := range e.prog.problems {
			e.d.add(reasonRec{code: codeIndex(pr.code), result: False, denies: true, kind: refProblem, ref: int32(i)})
		}
		return
	}
	anyAction := false
	switch {
	case e.req.Action == "" && e.scope == ScopeCatalog:
		anyAction = true
	case e.req.Action == "":
		e.deny(cMissingAction)
		return
	case !isRuleAction(e.req.Action):
		e.deny(cUnknownRequestAction)
		return
	}

	obligationsOK := true
	for i := range e.prog.obligs {
		if e.duty(&e.prog.obligs[i]) == False {
			obligationsOK = false
		}
	}

	prohibited := false
	for i := range e.prog.prohibs {
		r := &e.prog.prohibs[i]
		covered := r.action == ActionUse || (!anyAction && r.action == e.req.Action)
		if !covered {
			e.addRule(cActionNotCovered, r, False, false)
			continue
		}
		if !e.assigneeOK(r) {
			e.addRule(cAssigneeMismatch, r, False, false)
			continue
		}
		switch e.all(r, r.cons) {
		case True:
			prohibited = true
			e.addRule(cProhibitionApplies, r, True, true)
		case Deferred:
			e.addRule(cDeferred, r, Deferred, false)
		default:
			e.addRule(cConstraintsNotSatisfied, r, False, false)
		}
	}

	granted := false
	for i := range e.prog.perms {
		r := &e.prog.perms[i]
		covered := anyAction || r.action == ActionUse || r.action == e.req.Action
		if !covered {
			e.addRule(cActionNotCovered, r, False, false)
			continue
		}
		if !e.assigneeOK(r) {
			e.addRule(cAssigneeMismatch, r, False, false)
			continue
		}
		res := e.all(r, r.cons)
		if res == False {
			e.addRule(cConstraintsNotSatisfied, r, False, false)
			continue
		}
		dutiesOK := true
		for j := range r.duties {
			switch e.duty(&r.duties[j]) {
			case False:
				dutiesOK = false
			case Deferred:
				res = Deferred
			}
		}
		if !dutiesOK {
			e.addRule(cDutyNotSatisfied, r, False, false)
			continue
		}
		granted = true
		e.addRule(cPermissionGranted, r, res, false)
	}
	if !granted {
		e.d.add(reasonRec{code: cNoPermission, result: False, kind: refRequest})
	}
	e.d.Permit = granted && !prohibited && obligationsOK
	if !e.d.Permit {
		e.markDenies(granted, obligationsOK)
	}
}

// markDenies flags the reasons that together explain a deny, so a caller can
// show just those (Decision.Why).
func (e *evaluator) markDenies(granted, obligationsOK bool) {
	recs := e.d.recs()
	for i := range recs {
		r := &recs[i]
		var rule *crule
		leaf := true
		switch r.kind {
		case refRequest:
			if r.code == cNoPermission {
				r.denies = true
			}
			continue
		case refRule:
			rule = e.prog.rules[r.ref]
		case refNode:
			n := e.prog.nodes[r.ref]
			rule, leaf = n.rule, n.logic == ""
		default:
			continue
		}
		switch rule.top {
		case kindPermission:
			r.denies = !granted && r.result == False && leaf
		case kindObligation:
			r.denies = !obligationsOK && r.result == False && leaf
		}
	}
}

func (e *evaluator) assigneeOK(r *crule) bool {
	a := r.assignee
	if a == "" {
		a = e.prog.assignee
	}
	return a == "" || a == e.req.PeerID
}

// duty evaluates a duty or obligation: can the consumer satisfy it?
func (e *evaluator) duty(r *crule) Result {
	res := e.all(r, r.cons)
	act, code := True, cDutySatisfied
	switch r.action {
	case ActionAttribute, ActionInform, ActionDelete:
		code = cDutyPromised
	case ActionObtainConsent:
		switch {
		case e.scope != ScopeTransfer:
			act = Deferred
		case !e.hasConsent():
			act, code = False, cConsentMissing
		}
	}
	res = and2(res, act)
	switch res {
	case False:
		if act != False {
			code = cConstraintsNotSatisfied
		}
	case Deferred:
		code = cDeferred
	}
	e.addRule(code, r, res, false)
	return res
}

// hasConsent: some consent record, valid now, covers the request's purpose.
func (e *evaluator) hasConsent() bool {
	if e.req.Purpose == "" {
		return false
	}
	for _, c := range e.req.Consents {
		if c.Withdrawn || c.Given.IsZero() || e.req.Now.Before(c.Given) {
			continue
		}
		if !c.Expires.IsZero() && !e.req.Now.Before(c.Expires) {
			continue
		}
		for _, p := range c.Purposes {
			if p == e.req.Purpose {
				return true
			}
		}
	}
	return false
}

func and2(a, b Result) Result {
	if a == False || b == False {
		return False
	}
	if a == Deferred || b == Deferred {
		return Deferred
	}
	return True
}

// all evaluates a rule's constraints, which hold together. Every constraint
// is evaluated, even after one fails, so that each gets its reason.
func (e *evaluator) all(r *crule, ns []*cnode) Result {
	res := True
	for _, n := range ns {
		res = and2(res, e.node(r, n))
	}
	return res
}

func (e *evaluator) node(r *crule, n *cnode) Result {
	if n.logic != "" {
		var nTrue, nDeferred, nFalse int
		for _, k := range n.kids {
			switch e.node(r, k) {
			case True:
				nTrue++
			case Deferred:
				nDeferred++
			default:
				nFalse++
			}
		}
		var res Result
		switch n.logic {
		case LogicOr:
			res = pick(nTrue > 0, nDeferred > 0)
		case LogicXone:
			switch {
			case nTrue > 1 || nTrue+nDeferred == 0:
				res = False
			case nTrue == 1 && nDeferred == 0:
				res = True
			default:
				res = Deferred
			}
		default: // and, andSequence
			switch {
			case nFalse > 0:
				res = False
			case nDeferred > 0:
				res = Deferred
			default:
				res = True
			}
		}
		e.addNode(codeOf(res), n, res)
		return res
	}
	res, code := e.atomic(n)
	e.addNode(code, n, res)
	return res
}

func pick(isTrue, isDeferred bool) Result {
	switch {
	case isTrue:
		return True
	case isDeferred:
		return Deferred
	}
	return False
}

func codeOf(r Result) codeIdx {
	switch r {
	case True:
		return cSatisfied
	case Deferred:
		return cDeferred
	}
	return cNotSatisfied
}

func boolResult(b bool) (Result, codeIdx) {
	if b {
		return True, cSatisfied
	}
	return False, cNotSatisfied
}

func (e *evaluator) atomic(n *cnode) (Result, codeIdx) {
	if n.scopes&e.scopeBit == 0 {
		return Deferred, cDeferred
	}
	req := e.req
	switch n.left {
	case lPurpose:
		if req.Purpose == "" {
			return False, cMissingValue
		}
		return boolResult(oneOp(n.op, req.Purpose, n.strs))
	case lRecipient:
		if req.PeerID == "" {
			return False, cMissingValue
		}
		return boolResult(oneOp(n.op, req.PeerID, n.strs))
	case lRole:
		if req.Role == "" {
			return False, cMissingValue
		}
		return boolResult(oneOp(n.op, req.Role, n.strs))
	case lFederation:
		return boolResult(setOp(n.op, req.Federations, n.strs))
	case lSpatialPlace:
		if len(req.Places) == 0 {
			return False, cMissingValue
		}
		return boolResult(placeOp(n.op, req.Places, n.strs))
	case lSpatialArea:
		if req.Location == nil {
			return False, cMissingValue
		}
		if pt, ok := req.Location.(orb.Point); ok {
			return boolResult(pointWithin(pt, n.area, n.bound)) // the common case, without allocating
		}
		return boolResult(within(req.Location, n.area, n.bound))
	case lDateTime:
		if req.Now.IsZero() {
			return False, cMissingValue
		}
		return boolResult(cmpOp(n.op, compareTime(req.Now, n.t)))
	case lElapsedTime:
		if req.Now.IsZero() || req.Usage.AgreementStart.IsZero() {
			return False, cMissingValue
		}
		// elapsed op d  <=>  now op start+d, which keeps calendar units exact.
		return boolResult(cmpOp(n.op, compareTime(req.Now, n.dur.after(req.Usage.AgreementStart))))
	case lCount:
		return boolResult(cmpOp(n.op, compareNum(float64(req.Usage.Count)+1, n.num)))
	case lPayAmount:
		if n.unit != "" && req.Currency != n.unit {
			return False, cUnitMismatch
		}
		return boolResult(cmpOp(n.op, compareNum(req.PayAmount, n.num)))
	}
	// Unreachable: compile leaves unknown operands as problems, which stop
	// evaluation before any constraint is looked at.
	return False, cNotSatisfied
}

func compareTime(a, b time.Time) int { return a.Compare(b) }

func compareNum(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpOp(op opKind, c int) bool {
	switch op {
	case oEq:
		return c == 0
	case oNeq:
		return c != 0
	case oLt:
		return c < 0
	case oLteq:
		return c <= 0
	case oGt:
		return c > 0
	case oGteq:
		return c >= 0
	}
	return false
}

func contains(list []string, x string) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

func anyIn(l, r []string) bool {
	for _, x := range l {
		if contains(r, x) {
			return true
		}
	}
	return false
}

// oneOp is setOp for a request side of exactly one value x (purpose,
// recipient, role), without the loops over L.
func oneOp(op opKind, x string, r []string) bool {
	switch op {
	case oEq, oIsA:
		return x == r[0]
	case oNeq:
		return x != r[0]
	case oHasPart, oIsAllOf:
		for _, v := range r {
			if v != x {
				return false
			}
		}
		return true
	case oIsPartOf, oIsAnyOf:
		return contains(r, x)
	case oIsNoneOf:
		return !contains(r, x)
	}
	return false
}

// setOp compares the request's set L with the right operand R:
// eq/isA r: r ∈ L; neq r: r ∉ L; hasPart/isAllOf R: R ⊆ L;
// isPartOf R: L ≠ ∅ and L ⊆ R; isAnyOf R: L ∩ R ≠ ∅; isNoneOf R: L ∩ R = ∅.
func setOp(op opKind, l, r []string) bool {
	switch op {
	case oEq, oIsA:
		return contains(l, r[0])
	case oNeq:
		return !contains(l, r[0])
	case oHasPart, oIsAllOf:
		for _, x := range r {
			if !contains(l, x) {
				return false
			}
		}
		return true
	case oIsPartOf:
		if len(l) == 0 {
			return false
		}
		for _, x := range l {
			if !contains(r, x) {
				return false
			}
		}
		return true
	case oIsAnyOf:
		return anyIn(l, r)
	case oIsNoneOf:
		return !anyIn(l, r)
	}
	return false
}

// placeOp compares named places. Request.Places lists every named place that
// contains the location, so "isPartOf EU" means EU is among them: the
// location is part of at least one of the named areas.
func placeOp(op opKind, places, r []string) bool {
	switch op {
	case oEq:
		return contains(places, r[0])
	case oNeq:
		return !contains(places, r[0])
	case oIsPartOf, oIsAnyOf:
		return anyIn(places, r)
	case oIsAllOf:
		return setOp(oIsAllOf, places, r)
	case oIsNoneOf:
		return !anyIn(places, r)
	}
	return false
}
