package policy

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
)

// PolicyType is the ODRL policy subclass.
type PolicyType string

// The ODRL policy subclasses mimnode reads and writes. A document typed plain
// "Policy" (or untyped) is read as a Set, the ODRL default.
const (
	TypeSet       PolicyType = "Set"
	TypeOffer     PolicyType = "Offer"
	TypeAgreement PolicyType = "Agreement"
)

// Action is an ODRL action, written as its compact term ("use", "read").
type Action string

// Actions a permission or prohibition may name. ODRL defines read, distribute,
// aggregate, derive and delete as included in use, so a permission or
// prohibition of use covers all of them.
const (
	ActionUse        Action = "use"
	ActionRead       Action = "read"
	ActionDistribute Action = "distribute"
	ActionAggregate  Action = "aggregate"
	ActionDerive     Action = "derive"
	ActionDelete     Action = "delete"
)

// Duty actions: what a duty or obligation may require of the consumer.
const (
	// ActionAttribute: credit the provider (and licence) wherever the data is used.
	// The engine cannot observe it, so it is always satisfiable and reported.
	ActionAttribute Action = "attribute"
	// ActionInform: tell the provider about the use. Like attribute, reported only.
	ActionInform Action = "inform"
	// ActionObtainConsent: the request must carry a valid consent record (MIM4)
	// covering its purpose. Checked in the transfer scope.
	ActionObtainConsent Action = "obtainConsent"
	// ActionCompensate: pay. Satisfiable when the duty's constraints (normally
	// payAmount) hold for the request.
	ActionCompensate Action = "compensate"
)

// LeftOperand names what a constraint is about.
type LeftOperand string

// Left operands the evaluator understands. Any other denies. role and
// federation are mimnode terms (namespace MimNS); the rest are ODRL's.
const (
	LeftPurpose     LeftOperand = "purpose"
	LeftDateTime    LeftOperand = "dateTime"
	LeftElapsedTime LeftOperand = "elapsedTime"
	LeftSpatial     LeftOperand = "spatial"
	LeftCount       LeftOperand = "count"
	LeftRecipient   LeftOperand = "recipient"
	LeftRole        LeftOperand = "role"
	LeftFederation  LeftOperand = "federation"
	LeftPayAmount   LeftOperand = "payAmount"
)

// Operator is an ODRL constraint operator.
type Operator string

// Operators the evaluator understands.
const (
	OpEq       Operator = "eq"
	OpNeq      Operator = "neq"
	OpLt       Operator = "lt"
	OpLteq     Operator = "lteq"
	OpGt       Operator = "gt"
	OpGteq     Operator = "gteq"
	OpIsA      Operator = "isA"
	OpIsPartOf Operator = "isPartOf"
	OpHasPart  Operator = "hasPart"
	OpIsAnyOf  Operator = "isAnyOf"
	OpIsAllOf  Operator = "isAllOf"
	OpIsNoneOf Operator = "isNoneOf"
)

// Logic is an ODRL logical constraint operator.
type Logic string

// Logical operators. andSequence is evaluated like and: it orders how
// constraints are to be satisfied, which does not change whether they are.
const (
	LogicAnd         Logic = "and"
	LogicOr          Logic = "or"
	LogicXone        Logic = "xone"
	LogicAndSequence Logic = "andSequence"
)

// Roles a peer can have in a federation (DESIGN.md): agencies publish and
// serve data, researchers only discover, negotiate and receive.
const (
	RoleAgency     = "agency"
	RoleResearcher = "researcher"
)

// Policy is an ODRL policy. Parse fills it from JSON-LD, Marshal writes it back.
//
// A Policy returned by Parse, Compile or a template carries a precompiled form
// that Evaluate uses. Treat such a Policy as immutable: to change one, edit a
// Clone and call Compile on it; otherwise Evaluate keeps using the old rules.
type Policy struct {
	ID       string // @id (uid)
	Type     PolicyType
	Profile  []string
	Target   string // the asset (dataset) the policy is about
	Assigner string // the party granting (provider peer ID in mimnode)
	Assignee string // the party granted (consumer peer ID, in agreements)
	Licence  string // dct:license IRI, shown with attribution duties

	Permissions  []Rule
	Prohibitions []Rule
	Obligations  []Rule // policy-level duties: all must be satisfiable for any permit

	// Extra holds policy-level properties outside the model (e.g. DSP's
	// "timestamp"), kept verbatim so that reading and writing a policy from
	// another tool loses nothing. They do not take part in evaluation.
	Extra map[string]json.RawMessage

	prog *program
}

// Rule is an ODRL permission, prohibition, obligation or duty.
type Rule struct {
	ID          string
	Action      Action
	Target      string
	Assigner    string
	Assignee    string // if set, the rule applies only to requests from this peer
	Constraints []Constraint
	Duties      []Rule // only on permissions

	// Refinement holds action refinements. They are read and written but not
	// evaluated, so a policy with any is not understood (and denies).
	Refinement []Constraint
	// Extra holds rule properties outside the model (remedy, consequence, ...).
	// Each one makes the policy not understood: it may change the rule's meaning.
	Extra map[string]json.RawMessage
}

// Constraint is either atomic (LeftOperand, Operator, RightOperand) or logical
// (Logic over Constraints).
type Constraint struct {
	ID string

	Logic       Logic
	Constraints []Constraint

	LeftOperand  LeftOperand
	Operator     Operator
	RightOperand Operand
	Unit         string // e.g. a currency for payAmount
	DataType     string // dataType, kept; the evaluator reads the operand itself

	// Extra holds constraint properties outside the model
	// (rightOperandReference, status, ...); each makes the policy not understood.
	Extra map[string]json.RawMessage
}

// IsLogical reports whether c is a logical constraint.
func (c Constraint) IsLogical() bool { return c.Logic != "" }

// Operand is a constraint's rightOperand: one or more literals, or a GeoJSON area.
type Operand struct {
	Values   []Literal
	Geometry orb.Geometry
}

// Literal is one rightOperand value in its lexical form.
type Literal struct {
	Value string
	// Type is "" for a plain JSON string, "@id" for an IRI reference
	// ({"@id": ...}), "number" and "boolean" for JSON numbers and booleans,
	// otherwise the @type of a typed value ("xsd:dateTime", "xsd:duration").
	Type string
}

// Lit returns plain string literals, e.g. Lit("research", "education").
func Lit(values ...string) Operand {
	o := Operand{Values: make([]Literal, len(values))}
	for i, v := range values {
		o.Values[i] = Literal{Value: v}
	}
	return o
}

// Num returns a numeric operand.
func Num(n float64) Operand {
	return Operand{Values: []Literal{{Value: strconv.FormatFloat(n, 'f', -1, 64), Type: "number"}}}
}

// DateTimeOp returns an xsd:dateTime operand.
func DateTimeOp(t time.Time) Operand {
	return Operand{Values: []Literal{{Value: t.UTC().Format(time.RFC3339Nano), Type: "xsd:dateTime"}}}
}

// DurationOp returns an xsd:duration operand from an ISO 8601 duration such as "P30D".
func DurationOp(iso string) Operand {
	return Operand{Values: []Literal{{Value: iso, Type: "xsd:duration"}}}
}

// Area returns a GeoJSON area operand for the spatial left operand.
func Area(g orb.Geometry) Operand { return Operand{Geometry: g} }

// Atomic builds an atomic constraint.
func Atomic(left LeftOperand, op Operator, right Operand) Constraint {
	return Constraint{LeftOperand: left, Operator: op, RightOperand: right}
}

// Logical builds a logical constraint.
func Logical(l Logic, cs ...Constraint) Constraint {
	return Constraint{Logic: l, Constraints: cs}
}

// Clone returns a deep copy of p without its precompiled form, so it can be
// edited and compiled again.
func (p Policy) Clone() Policy {
	q := p
	q.prog = nil
	q.Profile = append([]string(nil), p.Profile...)
	q.Permissions = cloneRules(p.Permissions)
	q.Prohibitions = cloneRules(p.Prohibitions)
	q.Obligations = cloneRules(p.Obligations)
	q.Extra = cloneExtra(p.Extra)
	return q
}

func cloneRules(rs []Rule) []Rule {
	if rs == nil {
		return nil
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = r
		out[i].Constraints = cloneConstraints(r.Constraints)
		out[i].Refinement = cloneConstraints(r.Refinement)
		out[i].Duties = cloneRules(r.Duties)
		out[i].Extra = cloneExtra(r.Extra)
	}
	return out
}

func cloneConstraints(cs []Constraint) []Constraint {
	if cs == nil {
		return nil
	}
	out := make([]Constraint, len(cs))
	for i, c := range cs {
		out[i] = c
		out[i].Constraints = cloneConstraints(c.Constraints)
		out[i].RightOperand.Values = append([]Literal(nil), c.RightOperand.Values...)
		if c.RightOperand.Geometry != nil {
			out[i].RightOperand.Geometry = orb.Clone(c.RightOperand.Geometry)
		}
		out[i].Extra = cloneExtra(c.Extra)
	}
	return out
}

func cloneExtra(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = append(json.RawMessage(nil), v...)
	}
	return out
}

// Scope is the moment at which a policy is evaluated. Each left operand is
// checked only where the request can know its value; elsewhere it is
// "deferred": it does not deny now and is checked in a later scope.
type Scope int

const (
	// ScopeCatalog: may this peer see the offer? Checks who the peer is
	// (recipient, role, federation) and the date.
	ScopeCatalog Scope = iota + 1
	// ScopeNegotiation: may this peer get an agreement? Adds purpose,
	// spatial and payAmount.
	ScopeNegotiation
	// ScopeTransfer: may this transfer happen now, given the usage so far?
	// Checks everything, including elapsedTime, count and consent.
	ScopeTransfer
)

func (s Scope) String() string {
	switch s {
	case ScopeCatalog:
		return "catalog"
	case ScopeNegotiation:
		return "negotiation"
	case ScopeTransfer:
		return "transfer"
	}
	return "scope(" + strconv.Itoa(int(s)) + ")"
}

// Request is what a peer asks for, with everything the evaluator may need to know.
type Request struct {
	Now    time.Time // the evaluation time; the evaluator never reads a clock
	Action Action    // empty is allowed in the catalog scope only: "any use"

	PeerID      string   // the requesting peer (recipient)
	Role        string   // RoleAgency or RoleResearcher
	Federations []string // federations the peer is a member of
	Purpose     string

	// Location is where the data will be used (GeoJSON geometry, EPSG:4326),
	// checked against spatial areas. Places names the places that contain it
	// (e.g. "urn:place:nl-amsterdam", "EU"), checked against named places.
	Location orb.Geometry
	Places   []string

	PayAmount float64
	Currency  string // compared with a payAmount constraint's unit when it has one

	Usage    Usage
	Consents []Consent
}

// Usage is what has happened under an agreement so far.
type Usage struct {
	// Count is the number of transfers already made. A count constraint is
	// checked against Count+1: the transfer being asked for is counted.
	Count int
	// AgreementStart is when the agreement took effect; elapsedTime runs from it.
	AgreementStart time.Time
}

// Consent is a data subject's consent record (MIM4) carried by a request.
type Consent struct {
	ID        string
	Purposes  []string  // purposes consented to
	Given     time.Time // must not be after Request.Now
	Expires   time.Time // zero: does not expire
	Withdrawn bool
}

// IsIRI reports whether s is an absolute IRI, as policy, target and licence
// identifiers are: a scheme and then a host (a URL) or an opaque part (a
// URN), with no white space or characters IRIs exclude.
func IsIRI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Opaque != "" || u.Host != "") && !strings.ContainsAny(s, " \t\n<>\"")
}
