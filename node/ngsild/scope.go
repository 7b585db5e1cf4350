package ngsild

import (
	"strings"

	"github.com/mimnode/mimnode/node/ngsild/query"
	"github.com/mimnode/mimnode/node/store"
)

// Entity scopes (clause 4.18): an entity may carry "scope", one
// hierarchical path or a list of them (/Madrid/Gardens/ParqueNorte), which
// the scopeQ query parameter selects on (clause 4.19, query.ParseScopeQuery).
// The scope is an entity member, not an attribute: it is shown in every
// representation, replaced by PUT and PATCH, and extended by POST .../attrs.

// decodeScope reads the scope member of a request body.
func decodeScope(v any) ([]string, error) {
	var list []string
	switch x := v.(type) {
	case string:
		list = []string{x}
	case []any:
		for _, el := range x {
			s, ok := el.(string)
			if !ok {
				return nil, newError(BadRequestData, "invalid scope", "scope list entries must be strings, got %v", el)
			}
			if !contains(list, s) {
				list = append(list, s)
			}
		}
	default:
		return nil, newError(BadRequestData, "invalid scope", "scope must be a string or a list of strings")
	}
	if len(list) == 0 {
		return nil, newError(BadRequestData, "invalid scope", "scope must not be an empty list")
	}
	for _, s := range list {
		if err := query.CheckScope(s); err != nil {
			return nil, newError(BadRequestData, "invalid scope", "%v", err)
		}
	}
	return list, nil
}

// renderScope is the scope as a representation shows it: a string for one,
// a list for several.
func renderScope(scope []string) any {
	if len(scope) == 1 {
		return scope[0]
	}
	out := make([]any, len(scope))
	for i, s := range scope {
		out[i] = s
	}
	return out
}

// addScopes is the scope after POST .../attrs added more: the union, in
// order.
func addScopes(old, more []string) []string {
	out := append([]string(nil), old...)
	for _, s := range more {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// checkAttrPath checks the {attr} of an attribute endpoint: a name, and not
// scope, which is an entity member changed with the entity (clause 4.18).
func checkAttrPath(attr string) error {
	if attr == "scope" {
		return newError(BadRequestData, "scope is not an attribute", "change an entity's scope with PATCH or PUT /entities/{id} or POST /entities/{id}/attrs")
	}
	return checkName(attr)
}

// keyScope is the scope index: n/o/<scope> 00 <id> for each scope of each
// entity (indexKeys in keys.go writes it).
const keyScope = store.PrefixNGSILD + "o/"

func scopeKey(scope, id string) []byte {
	return []byte(keyScope + scope + "\x00" + id)
}

// scopeSource answers a scopeQ from the scope index: for each term of
// q.Any, it reads the index under the term's levels up to its first
// wildcard and keeps the ids whose indexed scope the term matches; at a
// scope the term does not match it seeks to where the next match can be
// (query.ScopeSkip), so /Madrid/+/Station007 reads a few keys per district
// instead of every scope under /Madrid.
func scopeSource(q *query.ScopeQuery) source {
	terms := q.Any()
	prefixes := make([][]byte, len(terms))
	for i, term := range terms {
		fixed := term + "\x00"
		if w := strings.IndexAny(term, "+#"); w >= 0 {
			fixed = strings.TrimSuffix(term[:w], "/")
		}
		prefixes[i] = []byte(keyScope + fixed)
	}
	return source{scan: func(tx *store.Txn, max int) ([]string, bool, error) {
		return prefixScan(tx, prefixes, max, func(i int, k []byte) (string, []byte) {
			rest := string(k[len(keyScope):])
			nul := strings.LastIndexByte(rest, 0)
			switch {
			case nul < 0:
				return "", nil
			case !query.ScopeMatches(terms[i], rest[:nul]):
				return "", []byte(keyScope + query.ScopeSkip(terms[i], rest[:nul]))
			}
			return rest[nul+1:], nil
		})
	}}
}
