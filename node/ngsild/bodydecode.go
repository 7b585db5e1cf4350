package ngsild

import (
	"errors"
	"time"
)

// Batch bodies are mostly entities of one plain shape: an id, one type and
// normalized attributes (Property, GeoProperty, Relationship) with
// observedAt, unitCode or datasetId. Parsing such an entity into maps
// (parseJSON) and converting the maps (decodeEntity) built a map per
// attribute only to read it once. decodeBodyEntity reads that shape
// straight into the Entity with the record decoder's walkers (record.go).
//
// It decides nothing on its own: anything it does not know (another
// member, a duplicate member, a list, a bare value, a value it would have
// to reject) returns errBodyShape, and the caller decodes the body the
// generic way, which gives the accepted entity or the error the client
// sees. FuzzParseEntity checks that an entity it accepts is the one the
// generic decoder makes.

// errBodyShape says a body is not of the plain shape decodeBodyEntity
// reads; the generic decoder decides what it is.
var errBodyShape = errors.New("entity body is not of the plain shape the fast decoder reads")

// decodeBodyEntity decodes an entity body of the plain shape, expanding
// names with tc, or returns errBodyShape. The entity has an id and a type.
func decodeBodyEntity(b []byte, tc *termContext, now time.Time) (*Entity, error) {
	p := jsonParser{b: b}
	e := &Entity{Attrs: make(map[string][]*Attribute, 24), CreatedAt: now, ModifiedAt: now}
	// The one-instance lists are cut from a shared array, one allocation
	// for all of them; a list has no room to grow into its neighbour's.
	var lists []*Attribute
	err := p.members(func(k []byte) error {
		switch string(k) {
		case "id":
			if e.ID != "" || !p.at('"') {
				return errBodyShape
			}
			s, err := p.str()
			if err != nil || !isURI(s) {
				return errBodyShape
			}
			e.ID = s
			return nil
		case "type":
			if e.Types != nil || !p.at('"') {
				return errBodyShape
			}
			s, err := p.internedStr()
			if err != nil || checkName(s) != nil {
				return errBodyShape
			}
			e.Types = []string{tc.expand(s)}
			return nil
		}
		if entityReserved[string(k)] || !plainName(k) {
			return errBodyShape
		}
		iri, ok := tc.terms[string(k)] // what expand gives, without a string for the name
		if !ok {
			iri = tc.expand(string(k))
		}
		if _, dup := e.Attrs[iri]; dup {
			return errBodyShape
		}
		if len(lists) == cap(lists) {
			lists = make([]*Attribute, 0, 24)
		}
		a := new(Attribute)
		if err := p.bodyAttr(a, now); err != nil {
			return err
		}
		lists = append(lists, a)
		e.Attrs[iri] = lists[len(lists)-1 : len(lists) : len(lists)]
		return nil
	})
	if err != nil {
		return nil, errBodyShape
	}
	if p.skipSpace(); p.i != len(p.b) || e.ID == "" || len(e.Types) == 0 {
		return nil, errBodyShape
	}
	return e, nil
}

// plainName reports whether checkName accepts n. Only ASCII bytes can be
// forbidden characters, so the bytes are checked without decoding runes or
// making a string.
func plainName(n []byte) bool {
	if len(n) == 0 {
		return false
	}
	for _, c := range n {
		switch {
		case c < 0x20, c == '<', c == '>', c == '"', c == '\'', c == '=', c == ';', c == '(', c == ')', c == '\\', c == ' ':
			return false
		}
	}
	return true
}

// bodyAttr reads a normalized attribute object of the plain shape into a
// (a zero Attribute).
func (p *jsonParser) bodyAttr(a *Attribute, now time.Time) error {
	if !p.at('{') {
		return errBodyShape
	}
	a.CreatedAt, a.ModifiedAt = now, now
	const (
		hasType = 1 << iota
		hasValue
		hasObject
		hasObservedAt
		hasUnitCode
		hasDatasetID
	)
	seen := 0
	once := func(bit int) error {
		if seen&bit != 0 {
			return errBodyShape
		}
		seen |= bit
		return nil
	}
	str := func() (string, error) {
		if !p.at('"') {
			return "", errBodyShape
		}
		return p.internedStr()
	}
	err := p.members(func(k []byte) error {
		var err error
		var s string
		switch string(k) {
		case "type":
			if err = once(hasType); err == nil {
				s, err = str()
				a.Type = AttrType(s)
			}
		case "value":
			if err = once(hasValue); err == nil {
				a.Value, err = p.value(2)
			}
		case "object":
			if err = once(hasObject); err == nil {
				a.Object, err = str()
			}
		case "observedAt":
			if err = once(hasObservedAt); err == nil {
				if p.sameStr(p.lastObserved) {
					// Accepted before; a date has no escapes.
					a.ObservedAt = p.lastObserved
					break
				}
				if s, err = str(); err == nil && !isDateTime(s) {
					err = errBodyShape
				}
				a.ObservedAt = s
				if err == nil {
					p.lastObserved = s
				}
			}
		case "unitCode":
			if err = once(hasUnitCode); err == nil {
				if s, err = str(); err == nil && s == "" {
					err = errBodyShape
				}
				a.UnitCode = s
			}
		case "datasetId":
			if err = once(hasDatasetID); err == nil {
				if s, err = str(); err == nil && !isURI(s) {
					err = errBodyShape
				}
				a.DatasetID = s
			}
		default:
			err = errBodyShape
		}
		return err
	})
	if err != nil {
		return errBodyShape
	}
	if seen&hasType == 0 {
		return errBodyShape
	}
	switch a.Type {
	case Property:
		if seen&hasObject != 0 || a.Value == nil {
			return errBodyShape
		}
	case GeoProperty:
		g, ok := a.Value.(map[string]any)
		if !ok || seen&hasObject != 0 {
			return errBodyShape
		}
		if _, err := geometryFromJSON(g); err != nil {
			return errBodyShape
		}
	case Relationship:
		o, _ := a.Object.(string)
		if seen&hasValue != 0 || !isURI(o) {
			return errBodyShape
		}
	default:
		return errBodyShape
	}
	return nil
}

// at reports whether the next byte is c.
func (p *jsonParser) at(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }
