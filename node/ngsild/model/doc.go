// Package model implements MIM2 (shared data models): the FIWARE Smart Data Models
// JSON Schemas and @context documents embedded with their CC BY 4.0 notice, and a
// registry that binds entity types to schemas and validates entities against them.
// It is pure: no storage, no network (every $ref resolves offline), no clock.
//
// A node builds one registry at start and checks entities before it writes them:
//
//	reg, err := model.NewRegistry() // the nine shipped models
//	...
//	for _, typ := range entity.Types { // expanded type IRIs
//		if _, bound := reg.Lookup(typ); !bound {
//			continue
//		}
//		kv := model.KeyValues(normalizedCompactedWithTheModelsContext)
//		if err := reg.Validate(typ, kv); err != nil {
//			var ve *model.ValidationError
//			errors.As(err, &ve) // ve.Attribute names the wrong attribute
//			return badRequestData(err)
//		}
//	}
//
// Validate expects attribute names as the schema writes them (short names), so
// the caller compacts the entity with the model's @context (Model.ContextURL)
// before calling KeyValues. A caller that made the keyValues map for the
// check alone hands it over with ValidateOwned, which spares Validate's copy.
//
// Most entities written are valid: Validate first asks certify (certify.go),
// a direct walk of the compiled schema that answers only when it is sure, and
// runs the general validator (santhosh-tekuri/jsonschema) for the rest, so
// every error is the general validator's. An admin binds a further type with Bind; such a
// schema may $ref the shipped shared schemas by their published URLs.
//
// Contexts gives the embedded @context documents by the URLs the Smart Data
// Models examples use, for preloading a node's context store.
package model
