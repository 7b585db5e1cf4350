package ngsild

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Stored entities are decoded on every read and on every write that
// replaces an entity (the old state gives the index and history diff).
// Parsing them into generic maps first and converting those (storedAttrs)
// allocated a map per attribute instance and was most of the cost of
// reading an entity; decodeRecord reads the record format appendEntity
// writes straight into the Entity. Values (v, o, l) are still decoded by the
// generic parser, as they are whatever JSON the client sent.

// errRecordShape says a record has a member decodeRecord does not know;
// decodeEntityRecord then decodes it the generic way, so a field added to
// the format later is never dropped silently.
var errRecordShape = errors.New("stored entity has a member the fast decoder does not know")

// decodeRecord decodes a stored entity into e.
func decodeRecord(b []byte, e *Entity) error { return decodeRecordKeeping(b, e, nil) }

// decodeRecordKeeping decodes a stored entity into e; when keep is not
// nil, it is a summary: the values (v, o, l) of a top-level attribute are
// read only when keep says so or the attribute is a GeoProperty, and
// sub-attributes are skipped. A replace reads the state it replaces for
// its index keys, counters, createdAt and the attributes it removes, none
// of which needs the other values; building them was most of the cost of
// decoding it.
func decodeRecordKeeping(b []byte, e *Entity, keep func(attr string) bool) error {
	p := jsonParser{b: b}
	var am time.Time // the attributes' default modifiedAt, if the record has one
	err := p.members(func(k []byte) error {
		var err error
		switch string(k) {
		case "id":
			e.ID, err = p.str()
		case "t":
			e.Types, err = p.strList()
		case "sc":
			e.Scope, err = p.strList()
		case "a":
			e.Attrs, err = p.recordAttrs(1, keep)
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

// members calls fn for each member of the object at p, with p at the
// member's value; fn must consume the value. The key is only valid during
// the call.
func (p *jsonParser) members(fn func(key []byte) error) error {
	return p.list('{', '}', "object", func() error {
		k, err := p.key()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return p.errorf("expected ':'")
		}
		p.i++
		p.skipSpace()
		return fn(k)
	})
}

// key reads a member name without allocating when it has no escapes (the
// record's own member names never do).
func (p *jsonParser) key() ([]byte, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, p.errorf("expected a member name")
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			k := p.b[p.i+1 : j]
			p.i = j + 1
			return k, nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			s, err := p.str()
			return []byte(s), err
		}
	}
	return nil, p.errorf("unterminated string")
}

// elements calls fn for each element of the array at p, with p at the
// element; fn must consume it.
func (p *jsonParser) elements(fn func() error) error {
	return p.list('[', ']', "array", fn)
}

// list walks the comma-separated items between open and close, calling
// item with p at each one (never at the end of the input).
func (p *jsonParser) list(open, close byte, what string, item func() error) error {
	p.skipSpace()
	if p.i >= len(p.b) || p.b[p.i] != open {
		return p.errorf("expected an %s", what)
	}
	p.i++
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == close {
		p.i++
		return nil
	}
	for {
		if p.skipSpace(); p.i >= len(p.b) {
			return p.errorf("unterminated %s", what)
		}
		if err := item(); err != nil {
			return err
		}
		p.skipSpace()
		if p.i >= len(p.b) {
			return p.errorf("unterminated %s", what)
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case close:
			p.i++
			return nil
		default:
			return p.errorf("expected ',' or '%c'", close)
		}
	}
}

func (p *jsonParser) strList() ([]string, error) {
	var out []string
	err := p.elements(func() error {
		if p.b[p.i] != '"' {
			return p.errorf("expected a string")
		}
		s, err := p.str()
		out = append(out, s)
		return err
	})
	return out, err
}

// recordTime reads a timestamp appendTime wrote. The instances a write
// touched all carry its time, so the last one parsed is kept (lastTime)
// instead of parsing the same string again for each of them.
func (p *jsonParser) recordTime() (time.Time, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return time.Time{}, p.errorf("expected a time string")
	}
	if end := bytes.IndexByte(p.b[p.i+1:], '"'); end >= 0 {
		raw := p.b[p.i+1 : p.i+1+end]
		if p.lastTimeRaw != nil && bytes.Equal(raw, p.lastTimeRaw) {
			p.i += end + 2
			return p.lastTime, nil
		}
		if bytes.IndexByte(raw, '\\') < 0 {
			t, err := storedTime(string(raw))
			if err == nil {
				p.i += end + 2
				p.lastTimeRaw, p.lastTime = raw, t
			}
			return t, err
		}
	}
	s, err := p.str()
	if err != nil {
		return time.Time{}, err
	}
	return storedTime(s)
}

// recordAttrs reads an attribute map as appendAttrMap writes it (a
// summary when keep is not nil: decodeRecordKeeping).
func (p *jsonParser) recordAttrs(depth int, keep func(attr string) bool) (map[string][]*Attribute, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested too deeply")
	}
	hint := 0
	if depth == 1 {
		hint = int(lastAttrCount.Load())
	}
	out := make(map[string][]*Attribute, hint)
	// The one-instance lists are cut from a shared array (as in
	// decodeBodyEntity), one allocation for all of them; a list has no
	// room to grow into its neighbour's.
	var lists []*Attribute
	err := p.members(func(k []byte) error {
		name := attrName(k)
		var insts []*Attribute
		keepValue := keep == nil || keep(name)
		err := p.elements(func() error {
			a, err := p.recordAttr(depth+1, keep != nil, keepValue)
			if insts == nil {
				if len(lists) == cap(lists) {
					lists = make([]*Attribute, 0, max(hint, 8))
				}
				lists = append(lists, a)
				insts = lists[len(lists)-1 : len(lists) : len(lists)]
				return err
			}
			insts = append(insts, a)
			return err
		})
		if insts == nil {
			insts = []*Attribute{}
		}
		out[name] = insts
		return err
	})
	if depth == 1 && err == nil {
		lastAttrCount.Store(int32(min(len(out), maxAttrHint)))
	}
	return out, err
}

// lastAttrCount is the number of attributes of the entity record decoded
// last: the size the next one's map is made with, since the records a
// node reads (the states its writes replace, the entities a query
// returns) are mostly of one model, and a map of 20 grown from nothing is
// rehashed twice.
var lastAttrCount atomic.Int32

// maxAttrHint caps lastAttrCount: one huge entity does not make every
// later map huge.
const maxAttrHint = 64

// attrNames holds the attribute IRIs records name, shared by every
// decoded record instead of a string made for each (the same few dozen
// names, in every state a replace reads); guarded by attrNamesMu. It stops
// growing at maxAttrNames.
var (
	attrNamesMu sync.RWMutex
	attrNames   = map[string]string{}
)

const maxAttrNames = 4096

// attrName is string(k), shared when attrNames has it.
func attrName(k []byte) string {
	attrNamesMu.RLock()
	s, ok := attrNames[string(k)]
	full := len(attrNames) >= maxAttrNames
	attrNamesMu.RUnlock()
	if ok {
		return s
	}
	s = string(k)
	if full {
		return s // no write lock for a name a full table will not take
	}
	attrNamesMu.Lock()
	if len(attrNames) < maxAttrNames {
		attrNames[s] = s
	}
	attrNamesMu.Unlock()
	return s
}

// recordAttr reads one attribute instance; when summary is set, its
// sub-attributes are skipped, and its values too unless keepValue is set
// or it is a GeoProperty (appendAttribute writes the type first; a value
// seen before the type is kept).
func (p *jsonParser) recordAttr(depth int, summary, keepValue bool) (*Attribute, error) {
	a := new(Attribute)
	value := func() (any, error) {
		if summary && !keepValue && a.Type != "" && a.Type != GeoProperty {
			return nil, p.skipValue(depth + 1)
		}
		return p.value(depth + 1)
	}
	err := p.members(func(k []byte) error {
		var err error
		var s string
		switch string(k) {
		case "t":
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return p.errorf("expected a string")
			}
			s, err = p.internedStr() // the attribute types are interned
			a.Type = AttrType(s)
		case "v":
			a.Value, err = value()
		case "o":
			a.Object, err = value()
		case "l":
			var v any
			if v, err = value(); err == nil {
				a.LanguageMap, _ = v.(map[string]any)
			}
		case "d":
			a.DatasetID, err = p.recordStr()
		case "oa":
			a.ObservedAt, err = p.recordStr()
		case "u":
			a.UnitCode, err = p.recordStr()
		case "c":
			a.CreatedAt, err = p.recordTime()
		case "m":
			a.ModifiedAt, err = p.recordTime()
		case "s":
			if summary {
				return p.skipValue(depth + 1)
			}
			a.Sub, err = p.recordAttrs(depth+1, nil)
		default:
			return errRecordShape
		}
		return err
	})
	return a, err
}

// skipValue consumes the JSON value at p without building it.
func (p *jsonParser) skipValue(depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nested too deeply")
	}
	if p.i >= len(p.b) {
		return p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.members(func([]byte) error { return p.skipValue(depth + 1) })
	case c == '[':
		return p.elements(func() error { return p.skipValue(depth + 1) })
	case c == '"':
		for j := p.i + 1; j < len(p.b); j++ {
			switch p.b[j] {
			case '\\':
				j++
			case '"':
				p.i = j + 1
				return nil
			}
		}
		return p.errorf("unterminated string")
	case c == '-' || (c >= '0' && c <= '9'):
		j := p.i + 1
		for j < len(p.b) && (p.b[j] >= '0' && p.b[j] <= '9' || p.b[j] == '.' || p.b[j] == 'e' || p.b[j] == 'E' || p.b[j] == '+' || p.b[j] == '-') {
			j++
		}
		p.i = j
		return nil
	default:
		_, err := p.value(depth)
		return err
	}
}

func (p *jsonParser) recordStr() (string, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", p.errorf("expected a string")
	}
	return p.str()
}
