package policy

import (
	"encoding/json"
	"unicode/utf8"
)

// An agreement is read twice per negotiation (the consumer reads the
// provider's, the provider the countersigned one), and reading it through
// json.Decoder tokens cost more than the rest of reading and checking it.
// decodeAgreement therefore tries quickTree first: one pass over the bytes
// that builds the very tree decodeJSON builds for the plain JSON
// agreement files are written in (no escapes in strings). Anything else,
// including every error, is left to decodeJSON, so the result and the
// errors are decodeJSON's either way (FuzzQuickTree checks it).

// quickTree returns decodeJSON(data) if data is plain enough for it to be
// sure of the result, and false otherwise.
func quickTree(data []byte) (any, bool) {
	q := treeReader{b: data}
	v, ok := q.value(0)
	if !ok {
		return nil, false
	}
	q.space()
	if q.i != len(q.b) {
		return nil, false
	}
	return v, true
}

// treeReader reads a JSON document for quickTree; i is the next byte.
type treeReader struct {
	b []byte
	i int
}

func (q *treeReader) space() {
	for q.i < len(q.b) {
		switch q.b[q.i] {
		case ' ', '\t', '\n', '\r':
			q.i++
		default:
			return
		}
	}
}

// treeStrings are the member names and values agreement files and the
// policies in them repeat: reading one then allocates none of them (a map
// indexed by string(b) does not convert b). treeValues holds the same
// strings as values of the tree.
var treeStrings, treeValues = func() (map[string]string, map[string]any) {
	names := []string{
		// Agreement files.
		"agreement", "signatures", "format", AgreementFormat, "id", "dataset", "version", "provider", "consumer",
		"created", "notBefore", "notAfter", "policy", "peer", "role", "sig",
		// Policies.
		"@context", "@id", "@type", "uid", "profile", "permission", "prohibition", "obligation", "duty", "action",
		"constraint", "leftOperand", "operator", "rightOperand", "target", "assigner", "assignee", "dct", "mim",
		"http://www.w3.org/ns/odrl.jsonld", "http://purl.org/dc/terms/", "https://w3id.org/mimnode/policy/",
		"Agreement", "Offer", "Set", "Policy", "Permission", "Prohibition", "Duty", "mim:role", "mim:federation",
		string(ActionUse), string(ActionRead), string(ActionDistribute), string(ActionAggregate), string(ActionDerive),
		string(ActionDelete), string(ActionAttribute), string(ActionInform), string(ActionCompensate),
		string(LeftPurpose), string(LeftDateTime), string(LeftElapsedTime), string(LeftSpatial), string(LeftCount),
		string(LeftRecipient), string(LeftRole), string(LeftFederation), string(LeftPayAmount),
		string(OpEq), string(OpNeq), string(OpLt), string(OpLteq), string(OpGt), string(OpGteq), string(OpIsA),
		string(OpIsPartOf), string(OpHasPart), string(OpIsAnyOf), string(OpIsAllOf), string(OpIsNoneOf),
		RoleAgency, RoleResearcher, PurposeResearch,
	}
	strs, vals := make(map[string]string, len(names)), make(map[string]any, len(names))
	for _, n := range names {
		strs[n], vals[n] = n, n
	}
	return strs, vals
}()

func (q *treeReader) value(depth int) (any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	q.space()
	if q.i >= len(q.b) {
		return nil, false
	}
	switch c := q.b[q.i]; {
	case c == '{':
		return q.object(depth)
	case c == '[':
		return q.array(depth)
	case c == '"':
		b, ok := q.strBytes()
		if !ok {
			return nil, false
		}
		if v, ok := treeValues[string(b)]; ok {
			return v, true
		}
		return string(b), true
	case c == 't':
		return true, q.literal("true")
	case c == 'f':
		return false, q.literal("false")
	case c == 'n':
		return nil, q.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return q.number()
	}
	return nil, false
}

func (q *treeReader) object(depth int) (any, bool) {
	obj := map[string]any{}
	ok := q.list('}', func() bool {
		if q.i >= len(q.b) || q.b[q.i] != '"' {
			return false
		}
		k, ok := q.str()
		if !ok {
			return false
		}
		if _, dup := obj[k]; dup {
			return false // decodeJSON says which
		}
		q.space()
		if q.i >= len(q.b) || q.b[q.i] != ':' {
			return false
		}
		q.i++
		v, ok := q.value(depth + 1)
		obj[k] = v
		return ok
	})
	if !ok {
		return nil, false
	}
	return obj, true
}

func (q *treeReader) array(depth int) (any, bool) {
	arr := []any{}
	ok := q.list(']', func() bool {
		v, ok := q.value(depth + 1)
		arr = append(arr, v)
		return ok
	})
	if !ok {
		return nil, false
	}
	return arr, true
}

// list reads the comma-separated items of the object or array at q (its
// opening byte), up to and including closing; item reads one, with q at
// its first byte.
func (q *treeReader) list(closing byte, item func() bool) bool {
	q.i++ // the opening byte
	q.space()
	if q.i < len(q.b) && q.b[q.i] == closing {
		q.i++
		return true
	}
	for {
		q.space()
		if !item() {
			return false
		}
		q.space()
		if q.i >= len(q.b) {
			return false
		}
		switch q.b[q.i] {
		case ',':
			q.i++
		case closing:
			q.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string without escapes or control characters, in valid
// UTF-8: its content is its value as it is.
func (q *treeReader) str() (string, bool) {
	b, ok := q.strBytes()
	if !ok {
		return "", false
	}
	if s, ok := treeStrings[string(b)]; ok {
		return s, true
	}
	return string(b), true
}

// strBytes is str's content, not yet a string.
func (q *treeReader) strBytes() ([]byte, bool) {
	start := q.i + 1
	ascii := true
	for j := start; j < len(q.b); j++ {
		switch c := q.b[j]; {
		case c == '"':
			s := q.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			q.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (q *treeReader) literal(lit string) bool {
	if len(q.b)-q.i < len(lit) || string(q.b[q.i:q.i+len(lit)]) != lit {
		return false
	}
	q.i += len(lit)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as the
// json.Number of its text, which is what a decoder using UseNumber gives.
func (q *treeReader) number() (any, bool) {
	start := q.i
	digits := func() int {
		n := 0
		for q.i < len(q.b) && q.b[q.i] >= '0' && q.b[q.i] <= '9' {
			q.i++
			n++
		}
		return n
	}
	if q.b[q.i] == '-' {
		q.i++
	}
	if q.i < len(q.b) && q.b[q.i] == '0' {
		q.i++
	} else if digits() == 0 {
		return nil, false
	}
	if q.i < len(q.b) && q.b[q.i] == '.' {
		q.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if q.i < len(q.b) && (q.b[q.i] == 'e' || q.b[q.i] == 'E') {
		q.i++
		if q.i < len(q.b) && (q.b[q.i] == '+' || q.b[q.i] == '-') {
			q.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return json.Number(q.b[start:q.i]), true
}
