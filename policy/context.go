package policy

import (
	"fmt"
	"strings"
)

// The parser reads terms by their ODRL names and does not process @context.
// That is safe only while the context gives those names their usual meaning.
// A document whose inline context redefines one ("permission":
// "odrl:prohibition") would be misread, so it is refused. Remote contexts
// (URLs) are trusted to be the ODRL, DSP or a connector's context, which all
// keep ODRL's names.

// readTerms are the names the parser relies on, with the IRI each must mean.
var readTerms = func() map[string]string {
	m := map[string]string{"uid": "@id", "type": "@type"}
	for _, t := range []string{
		"permission", "prohibition", "obligation", "duty", "constraint", "action",
		"leftOperand", "operator", "rightOperand", "target", "assigner", "assignee",
		"profile", "refinement", "unit", "dataType", "conflict", "inheritFrom",
		"and", "or", "xone", "andSequence",
		"Policy", "Set", "Offer", "Agreement",
		"use", "read", "distribute", "aggregate", "derive", "delete",
		"attribute", "inform", "obtainConsent", "compensate",
		"purpose", "dateTime", "elapsedTime", "spatial", "count", "recipient", "payAmount",
		"eq", "neq", "lt", "lteq", "gt", "gteq", "isA", "isPartOf", "hasPart", "isAnyOf", "isAllOf", "isNoneOf",
	} {
		m[t] = odrlNS + t
	}
	for t := range mimTerms {
		m[t] = MimNS + t
	}
	return m
}()

// checkContext refuses inline context definitions that change what a term
// the parser reads means, or that rebind the odrl: or mim: prefixes.
func checkContext(v any) error {
	for _, c := range asList(v) {
		obj, ok := c.(map[string]any)
		if !ok {
			continue // a context URL
		}
		for k, def := range obj {
			switch k {
			case "odrl":
				if iri, _ := def.(string); iri != odrlNS {
					return fmt.Errorf("%w: @context binds the odrl prefix to %v, not %s", ErrSyntax, def, odrlNS)
				}
				continue
			case "mim":
				if iri, _ := def.(string); iri != MimNS {
					return fmt.Errorf("%w: @context binds the mim prefix to %v, not %s", ErrSyntax, def, MimNS)
				}
				continue
			}
			want, read := readTerms[k]
			if !read {
				continue
			}
			var iri string
			switch d := def.(type) {
			case string:
				iri = d
			case map[string]any:
				iri, _ = d["@id"].(string)
				if iri == "" {
					continue // only sets @type/@container: the meaning is unchanged
				}
			case nil:
				return fmt.Errorf("%w: @context undefines %q", ErrSyntax, k)
			default:
				return fmt.Errorf("%w: @context definition of %q is %s", ErrSyntax, k, jsonKind(def))
			}
			if expandPrefixed(iri) != want {
				return fmt.Errorf("%w: @context redefines %q as %q; the policy would be misread", ErrSyntax, k, iri)
			}
		}
	}
	return nil
}

func expandPrefixed(iri string) string {
	switch {
	case strings.HasPrefix(iri, "odrl:"):
		return odrlNS + iri[len("odrl:"):]
	case strings.HasPrefix(iri, "mim:"):
		return MimNS + iri[len("mim:"):]
	}
	return iri
}
