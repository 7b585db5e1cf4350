package ngsild

import "github.com/mimnode/mimnode/node/ngsild/query"

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
