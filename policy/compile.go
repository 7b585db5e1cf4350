package policy

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
)

// program is a policy precompiled for Evaluate: terms resolved to small
// integers, right operands parsed once, reason paths built once, so that an
// evaluation does little more than compare values.
type program struct {
	problems   []problem
	perms      []crule
	prohibs    []crule
	obligs     []crule
	assignee   string
	maxReasons int

	// rules and nodes index every rule and constraint, so that a reason can
	// refer to one by number instead of by pointer.
	rules []*crule
	nodes []*cnode
}

// problem is something in the policy the evaluator does not understand.
type problem struct {
	code  Code
	where string
	text  string
}

type ruleKind uint8

const (
	kindPermission ruleKind = iota + 1
	kindProhibition
	kindObligation
	kindDuty
)

type crule struct {
	kind     ruleKind
	top      ruleKind // kind of the top-level rule a duty belongs to
	idx      int32    // position in program.rules
	name     string   // "permission[0]", "permission[0].duty[1]"
	action   Action
	assignee string
	cons     []*cnode
	duties   []crule
}

type leftKind uint8

const (
	leftUnknown leftKind = iota
	lPurpose
	lDateTime
	lElapsedTime
	lSpatialArea
	lSpatialPlace
	lCount
	lRecipient
	lRole
	lFederation
	lPayAmount
)

type opKind uint8

const (
	opUnknown opKind = iota
	oEq
	oNeq
	oLt
	oLteq
	oGt
	oGteq
	oIsA
	oIsPartOf
	oHasPart
	oIsAnyOf
	oIsAllOf
	oIsNoneOf
)

var opKinds = map[Operator]opKind{
	OpEq: oEq, OpNeq: oNeq, OpLt: oLt, OpLteq: oLteq, OpGt: oGt, OpGteq: oGteq,
	OpIsA: oIsA, OpIsPartOf: oIsPartOf, OpHasPart: oHasPart, OpIsAnyOf: oIsAnyOf,
	OpIsAllOf: oIsAllOf, OpIsNoneOf: oIsNoneOf,
}

var leftKinds = map[LeftOperand]leftKind{
	LeftPurpose: lPurpose, LeftDateTime: lDateTime, LeftElapsedTime: lElapsedTime,
	LeftSpatial: lSpatialPlace, LeftCount: lCount, LeftRecipient: lRecipient,
	LeftRole: lRole, LeftFederation: lFederation, LeftPayAmount: lPayAmount,
}

// scopeMask says in which scopes a left operand can be decided: a catalogue
// request knows who is asking but not why; a negotiation knows the purpose but
// there is no agreement yet to count transfers or time from.
var scopeMask = [...]uint8{
	lPurpose:      1<<ScopeNegotiation | 1<<ScopeTransfer,
	lDateTime:     1<<ScopeCatalog | 1<<ScopeNegotiation | 1<<ScopeTransfer,
	lElapsedTime:  1 << ScopeTransfer,
	lSpatialArea:  1<<ScopeNegotiation | 1<<ScopeTransfer,
	lSpatialPlace: 1<<ScopeNegotiation | 1<<ScopeTransfer,
	lCount:        1 << ScopeTransfer,
	lRecipient:    1<<ScopeCatalog | 1<<ScopeNegotiation | 1<<ScopeTransfer,
	lRole:         1<<ScopeCatalog | 1<<ScopeNegotiation | 1<<ScopeTransfer,
	lFederation:   1<<ScopeCatalog | 1<<ScopeNegotiation | 1<<ScopeTransfer,
	lPayAmount:    1<<ScopeNegotiation | 1<<ScopeTransfer,
}

// Which operators each kind of left operand supports.
var (
	setOps     = map[opKind]bool{oEq: true, oNeq: true, oIsA: true, oIsPartOf: true, oHasPart: true, oIsAnyOf: true, oIsAllOf: true, oIsNoneOf: true}
	placeOps   = map[opKind]bool{oEq: true, oNeq: true, oIsPartOf: true, oIsAnyOf: true, oIsAllOf: true, oIsNoneOf: true}
	orderedOps = map[opKind]bool{oEq: true, oNeq: true, oLt: true, oLteq: true, oGt: true, oGteq: true}
	areaOps    = map[opKind]bool{oIsPartOf: true}
	singleOps  = map[opKind]bool{oEq: true, oNeq: true, oIsA: true, oLt: true, oLteq: true, oGt: true, oGteq: true}
)

// cnode is a compiled constraint.
type cnode struct {
	path string // within the rule: "constraint[1].or[0]"
	src  *Constraint
	rule *crule
	idx  int32 // position in program.nodes

	logic Logic
	kids  []*cnode

	left   leftKind
	op     opKind
	scopes uint8 // scopeMask[left]
	strs   []string
	num    float64
	t      time.Time
	dur    isoDuration
	area   orb.MultiPolygon
	bound  orb.Bound
	unit   string
}

// Compile precompiles p for Evaluate. Parse and the templates call it; call it
// yourself after building or editing a Policy in code.
func (p *Policy) Compile() {
	c := compiler{prog: &program{assignee: p.Assignee}}
	for _, k := range sortedRawKeys(p.Extra) {
		switch normKey(k) {
		case "conflict":
			var v any
			if d, err := decodeJSON(p.Extra[k]); err == nil {
				v = d
			}
			if t, err := asTerm(v, "conflict"); err != nil || t != "prohibit" {
				c.problem(CodeUnsupportedFeature, "policy", fmt.Sprintf("conflict strategy %s is not supported (only prohibit: a prohibition that applies wins)", p.Extra[k]))
			}
		case "inheritFrom":
			c.problem(CodeUnsupportedFeature, "policy", "inheritFrom is not supported: the inherited rules would be missing")
		}
	}
	c.prog.perms = c.rules(p.Permissions, kindPermission, "permission", p.Target)
	c.prog.prohibs = c.rules(p.Prohibitions, kindProhibition, "prohibition", p.Target)
	c.prog.obligs = c.rules(p.Obligations, kindObligation, "obligation", p.Target)
	// Every node and rule gives at most one reason, plus the final verdict
	// and one per problem.
	c.prog.maxReasons = c.reasons + len(c.prog.problems) + 2
	for _, rs := range [][]crule{c.prog.perms, c.prog.prohibs, c.prog.obligs} {
		for i := range rs {
			c.prog.index(&rs[i])
		}
	}
	p.prog = c.prog
}

// index numbers r, its constraints and its duties. It runs once the rule
// values sit in their final slices, so the pointers stay valid.
func (prog *program) index(r *crule) {
	r.idx = int32(len(prog.rules))
	prog.rules = append(prog.rules, r)
	var walk func(n *cnode)
	walk = func(n *cnode) {
		n.rule = r
		n.idx = int32(len(prog.nodes))
		prog.nodes = append(prog.nodes, n)
		for _, k := range n.kids {
			walk(k)
		}
	}
	for _, n := range r.cons {
		walk(n)
	}
	for i := range r.duties {
		prog.index(&r.duties[i])
	}
}

func sortedRawKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type compiler struct {
	prog    *program
	reasons int
}

func (c *compiler) problem(code Code, where, text string) {
	c.prog.problems = append(c.prog.problems, problem{code: code, where: where, text: text})
}

var ruleActions = map[Action]bool{ActionUse: true, ActionRead: true, ActionDistribute: true, ActionAggregate: true, ActionDerive: true, ActionDelete: true}

// isRuleAction is ruleActions[a] for Evaluate, which asks on every call: a
// switch compares a few bytes where the map hashes the whole name.
func isRuleAction(a Action) bool {
	switch a {
	case ActionUse, ActionRead, ActionDistribute, ActionAggregate, ActionDerive, ActionDelete:
		return true
	}
	return false
}

// dutyActions are the duties the engine knows how to judge. delete as a duty
// ("delete afterwards") is a promise the engine records, like attribute.
var dutyActions = map[Action]bool{ActionAttribute: true, ActionInform: true, ActionObtainConsent: true, ActionCompensate: true, ActionDelete: true}

func (c *compiler) rules(rs []Rule, kind ruleKind, prefix, policyTarget string) []crule {
	out := make([]crule, len(rs))
	for i := range rs {
		out[i] = c.rule(&rs[i], kind, kind, indexed(prefix, i), policyTarget)
	}
	return out
}

func (c *compiler) rule(r *Rule, kind, top ruleKind, name, policyTarget string) crule {
	c.reasons++
	cr := crule{kind: kind, top: top, name: name, action: r.Action, assignee: r.Assignee}
	known := ruleActions
	if kind == kindObligation || kind == kindDuty {
		known = dutyActions
	}
	if !known[r.Action] {
		what := "permissions and prohibitions may use use, read, distribute, aggregate, derive, delete"
		if kind == kindObligation || kind == kindDuty {
			what = "duties may use attribute, inform, obtainConsent, compensate, delete"
		}
		c.problem(CodeUnknownAction, name, fmt.Sprintf("action %q is not understood (%s)", r.Action, what))
	}
	if len(r.Refinement) > 0 {
		c.problem(CodeUnsupportedFeature, name, "action refinements are not supported")
	}
	for _, k := range sortedRawKeys(r.Extra) {
		c.problem(CodeUnsupportedFeature, name, fmt.Sprintf("rule property %q is not supported", k))
	}
	if r.Target != "" && r.Target != policyTarget {
		c.problem(CodeUnsupportedFeature, name, fmt.Sprintf("rule target %q differs from the policy target %q; rules about other assets are not supported", r.Target, policyTarget))
	}
	cr.cons = c.nodes(r.Constraints, name, "constraint")
	for i := range r.Duties {
		cr.duties = append(cr.duties, c.rule(&r.Duties[i], kindDuty, top, indexed(name+".duty", i), policyTarget))
	}
	return cr
}

func (c *compiler) nodes(cs []Constraint, rule, prefix string) []*cnode {
	out := make([]*cnode, len(cs))
	for i := range cs {
		out[i] = c.node(&cs[i], rule, indexed(prefix, i))
	}
	return out
}

func (c *compiler) node(con *Constraint, rule, path string) *cnode {
	c.reasons++
	n := &cnode{path: path, src: con}
	where := rule + "." + path
	for _, k := range sortedRawKeys(con.Extra) {
		c.problem(CodeUnsupportedFeature, where, fmt.Sprintf("constraint property %q is not supported", k))
	}
	if con.Logic != "" {
		n.logic = con.Logic
		switch con.Logic {
		case LogicAnd, LogicOr, LogicXone, LogicAndSequence:
		default:
			c.problem(CodeUnknownOperator, where, fmt.Sprintf("logical operator %q is not understood", con.Logic))
		}
		if len(con.Constraints) == 0 {
			c.problem(CodeBadRightOperand, where, fmt.Sprintf("%s has no constraints", con.Logic))
		}
		for i := range con.Constraints {
			n.kids = append(n.kids, c.node(&con.Constraints[i], rule, indexed(path+"."+string(con.Logic), i)))
		}
		return n
	}
	lk, okL := leftKinds[con.LeftOperand]
	ok, okO := opKinds[con.Operator]
	if !okL {
		c.problem(CodeUnknownLeftOperand, where, fmt.Sprintf("leftOperand %q is not understood", con.LeftOperand))
	}
	if !okO {
		c.problem(CodeUnknownOperator, where, fmt.Sprintf("operator %q is not understood", con.Operator))
	}
	if !okL || !okO {
		return n
	}
	if lk == lSpatialPlace && con.RightOperand.Geometry != nil {
		lk = lSpatialArea
	}
	n.left, n.op, n.scopes = lk, ok, scopeMask[lk]
	if con.Unit != "" && lk != lPayAmount {
		c.problem(CodeUnsupportedFeature, where, fmt.Sprintf("unit is only understood on payAmount, not on %s", con.LeftOperand))
	}
	n.unit = con.Unit
	var allowed map[opKind]bool
	switch lk {
	case lPurpose, lRecipient, lRole, lFederation:
		allowed = setOps
	case lSpatialPlace:
		allowed = placeOps
	case lSpatialArea:
		allowed = areaOps
	default:
		allowed = orderedOps
	}
	if !allowed[ok] {
		c.problem(CodeUnsupportedOperator, where, fmt.Sprintf("operator %s is not defined for %s%s", con.Operator, con.LeftOperand, operandHint(lk)))
		return n
	}
	if err := n.parseRight(con.RightOperand); err != nil {
		c.problem(CodeBadRightOperand, where, fmt.Sprintf("rightOperand of %s: %v", con.LeftOperand, err))
	}
	return n
}

func operandHint(lk leftKind) string {
	switch lk {
	case lSpatialArea:
		return " with a GeoJSON area (use isPartOf)"
	case lSpatialPlace:
		return " with named places (use eq, neq, isPartOf, isAnyOf, isAllOf, isNoneOf)"
	case lPurpose, lRecipient, lRole, lFederation:
		return " (use eq, neq, isA, isPartOf, hasPart, isAnyOf, isAllOf, isNoneOf)"
	}
	return " (use eq, neq, lt, lteq, gt, gteq)"
}

func (n *cnode) parseRight(o Operand) error {
	if n.left == lSpatialArea {
		return n.parseArea(o.Geometry)
	}
	if o.Geometry != nil {
		return fmt.Errorf("a GeoJSON value is only understood for spatial")
	}
	if len(o.Values) == 0 {
		return fmt.Errorf("no value")
	}
	if singleOps[n.op] && len(o.Values) != 1 {
		return fmt.Errorf("operator %s needs exactly one value, got %d", opName(n.op), len(o.Values))
	}
	switch n.left {
	case lPurpose, lRecipient, lRole, lFederation, lSpatialPlace:
		for _, l := range o.Values {
			if l.Type != "" && l.Type != "@id" && !isXSD(l.Type, "string") && !isXSD(l.Type, "anyURI") {
				return fmt.Errorf("%q typed %s is not a name or IRI", l.Value, l.Type)
			}
			if l.Value == "" {
				return fmt.Errorf("empty value")
			}
			if n.left == lRole && l.Value != RoleAgency && l.Value != RoleResearcher {
				return fmt.Errorf("role %q is not %s or %s", l.Value, RoleAgency, RoleResearcher)
			}
			n.strs = append(n.strs, l.Value)
		}
		return nil
	}
	l := o.Values[0]
	switch n.left {
	case lDateTime:
		if l.Type != "" && !isXSD(l.Type, "dateTime") && !isXSD(l.Type, "dateTimeStamp") {
			return fmt.Errorf("%q typed %s is not an xsd:dateTime", l.Value, l.Type)
		}
		t, err := parseDateTime(l.Value)
		if err != nil {
			return err
		}
		n.t = t
	case lElapsedTime:
		if l.Type != "" && !isXSD(l.Type, "duration") && !isXSD(l.Type, "dayTimeDuration") && !isXSD(l.Type, "yearMonthDuration") {
			return fmt.Errorf("%q typed %s is not an xsd:duration", l.Value, l.Type)
		}
		d, err := parseDuration(l.Value)
		if err != nil {
			return err
		}
		n.dur = d
	case lCount, lPayAmount:
		if l.Type == "@id" || l.Type == "boolean" {
			return fmt.Errorf("%q is not a number", l.Value)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(l.Value), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%q is not a number", l.Value)
		}
		if n.left == lCount && (f < 0 || f != math.Trunc(f)) {
			return fmt.Errorf("count %q is not a whole number of transfers", l.Value)
		}
		n.num = f
	}
	return nil
}

func (n *cnode) parseArea(g orb.Geometry) error {
	switch t := g.(type) {
	case orb.Polygon:
		n.area = orb.MultiPolygon{t}
	case orb.MultiPolygon:
		n.area = t
	default:
		return fmt.Errorf("a spatial area must be a GeoJSON Polygon or MultiPolygon, got %s", geomName(g))
	}
	if len(n.area) == 0 {
		return fmt.Errorf("the area has no polygons")
	}
	for _, p := range n.area {
		if len(p) == 0 {
			return fmt.Errorf("a polygon has no rings")
		}
		for _, r := range p {
			if len(r) < 4 {
				return fmt.Errorf("a polygon ring needs at least 4 positions, got %d", len(r))
			}
			for _, pt := range r {
				if !validLonLat(pt) {
					return fmt.Errorf("position %v is not a longitude/latitude", [2]float64(pt))
				}
			}
		}
	}
	n.bound = n.area.Bound()
	return nil
}

func validLonLat(p orb.Point) bool {
	return p[0] >= -180 && p[0] <= 180 && p[1] >= -90 && p[1] <= 90
}

func geomName(g orb.Geometry) string {
	if g == nil {
		return "nothing"
	}
	return g.GeoJSONType()
}

func isXSD(typ, name string) bool {
	return typ == "xsd:"+name || typ == "http://www.w3.org/2001/XMLSchema#"+name
}

// parseDateTime accepts RFC 3339 with or without seconds (the DSP examples
// write "2023-12-31T06:00Z"). A value without a time zone is refused: it would
// mean a different instant on each node.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time with a time zone (e.g. 2023-12-31T23:59:59Z)", s)
}

func opName(o opKind) string {
	for k, v := range opKinds {
		if v == o {
			return string(k)
		}
	}
	return "?"
}
