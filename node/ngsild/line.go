package ngsild

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/mimnode/mimnode/internal/ordered"
)

// Entity lines: a dataset version holds each entity as the one line
// json.Marshal gives for it. Decoding a stored state into an Entity and
// encoding it again with reflection cost about 70 µs per entity; the
// stored record is already that JSON but for the timestamps it leaves out
// (appendAttribute) and the canonical forms of strings and numbers it only
// usually has. entityLine rewrites the record into those bytes directly,
// and gives up (ok false) on anything it is not sure of: the caller then
// decodes and marshals, so the bytes never depend on which path ran.

// EntityLine is one stored entity as EachLineOfType gives it.
type EntityLine struct {
	ID    string
	Types []string // expanded type IRIs, as Entity.Types
	// JSON is exactly what json.Marshal gives for the *Entity EachOfType
	// would have passed.
	JSON []byte
}

// EachLineOfType is EachOfType giving each entity as its JSON line
// (EntityLine) instead of an Entity: the same entities in the same order
// from one snapshot, fn on the caller's goroutine owning what it gets,
// the work spread over the other cores. Most records are rewritten into
// their line without building an Entity.
func (s *Service) EachLineOfType(ctx context.Context, types []string, fn func(EntityLine) error) error {
	type stored struct {
		id   string
		body []byte
	}
	return ordered.Map(ctx, 128, func(emit func(stored) error) error {
		return s.eachStored(ctx, types, func(id string, body []byte) error { return emit(stored{id, body}) })
	}, func(chunk []stored) ([]EntityLine, error) {
		out := make([]EntityLine, len(chunk))
		var lw lineWriter
		for i, st := range chunk {
			l, err := lw.line(st.id, st.body)
			if err != nil {
				return nil, err
			}
			out[i] = l
		}
		return out, nil
	}, func(lines []EntityLine) error {
		for _, l := range lines {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// lineWriter turns stored records into entity lines; one per goroutine.
type lineWriter struct {
	times map[string][]byte // a stored time's JSON, by its text
}

// line returns the entity line of the stored record body of id.
func (w *lineWriter) line(id string, body []byte) (EntityLine, error) {
	js, err := unpackEntity(body)
	if err != nil {
		return EntityLine{}, fmt.Errorf("decode entity %s: %w", id, err)
	}
	if b, rid, types, ok := w.entityLine(make([]byte, 0, len(js)+len(js)/4), js); ok {
		return EntityLine{ID: rid, Types: types, JSON: b}, nil
	}
	e, err := decodeStored(id, body)
	if err != nil {
		return EntityLine{}, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return EntityLine{}, fmt.Errorf("encoding entity %s: %w", id, err)
	}
	return EntityLine{ID: e.ID, Types: e.Types, JSON: b}, nil
}

// entityLine appends to b what json.Marshal gives for the Entity the
// record rec (appendEntity's JSON) decodes to; ok is false when it cannot
// be sure of the bytes.
func (w *lineWriter) entityLine(b, rec []byte) (out []byte, id string, types []string, ok bool) {
	// The members are written in the order Entity declares them, as the
	// record has them; the attributes need the entity's createdAt, which
	// comes after them, so the members are located first.
	p := jsonParser{b: rec}
	var at [7]int // value offsets of id, t, sc, a, c, m, am; 0: absent
	const idM, tM, scM, aM, cM, mM, amM = 0, 1, 2, 3, 4, 5, 6
	err := p.members(func(k []byte) error {
		m := -1
		switch string(k) {
		case "id":
			m = idM
		case "t":
			m = tM
		case "sc":
			m = scM
		case "a":
			m = aM
		case "c":
			m = cM
		case "m":
			m = mM
		case "am":
			m = amM
		}
		if m < 0 || at[m] != 0 {
			return errRecordShape
		}
		at[m] = p.i
		return p.skipValue(1)
	})
	if err != nil || at[idM] == 0 || at[tM] == 0 || at[cM] == 0 || at[mM] == 0 {
		return nil, "", nil, false
	}
	if p.skipSpace(); p.i != len(p.b) {
		return nil, "", nil, false
	}
	p.i = at[cM]
	created, zero, ok := w.time(&p)
	if !ok || zero {
		return nil, "", nil, false // omitzero would drop attributes' createdAt
	}
	p.i = at[idM]
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, "", nil, false
	}
	if id, err = p.str(); err != nil {
		return nil, "", nil, false
	}
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"t":`...)
	p.i = at[tM]
	if b, types, ok = lineStrings(&p, b); !ok {
		return nil, "", nil, false
	}
	if types == nil {
		types = []string{}
	}
	if at[scM] != 0 {
		p.i = at[scM]
		n := len(b)
		b = append(b, `,"sc":`...)
		var scope []string
		if b, scope, ok = lineStrings(&p, b); !ok {
			return nil, "", nil, false
		}
		if len(scope) == 0 {
			b = b[:n] // omitempty
		}
	}
	var attrsModified []byte // the attributes' default modifiedAt, if the record says
	if at[amM] != 0 {
		p.i = at[amM]
		var zero bool
		if attrsModified, zero, ok = w.time(&p); !ok || zero {
			return nil, "", nil, false
		}
	}
	if at[aM] != 0 {
		p.i = at[aM]
		n := len(b)
		b = append(b, `,"a":`...)
		if b, ok = w.attrMap(&p, b, created, attrsModified, 1); !ok {
			return nil, "", nil, false
		}
		if bytes.Equal(b[n+5:], []byte("{}")) {
			b = b[:n] // omitempty
		}
	}
	b = append(b, `,"c":`...)
	b = append(b, created...)
	b = append(b, `,"m":`...)
	p.i = at[mM]
	modified, zero, ok := w.time(&p)
	if !ok || zero {
		return nil, "", nil, false // rare enough to leave to json.Marshal
	}
	b = append(b, modified...)
	return append(b, '}'), id, types, true
}

// time reads a stored time at p and returns its JSON (time.Time's
// MarshalJSON) and whether it is the zero time.
func (w *lineWriter) time(p *jsonParser) (js []byte, zero, ok bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false, false
	}
	end := bytes.IndexByte(p.b[p.i+1:], '"')
	if end < 0 {
		return nil, false, false
	}
	raw := p.b[p.i+1 : p.i+1+end]
	p.i += end + 2
	if js, ok := w.times[string(raw)]; ok {
		return js, js == nil, true
	}
	if bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return nil, false, false
	}
	if !t.IsZero() {
		if js, err = t.MarshalJSON(); err != nil {
			return nil, false, false
		}
	}
	if w.times == nil || len(w.times) > 64 {
		w.times = map[string][]byte{}
	}
	w.times[string(raw)] = js
	return js, js == nil, true
}

// attrMap rewrites an attribute map (instances created at created, as
// JSON, and modified at modified or else when created, unless they say
// otherwise).
func (w *lineWriter) attrMap(p *jsonParser, b, created, modified []byte, depth int) ([]byte, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	b = append(b, '{')
	var prev []byte
	first, ok := true, true
	err := p.members(func(k []byte) error {
		// encoding/json sorts map keys; a record out of order (or with a
		// name twice) is not what a decoded map marshals to.
		if !first && bytes.Compare(k, prev) <= 0 {
			return errRecordShape
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		prev = append(prev[:0], k...)
		b = lineKey(b, k)
		b = append(b, '[')
		n := 0
		err := p.elements(func() error {
			if n++; n > 1 {
				b = append(b, ',')
			}
			if b, ok = w.attr(p, b, created, modified, depth+1); !ok {
				return errRecordShape
			}
			return nil
		})
		b = append(b, ']')
		return err
	})
	if err != nil {
		return nil, false
	}
	return append(b, '}'), true
}

// attrMembers are the members of a stored attribute instance, in the
// order appendAttribute writes them and Attribute declares them.
var attrMembers = [...]string{"t", "v", "o", "l", "d", "oa", "u", "c", "m", "s"}

// attr rewrites one attribute instance.
func (w *lineWriter) attr(p *jsonParser, b, parentCreated, defModified []byte, depth int) ([]byte, bool) {
	if depth > maxJSONDepth || p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, false
	}
	const tM, cM, mM, sM = 0, 7, 8, 9
	created, modified := parentCreated, []byte(nil)
	last := -1
	timesDone := false
	// times writes createdAt and modifiedAt (never zero: an instance's
	// default is its parent's createdAt, which is not) once the members
	// before them are written.
	times := func() {
		if timesDone {
			return
		}
		timesDone = true
		if modified == nil {
			modified = defModified
		}
		if modified == nil {
			modified = created
		}
		b = append(b, `,"c":`...)
		b = append(b, created...)
		b = append(b, `,"m":`...)
		b = append(b, modified...)
	}
	ok := true
	err := p.members(func(k []byte) error {
		m := -1
		for i, name := range attrMembers {
			if string(k) == name {
				m = i
				break
			}
		}
		if m <= last || (m != tM && last < tM) {
			return errRecordShape // unknown, repeated, out of order, or no type first
		}
		last = m
		switch m {
		case tM:
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return errRecordShape
			}
			b = append(b, `{"t":`...)
			b, ok = lineString(p, b)
		case 1, 2: // v, o: omitted when null
			if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
				p.i += 4
				return nil
			}
			b = append(append(append(b, ",\""...), k...), "\":"...)
			b, ok = lineValue(p, b, depth+1)
		case 3: // l: an object, left out when empty
			if p.i >= len(p.b) || p.b[p.i] != '{' {
				return errRecordShape
			}
			n := len(b)
			b = append(b, `,"l":`...)
			if b, ok = lineValue(p, b, depth+1); ok && bytes.Equal(b[n+5:], []byte("{}")) {
				b = b[:n] // omitempty
			}
		case 4, 5, 6: // d, oa, u: strings, omitted when empty
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return errRecordShape
			}
			if bytes.HasPrefix(p.b[p.i:], []byte(`""`)) {
				p.i += 2
				return nil
			}
			b = append(append(append(b, ",\""...), k...), "\":"...)
			b, ok = lineString(p, b)
		case cM:
			var js []byte
			var zero bool
			if js, zero, ok = w.time(p); ok && !zero {
				created = js
			}
		case mM:
			var js []byte
			var zero bool
			if js, zero, ok = w.time(p); ok && !zero {
				modified = js
			}
		case sM:
			times()
			n := len(b)
			b = append(b, `,"s":`...)
			if b, ok = w.attrMap(p, b, created, nil, depth+1); ok && bytes.Equal(b[n+5:], []byte("{}")) {
				b = b[:n] // omitempty
			}
		}
		if !ok {
			return errRecordShape
		}
		return nil
	})
	if err != nil || last < tM {
		return nil, false
	}
	times()
	return append(b, '}'), true
}

// lineStrings rewrites an array of strings and returns them.
func lineStrings(p *jsonParser, b []byte) ([]byte, []string, bool) {
	var out []string
	b = append(b, '[')
	err := p.elements(func() error {
		if len(out) > 0 {
			b = append(b, ',')
		}
		if p.b[p.i] != '"' {
			return errRecordShape
		}
		s, err := p.str()
		out = append(out, s)
		b = appendString(b, s)
		return err
	})
	if err != nil {
		return nil, nil, false
	}
	return append(b, ']'), out, true
}

// lineValue rewrites a JSON value as encoding/json marshals what
// parseJSON decodes it to: sorted object keys, canonical strings and
// numbers.
func lineValue(p *jsonParser, b []byte, depth int) ([]byte, bool) {
	if depth > maxJSONDepth || p.i >= len(p.b) {
		return nil, false
	}
	ok := true
	switch c := p.b[p.i]; {
	case c == '{':
		b = append(b, '{')
		var prev []byte
		first := true
		err := p.members(func(k []byte) error {
			if !first && bytes.Compare(k, prev) <= 0 {
				return errRecordShape // a map marshals sorted, each key once
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			prev = append(prev[:0], k...)
			b = lineKey(b, k)
			if b, ok = lineValue(p, b, depth+1); !ok {
				return errRecordShape
			}
			return nil
		})
		return append(b, '}'), err == nil
	case c == '[':
		b = append(b, '[')
		first := true
		err := p.elements(func() error {
			if !first {
				b = append(b, ',')
			}
			first = false
			if b, ok = lineValue(p, b, depth+1); !ok {
				return errRecordShape
			}
			return nil
		})
		return append(b, ']'), err == nil
	case c == '"':
		return lineString(p, b)
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		v, err := p.number()
		if err != nil {
			return nil, false
		}
		if text := p.b[start:p.i]; plainInteger(text) {
			return append(b, text...), true
		}
		return appendValue(b, v), true
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
				p.i += len(lit)
				return append(b, lit...), true
			}
		}
		return nil, false
	}
}

// plainInteger reports whether a JSON number is an integer float64 holds
// exactly and encoding/json writes with the same digits.
func plainInteger(n []byte) bool {
	if len(n) > 0 && n[0] == '-' {
		n = n[1:]
	}
	if len(n) == 0 || len(n) > 15 {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// lineString rewrites the string at p as encoding/json writes the string
// parseJSON decodes it to.
func lineString(p *jsonParser, b []byte) ([]byte, bool) {
	end := p.i + 1
	for end < len(p.b) && p.b[end] != '"' && p.b[end] != '\\' {
		end++
	}
	if end < len(p.b) && p.b[end] == '"' && canonicalString(p.b[p.i+1:end]) {
		b = append(b, p.b[p.i:end+1]...)
		p.i = end + 1
		return b, true
	}
	s, err := p.str()
	if err != nil {
		return nil, false
	}
	return appendString(b, s), true
}

// lineKey writes an object key (as decoded by jsonParser.key) and its
// colon.
func lineKey(b, k []byte) []byte {
	if canonicalString(k) {
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		return b
	}
	return append(appendString(b, string(k)), ':')
}

// canonicalString reports whether appendString writes s as it is: valid
// UTF-8 without anything it escapes.
func canonicalString(s []byte) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !plainJSON[c] {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// DecodeLine decodes an entity line (EntityLine.JSON: json.Marshal of an
// *Entity) into e, as json.Unmarshal does. The line has the stored
// record's members, so the record decoder reads it without reflection
// (about a third of the cost); a line with a member that decoder does not
// know is decoded by json.Unmarshal. Attribute times a line leaves out
// (zero) are those of the entity or attribute they belong to.
func DecodeLine(b []byte, e *Entity) error {
	if err := decodeRecord(b, e); !errors.Is(err, errRecordShape) {
		return err
	}
	*e = Entity{}
	return json.Unmarshal(b, e)
}
