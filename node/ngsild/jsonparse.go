package ngsild

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// parseJSON decodes JSON text into the same values encoding/json gives an
// `any` (map[string]any, []any, string, float64, bool, nil), without
// reflection. Entity bodies and stored entities are decoded on every write,
// and encoding/json was a quarter of the CPU time of a batch upsert. The
// fuzz test FuzzParseJSON checks it against encoding/json.
func parseJSON(b []byte) (any, error) {
	p := jsonParser{b: b}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return nil, p.errorf("unexpected data after the JSON value")
	}
	return v, nil
}

// maxJSONDepth bounds nesting, as encoding/json does.
const maxJSONDepth = 10000

type jsonParser struct {
	b []byte
	i int
	// the last time recordTime parsed, and its text (in b)
	lastTimeRaw []byte
	lastTime    time.Time
	// the last observedAt bodyAttr accepted: an entity's instances
	// observed together carry the same one
	lastObserved string
}

// sameStr reads the string s when it comes next, written without escapes,
// and reports whether it did.
func (p *jsonParser) sameStr(s string) bool {
	end := p.i + 1 + len(s)
	if s == "" || end >= len(p.b) || p.b[p.i] != '"' || p.b[end] != '"' || string(p.b[p.i+1:end]) != s {
		return false
	}
	p.i = end + 1
	return true
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.internedStr()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return p.errorf("invalid literal")
	}
	p.i += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // {
	m := make(map[string]any)
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("expected a member name")
		}
		k, err := p.internedStr()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.i++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v // the last duplicate wins, as in encoding/json
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, p.errorf("unterminated object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, nil
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	a := []any{}
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.i >= len(p.b) {
			return nil, p.errorf("unterminated array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

// interned are member names and values every NGSI-LD body repeats. An
// entity has a "type" and "value" per attribute; returning one shared
// string for them instead of a new one each time saves a fifth of the
// allocations of parsing a batch.
var interned = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		"id", "type", "value", "object", "observedAt", "unitCode", "datasetId",
		"createdAt", "modifiedAt", "@context", "@id", "@type", "@value", "languageMap",
		"scope", "coordinates", "objectType", "instanceId",
		"Property", "Relationship", "GeoProperty", "LanguageProperty", "ListProperty",
		"VocabProperty", "JsonProperty", "ListRelationship",
		"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
		"DateTime", "Date", "Time", "PostalAddress",
	} {
		m[s] = s
	}
	return m
}()

// internedStr is str, returning the shared copy of a string in interned.
func (p *jsonParser) internedStr() (string, error) {
	for j := p.i + 1; j < len(p.b) && j-p.i <= 20; j++ {
		if c := p.b[j]; c == '"' {
			if s, ok := interned[string(p.b[p.i+1:j])]; ok {
				p.i = j + 1
				return s, nil
			}
			break
		} else if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
	}
	return p.str()
}

// str decodes a string, replacing invalid UTF-8 and lone surrogates with
// U+FFFD like encoding/json.
func (p *jsonParser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes and plain ASCII or valid UTF-8.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return string([]rune(string(s))), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in string")
		}
		p.i++
	}
	buf := make([]byte, 0, p.i-start+16)
	buf = append(buf, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if utf8.Valid(buf) {
				return string(buf), nil
			}
			return string([]rune(string(buf))), nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++ // backslash
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					var ok2 bool
					if r2, ok2 = p.hex4(); !ok2 {
						return "", p.errorf("invalid \\u escape")
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r, r2 = dec, -1
					} else {
						p.i = save // not a pair: the second escape stands alone
						r2 = -1
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("invalid escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

var errNumber = errors.New("invalid number")

// number checks the JSON number grammar, then converts like encoding/json
// (which rejects values out of float64 range).
func (p *jsonParser) number() (any, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, p.errorf("%v", errNumber)
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("%v", errNumber)
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("%v", errNumber)
		}
	}
	f, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return nil, p.errorf("number %s out of range", p.b[start:p.i])
	}
	return f, nil
}
