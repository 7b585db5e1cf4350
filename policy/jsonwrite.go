package policy

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// Offers and agreements are written several times per negotiation (Marshal
// for the offer and the agreed policy, Canonical for every signature made
// or checked). policyJSON and termsJSON build a map[string]any tree for
// that, which appendPlainJSON or appendCanonical then walk; the writers
// here write the same bytes straight from the model, members in sorted
// order, and decline (ok false) whatever they do not write as those would:
// Extra members anywhere, strings needing escapes (plain) or not valid
// UTF-8 (canonical), literals the tree writers would refuse or rewrite.
// The caller then takes the tree path, so the bytes are the same either
// way (TestDirectWritersMatchTrees, FuzzDirectWriters).

// jsonStyle is which tree writer the direct writers stand in for.
type jsonStyle bool

const (
	plainStyle     jsonStyle = false // appendPlainJSON: json.Marshal's bytes
	canonicalStyle jsonStyle = true  // appendCanonical: RFC 8785
)

// str appends s quoted as the style writes it, or declines.
func (st jsonStyle) str(dst []byte, s string) ([]byte, bool) {
	if st == canonicalStyle {
		if !utf8.ValidString(s) {
			return nil, false
		}
		return appendCanonicalString(dst, s), true
	}
	return appendPlainString(dst, s)
}

// member appends `,"key":` (no comma first when first) and the string v.
// key is one of the model's constant keys, which need no escaping.
func (st jsonStyle) member(dst []byte, first bool, key, v string) ([]byte, bool) {
	return st.str(appendKey(dst, first, key), v)
}

func appendKey(dst []byte, first bool, key string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendPolicyDirect appends what policyJSON(p) written in style st gives.
func appendPolicyDirect(dst []byte, p Policy, st jsonStyle) ([]byte, bool) {
	if len(p.Extra) > 0 {
		return nil, false
	}
	ok := true
	// Keys in sorted order: @context @id @type assignee assigner
	// dct:license obligation permission profile prohibition target.
	dst = append(dst, `{"@context":[`...)
	dst, _ = st.str(dst, odrlCtx)
	dst = append(dst, `,{"dct":`...)
	dst, _ = st.str(dst, dctNS)
	dst = append(dst, `,"mim":`...)
	dst, _ = st.str(dst, MimNS)
	dst = append(dst, `}]`...)
	if p.ID != "" {
		if dst, ok = st.member(dst, false, "@id", p.ID); !ok {
			return nil, false
		}
	}
	t := p.Type
	if t == "" {
		t = TypeSet
	}
	if dst, ok = st.member(dst, false, "@type", string(t)); !ok {
		return nil, false
	}
	for _, kv := range [...]struct{ k, v string }{{"assignee", p.Assignee}, {"assigner", p.Assigner}} {
		if kv.v == "" {
			continue
		}
		if dst, ok = st.member(dst, false, kv.k, kv.v); !ok {
			return nil, false
		}
	}
	if p.Licence != "" {
		dst = append(dst, `,"dct:license":{"@id":`...)
		if dst, ok = st.str(dst, p.Licence); !ok {
			return nil, false
		}
		dst = append(dst, '}')
	}
	for _, kr := range [...]struct {
		k     string
		rules []Rule
	}{{"obligation", p.Obligations}, {"permission", p.Permissions}} {
		if len(kr.rules) == 0 {
			continue
		}
		if dst, ok = st.rules(appendKey(dst, false, kr.k), kr.rules); !ok {
			return nil, false
		}
	}
	if len(p.Profile) > 0 {
		dst = append(dst, `,"profile":[`...)
		for i, s := range p.Profile {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = st.str(dst, s); !ok {
				return nil, false
			}
		}
		dst = append(dst, ']')
	}
	if len(p.Prohibitions) > 0 {
		if dst, ok = st.rules(appendKey(dst, false, "prohibition"), p.Prohibitions); !ok {
			return nil, false
		}
	}
	if p.Target != "" {
		if dst, ok = st.member(dst, false, "target", p.Target); !ok {
			return nil, false
		}
	}
	return append(dst, '}'), true
}

// rules appends what rulesJSON(rs) written in style st gives.
func (st jsonStyle) rules(dst []byte, rs []Rule) ([]byte, bool) {
	ok := true
	dst = append(dst, '[')
	for i, r := range rs {
		if len(r.Extra) > 0 {
			return nil, false
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		// Keys in sorted order: @id action assignee assigner constraint
		// duty target.
		dst = append(dst, '{')
		first := true
		if r.ID != "" {
			if dst, ok = st.member(dst, true, "@id", r.ID); !ok {
				return nil, false
			}
			first = false
		}
		if len(r.Refinement) > 0 {
			dst = append(appendKey(dst, first, "action"), `{"rdf:value":{"@id":`...)
			if dst, ok = st.str(dst, "odrl:"+string(r.Action)); !ok {
				return nil, false
			}
			if dst, ok = st.constraints(append(dst, `},"refinement":`...), r.Refinement); !ok {
				return nil, false
			}
			dst = append(dst, '}')
		} else if dst, ok = st.member(dst, first, "action", string(r.Action)); !ok {
			return nil, false
		}
		for _, kv := range [...]struct{ k, v string }{{"assignee", r.Assignee}, {"assigner", r.Assigner}} {
			if kv.v == "" {
				continue
			}
			if dst, ok = st.member(dst, false, kv.k, kv.v); !ok {
				return nil, false
			}
		}
		if len(r.Constraints) > 0 {
			if dst, ok = st.constraints(appendKey(dst, false, "constraint"), r.Constraints); !ok {
				return nil, false
			}
		}
		if len(r.Duties) > 0 {
			if dst, ok = st.rules(appendKey(dst, false, "duty"), r.Duties); !ok {
				return nil, false
			}
		}
		if r.Target != "" {
			if dst, ok = st.member(dst, false, "target", r.Target); !ok {
				return nil, false
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), true
}

// constraints appends what constraintsJSON(cs) written in style st gives.
func (st jsonStyle) constraints(dst []byte, cs []Constraint) ([]byte, bool) {
	ok := true
	dst = append(dst, '[')
	for i, c := range cs {
		if len(c.Extra) > 0 {
			return nil, false
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		first := true
		if c.ID != "" {
			if dst, ok = st.member(dst, true, "@id", c.ID); !ok {
				return nil, false
			}
			first = false
		}
		if c.Logic != "" {
			switch c.Logic {
			case LogicAnd, LogicOr, LogicXone, LogicAndSequence: // all sort after @id
			default:
				return nil, false
			}
			if dst, ok = st.constraints(appendKey(dst, first, string(c.Logic)), c.Constraints); !ok {
				return nil, false
			}
			dst = append(dst, '}')
			continue
		}
		// Keys in sorted order: @id dataType leftOperand operator
		// rightOperand unit.
		if c.DataType != "" {
			if dst, ok = st.member(dst, first, "dataType", c.DataType); !ok {
				return nil, false
			}
			first = false
		}
		dst = appendKey(dst, first, "leftOperand")
		if mimTerms[string(c.LeftOperand)] {
			dst = append(dst, `"mim:`...)
			dst = append(dst, c.LeftOperand...)
			dst = append(dst, '"')
		} else if dst, ok = st.str(dst, string(c.LeftOperand)); !ok {
			return nil, false
		}
		if dst, ok = st.member(dst, false, "operator", string(c.Operator)); !ok {
			return nil, false
		}
		if dst, ok = st.operand(dst, c.RightOperand); !ok {
			return nil, false
		}
		if c.Unit != "" {
			if dst, ok = st.member(dst, false, "unit", c.Unit); !ok {
				return nil, false
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), true
}

// operand appends `,"rightOperand":` and what operandJSON(o) written in
// style st gives, or nothing when it gives nil.
func (st jsonStyle) operand(dst []byte, o Operand) ([]byte, bool) {
	if o.Geometry != nil {
		g, err := encodeGeometry(o.Geometry)
		if err != nil {
			return nil, false
		}
		dst = appendKey(dst, false, "rightOperand")
		if st == canonicalStyle {
			var err error
			dst, err = appendCanonical(dst, g)
			return dst, err == nil
		}
		return appendPlainJSON(dst, g)
	}
	if len(o.Values) == 0 {
		return dst, true
	}
	dst = appendKey(dst, false, "rightOperand")
	many := len(o.Values) > 1
	if many {
		dst = append(dst, '[')
	}
	ok := true
	for i, l := range o.Values {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, ok = st.literal(dst, l); !ok {
			return nil, false
		}
	}
	if many {
		dst = append(dst, ']')
	}
	return dst, true
}

// literal appends one operand value as operandJSON makes it.
func (st jsonStyle) literal(dst []byte, l Literal) ([]byte, bool) {
	ok := true
	switch l.Type {
	case "":
		return st.str(dst, l.Value)
	case "@id":
		if dst, ok = st.str(append(dst, `{"@id":`...), l.Value); !ok {
			return nil, false
		}
		return append(dst, '}'), true
	case "number":
		if !plainNumber(l.Value) {
			return nil, false
		}
		if st == plainStyle {
			return append(dst, l.Value...), true
		}
		f, err := strconv.ParseFloat(l.Value, 64)
		if err != nil {
			return nil, false
		}
		n, err := jcs.NumberToJSON(f)
		if err != nil {
			return nil, false
		}
		return append(dst, n...), true
	case "boolean":
		b, err := strconv.ParseBool(l.Value)
		if err != nil {
			return nil, false
		}
		return strconv.AppendBool(dst, b), true
	}
	// Keys in sorted order: @type @value.
	if dst, ok = st.str(append(dst, `{"@type":`...), l.Type); !ok {
		return nil, false
	}
	if dst, ok = st.str(append(dst, `,"@value":`...), l.Value); !ok {
		return nil, false
	}
	return append(dst, '}'), true
}

// appendTermsDirect appends what termsJSON written by appendCanonical
// gives: the canonical terms of a.
func appendTermsDirect(dst []byte, a Agreement) ([]byte, bool) {
	const st = canonicalStyle
	ok := true
	// Keys in sorted order: consumer created dataset format id notAfter
	// notBefore policy provider version.
	if dst, ok = st.member(append(dst, '{'), true, "consumer", a.Consumer); !ok {
		return nil, false
	}
	dst = appendTime(appendKey(dst, false, "created"), a.Created)
	if dst, ok = st.member(dst, false, "dataset", a.Dataset); !ok {
		return nil, false
	}
	dst, _ = st.member(dst, false, "format", AgreementFormat)
	if dst, ok = st.member(dst, false, "id", a.ID); !ok {
		return nil, false
	}
	if !a.NotAfter.IsZero() {
		dst = appendTime(appendKey(dst, false, "notAfter"), a.NotAfter)
	}
	dst = appendTime(appendKey(dst, false, "notBefore"), a.NotBefore)
	if dst, ok = appendPolicyDirect(appendKey(dst, false, "policy"), a.Policy, st); !ok {
		return nil, false
	}
	if dst, ok = st.member(dst, false, "provider", a.Provider); !ok {
		return nil, false
	}
	if a.Version != "" {
		if dst, ok = st.member(dst, false, "version", a.Version); !ok {
			return nil, false
		}
	}
	return append(dst, '}'), true
}

// appendTime appends t as termsJSON writes it, quoted (RFC 3339 needs no
// escapes).
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}
