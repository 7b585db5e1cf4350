package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// decodeJSON decodes data into maps, slices, strings, json.Number and bools.
// Unlike encoding/json it rejects duplicate object keys: two tools reading
// {"prohibition": [...], "prohibition": []} differently is exactly the kind
// of misreading a policy must not allow.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("unexpected data after the top-level value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %w", err)
				}
				k := kt.(string) // the decoder only yields string keys in objects
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("property %q given twice", k)
				}
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			return arr, nil
		}
		return nil, fmt.Errorf("invalid JSON: unexpected %q", t)
	default:
		return t, nil // string, json.Number, bool or nil
	}
}

// Namespaces.
const (
	odrlNS = "http://www.w3.org/ns/odrl/2/"
	// MimNS is the namespace of mimnode's own left operands (role, federation),
	// written with the prefix "mim:".
	MimNS   = "https://w3id.org/mimnode/policy/"
	dctNS   = "http://purl.org/dc/terms/"
	odrlCtx = "http://www.w3.org/ns/odrl.jsonld"
)

// ManualApproval is the policy-level property an offer carries to ask for
// a person's approval before an agreement ("mim:manualApproval": true). It
// takes no part in evaluation: the provider evaluates the policy first,
// and queues only requests the policy permits.
const ManualApproval = "mim:manualApproval"

// mimTerms are the terms mimnode adds to ODRL.
var mimTerms = map[string]bool{string(LeftRole): true, string(LeftFederation): true}

// normTerm turns "odrl:eq", "http://www.w3.org/ns/odrl/2/eq" and "eq" into
// "eq", and "mim:role" or the full mimnode IRI into "role". A prefixed term in
// the wrong namespace (odrl:role) is left as written, so it stays unknown
// rather than being read as something it does not say.
func normTerm(s string) string {
	var t, ns string
	switch {
	case strings.HasPrefix(s, "odrl:"):
		t, ns = s[len("odrl:"):], "odrl"
	case strings.HasPrefix(s, odrlNS):
		t, ns = s[len(odrlNS):], "odrl"
	case strings.HasPrefix(s, "mim:"):
		t, ns = s[len("mim:"):], "mim"
	case strings.HasPrefix(s, MimNS):
		t, ns = s[len(MimNS):], "mim"
	default:
		return s
	}
	if (ns == "mim") != mimTerms[t] {
		return s
	}
	return t
}

// normKey maps a property name to the name the parser switches on.
func normKey(k string) string {
	switch k {
	case "@id", "uid", "odrl:uid", odrlNS + "uid":
		return "@id"
	case "@type", "type":
		return "@type"
	case "dct:license", dctNS + "license":
		return "license"
	}
	if strings.HasPrefix(k, "@") {
		return k
	}
	return normTerm(k)
}

// asList returns v as a list: JSON-LD allows a single value where a set is
// expected, and {"@list": [...]} / {"@set": [...]} wrappers, which expanded
// JSON-LD (as some connectors send) puts inside an array: [{"@list": [...]}].
func asList(v any) []any {
	if l, ok := listWrapper(v); ok {
		return l
	}
	t, ok := v.([]any)
	if !ok {
		return []any{v}
	}
	for _, x := range t {
		if _, ok := listWrapper(x); ok {
			var out []any
			for _, y := range t {
				if l, ok := listWrapper(y); ok {
					out = append(out, l...)
				} else {
					out = append(out, y)
				}
			}
			return out
		}
	}
	return t
}

func listWrapper(v any) ([]any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false
	}
	if l, ok := m["@list"].([]any); ok {
		return l, true
	}
	if l, ok := m["@set"].([]any); ok {
		return l, true
	}
	return nil, false
}

// asIRI reads a node reference: "x" or {"@id": "x", ...}.
func asIRI(v any, what string) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case map[string]any:
		for k, x := range t {
			if normKey(k) == "@id" {
				if s, ok := x.(string); ok {
					return s, nil
				}
			}
		}
	case []any:
		if len(t) == 1 {
			return asIRI(t[0], what)
		}
	}
	return "", fmt.Errorf("%w: %s must be an IRI string or an object with @id, got %s", ErrSyntax, what, jsonKind(v))
}

// asTerm reads a vocabulary term: "eq", "odrl:eq" or {"@id": "odrl:eq"}.
func asTerm(v any, what string) (string, error) {
	s, err := asIRI(v, what)
	if err != nil {
		return "", err
	}
	return normTerm(s), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func rawOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Values come from decodeJSON, which only yields marshalable types.
		panic(fmt.Sprintf("policy: re-encoding decoded JSON: %v", err))
	}
	return b
}
