package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Parse reads one ODRL policy in JSON-LD compact form (ODRL or DSP context)
// and precompiles it for Evaluate.
//
// It accepts prefixed (odrl:permission) and plain terms, @id or uid, terms
// written as strings or as {"@id": ...}, and single objects where ODRL allows
// arrays. The @context is not processed: terms are read by their ODRL names,
// and an inline context that gives one of those names another meaning is
// refused rather than misread (remote context URLs are accepted as is).
//
// Parse fails only on documents it cannot read at all (ErrSyntax). Terms it
// reads but does not understand (an unknown leftOperand, say) are kept: the
// policy can be described and written back, Validate reports them, and
// Evaluate denies.
func Parse(data []byte) (Policy, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return Policy{}, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Policy{}, fmt.Errorf("%w: a policy must be a JSON object, got %s", ErrSyntax, jsonKind(v))
	}
	p, err := parsePolicy(obj)
	if err != nil {
		return Policy{}, err
	}
	p.Compile()
	return p, nil
}

// FindPolicies reads a Dataspace Protocol message, dataset or catalogue (or a
// bare policy) and returns every ODRL policy in it (offers, agreements,
// hasPolicy entries): any object typed Set, Offer, Agreement or Policy. The
// order is fixed: arrays in order, object members by sorted key.
func FindPolicies(data []byte) ([]Policy, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	var out []Policy
	if err := findPolicies(v, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func findPolicies(v any, out *[]Policy) error {
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			if err := findPolicies(x, out); err != nil {
				return err
			}
		}
	case map[string]any:
		if c, ok := t["@context"]; ok {
			if err := checkContext(c); err != nil {
				return err
			}
		}
		if isPolicyObject(t) {
			p, err := parsePolicy(t)
			if err != nil {
				return err
			}
			p.Compile()
			*out = append(*out, p)
			return nil
		}
		for _, k := range sortedKeys(t) {
			if err := findPolicies(t[k], out); err != nil {
				return err
			}
		}
	}
	return nil
}

func isPolicyObject(obj map[string]any) bool {
	for k, v := range obj {
		if normKey(k) != "@type" {
			continue
		}
		for _, x := range asList(v) {
			s, _ := x.(string)
			switch normTerm(s) {
			case "Policy", "Set", "Offer", "Agreement":
				return true
			}
		}
	}
	return false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// seen detects a property written twice under different spellings
// ("permission" and "odrl:permission").
type seen map[string]string

func (s seen) add(norm, raw string) error {
	if prev, ok := s[norm]; ok {
		return fmt.Errorf("%w: property %q given twice (as %q and %q)", ErrSyntax, norm, prev, raw)
	}
	s[norm] = raw
	return nil
}

func parsePolicy(obj map[string]any) (Policy, error) {
	p := Policy{Type: TypeSet}
	s := seen{}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		nk := normKey(k)
		if nk == "@context" {
			if err := checkContext(v); err != nil {
				return Policy{}, err
			}
			continue
		}
		if err := s.add(nk, k); err != nil {
			return Policy{}, err
		}
		var err error
		switch nk {
		case "@id":
			p.ID, err = asIRI(v, "policy @id")
		case "@type":
			p.Type, err = parsePolicyType(v)
		case "profile":
			for _, x := range asList(v) {
				var iri string
				if iri, err = asIRI(x, "profile"); err != nil {
					break
				}
				p.Profile = append(p.Profile, iri)
			}
		case "target":
			p.Target, err = asIRI(v, "target")
		case "assigner":
			p.Assigner, err = asIRI(v, "assigner")
		case "assignee":
			p.Assignee, err = asIRI(v, "assignee")
		case "license":
			p.Licence, err = asIRI(v, "dct:license")
		case "permission":
			p.Permissions, err = parseRules(v, "permission", true)
		case "prohibition":
			p.Prohibitions, err = parseRules(v, "prohibition", false)
		case "obligation":
			p.Obligations, err = parseRules(v, "obligation", false)
		default:
			if p.Extra == nil {
				p.Extra = map[string]json.RawMessage{}
			}
			p.Extra[k] = rawOf(v)
		}
		if err != nil {
			return Policy{}, err
		}
	}
	return p, nil
}

func parsePolicyType(v any) (PolicyType, error) {
	var found PolicyType
	for _, x := range asList(v) {
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("%w: policy @type must be a string, got %s", ErrSyntax, jsonKind(x))
		}
		var t PolicyType
		switch normTerm(s) {
		case "Policy", "Set":
			t = TypeSet
		case "Offer":
			t = TypeOffer
		case "Agreement":
			t = TypeAgreement
		default:
			continue // an extra type (e.g. a profile's subclass) adds nothing we read
		}
		if found != "" && found != t {
			return "", fmt.Errorf("%w: policy is typed both %s and %s", ErrSyntax, found, t)
		}
		found = t
	}
	if found == "" {
		return "", fmt.Errorf("%w: policy @type %s is not Set, Offer, Agreement or Policy", ErrSyntax, rawOf(v))
	}
	return found, nil
}

func parseRules(v any, kind string, duties bool) ([]Rule, error) {
	var out []Rule
	for i, x := range asList(v) {
		obj, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d] must be an object, got %s", ErrSyntax, kind, i, jsonKind(x))
		}
		r, err := parseRule(obj, indexed(kind, i), duties)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRule(obj map[string]any, where string, duties bool) (Rule, error) {
	var r Rule
	s := seen{}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		nk := normKey(k)
		if err := s.add(nk, k); err != nil {
			return Rule{}, fmt.Errorf("%s: %w", where, err)
		}
		var err error
		switch nk {
		case "@id":
			r.ID, err = asIRI(v, where+" @id")
		case "@type":
			// Permission / Prohibition / Duty: implied by where the rule sits.
		case "action":
			err = parseAction(v, where, &r)
		case "target":
			r.Target, err = asIRI(v, where+" target")
		case "assigner":
			r.Assigner, err = asIRI(v, where+" assigner")
		case "assignee":
			r.Assignee, err = asIRI(v, where+" assignee")
		case "constraint":
			r.Constraints, err = parseConstraints(v, where+".constraint")
		case "duty":
			if duties {
				r.Duties, err = parseRules(v, where+".duty", false)
				break
			}
			fallthrough
		default:
			if r.Extra == nil {
				r.Extra = map[string]json.RawMessage{}
			}
			r.Extra[k] = rawOf(v)
		}
		if err != nil {
			return Rule{}, err
		}
	}
	if r.Action == "" {
		return Rule{}, fmt.Errorf("%w: %s has no action", ErrSyntax, where)
	}
	return r, nil
}

func parseAction(v any, where string, r *Rule) error {
	if l, ok := v.([]any); ok {
		if len(l) != 1 {
			return fmt.Errorf("%w: %s must have exactly one action, got %d", ErrSyntax, where, len(l))
		}
		v = l[0]
	}
	switch t := v.(type) {
	case string:
		r.Action = Action(normTerm(t))
		return nil
	case map[string]any:
		// {"@id": "odrl:use"} or {"rdf:value": {"@id": "odrl:use"}, "refinement": [...]}
		for k, x := range t {
			var err error
			switch normKey(k) {
			case "@id", "rdf:value", "value", "http://www.w3.org/1999/02/22-rdf-syntax-ns#value":
				var a string
				a, err = asTerm(x, where+" action")
				r.Action = Action(a)
			case "refinement":
				r.Refinement, err = parseConstraints(x, where+".action.refinement")
			case "@type":
			default:
				err = fmt.Errorf("%w: %s action has unknown property %q", ErrSyntax, where, k)
			}
			if err != nil {
				return err
			}
		}
		if r.Action == "" {
			return fmt.Errorf("%w: %s action object names no action", ErrSyntax, where)
		}
		return nil
	}
	return fmt.Errorf("%w: %s action must be a string or object, got %s", ErrSyntax, where, jsonKind(v))
}

func parseConstraints(v any, where string) ([]Constraint, error) {
	var out []Constraint
	for i, x := range asList(v) {
		obj, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s[%d] must be an object, got %s", ErrSyntax, where, i, jsonKind(x))
		}
		c, err := parseConstraint(obj, indexed(where, i))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseConstraint(obj map[string]any, where string) (Constraint, error) {
	var c Constraint
	s := seen{}
	hasRight := false
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		nk := normKey(k)
		if err := s.add(nk, k); err != nil {
			return Constraint{}, fmt.Errorf("%s: %w", where, err)
		}
		var err error
		switch nk {
		case "@id":
			c.ID, err = asIRI(v, where+" @id")
		case "@type":
		case "leftOperand":
			var t string
			t, err = asTerm(v, where+" leftOperand")
			c.LeftOperand = LeftOperand(t)
		case "operator":
			var t string
			t, err = asTerm(v, where+" operator")
			c.Operator = Operator(t)
		case "rightOperand":
			hasRight = true
			c.RightOperand, err = parseOperand(v, where+" rightOperand")
		case "unit":
			c.Unit, err = asIRI(v, where+" unit")
		case "dataType":
			c.DataType, err = asIRI(v, where+" dataType")
		case "and", "or", "xone", "andSequence":
			if c.Logic != "" {
				return Constraint{}, fmt.Errorf("%w: %s has both %s and %s", ErrSyntax, where, c.Logic, nk)
			}
			c.Logic = Logic(nk)
			c.Constraints, err = parseConstraints(v, where+"."+nk)
			if err == nil && len(c.Constraints) == 0 {
				err = fmt.Errorf("%w: %s %s has no constraints", ErrSyntax, where, nk)
			}
		default:
			if c.Extra == nil {
				c.Extra = map[string]json.RawMessage{}
			}
			c.Extra[k] = rawOf(v)
		}
		if err != nil {
			return Constraint{}, err
		}
	}
	if c.Logic != "" {
		if c.LeftOperand != "" || c.Operator != "" || hasRight {
			return Constraint{}, fmt.Errorf("%w: %s mixes a logical %s with leftOperand/operator/rightOperand", ErrSyntax, where, c.Logic)
		}
		return c, nil
	}
	if c.LeftOperand == "" || c.Operator == "" || !hasRight {
		if len(c.Extra) > 0 && c.LeftOperand != "" && c.Operator != "" {
			return c, nil // e.g. rightOperandReference: kept, reported as not understood
		}
		return Constraint{}, fmt.Errorf("%w: %s needs leftOperand, operator and rightOperand (or and/or/xone/andSequence)", ErrSyntax, where)
	}
	return c, nil
}

var geoTypes = map[string]bool{
	"Point": true, "MultiPoint": true, "LineString": true, "MultiLineString": true,
	"Polygon": true, "MultiPolygon": true, "GeometryCollection": true,
}

func parseOperand(v any, where string) (Operand, error) {
	if obj, ok := v.(map[string]any); ok {
		if t, ok := obj["type"].(string); ok && geoTypes[t] {
			g, err := decodeGeometry(obj)
			if err != nil {
				return Operand{}, fmt.Errorf("%w: %s is not valid GeoJSON: %w", ErrSyntax, where, err)
			}
			return Operand{Geometry: g}, nil
		}
	}
	var o Operand
	for i, x := range asList(v) {
		l, err := parseLiteral(x, indexed(where, i))
		if err != nil {
			return Operand{}, err
		}
		o.Values = append(o.Values, l)
	}
	if len(o.Values) == 0 {
		return Operand{}, fmt.Errorf("%w: %s is an empty list", ErrSyntax, where)
	}
	return o, nil
}

func parseLiteral(v any, where string) (Literal, error) {
	switch t := v.(type) {
	case string:
		return Literal{Value: t}, nil
	case json.Number:
		return Literal{Value: t.String(), Type: "number"}, nil
	case bool:
		return Literal{Value: strconv.FormatBool(t), Type: "boolean"}, nil
	case map[string]any:
		var l Literal
		var hasValue, hasID bool
		for k, x := range t {
			switch normKey(k) {
			case "@value":
				hasValue = true
				switch xv := x.(type) {
				case string:
					l.Value = xv
				case json.Number:
					l.Value = xv.String()
					if l.Type == "" {
						l.Type = "number"
					}
				case bool:
					l.Value = strconv.FormatBool(xv)
					if l.Type == "" {
						l.Type = "boolean"
					}
				default:
					return Literal{}, fmt.Errorf("%w: %s @value must be a string, number or boolean", ErrSyntax, where)
				}
			case "@type":
				s, ok := x.(string)
				if !ok {
					return Literal{}, fmt.Errorf("%w: %s @type must be a string", ErrSyntax, where)
				}
				l.Type = s
			case "@id":
				s, ok := x.(string)
				if !ok {
					return Literal{}, fmt.Errorf("%w: %s @id must be a string", ErrSyntax, where)
				}
				hasID = true
				l.Value, l.Type = s, "@id"
			default:
				return Literal{}, fmt.Errorf("%w: %s has unknown property %q", ErrSyntax, where, k)
			}
		}
		if hasValue == hasID {
			return Literal{}, fmt.Errorf("%w: %s must have exactly one of @value and @id", ErrSyntax, where)
		}
		return l, nil
	}
	return Literal{}, fmt.Errorf("%w: %s must be a string, number, boolean or value object, got %s", ErrSyntax, where, jsonKind(v))
}

// Marshal writes p as ODRL JSON-LD in compact form with the ODRL context
// (plus the mim: and dct: prefixes). Output is deterministic: the same policy
// always gives the same bytes.
func Marshal(p Policy) ([]byte, error) {
	// Offers and agreements are written several times per negotiation:
	// most policies are written straight from the model (jsonwrite.go).
	if b, ok := appendPolicyDirect(make([]byte, 0, 1024), p, plainStyle); ok {
		return b, nil
	}
	m, err := policyJSON(p)
	if err != nil {
		return nil, err
	}
	// Most trees are plain (marshal.go) and written without reflection.
	if b, ok := appendPlainJSON(make([]byte, 0, 1024), m); ok {
		return b, nil
	}
	return json.Marshal(m)
}

// MarshalIndent is Marshal with indentation, for files people read.
func MarshalIndent(p Policy) ([]byte, error) {
	m, err := policyJSON(p)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(m, "", "  ")
}

func policyJSON(p Policy) (map[string]any, error) {
	m := map[string]any{}
	for k, v := range p.Extra {
		m[k] = v
	}
	m["@context"] = []any{odrlCtx, map[string]any{"mim": MimNS, "dct": dctNS}}
	t := p.Type
	if t == "" {
		t = TypeSet
	}
	m["@type"] = string(t)
	setStr(m, "@id", p.ID)
	if len(p.Profile) > 0 {
		m["profile"] = p.Profile
	}
	setStr(m, "target", p.Target)
	setStr(m, "assigner", p.Assigner)
	setStr(m, "assignee", p.Assignee)
	if p.Licence != "" {
		m["dct:license"] = map[string]any{"@id": p.Licence}
	}
	for _, kr := range []struct {
		key   string
		rules []Rule
	}{{"permission", p.Permissions}, {"prohibition", p.Prohibitions}, {"obligation", p.Obligations}} {
		if len(kr.rules) == 0 {
			continue
		}
		rs, err := rulesJSON(kr.rules)
		if err != nil {
			return nil, err
		}
		m[kr.key] = rs
	}
	return m, nil
}

func setStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func rulesJSON(rs []Rule) ([]any, error) {
	out := make([]any, 0, len(rs))
	for _, r := range rs {
		m := map[string]any{}
		for k, v := range r.Extra {
			m[k] = v
		}
		setStr(m, "@id", r.ID)
		if len(r.Refinement) > 0 {
			ref, err := constraintsJSON(r.Refinement)
			if err != nil {
				return nil, err
			}
			m["action"] = map[string]any{"rdf:value": map[string]any{"@id": "odrl:" + string(r.Action)}, "refinement": ref}
		} else {
			m["action"] = string(r.Action)
		}
		setStr(m, "target", r.Target)
		setStr(m, "assigner", r.Assigner)
		setStr(m, "assignee", r.Assignee)
		if len(r.Constraints) > 0 {
			cs, err := constraintsJSON(r.Constraints)
			if err != nil {
				return nil, err
			}
			m["constraint"] = cs
		}
		if len(r.Duties) > 0 {
			ds, err := rulesJSON(r.Duties)
			if err != nil {
				return nil, err
			}
			m["duty"] = ds
		}
		out = append(out, m)
	}
	return out, nil
}

func termOut(t string) string {
	if mimTerms[t] {
		return "mim:" + t
	}
	return t
}

func constraintsJSON(cs []Constraint) ([]any, error) {
	out := make([]any, 0, len(cs))
	for _, c := range cs {
		m := map[string]any{}
		for k, v := range c.Extra {
			m[k] = v
		}
		setStr(m, "@id", c.ID)
		if c.Logic != "" {
			sub, err := constraintsJSON(c.Constraints)
			if err != nil {
				return nil, err
			}
			m[string(c.Logic)] = sub
			out = append(out, m)
			continue
		}
		m["leftOperand"] = termOut(string(c.LeftOperand))
		m["operator"] = string(c.Operator)
		ro, err := operandJSON(c.RightOperand)
		if err != nil {
			return nil, err
		}
		if ro != nil {
			m["rightOperand"] = ro
		}
		setStr(m, "unit", c.Unit)
		setStr(m, "dataType", c.DataType)
		out = append(out, m)
	}
	return out, nil
}

func operandJSON(o Operand) (any, error) {
	if o.Geometry != nil {
		return encodeGeometry(o.Geometry)
	}
	if len(o.Values) == 0 {
		return nil, nil
	}
	vals := make([]any, len(o.Values))
	for i, l := range o.Values {
		switch l.Type {
		case "":
			vals[i] = l.Value
		case "@id":
			vals[i] = map[string]any{"@id": l.Value}
		case "number":
			if !isJSONNumber(l.Value) {
				return nil, fmt.Errorf("%w: number literal %q is not a JSON number", ErrSyntax, l.Value)
			}
			vals[i] = json.Number(l.Value)
		case "boolean":
			b, err := strconv.ParseBool(l.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: boolean literal %q is not true or false", ErrSyntax, l.Value)
			}
			vals[i] = b
		default:
			vals[i] = map[string]any{"@value": l.Value, "@type": l.Type}
		}
	}
	if len(vals) == 1 {
		return vals[0], nil
	}
	return vals, nil
}

// indexed names item i of a list: "permission[0]". The parser and the
// compiler name every rule and constraint so; fmt.Sprintf took more than
// the parse of the item.
func indexed(list string, i int) string {
	return list + "[" + strconv.Itoa(i) + "]"
}

// isJSONNumber reports whether s is a JSON number, trailing white space
// allowed as json.Unmarshal allows it: plainNumber's grammar.
func isJSONNumber(s string) bool {
	return plainNumber(strings.TrimRight(s, " \t\n\r"))
}
