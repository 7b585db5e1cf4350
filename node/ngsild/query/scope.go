package query

import (
	"errors"
	"strings"
)

// ScopeQuery is a parsed scope query (ETSI GS CIM 009 clause 4.19), the
// scopeQ parameter. An entity's scopes (clause 4.18) are hierarchical paths
// such as /Madrid/Gardens/ParqueNorte. A query term is such a path that
// matches the same path exactly, where a level '+' matches any one level
// and a last level '#' matches the levels above it and everything below
// (/Madrid/# matches /Madrid and /Madrid/Gardens; /# matches any scope).
// Terms are joined by ';' (AND), ',' or '|' (OR), grouped with parentheses.
// It is immutable and safe for concurrent use.
type ScopeQuery struct {
	root *expr
}

// ParseScopeQuery parses a scopeQ value.
func ParseScopeQuery(s string) (*ScopeQuery, error) {
	root, err := parseExpr("scopeQ", s, func(term string) (string, error) {
		return term, checkScope(term, true)
	})
	if err != nil {
		return nil, err
	}
	return &ScopeQuery{root: root}, nil
}

// CheckScope says what is wrong with an entity scope value, nil when it is
// a valid scope: '/' followed by non-empty levels separated by '/', none of
// them '+' or '#', which only queries use.
func CheckScope(s string) error { return checkScope(s, false) }

func checkScope(s string, pattern bool) error {
	if !strings.HasPrefix(s, "/") {
		return errors.New("scope " + quote(s) + " must start with '/'")
	}
	levels := strings.Split(s[1:], "/")
	for i, l := range levels {
		switch {
		case l == "":
			return errors.New("scope " + quote(s) + " has an empty level")
		case strings.ContainsAny(l, " ;|,()\"'<>=\\") || strings.IndexFunc(l, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
			return errors.New("scope " + quote(s) + " has a forbidden character in level " + quote(l))
		case l == "+" || l == "#":
			if !pattern {
				return errors.New("scope " + quote(s) + ": " + l + " is a query wildcard, not a scope level")
			}
			if l == "#" && i != len(levels)-1 {
				return errors.New("scope query " + quote(s) + ": '#' must be the last level")
			}
		case strings.ContainsAny(l, "+#"):
			return errors.New("scope " + quote(s) + ": '+' and '#' must be whole levels")
		}
	}
	return nil
}

func quote(s string) string { return `"` + s + `"` }

// Match reports whether an entity with these scopes is selected; an entity
// without a scope never is.
func (q *ScopeQuery) Match(scopes []string) bool {
	return q.root.eval(func(pattern string) bool {
		for _, s := range scopes {
			if scopeMatch(pattern, s) {
				return true
			}
		}
		return false
	})
}

// Any returns terms of which every selected entity matches at least one,
// sorted: a store reads its scope index for these (ScopeMatches tells which
// indexed scopes a term selects) and checks Match on the result.
func (q *ScopeQuery) Any() []string { return sortedCover(q.root) }

// ScopeMatches reports whether one scope matches one query term.
func ScopeMatches(term, scope string) bool { return scopeMatch(term, scope) }

func scopeMatch(pattern, scope string) bool {
	if !strings.HasPrefix(scope, "/") {
		return false
	}
	// Level by level without splitting: this runs once per indexed scope
	// a query term reads.
	p, sc := pattern[1:], scope[1:]
	for {
		pl, prest, pmore := strings.Cut(p, "/")
		if pl == "#" {
			return true
		}
		sl, srest, smore := strings.Cut(sc, "/")
		switch {
		case pl != "+" && pl != sl:
			return false
		case !pmore:
			return !smore // the term ended: so must the scope
		case !smore:
			return prest == "#" // the scope ended: only '#' matches no level
		}
		p, sc = prest, srest
	}
}

// ScopeSkip returns, for a scope that term does not match, a string at or
// before the first scope after it (in byte order) that term can match, so
// that a store reading its scopes in order can seek there instead of
// reading every scope in between; it is always greater than scope.
func ScopeSkip(term, scope string) string {
	p := strings.Split(term[1:], "/")
	l := strings.Split(scope[1:], "/")
	for i, want := range p {
		if want == "#" || i >= len(l) {
			break // the scope's own children may still match
		}
		if want == "+" || want == l[i] {
			continue
		}
		parent := ""
		if i > 0 {
			parent = "/" + strings.Join(l[:i], "/")
		}
		target := parent + "/" + want
		if target > scope {
			return target // the wanted level sorts later under the same parent
		}
		if target+"/" > scope {
			return target + "/" // its deeper scopes still do (want "a", at "a!")
		}
		// Every scope under parent with the wanted level sorts before this
		// one: skip the rest of parent's subtree ('0' follows '/').
		return parent + "0"
	}
	if len(l) > len(p) && p[len(p)-1] != "#" {
		// Deeper than the term: skip this scope's subtree at the term's depth.
		return "/" + strings.Join(l[:len(p)], "/") + "0"
	}
	return scope + "\x01"
}

// String renders the query, ',' written as '|'.
func (q *ScopeQuery) String() string { return q.root.String() }
