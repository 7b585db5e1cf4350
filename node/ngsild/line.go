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
// (zero) are those of the entity or attribute they belong to. A caller
// decoding many lines uses a LineDecoder, which decodes each as
// DecodeLine does (FuzzDecodeLine).
func DecodeLine(b []byte, e *Entity) error {
	if err := decodeRecord(b, e); !errors.Is(err, errRecordShape) {
		return err
	}
	*e = Entity{}
	return json.Unmarshal(b, e)
}

// LineDecoder decodes entity lines one after another (DecodeLine), and
// keeps what the lines of a dataset repeat: the attribute names, types,
// units, observation times and short values of one line are mostly those
// of the line before, so each is made once per decoder, not once per
// line, without the lock the record decoder's shared tables take; and an
// entity's attribute instances are allocated together. Landing decodes a
// million lines of one model: allocating was half the cost of decoding
// them. One per goroutine; the zero value is ready to use. What Decode
// gives shares only immutable strings and boxed scalars with what it gave
// before.
type LineDecoder struct {
	p jsonParser
	// strs are strings the lines had (member names and string members),
	// by their text; vals boxed scalar values (short strings and
	// numbers), by their JSON text. Both stop growing at maxLineShared.
	strs map[string]string
	vals map[string]any
	// seqStrs and seqVals are the strings and values the line before had,
	// in order; nStrs and nVals count those of this line so far. Lines of
	// one model have them in the same order, so the next one is most
	// often where the line before had it: a comparison instead of a
	// hash.
	seqStrs      []string
	seqVals      []seqVal
	nStrs, nVals int
	// insts is how many attribute instances the entity decoded last had:
	// the size of the next one's slab.
	insts int
	// timeRaw is the decoder's copy of p.lastTimeRaw between lines.
	timeRaw []byte
}

// seqVal is a shared value and its JSON text.
type seqVal struct {
	tok string
	v   any
}

// maxLineShared bounds a LineDecoder's tables; maxLineStr and maxLineVal
// the texts they take (longer ones rarely repeat).
const (
	maxLineShared = 4096
	maxLineStr    = 256
	maxLineVal    = 8
)

// Decode decodes the entity line b into e, as DecodeLine does.
func (d *LineDecoder) Decode(b []byte, e *Entity) error {
	err := d.entity(b, e)
	d.p.b = nil // the line is the caller's
	// So is the text of the time the parser keeps for the next line: a
	// caller reading each line into the buffer of the one before would
	// otherwise have the next line's times compared with its own bytes
	// and given the time of the line before.
	d.timeRaw = append(d.timeRaw[:0], d.p.lastTimeRaw...)
	d.p.lastTimeRaw = d.timeRaw
	if !errors.Is(err, errRecordShape) {
		return err
	}
	*e = Entity{}
	return json.Unmarshal(b, e)
}

// entity reads the line b as decodeRecord reads a record, member by
// member and with the same checks, errRecordShape for a member it does
// not know.
func (d *LineDecoder) entity(b []byte, e *Entity) error {
	p := &d.p
	p.b, p.i = b, 0
	d.nStrs, d.nVals = 0, 0
	var am time.Time // the attributes' default modifiedAt, if the line has one
	var sl lineSlab
	if d.insts > 0 {
		sl.attrs = make([]Attribute, 0, min(d.insts, maxAttrHint))
	}
	err := p.members(func(k []byte) error {
		var err error
		switch string(k) {
		case "id":
			e.ID, err = p.str()
		case "t":
			e.Types, err = d.strList()
		case "sc":
			e.Scope, err = d.strList()
		case "a":
			e.Attrs, err = d.attrs(&sl, 1)
		case "c":
			e.CreatedAt, err = p.recordTime()
		case "m":
			e.ModifiedAt, err = p.recordTime()
		case "am":
			am, err = p.recordTime()
		default:
			return errRecordShape
		}
		return err
	})
	if err != nil {
		return err
	}
	if p.skipSpace(); p.i != len(p.b) {
		return p.errorf("unexpected data after the stored entity")
	}
	d.insts = sl.n
	if e.Types == nil {
		e.Types = []string{}
	}
	if e.Attrs == nil {
		e.Attrs = map[string][]*Attribute{}
	}
	fillModified(e.Attrs, am)
	fillTimes(e.Attrs, e.CreatedAt)
	return nil
}

// lineSlab hands out one entity's attribute instances and its
// one-instance lists from shared arrays; a list has no room to grow into
// its neighbour's.
type lineSlab struct {
	attrs []Attribute
	lists []*Attribute
	n     int // instances handed out
}

func (sl *lineSlab) attr() *Attribute {
	sl.n++
	if len(sl.attrs) == cap(sl.attrs) {
		return new(Attribute)
	}
	sl.attrs = sl.attrs[:len(sl.attrs)+1]
	return &sl.attrs[len(sl.attrs)-1]
}

func (sl *lineSlab) list(a *Attribute) []*Attribute {
	if len(sl.lists) == cap(sl.lists) {
		sl.lists = make([]*Attribute, 0, max(cap(sl.attrs), 8))
	}
	sl.lists = append(sl.lists, a)
	return sl.lists[len(sl.lists)-1 : len(sl.lists) : len(sl.lists)]
}

// attrs reads an attribute map, as jsonParser.recordAttrs does.
func (d *LineDecoder) attrs(sl *lineSlab, depth int) (map[string][]*Attribute, error) {
	p := &d.p
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	hint := 0
	if depth == 1 {
		hint = min(d.insts, maxAttrHint)
	}
	out := make(map[string][]*Attribute, hint)
	err := p.members(func(k []byte) error {
		name := d.shared(k)
		var insts []*Attribute
		err := p.elements(func() error {
			a, err := d.attr(sl, depth+1)
			if insts == nil {
				insts = sl.list(a)
			} else {
				insts = append(insts, a)
			}
			return err
		})
		if insts == nil {
			insts = []*Attribute{}
		}
		out[name] = insts
		return err
	})
	return out, err
}

// attr reads one attribute instance, as jsonParser.recordAttr does.
func (d *LineDecoder) attr(sl *lineSlab, depth int) (*Attribute, error) {
	p := &d.p
	a := sl.attr()
	err := p.members(func(k []byte) error {
		var err error
		switch string(k) {
		case "t":
			var s string
			s, err = d.str()
			a.Type = AttrType(s)
		case "v":
			a.Value, err = d.value(depth + 1)
		case "o":
			a.Object, err = d.value(depth + 1)
		case "l":
			var v any
			if v, err = d.value(depth + 1); err == nil {
				a.LanguageMap, _ = v.(map[string]any)
			}
		case "d":
			a.DatasetID, err = d.str()
		case "oa":
			a.ObservedAt, err = d.str()
		case "u":
			a.UnitCode, err = d.str()
		case "c":
			a.CreatedAt, err = p.recordTime()
		case "m":
			a.ModifiedAt, err = p.recordTime()
		case "s":
			a.Sub, err = d.attrs(sl, depth+1)
		default:
			return errRecordShape
		}
		return err
	})
	return a, err
}

// strList reads an array of strings, as jsonParser.strList does.
func (d *LineDecoder) strList() ([]string, error) {
	var out []string
	err := d.p.elements(func() error {
		s, err := d.str()
		out = append(out, s)
		return err
	})
	return out, err
}

// str reads a string (an error for anything else), shared when the
// decoder has had it.
func (d *LineDecoder) str() (string, error) {
	p := &d.p
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", p.errorf("expected a string")
	}
	if raw, ok := plainToken(p.b[p.i+1:], maxLineStr); ok {
		p.i += len(raw) + 2
		return d.shared(raw), nil
	}
	return p.str()
}

// shared returns string(raw), the decoder's copy when it has one.
func (d *LineDecoder) shared(raw []byte) string {
	n := d.nStrs
	d.nStrs++
	if n < len(d.seqStrs) && d.seqStrs[n] == string(raw) {
		return d.seqStrs[n]
	}
	s, ok := d.strs[string(raw)]
	if !ok {
		s = string(raw)
		if d.strs == nil {
			d.strs = map[string]string{}
		}
		if len(d.strs) < maxLineShared {
			d.strs[s] = s
		}
	}
	if n < len(d.seqStrs) {
		d.seqStrs[n] = s
	} else if n < maxLineShared {
		d.seqStrs = append(d.seqStrs, s)
	}
	return s
}

// sharedVal returns the value d has for the JSON text tok, if it has
// one.
func (d *LineDecoder) sharedVal(tok []byte) (any, bool) {
	n := d.nVals
	if n < len(d.seqVals) && d.seqVals[n].tok == string(tok) {
		d.nVals++
		return d.seqVals[n].v, true
	}
	v, ok := d.vals[string(tok)]
	if ok {
		d.seqVal(tok, v)
	}
	return v, ok
}

// seqVal records v, of JSON text tok, as the line's next value.
func (d *LineDecoder) seqVal(tok []byte, v any) {
	n := d.nVals
	d.nVals++
	if n < len(d.seqVals) {
		d.seqVals[n] = seqVal{string(tok), v}
	} else if n < maxLineShared {
		d.seqVals = append(d.seqVals, seqVal{string(tok), v})
	}
}

// plainToken returns the bytes of b before its first '"' when they are at
// most max plain ASCII characters (no escape, no control character):
// the string as jsonParser.str decodes it.
func plainToken(b []byte, max int) ([]byte, bool) {
	for j := 0; j < len(b) && j <= max; j++ {
		switch c := b[j]; {
		case c == '"':
			return b[:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// value reads a JSON value as jsonParser.value does, sharing short
// strings and numbers (boxed values are immutable) and the names of
// object members.
func (d *LineDecoder) value(depth int) (any, error) {
	p := &d.p
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		m := make(map[string]any)
		err := p.members(func(k []byte) error {
			v, err := d.value(depth + 1)
			m[d.shared(k)] = v // the last duplicate wins, as in encoding/json
			return err
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	case c == '[':
		a := []any{}
		err := p.elements(func() error {
			v, err := d.value(depth + 1)
			a = append(a, v)
			return err
		})
		if err != nil {
			return nil, err
		}
		return a, nil
	case c == '"':
		if raw, ok := plainToken(p.b[p.i+1:], maxLineVal); ok {
			tok := p.b[p.i : p.i+len(raw)+2]
			p.i += len(tok)
			if v, ok := d.sharedVal(tok); ok {
				return v, nil
			}
			return d.keep(tok, d.shared(raw)), nil
		}
		return p.internedStr()
	case c == '-' || (c >= '0' && c <= '9'):
		end := p.i + 1
		for end < len(p.b) && end-p.i <= maxLineVal && numberByte(p.b[end]) {
			end++
		}
		tok := p.b[p.i:end]
		if v, ok := d.sharedVal(tok); ok {
			p.i = end
			return v, nil
		}
		v, err := p.number()
		if err == nil && p.i == end && len(tok) <= maxLineVal && (end == len(p.b) || !numberByte(p.b[end])) {
			d.keep(tok, v)
		}
		return v, err
	default:
		return p.value(depth)
	}
}

// keep shares v, the value of the JSON text tok, and returns it.
func (d *LineDecoder) keep(tok []byte, v any) any {
	if d.vals == nil {
		d.vals = map[string]any{}
	}
	if len(d.vals) < maxLineShared {
		d.vals[string(tok)] = v
	}
	d.seqVal(tok, v)
	return v
}

// numberByte reports whether c can be part of a JSON number.
func numberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}
