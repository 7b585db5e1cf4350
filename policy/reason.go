package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Code is the machine-readable kind of a Reason. The values are stable: they
// may be stored, logged and matched on by peers.
type Code string

// Reasons about single constraints.
const (
	CodeSatisfied    Code = "satisfied"
	CodeNotSatisfied Code = "not-satisfied"
	// CodeDeferred: cannot be decided in this scope; checked in a later one.
	CodeDeferred Code = "deferred"
	// CodeMissingValue: the request lacks the value the constraint is about
	// (no purpose, no location, ...). It denies: missing is never a match.
	CodeMissingValue Code = "missing-value"
	// CodeUnitMismatch: payAmount in a different currency than the constraint's unit.
	CodeUnitMismatch Code = "unit-mismatch"
)

// Reasons about rules.
const (
	CodePermissionGranted       Code = "permission-granted"
	CodeConstraintsNotSatisfied Code = "constraints-not-satisfied"
	CodeDutyNotSatisfied        Code = "duty-not-satisfied"
	CodeProhibitionApplies      Code = "prohibition-applies"
	CodeActionNotCovered        Code = "action-not-covered"
	CodeAssigneeMismatch        Code = "assignee-mismatch"
	CodeDutySatisfied           Code = "duty-satisfied"
	// CodeDutyPromised: a duty the engine cannot observe (attribute, inform,
	// delete); the consumer takes it on with the agreement.
	CodeDutyPromised   Code = "duty-promised"
	CodeConsentMissing Code = "consent-missing"
	CodeNoPermission   Code = "no-permission"
)

// Reasons about the request.
const (
	CodeMissingAction        Code = "missing-action"
	CodeUnknownRequestAction Code = "unknown-request-action"
	CodeUnknownScope         Code = "unknown-scope"
)

// Reasons about the policy: things the evaluator does not understand. Any one
// of them denies every request (and Validate reports it).
const (
	CodeUnknownLeftOperand  Code = "unknown-left-operand"
	CodeUnknownOperator     Code = "unknown-operator"
	CodeUnknownAction       Code = "unknown-action"
	CodeUnsupportedOperator Code = "unsupported-operator"
	CodeBadRightOperand     Code = "bad-right-operand"
	CodeUnsupportedFeature  Code = "unsupported-feature"
)

// codeIdx numbers the codes for compact storage in a Decision; codeTable
// maps back. The order is internal; only the Code strings are stable.
type codeIdx uint8

const (
	cSatisfied codeIdx = iota
	cNotSatisfied
	cDeferred
	cMissingValue
	cUnitMismatch
	cPermissionGranted
	cConstraintsNotSatisfied
	cDutyNotSatisfied
	cProhibitionApplies
	cActionNotCovered
	cAssigneeMismatch
	cDutySatisfied
	cDutyPromised
	cConsentMissing
	cNoPermission
	cMissingAction
	cUnknownRequestAction
	cUnknownScope
	cUnknownLeftOperand
	cUnknownOperator
	cUnknownAction
	cUnsupportedOperator
	cBadRightOperand
	cUnsupportedFeature
	cNotConsumer
	cOutsideValidity
)

var codeTable = [...]Code{
	cSatisfied: CodeSatisfied, cNotSatisfied: CodeNotSatisfied, cDeferred: CodeDeferred,
	cMissingValue: CodeMissingValue, cUnitMismatch: CodeUnitMismatch,
	cPermissionGranted: CodePermissionGranted, cConstraintsNotSatisfied: CodeConstraintsNotSatisfied,
	cDutyNotSatisfied: CodeDutyNotSatisfied, cProhibitionApplies: CodeProhibitionApplies,
	cActionNotCovered: CodeActionNotCovered, cAssigneeMismatch: CodeAssigneeMismatch,
	cDutySatisfied: CodeDutySatisfied, cDutyPromised: CodeDutyPromised, cConsentMissing: CodeConsentMissing,
	cNoPermission: CodeNoPermission, cMissingAction: CodeMissingAction,
	cUnknownRequestAction: CodeUnknownRequestAction, cUnknownScope: CodeUnknownScope,
	cUnknownLeftOperand: CodeUnknownLeftOperand, cUnknownOperator: CodeUnknownOperator,
	cUnknownAction: CodeUnknownAction, cUnsupportedOperator: CodeUnsupportedOperator,
	cBadRightOperand: CodeBadRightOperand, cUnsupportedFeature: CodeUnsupportedFeature,
	cNotConsumer: CodeNotConsumer, cOutsideValidity: CodeOutsideValidity,
}

func codeIndex(c Code) codeIdx {
	for i, x := range codeTable {
		if x == c {
			return codeIdx(i)
		}
	}
	panic("policy: code " + string(c) + " missing from codeTable") // a bug in this package
}

// Reasons returns every reason, in evaluation order: the request, then
// obligations, prohibitions and permissions, each rule's constraints before
// the rule itself.
func (d Decision) Reasons() []Reason {
	recs := d.recs()
	out := make([]Reason, len(recs))
	if len(recs) == 0 {
		return out
	}
	req := d.reqCopy()
	for i, rec := range recs {
		out[i] = d.reason(rec, req)
	}
	return out
}

// reqCopy returns the request on the heap for Reasons to point at: d is a
// copy that ends with the method call.
func (d *Decision) reqCopy() *Request {
	req := new(Request)
	*req = d.req
	return req
}

func (d *Decision) reason(rec reasonRec, req *Request) Reason {
	r := Reason{Code: codeTable[rec.code], Result: rec.result, Denies: rec.denies, scope: d.Scope, req: req}
	prog := d.prog
	switch rec.kind {
	case refRule:
		r.rule = prog.rules[rec.ref]
		r.Rule = r.rule.name
	case refNode:
		r.node = prog.nodes[rec.ref]
		r.rule = r.node.rule
		r.Rule, r.Path = r.rule.name, r.node.path
	case refProblem:
		r.prob = &prog.problems[rec.ref]
		r.Rule = r.prob.where
	case refExtra:
		r.prob = &d.extra[rec.ref]
	}
	return r
}

// addExtra appends a deny reason decided outside the policy (by the
// agreement around it). The slices are clipped first, so that appending
// copies them rather than write into spare room a copy of d may share.
func (d *Decision) addExtra(code Code, text string) {
	d.Permit = false
	d.extra = append(slices.Clip(d.extra), problem{code: code, text: text})
	d.more = slices.Clip(d.more)
	d.add(reasonRec{code: codeIndex(code), result: False, denies: true, kind: refExtra, ref: int32(len(d.extra) - 1)})
}

// Reason explains one step of a decision.
type Reason struct {
	Code Code
	// Rule names the rule ("permission[0]", "permission[0].duty[1]"), or the
	// policy part a problem is in; empty for reasons about the request.
	Rule string
	// Path names the constraint within the rule ("constraint[1].or[0]");
	// empty for reasons about a whole rule.
	Path string
	// Result is the constraint's value, or for a rule: whether the
	// permission is granted, the prohibition applies, the duty is satisfiable.
	Result Result
	// Denies marks the reasons that together explain a deny.
	Denies bool

	scope Scope
	req   *Request
	rule  *crule
	node  *cnode
	prob  *problem
}

// Where is Rule and Path joined: "permission[0].constraint[1]".
func (r Reason) Where() string {
	switch {
	case r.Rule == "":
		return "request"
	case r.Path == "":
		return r.Rule
	}
	return r.Rule + "." + r.Path
}

// String is "where: text [code]".
func (r Reason) String() string {
	return r.Where() + ": " + r.Text() + " [" + string(r.Code) + "]"
}

// Text says in words what was decided and why. It is built on demand so that
// Evaluate itself does not format strings.
func (r Reason) Text() string {
	if r.prob != nil {
		return r.prob.text
	}
	if r.node != nil {
		return r.constraintText()
	}
	switch r.Code {
	case CodeUnknownScope:
		return fmt.Sprintf("scope %v is not catalog, negotiation or transfer", r.scope)
	case CodeMissingAction:
		return "the request names no action"
	case CodeUnknownRequestAction:
		return fmt.Sprintf("requested action %q is not one of use, read, distribute, aggregate, derive, delete", r.req.Action)
	case CodeNoPermission:
		return fmt.Sprintf("no permission grants %s", actionWords(r.req.Action))
	}
	if r.rule == nil {
		return string(r.Code)
	}
	a := r.rule.action
	switch r.Code {
	case CodeActionNotCovered:
		return fmt.Sprintf("the rule is about %s, which does not cover %s", a, actionWords(r.req.Action))
	case CodeAssigneeMismatch:
		return fmt.Sprintf("the rule is for %s, not for %s", r.assignee(), orNone(r.req.PeerID))
	case CodePermissionGranted:
		if r.Result == Deferred {
			return fmt.Sprintf("may %s, subject to checks in a later scope", a)
		}
		return fmt.Sprintf("may %s", a)
	case CodeProhibitionApplies:
		return fmt.Sprintf("must not %s: the prohibition applies and wins over any permission", a)
	case CodeDeferred:
		if r.rule.kind == kindProhibition {
			return fmt.Sprintf("prohibition of %s may apply; decided in a later scope", a)
		}
		if a == ActionObtainConsent && r.scope != ScopeTransfer {
			return "consent is checked when data is transferred"
		}
		return fmt.Sprintf("duty to %s is checked in a later scope", a)
	case CodeConstraintsNotSatisfied:
		switch r.rule.kind {
		case kindProhibition:
			return fmt.Sprintf("prohibition of %s does not apply: its constraints do not hold", a)
		case kindPermission:
			return fmt.Sprintf("permission to %s not granted: its constraints do not hold", a)
		}
		return fmt.Sprintf("duty to %s cannot be satisfied: its constraints do not hold", a)
	case CodeDutyNotSatisfied:
		return fmt.Sprintf("permission to %s not granted: a duty cannot be satisfied", a)
	case CodeDutySatisfied:
		return fmt.Sprintf("duty to %s is satisfied", a)
	case CodeDutyPromised:
		return fmt.Sprintf("the consumer must %s (taken on with the agreement)", a)
	case CodeConsentMissing:
		if r.req.Purpose == "" {
			return "consent required, but the request states no purpose"
		}
		return fmt.Sprintf("no valid consent record covers purpose %q at %s", r.req.Purpose, r.req.Now.UTC().Format(time.RFC3339))
	}
	return string(r.Code)
}

func (r Reason) assignee() string {
	if r.rule.assignee != "" {
		return r.rule.assignee
	}
	return "the policy's assignee"
}

func orNone(s string) string {
	if s == "" {
		return "an unnamed peer"
	}
	return s
}

func actionWords(a Action) string {
	if a == "" {
		return "any action"
	}
	return string(a)
}

func (r Reason) constraintText() string {
	c := r.node.src
	head := constraintWords(c)
	switch r.Code {
	case CodeDeferred:
		if r.node.logic == "" {
			return head + ": checked in a later scope (not known at " + r.scope.String() + ")"
		}
		return head + ": not decided yet"
	case CodeMissingValue:
		return head + ": not satisfied, the request has no " + r.missingWhat()
	case CodeUnitMismatch:
		return fmt.Sprintf("%s: not satisfied, paid in %s, not %s", head, orNone(r.req.Currency), c.Unit)
	}
	verdict := "satisfied"
	if r.Result == False {
		verdict = "not satisfied"
	}
	if r.node.logic != "" {
		return head + ": " + verdict
	}
	return head + ": " + verdict + " (" + r.gotWords() + ")"
}

func (r Reason) missingWhat() string {
	switch r.node.left {
	case lPurpose:
		return "purpose"
	case lRecipient:
		return "peer ID"
	case lRole:
		return "role"
	case lSpatialArea:
		return "location"
	case lSpatialPlace:
		return "named place"
	case lDateTime:
		return "time"
	case lElapsedTime:
		return "agreement start time"
	}
	return "value"
}

// gotWords describes the request's side of a constraint.
func (r Reason) gotWords() string {
	q := r.req
	switch r.node.left {
	case lPurpose:
		return "purpose: " + q.Purpose
	case lRecipient:
		return "recipient: " + q.PeerID
	case lRole:
		return "role: " + q.Role
	case lFederation:
		if len(q.Federations) == 0 {
			return "member of no federation"
		}
		return "federations: " + strings.Join(q.Federations, ", ")
	case lSpatialPlace:
		return "places: " + strings.Join(q.Places, ", ")
	case lSpatialArea:
		return "location: " + geomName(q.Location)
	case lDateTime:
		return "now: " + q.Now.UTC().Format(time.RFC3339)
	case lElapsedTime:
		return fmt.Sprintf("agreement started %s, limit ends %s, now %s",
			q.Usage.AgreementStart.UTC().Format(time.RFC3339),
			r.node.dur.after(q.Usage.AgreementStart).UTC().Format(time.RFC3339),
			q.Now.UTC().Format(time.RFC3339))
	case lCount:
		return fmt.Sprintf("this would be transfer %d", q.Usage.Count+1)
	case lPayAmount:
		return "paying " + strconv.FormatFloat(q.PayAmount, 'f', -1, 64) + " " + q.Currency
	}
	return ""
}

// Why returns the reasons that explain a deny (nil for a permit).
func (d Decision) Why() []Reason {
	var out []Reason
	var req *Request
	for _, rec := range d.recs() {
		if rec.denies {
			if req == nil {
				req = d.reqCopy()
			}
			out = append(out, d.reason(rec, req))
		}
	}
	return out
}

// String explains the decision in a few lines: the verdict, then the
// reasons that caused a deny, or the permissions that granted a permit.
func (d Decision) String() string {
	var b strings.Builder
	verdict := "deny"
	if d.Permit {
		verdict = "permit"
	}
	fmt.Fprintf(&b, "%s %s (%s scope)\n", verdict, actionWords(d.Action), d.Scope)
	for _, r := range d.Reasons() {
		if r.Denies || (d.Permit && (r.Code == CodePermissionGranted || r.Code == CodeDutyPromised || r.Result == Deferred && r.Path == "")) {
			fmt.Fprintf(&b, "  %s\n", r)
		}
	}
	return b.String()
}

// leftWords names a left operand in a sentence.
var leftWords = map[LeftOperand]string{
	LeftPurpose:     "the purpose",
	LeftDateTime:    "the time of use",
	LeftElapsedTime: "the time since the agreement started",
	LeftSpatial:     "the place of use",
	LeftCount:       "the number of transfers",
	LeftRecipient:   "the recipient",
	LeftRole:        "the recipient's role",
	LeftFederation:  "the recipient's federations",
	LeftPayAmount:   "the amount paid",
}

// constraintWords says a constraint in words, e.g. "the purpose is one of
// research, education". Terms the evaluator does not know are quoted as
// written, never guessed at.
func constraintWords(c *Constraint) string {
	if c.Logic != "" {
		parts := make([]string, len(c.Constraints))
		for i := range c.Constraints {
			parts[i] = constraintWords(&c.Constraints[i])
		}
		lead := map[Logic]string{LogicAnd: "all of", LogicOr: "at least one of", LogicXone: "exactly one of", LogicAndSequence: "all of, in this order"}[c.Logic]
		if lead == "" {
			lead = fmt.Sprintf("%q of", c.Logic)
		}
		return lead + " (" + strings.Join(parts, "; ") + ")"
	}
	left, ok := leftWords[c.LeftOperand]
	if !ok {
		left = fmt.Sprintf("unknown leftOperand %q", c.LeftOperand)
	}
	right := operandWords(c.RightOperand)
	if c.LeftOperand == LeftElapsedTime && len(c.RightOperand.Values) == 1 {
		if d, err := parseDuration(c.RightOperand.Values[0].Value); err == nil {
			right = d.words() + " (" + d.text + ")"
		}
	}
	if c.Unit != "" {
		right += " " + c.Unit
	}
	temporal := c.LeftOperand == LeftDateTime
	var rel string
	switch c.Operator {
	case OpEq:
		rel = "is"
		if c.LeftOperand == LeftFederation || c.LeftOperand == LeftSpatial {
			rel = "include"
		}
	case OpNeq:
		rel = "is not"
		if c.LeftOperand == LeftFederation || c.LeftOperand == LeftSpatial {
			rel = "do not include"
		}
	case OpLt:
		rel = pickStr(temporal, "is before", "is less than")
	case OpLteq:
		rel = pickStr(temporal, "is at or before", "is at most")
	case OpGt:
		rel = pickStr(temporal, "is after", "is more than")
	case OpGteq:
		rel = pickStr(temporal, "is at or after", "is at least")
	case OpIsA:
		rel = "is a"
	case OpIsPartOf:
		rel = "is part of"
		if c.LeftOperand == LeftSpatial {
			rel = "is within"
		}
	case OpHasPart:
		rel = "includes"
	case OpIsAnyOf:
		rel = "is one of"
	case OpIsAllOf:
		rel = "includes all of"
	case OpIsNoneOf:
		rel = "is none of"
	default:
		rel = fmt.Sprintf("(unknown operator %q)", c.Operator)
	}
	if c.LeftOperand == LeftElapsedTime && c.Operator == OpLteq {
		return left + " is at most " + right
	}
	return left + " " + rel + " " + right
}

func pickStr(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func operandWords(o Operand) string {
	if o.Geometry != nil {
		b := o.Geometry.Bound()
		return fmt.Sprintf("a %s area (bounding box %.4f,%.4f to %.4f,%.4f)", geomName(o.Geometry), b.Min[0], b.Min[1], b.Max[0], b.Max[1])
	}
	vals := make([]string, len(o.Values))
	for i, l := range o.Values {
		vals[i] = l.Value
	}
	return strings.Join(vals, ", ")
}

// ParseScope reads "catalog", "negotiation" or "transfer".
func ParseScope(s string) (Scope, error) {
	for sc := ScopeCatalog; sc <= ScopeTransfer; sc++ {
		if sc.String() == s {
			return sc, nil
		}
	}
	return 0, fmt.Errorf("policy: scope %q is not catalog, negotiation or transfer", s)
}

// MarshalText writes the scope's name.
func (s Scope) MarshalText() ([]byte, error) {
	if s < ScopeCatalog || s > ScopeTransfer {
		return nil, fmt.Errorf("policy: cannot encode %v", s)
	}
	return []byte(s.String()), nil
}

// MarshalText writes "true", "false" or "deferred".
func (r Result) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

type reasonJSON struct {
	Code   Code   `json:"code"`
	Where  string `json:"where"`
	Result Result `json:"result"`
	Denies bool   `json:"denies,omitempty"`
	Text   string `json:"text"`
}

// MarshalJSON writes the decision for the API and the audit log:
// {"permit", "scope", "action", "reasons": [{"code", "where", "result",
// "denies", "text"}]}.
func (d Decision) MarshalJSON() ([]byte, error) {
	rs := d.Reasons()
	out := struct {
		Permit  bool         `json:"permit"`
		Scope   string       `json:"scope"`
		Action  Action       `json:"action"`
		Reasons []reasonJSON `json:"reasons"`
	}{Permit: d.Permit, Scope: d.Scope.String(), Action: d.Action, Reasons: make([]reasonJSON, len(rs))}
	for i, r := range rs {
		out.Reasons[i] = reasonJSON{Code: r.Code, Where: r.Where(), Result: r.Result, Denies: r.Denies, Text: r.Text()}
	}
	return json.Marshal(out)
}

// JSONForms returns what MarshalJSON and SortedJSON return, making each
// reason's texts once for both: a provider stores a decision in the one
// form and logs it in the other. Decisions with texts json.Marshal would
// escape take the two methods.
func (d Decision) JSONForms() (api, sorted []byte, err error) {
	rs := d.Reasons()
	type texts struct{ code, where, result, text string }
	ts := make([]texts, len(rs))
	size := 128
	for i, r := range rs {
		ts[i] = texts{string(r.Code), r.Where(), r.Result.String(), r.Text()}
		size += 64 + len(ts[i].code) + len(ts[i].where) + len(ts[i].result) + len(ts[i].text)
	}
	buf := make([]byte, 0, 2*size)
	scope := d.Scope.String()
	api = strconv.AppendBool(append(buf, `{"permit":`...), d.Permit)
	var ok bool
	if api, ok = appendPlainString(append(api, `,"scope":`...), scope); !ok {
		return d.slowForms()
	}
	if api, ok = appendPlainString(append(api, `,"action":`...), string(d.Action)); !ok {
		return d.slowForms()
	}
	api = append(api, `,"reasons":[`...)
	for i, t := range ts {
		if i > 0 {
			api = append(api, ',')
		}
		for _, m := range [...]struct{ key, val string }{{`{"code":`, t.code}, {`,"where":`, t.where}, {`,"result":`, t.result}} {
			if api, ok = appendPlainString(append(api, m.key...), m.val); !ok {
				return d.slowForms()
			}
		}
		if rs[i].Denies {
			api = append(api, `,"denies":true`...)
		}
		if api, ok = appendPlainString(append(api, `,"text":`...), t.text); !ok {
			return d.slowForms()
		}
		api = append(api, '}')
	}
	api = append(api, ']', '}')
	// The same strings, now known to be plain, in sorted order, after api
	// in the same buffer (api is capped: appending to it copies).
	rest := api[len(api):]
	api = api[:len(api):len(api)]
	sorted = append(rest, `{"action":`...)
	sorted, _ = appendPlainString(sorted, string(d.Action))
	sorted = strconv.AppendBool(append(sorted, `,"permit":`...), d.Permit)
	sorted = append(sorted, `,"reasons":[`...)
	for i, t := range ts {
		if i > 0 {
			sorted = append(sorted, ',')
		}
		sorted, _ = appendPlainString(append(sorted, `{"code":`...), t.code)
		if rs[i].Denies {
			sorted = append(sorted, `,"denies":true`...)
		}
		for _, m := range [...]struct{ key, val string }{{`,"result":`, t.result}, {`,"text":`, t.text}, {`,"where":`, t.where}} {
			sorted, _ = appendPlainString(append(sorted, m.key...), m.val)
		}
		sorted = append(sorted, '}')
	}
	sorted = append(sorted, `],"scope":`...)
	sorted, _ = appendPlainString(sorted, scope)
	return api, append(sorted, '}'), nil
}

// slowForms is JSONForms by the two methods.
func (d Decision) slowForms() (api, sorted []byte, err error) {
	if api, err = d.MarshalJSON(); err != nil {
		return nil, nil, err
	}
	if sorted, err = d.SortedJSON(); err != nil {
		return nil, nil, err
	}
	return api, sorted, nil
}

// SortedJSON writes what MarshalJSON writes with every object's keys in
// sorted order: {"action", "permit", "reasons": [{"code", "denies",
// "result", "text", "where"}], "scope"}. With plain texts that is the JSON
// Canonicalization Scheme already, which the audit log hashes without
// parsing it again. A decision with a text json.Marshal would escape is
// written by MarshalJSON instead: the same members, in its order.
func (d Decision) SortedJSON() ([]byte, error) {
	rs := d.Reasons()
	b := make([]byte, 0, 128+160*len(rs))
	b = append(b, `{"action":`...)
	b, ok := appendPlainString(b, string(d.Action))
	if !ok {
		return d.MarshalJSON()
	}
	b = strconv.AppendBool(append(b, `,"permit":`...), d.Permit)
	b = append(b, `,"reasons":[`...)
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		if b, ok = appendPlainString(append(b, `{"code":`...), string(r.Code)); !ok {
			return d.MarshalJSON()
		}
		if r.Denies {
			b = append(b, `,"denies":true`...)
		}
		for _, m := range [...]struct{ key, val string }{{`,"result":`, r.Result.String()}, {`,"text":`, r.Text()}, {`,"where":`, r.Where()}} {
			if b, ok = appendPlainString(append(b, m.key...), m.val); !ok {
				return d.MarshalJSON()
			}
		}
		b = append(b, '}')
	}
	b = append(b, `],"scope":`...)
	if b, ok = appendPlainString(b, d.Scope.String()); !ok {
		return d.MarshalJSON()
	}
	return append(b, '}'), nil
}
