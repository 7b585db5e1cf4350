package query

import (
	"errors"
	"sort"
	"strings"
)

// TypeSelection is a parsed entity type selection (ETSI GS CIM 009 clause
// 4.17), the type parameter of a query: type names joined by ';' (the entity
// has both types), '|' or ',' (it has either), grouped with parentheses, as
// in (Building;Vehicle)|Device. Names are expanded while parsing, so an
// entity's expanded types are matched directly. It is immutable and safe for
// concurrent use.
type TypeSelection struct {
	root *expr
}

// ParseTypes parses a type selection. expand maps a type name as written to
// its IRI (the request's @context); nil is the identity. A name may not hold
// the characters NGSI-LD forbids in names (clause 4.6.2): < > " ' = and white
// space.
func ParseTypes(s string, expand func(string) string) (*TypeSelection, error) {
	if expand == nil {
		expand = func(s string) string { return s }
	}
	root, err := parseExpr("type", s, func(name string) (string, error) {
		if i := strings.IndexAny(name, `<>"'=\`); i >= 0 {
			return "", errors.New("type name " + name + " contains a forbidden character")
		}
		return expand(name), nil
	})
	if err != nil {
		return nil, err
	}
	return &TypeSelection{root: root}, nil
}

// Match reports whether an entity with these (expanded) types is selected.
func (t *TypeSelection) Match(types []string) bool {
	return t.root.eval(func(name string) bool {
		for _, x := range types {
			if x == name {
				return true
			}
		}
		return false
	})
}

// Any returns types of which every selected entity has at least one, sorted:
// a store reads its type index for these and checks Match on the result.
// For A;B it is the types of one side only, since an entity with both has A.
func (t *TypeSelection) Any() []string {
	return sortedCover(t.root)
}

func sortedCover(x *expr) []string {
	set := cover(x)
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// cover returns leaves of which every expression that holds has one true.
func cover(x *expr) map[string]bool {
	switch x.op {
	case '|':
		all := map[string]bool{}
		for _, k := range x.kids {
			for n := range cover(k) {
				all[n] = true
			}
		}
		return all
	case ';':
		var best map[string]bool
		for _, k := range x.kids {
			if c := cover(k); best == nil || len(c) < len(best) {
				best = c
			}
		}
		return best
	}
	return map[string]bool{x.leaf: true}
}

// IsList reports whether the selection is a plain alternative of names
// (A,B,C), which Any answers exactly.
func (t *TypeSelection) IsList() bool {
	if t.root.op == 0 {
		return true
	}
	if t.root.op != '|' {
		return false
	}
	for _, k := range t.root.kids {
		if k.op != 0 {
			return false
		}
	}
	return true
}

// String renders the selection with expanded names, ',' written as '|';
// ParseTypes with identity expansion reads it back to an equal selection.
func (t *TypeSelection) String() string { return t.root.String() }
