package policy

import (
	"fmt"
	"strconv"
	"time"

	"github.com/paulmach/orb"
)

// naive is a second evaluator written straight from the ODRL semantics and
// this package's documented rules, as plainly as possible and on the
// uncompiled Policy. It shares no evaluation code with Evaluate; the property
// test compares the two. It only needs to understand what the random
// generator produces: rectangles as areas, points as locations, durations
// "P<n>D" / "PT<n>H", RFC 3339 date-times.

type naiveVal int

const (
	nFalse naiveVal = iota
	nTrue
	nLater // cannot be known in this scope
)

type naiveResult struct {
	permit  bool
	granted map[int]bool // permission indexes granted
	applies map[int]bool // prohibition indexes that apply
}

func naiveEvaluate(p Policy, req Request, scope Scope) naiveResult {
	res := naiveResult{granted: map[int]bool{}, applies: map[int]bool{}}
	if scope != ScopeCatalog && scope != ScopeNegotiation && scope != ScopeTransfer {
		return res
	}
	// First: is every part of the policy understood? If not, deny.
	understood := true
	var visit func(r Rule, duty bool)
	visit = func(r Rule, duty bool) {
		okActions := []Action{"use", "read", "distribute", "aggregate", "derive", "delete"}
		if duty {
			okActions = []Action{"attribute", "inform", "obtainConsent", "compensate", "delete"}
		}
		if !inActions(r.Action, okActions) || len(r.Refinement) > 0 || len(r.Extra) > 0 || (r.Target != "" && r.Target != p.Target) {
			understood = false
		}
		for _, c := range r.Constraints {
			if _, ok := naiveConstraint(c, req, scope); !ok {
				understood = false
			}
		}
		for _, d := range r.Duties {
			visit(d, true)
		}
	}
	for _, r := range p.Permissions {
		visit(r, false)
	}
	for _, r := range p.Prohibitions {
		visit(r, false)
	}
	for _, r := range p.Obligations {
		visit(r, true)
	}
	if !understood {
		return res
	}
	if req.Action == "" && scope != ScopeCatalog {
		return res
	}
	if req.Action != "" && !inActions(req.Action, []Action{"use", "read", "distribute", "aggregate", "derive", "delete"}) {
		return res
	}

	forMe := func(r Rule) bool {
		who := r.Assignee
		if who == "" {
			who = p.Assignee
		}
		return who == "" || who == req.PeerID
	}
	allOf := func(cs []Constraint) naiveVal {
		sawLater := false
		for _, c := range cs {
			v, _ := naiveConstraint(c, req, scope)
			if v == nFalse {
				return nFalse
			}
			if v == nLater {
				sawLater = true
			}
		}
		if sawLater {
			return nLater
		}
		return nTrue
	}
	dutyOK := func(d Rule) bool {
		if allOf(d.Constraints) == nFalse {
			return false
		}
		if d.Action == "obtainConsent" && scope == ScopeTransfer {
			return naiveConsent(req)
		}
		return true
	}

	obligationsOK := true
	for _, o := range p.Obligations {
		obligationsOK = obligationsOK && dutyOK(o)
	}
	for i, r := range p.Prohibitions {
		covers := r.Action == "use" || (req.Action != "" && r.Action == req.Action)
		if covers && forMe(r) && allOf(r.Constraints) == nTrue {
			res.applies[i] = true
		}
	}
	for i, r := range p.Permissions {
		covers := req.Action == "" || r.Action == "use" || r.Action == req.Action
		if !covers || !forMe(r) || allOf(r.Constraints) == nFalse {
			continue
		}
		ok := true
		for _, d := range r.Duties {
			ok = ok && dutyOK(d)
		}
		if ok {
			res.granted[i] = true
		}
	}
	res.permit = obligationsOK && len(res.granted) > 0 && len(res.applies) == 0
	return res
}

func inActions(a Action, list []Action) bool {
	for _, x := range list {
		if a == x {
			return true
		}
	}
	return false
}

func naiveConsent(req Request) bool {
	if req.Purpose == "" {
		return false
	}
	for _, c := range req.Consents {
		valid := !c.Withdrawn && !c.Given.IsZero() && !c.Given.After(req.Now) && (c.Expires.IsZero() || req.Now.Before(c.Expires))
		if !valid {
			continue
		}
		for _, p := range c.Purposes {
			if p == req.Purpose {
				return true
			}
		}
	}
	return false
}

// naiveConstraint returns the constraint's value and whether it is understood.
func naiveConstraint(c Constraint, req Request, scope Scope) (naiveVal, bool) {
	if len(c.Extra) > 0 {
		return nFalse, false
	}
	if c.Logic != "" {
		if len(c.Constraints) == 0 {
			return nFalse, false
		}
		var trues, laters, falses int
		understood := true
		for _, k := range c.Constraints {
			v, ok := naiveConstraint(k, req, scope)
			understood = understood && ok
			switch v {
			case nTrue:
				trues++
			case nLater:
				laters++
			default:
				falses++
			}
		}
		switch c.Logic {
		case "and", "andSequence":
			if falses > 0 {
				return nFalse, understood
			}
			if laters > 0 {
				return nLater, understood
			}
			return nTrue, understood
		case "or":
			if trues > 0 {
				return nTrue, understood
			}
			if laters > 0 {
				return nLater, understood
			}
			return nFalse, understood
		case "xone":
			// Exactly one true, and not more. With undecided ones it is
			// settled only if it is already impossible.
			if trues > 1 || trues+laters == 0 {
				return nFalse, understood
			}
			if trues == 1 && laters == 0 {
				return nTrue, understood
			}
			return nLater, understood
		}
		return nFalse, false
	}

	// Which scopes know which operand.
	knownIn := map[LeftOperand][]Scope{
		"recipient": {1, 2, 3}, "role": {1, 2, 3}, "federation": {1, 2, 3}, "dateTime": {1, 2, 3},
		"purpose": {2, 3}, "spatial": {2, 3}, "payAmount": {2, 3},
		"elapsedTime": {3}, "count": {3},
	}
	scopes, known := knownIn[c.LeftOperand]
	if !known {
		return nFalse, false
	}
	if c.Unit != "" && c.LeftOperand != "payAmount" {
		return nFalse, false
	}
	setOps := []Operator{"eq", "neq", "isA", "isPartOf", "hasPart", "isAnyOf", "isAllOf", "isNoneOf"}
	numOps := []Operator{"eq", "neq", "lt", "lteq", "gt", "gteq"}
	single := map[Operator]bool{"eq": true, "neq": true, "isA": true, "lt": true, "lteq": true, "gt": true, "gteq": true}
	vals := c.RightOperand.Values
	strs := []string{}
	for _, v := range vals {
		strs = append(strs, v.Value)
	}

	// Parse the right operand first: a malformed one is not understood in
	// any scope.
	var (
		want     func() naiveVal
		opsOK    []Operator
		goodVals = len(vals) > 0 && c.RightOperand.Geometry == nil
	)
	if single[c.Operator] && len(vals) != 1 {
		goodVals = false
	}
	setWant := func(have []string, present bool) func() naiveVal {
		return func() naiveVal {
			if !present {
				return nFalse
			}
			h := map[string]bool{}
			for _, x := range have {
				h[x] = true
			}
			r := map[string]bool{}
			for _, x := range strs {
				r[x] = true
			}
			common := 0
			for x := range h {
				if r[x] {
					common++
				}
			}
			var ok bool
			switch c.Operator {
			case "eq", "isA":
				ok = h[strs[0]]
			case "neq":
				ok = !h[strs[0]]
			case "hasPart", "isAllOf":
				ok = true
				for x := range r {
					ok = ok && h[x]
				}
			case "isPartOf":
				ok = len(h) > 0 && common == len(h)
			case "isAnyOf":
				ok = common > 0
			case "isNoneOf":
				ok = common == 0
			}
			return b2v(ok)
		}
	}
	numWant := func(have float64, limit float64) naiveVal {
		var ok bool
		switch c.Operator {
		case "eq":
			ok = have == limit
		case "neq":
			ok = have != limit
		case "lt":
			ok = have < limit
		case "lteq":
			ok = have <= limit
		case "gt":
			ok = have > limit
		case "gteq":
			ok = have >= limit
		}
		return b2v(ok)
	}

	switch c.LeftOperand {
	case "purpose", "recipient", "role", "federation":
		opsOK = setOps
		for _, v := range vals {
			if v.Type != "" && v.Type != "@id" || v.Value == "" {
				goodVals = false
			}
			if c.LeftOperand == "role" && v.Value != "agency" && v.Value != "researcher" {
				goodVals = false
			}
		}
		switch c.LeftOperand {
		case "purpose":
			want = setWant([]string{req.Purpose}, req.Purpose != "")
		case "recipient":
			want = setWant([]string{req.PeerID}, req.PeerID != "")
		case "role":
			want = setWant([]string{req.Role}, req.Role != "")
		case "federation":
			want = setWant(req.Federations, true)
		}
	case "spatial":
		if c.RightOperand.Geometry != nil {
			opsOK = []Operator{"isPartOf"}
			poly, isPoly := c.RightOperand.Geometry.(orb.Polygon)
			goodVals = isPoly && len(vals) == 0
			want = func() naiveVal {
				pt, isPt := req.Location.(orb.Point)
				if !isPt {
					return nFalse
				}
				b := poly.Bound() // the generator only makes rectangles
				return b2v(pt[0] >= b.Min[0] && pt[0] <= b.Max[0] && pt[1] >= b.Min[1] && pt[1] <= b.Max[1])
			}
		} else {
			opsOK = []Operator{"eq", "neq", "isPartOf", "isAnyOf", "isAllOf", "isNoneOf"}
			for _, v := range vals {
				if v.Type != "" && v.Type != "@id" || v.Value == "" {
					goodVals = false
				}
			}
			want = func() naiveVal {
				if len(req.Places) == 0 {
					return nFalse
				}
				in := map[string]bool{}
				for _, x := range req.Places {
					in[x] = true
				}
				n := 0
				for _, x := range strs {
					if in[x] {
						n++
					}
				}
				switch c.Operator {
				case "eq":
					return b2v(in[strs[0]])
				case "neq":
					return b2v(!in[strs[0]])
				case "isPartOf", "isAnyOf":
					return b2v(n > 0)
				case "isAllOf":
					return b2v(n == len(strs))
				}
				return b2v(n == 0) // isNoneOf
			}
		}
	case "dateTime":
		opsOK = numOps
		var at time.Time
		if goodVals {
			var err error
			at, err = time.Parse(time.RFC3339, vals[0].Value)
			goodVals = err == nil && vals[0].Type != "@id"
		}
		want = func() naiveVal {
			if req.Now.IsZero() {
				return nFalse
			}
			return numWant(float64(req.Now.UnixNano()), float64(at.UnixNano()))
		}
	case "elapsedTime":
		opsOK = numOps
		var d time.Duration
		if goodVals {
			var n int
			var err error
			s := vals[0].Value
			switch {
			case len(s) > 3 && s[:2] == "PT" && s[len(s)-1] == 'H':
				n, err = strconv.Atoi(s[2 : len(s)-1])
				d = time.Duration(n) * time.Hour
			case len(s) > 2 && s[0] == 'P' && s[len(s)-1] == 'D':
				n, err = strconv.Atoi(s[1 : len(s)-1])
				d = time.Duration(n) * 24 * time.Hour
			default:
				err = fmt.Errorf("not a duration")
			}
			goodVals = err == nil && n >= 0
		}
		want = func() naiveVal {
			if req.Now.IsZero() || req.Usage.AgreementStart.IsZero() {
				return nFalse
			}
			// UTC throughout, so a day is 24 hours.
			return numWant(float64(req.Now.Sub(req.Usage.AgreementStart)), float64(d))
		}
	case "count", "payAmount":
		opsOK = numOps
		var limit float64
		if goodVals {
			var err error
			limit, err = strconv.ParseFloat(vals[0].Value, 64)
			goodVals = err == nil && vals[0].Type != "@id" && vals[0].Type != "boolean"
			if c.LeftOperand == "count" && (limit < 0 || limit != float64(int64(limit))) {
				goodVals = false
			}
		}
		want = func() naiveVal {
			if c.LeftOperand == "count" {
				return numWant(float64(req.Usage.Count+1), limit)
			}
			if c.Unit != "" && c.Unit != req.Currency {
				return nFalse
			}
			return numWant(req.PayAmount, limit)
		}
	}
	opKnown := false
	for _, o := range opsOK {
		opKnown = opKnown || o == c.Operator
	}
	if !opKnown || !goodVals {
		return nFalse, false
	}
	decidable := false
	for _, s := range scopes {
		decidable = decidable || s == scope
	}
	if !decidable {
		return nLater, true
	}
	return want(), true
}

func b2v(b bool) naiveVal {
	if b {
		return nTrue
	}
	return nFalse
}
