package protocol

import "bytes"

// quickHeader returns the @type of body when body is a JSON object whose
// @context is an array of plain strings including Context and whose @type
// is a non-empty plain string, found without encoding/json. It declines
// (ok false) whenever encoding/json might see it otherwise: a key with an
// escape, a key equal to "@context" or "@type" only when case is ignored
// (encoding/json matches those too), either key twice, a value that is not
// plain printable ASCII. Only well-formed JSON needs to be read right: the
// caller trusts the answer only once encoding/json has decoded the whole
// body without error.
func quickHeader(body []byte) (typ string, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "", false
	}
	i++
	var sawContext, sawType, hasContext bool
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != '"' {
			return "", false
		}
		key, j, ok := plainString(body, i)
		if !ok {
			return "", false
		}
		i = skipSpace(body, j)
		if i >= len(body) || body[i] != ':' {
			return "", false
		}
		i = skipSpace(body, i+1)
		switch {
		case string(key) == "@context":
			if sawContext {
				return "", false
			}
			sawContext = true
			if hasContext, i, ok = quickContext(body, i); !ok {
				return "", false
			}
		case string(key) == "@type":
			if sawType {
				return "", false
			}
			sawType = true
			if i >= len(body) || body[i] != '"' {
				return "", false
			}
			var v []byte
			if v, i, ok = plainString(body, i); !ok || len(v) == 0 {
				return "", false
			}
			typ = string(v)
		case bytes.EqualFold(key, []byte("@context")), bytes.EqualFold(key, []byte("@type")):
			return "", false
		default:
			if i = skipValue(body, i); i < 0 {
				return "", false
			}
		}
		i = skipSpace(body, i)
		if i >= len(body) {
			return "", false
		}
		switch body[i] {
		case ',':
			i++
		case '}':
			return typ, sawType && hasContext
		default:
			return "", false
		}
	}
}

// quickContext reads an array of plain strings at body[i:] and reports
// whether it includes Context and where it ends.
func quickContext(body []byte, i int) (found bool, end int, ok bool) {
	if i >= len(body) || body[i] != '[' {
		return false, 0, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == ']' {
		return false, i + 1, true
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return false, 0, false
		}
		v, j, ok := plainString(body, i)
		if !ok {
			return false, 0, false
		}
		found = found || string(v) == Context
		i = skipSpace(body, j)
		if i >= len(body) {
			return false, 0, false
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case ']':
			return found, i + 1, true
		default:
			return false, 0, false
		}
	}
}

// plainString reads the string starting at body[i] (a quote) when it is
// printable ASCII without escapes, and returns its contents and the index
// after its closing quote.
func plainString(body []byte, i int) (s []byte, end int, ok bool) {
	for j := i + 1; j < len(body); j++ {
		switch c := body[j]; {
		case c == '"':
			return body[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipValue returns the index after the JSON value starting at body[i], or
// -1. It tracks strings and nesting only: it is exact for well-formed JSON
// and the caller checks well-formedness otherwise.
func skipValue(body []byte, i int) int {
	depth := 0
	for ; i < len(body); i++ {
		switch body[i] {
		case '"':
			j := i + 1
			for ; j < len(body) && body[j] != '"'; j++ {
				if body[j] == '\\' {
					j++
				}
			}
			if j >= len(body) {
				return -1
			}
			i = j
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the object holding a scalar
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return i
			}
		default:
			// A number, true, false, null, or inside a container.
		}
	}
	if depth == 0 {
		return i
	}
	return -1
}

func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	return i
}
