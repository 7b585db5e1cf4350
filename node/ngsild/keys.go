package ngsild

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/golang/geo/s2"
	"github.com/paulmach/orb"

	"github.com/mimnode/mimnode/node/store"
)

// Key layout under store.PrefixNGSILD ("n/"). NUL separates variable parts:
// entity ids are URIs and IRIs never contain it, so the id is whatever
// follows the last NUL of an index key.
//
//	n/e/<id>                                  seq of the feed record holding the entity's
//	                                          current state (8 bytes BE)
//	n/T/<type code, 4 bytes BE><id>           type index; the code is the type IRI's number in
//	                                          n/hd/ (attrCodes), as in history keys
//	n/t/<typeIRI> 00 <id>                     type index written before: migrated to n/T/ at
//	                                          start (migrateIndexKeys)
//	n/V/<attr code, 4 bytes BE><value> 00 <id>
//	                                          value index, for the attributes in n/i/: top-level
//	                                          Property values that are numbers, strings (first
//	                                          96 bytes) or booleans, and Relationship objects;
//	                                          <value> starts with 'n' + order-preserving
//	                                          float64, 's' + bytes, 'b' + 0/1
//	n/v/<attrIRI> 00 <value> 00 <id>          value index written before: migrated to n/V/
//	n/i/<attrIRI>                             attribute with a value index: 'b' building, 'r' ready
//	n/G/<attr code, 4 bytes BE><S2 cell, 8 bytes BE><id>
//	                                          spatial index: leaf cell of a Point, or the
//	                                          cells covering another geometry's bounding box
//	n/g/<attrIRI> 00 <S2 cell, 8 bytes BE><id> spatial index written before: migrated to n/G/
//	n/k/<typeIRI> 00                          count of entities of a type (uint64 BE)
//	n/k/<typeIRI> 00 <attrIRI> 00 <attrType>  count of those entities with the attribute
//	n/K/<attrIRI> 00 <attrType>               count of the attribute's instances of the
//	                                          attribute type in all entities: attributeCount
//	n/Kr                                      n/K/ counts every entity (migrateInstanceCounts)
//	n/f/<seq, 8 bytes BE>                     change feed: header (binary, feedHeader; JSON in
//	                                          records written before; id and types only for
//	                                          a delete) + the entity's state, packed JSON of
//	                                          Entity with expanded names (appendChange,
//	                                          packEntity, decodeChange)
//	n/q                                       last sequence number given out (uint64 BE)
//	n/qt                                      trim mark: Changes starts at or after it
//	n/c/<url>                                 JSON-LD context store (the document)
//	n/cm/<url>                                its kind and time stored (contextMeta)
//	n/h/<id> 00 <^instant><seq>               attribute history: the instances of one write
//	                                          with one instant, or a reference to feed record
//	                                          seq holding them (history.go has the details)
//	n/ha/<id> 00 <attr code>                  the entity has history of the attribute
//	n/hd/<IRI>                                code of an attribute or type IRI, used in history
//	                                          and index keys (uint32 BE)
//	n/s/<subscription id>                     subscription: JSON (subscription.go)
//	n/sc                                      subscription delivery cursor: last change
//	                                          seq matched (uint64 BE)
//	n/o/<scope> 00 <id>                       scope index (scope.go)
//	n/m/<typeIRI>                             schema binding an admin added (MIM2): JSON
//	                                          {"context": URL, "schema": JSON Schema}
//
// Every entity write updates its entity key, index keys, counters and one
// feed record in one badger transaction. Each entity state is stored once,
// in its feed record, which the entity key points at. Type, spatial and
// value index keys name the IRI by its code: the IRI took half or more of
// each key, and every byte written is copied into badger's log, memtable
// and tables (an AirQualityObserved create: 213 bytes of type and spatial
// keys to 114, and ~55 fewer per value key).
const (
	keyEntity    = store.PrefixNGSILD + "e/"
	keyType      = store.PrefixNGSILD + "T/"
	keyTypeIRI   = store.PrefixNGSILD + "t/" // written before (migrateIndexKeys)
	keyValue     = store.PrefixNGSILD + "V/"
	keyValueIRI  = store.PrefixNGSILD + "v/" // written before (migrateIndexKeys)
	keyGeo       = store.PrefixNGSILD + "G/"
	keyGeoIRI    = store.PrefixNGSILD + "g/" // written before (migrateIndexKeys)
	keyCount     = store.PrefixNGSILD + "k/"
	keyInstCount = store.PrefixNGSILD + "K/"
	keyInstReady = store.PrefixNGSILD + "Kr"
	keyFeed      = store.PrefixNGSILD + "f/"
	keyContext   = store.PrefixNGSILD + "c/"
	keyCtxMeta   = store.PrefixNGSILD + "cm/" // contextMeta of each keyContext document
	keySeq       = store.PrefixNGSILD + "q"
	keyTrim      = store.PrefixNGSILD + "qt"
	keyModel     = store.PrefixNGSILD + "m/"
	keyIndexed   = store.PrefixNGSILD + "i/"
	keyHist      = store.PrefixNGSILD + "h/"
	keyHistCode  = store.PrefixNGSILD + "hd/"
	keyHistAttr  = store.PrefixNGSILD + "ha/"
	keySub       = store.PrefixNGSILD + "s/"
	keySubCur    = store.PrefixNGSILD + "sc"
)

// maxIndexedString is how much of a string value the value index keeps;
// longer values match by prefix and are checked against the entity.
const maxIndexedString = 96

// spatial index cell levels: points use leaf cells; other geometries are
// covered with at most geoMaxCells cells between these levels.
const (
	geoMinLevel = 2
	geoMaxLevel = 20
	geoMaxCells = 8
)

func entityKey(id string) []byte { return []byte(keyEntity + id) }

// typeKey is the type index key of id under the type coded typ (attrCodes;
// 0, never given out, for a type with no code, which no key has).
func typeKey(typ uint32, id string) []byte {
	b := make([]byte, 0, len(keyType)+4+len(id))
	b = binary.BigEndian.AppendUint32(append(b, keyType...), typ)
	return append(b, id...)
}

func typePrefix(typ uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte(keyType), typ)
}

func feedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(keyFeed), seq)
}

// valuePrefix is the prefix of the value index keys of the attribute coded
// attr (0, never given out, for an attribute with no code: no key has it).
func valuePrefix(attr uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte(keyValue), attr)
}

// migrateIndexKeys rewrites the type, spatial and value index keys of a
// store written before, which name the IRI (n/t/<typeIRI> 00 <id>,
// n/g/<attrIRI> 00 <cell><id>, n/v/<attrIRI> 00 <value> 00 <id>), into keys
// naming its code (n/T/, n/G/, n/V/), in batches: a start cut short leaves
// the rest to the next. New runs it before the service reads or writes
// anything (and before value index builds resume).
func (s *Service) migrateIndexKeys() error {
	for _, m := range [...]struct{ from, to string }{{keyTypeIRI, keyType}, {keyGeoIRI, keyGeo}, {keyValueIRI, keyValue}} {
		for {
			var from, to [][]byte
			err := s.db.View(func(tx *store.Txn) error {
				return tx.Iterate(store.IterOptions{Prefix: []byte(m.from), KeysOnly: true}, func(k, _ []byte) error {
					if len(from) >= 10000 {
						return store.ErrStop
					}
					rest := k[len(m.from):]
					i := bytes.IndexByte(rest, 0)
					if i < 0 {
						return fmt.Errorf("corrupt index key %q", k)
					}
					code, err := s.codes.assign(s.db, string(rest[:i]))
					if err != nil {
						return err
					}
					nk := binary.BigEndian.AppendUint32(append(make([]byte, 0, len(m.to)+4+len(rest)-i-1), m.to...), code)
					from, to = append(from, bytes.Clone(k)), append(to, append(nk, rest[i+1:]...))
					return nil
				})
			})
			if err != nil {
				return fmt.Errorf("migrate index keys: %w", err)
			}
			if len(from) == 0 {
				break
			}
			b := s.db.NewBatch()
			for i := range from {
				if err := b.Set(to[i], nil); err != nil {
					b.Cancel()
					return fmt.Errorf("migrate index keys: %w", err)
				}
				if err := b.Delete(from[i]); err != nil {
					b.Cancel()
					return fmt.Errorf("migrate index keys: %w", err)
				}
			}
			if err := b.Flush(); err != nil {
				return fmt.Errorf("migrate index keys: %w", err)
			}
		}
	}
	return nil
}

// encodeIndexValue returns the sortable encoding of v, ok false when v is
// not indexed.
func encodeIndexValue(b []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case float64:
		b = append(b, 'n')
		return binary.BigEndian.AppendUint64(b, sortableFloat(x)), true
	case string:
		b = append(b, 's')
		if len(x) > maxIndexedString {
			x = x[:maxIndexedString]
		}
		return append(b, x...), true
	case bool:
		b = append(b, 'b')
		if x {
			return append(b, 1), true
		}
		return append(b, 0), true
	case map[string]any:
		// {"@type": "DateTime", "@value": "..."} indexes as its string.
		if s, ok := x["@value"].(string); ok {
			return encodeIndexValue(b, s)
		}
	}
	return nil, false
}

// sortableFloat maps a float64 to a uint64 with the same order.
func sortableFloat(f float64) uint64 {
	u := math.Float64bits(f)
	if u>>63 == 1 {
		return ^u
	}
	return u | 1<<63
}

func idAfterLastNUL(k []byte) string {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == 0 {
			return string(k[i+1:])
		}
	}
	return ""
}

func geoPrefix(attr uint32) []byte { return binary.BigEndian.AppendUint32([]byte(keyGeo), attr) }

// geoCells returns the S2 cells a geometry is indexed under.
func geoCells(g orb.Geometry) []s2.CellID {
	if p, ok := g.(orb.Point); ok {
		return []s2.CellID{s2.CellIDFromLatLng(s2.LatLngFromDegrees(p[1], p[0]))}
	}
	rc := &s2.RegionCoverer{MinLevel: geoMinLevel, MaxLevel: geoMaxLevel, MaxCells: geoMaxCells}
	return []s2.CellID(rc.Covering(boundToRect(g.Bound())))
}

func boundToRect(b orb.Bound) s2.Rect {
	r := s2.RectFromLatLng(s2.LatLngFromDegrees(b.Min[1], b.Min[0]))
	return r.AddPoint(s2.LatLngFromDegrees(b.Max[1], b.Max[0]))
}

// indexKeys returns every index key of e (type, spatial, and value keys of
// the attributes valued says are indexed), and adds e's counter
// contributions times sign to counts (unless counts is nil). code gives
// the codes of e's types and of its attributes with spatial or value keys
// (codeIndexed).
func indexKeys(e *Entity, code func(iri string) uint32, counts map[countKey]int64, sign int64, valued func(string) bool) map[string]struct{} {
	// Most attributes have no keys (only those with value indexes, and
	// geo cells, do): a map sized for two per attribute was mostly empty.
	keys := make(map[string]struct{}, len(e.Types)+len(e.Scope)+4)
	if counts != nil {
		eachCount(e, func(c countKey) { counts[c] += sign })
	}
	eachIndexKey(e, code, valued, func(k []byte) { keys[string(k)] = struct{}{} })
	return keys
}

// eachIndexKey calls fn with each index key of e (indexKeys), a new slice
// each time that fn may keep. A key may come more than once (two
// instances with the same value or cell).
func eachIndexKey(e *Entity, code func(iri string) uint32, valued func(string) bool, fn func(k []byte)) {
	for _, t := range e.Types {
		fn(typeKey(code(t), e.ID))
	}
	for _, sc := range e.Scope {
		fn(scopeKey(sc, e.ID))
	}
	for attr, insts := range e.Attrs {
		withValues := valued(attr)
		for _, a := range insts {
			switch a.Type {
			default:
				if withValues {
					addValueKeys(fn, code(attr), a, e.ID)
				}
			case GeoProperty:
				m, _ := a.Value.(map[string]any)
				g, err := geometryFromJSON(m)
				if err != nil {
					continue
				}
				pre := geoPrefix(code(attr))
				for _, c := range geoCells(g) {
					k := binary.BigEndian.AppendUint64(append(make([]byte, 0, len(pre)+8+len(e.ID)), pre...), uint64(c))
					fn(append(k, e.ID...))
				}
			}
		}
	}
}

// eachCount calls fn with each counter e adds one to (indexKeys): one per
// type, one per type and attribute type of each attribute, and the
// instance counter of each attribute instance (once per instance: an
// attribute with two instances of one attribute type adds two).
func eachCount(e *Entity, fn func(countKey)) {
	for _, t := range e.Types {
		fn(countKey{typ: t})
	}
	for attr, insts := range e.Attrs {
		for i, a := range insts {
			fn(countKey{attr: attr, at: a.Type})
			if hasType(insts[:i], a.Type) {
				continue // counted with an earlier instance
			}
			for _, t := range e.Types {
				fn(countKey{typ: t, attr: attr, at: a.Type})
			}
		}
	}
}

// migrateInstanceCounts counts the attribute instances (n/K/) of a store
// written before they were kept, once: their counters and the mark that
// says they are complete (n/Kr) are written in one transaction, after
// reading every entity. New runs it before the service writes anything.
func (s *Service) migrateInstanceCounts() error {
	var ready bool
	counts := map[countKey]int64{}
	err := s.db.View(func(tx *store.Txn) error {
		var err error
		if ready, err = tx.Has([]byte(keyInstReady)); err != nil || ready {
			return err
		}
		keep := func(string) bool { return false } // types of instances only
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyEntity), KeysOnly: true}, func(k, _ []byte) error {
			e, err := getEntityKeeping(tx, string(k[len(keyEntity):]), keep)
			if err != nil || e == nil {
				return err
			}
			eachCount(e, func(c countKey) {
				if c.typ == "" { // an instance counter; the others are kept already
					counts[c]++
				}
			})
			return nil
		})
	})
	if err == nil && !ready {
		err = s.db.Update(func(tx *store.Txn) error {
			if err := applyCounts(tx, counts); err != nil {
				return err
			}
			return tx.Set([]byte(keyInstReady), []byte{1})
		})
	}
	if err != nil {
		return fmt.Errorf("count attribute instances: %w", err)
	}
	return nil
}

// hasType reports whether one of insts (an attribute's earlier
// instances) has type at: an entity counts once per attribute type,
// however many instances of it the attribute has, and of however many
// types (there are eight).
func hasType(insts []*Attribute, at AttrType) bool {
	for _, a := range insts {
		if a.Type == at {
			return true
		}
	}
	return false
}

// sameCounted reports whether a and b add the same counters (indexKeys):
// the same types in the same order, and the same attributes, each with
// instances of the same attribute types in the same order. It may say
// false for entities that do.
func sameCounted(a, b *Entity) bool {
	if !slices.Equal(a.Types, b.Types) || len(a.Attrs) != len(b.Attrs) {
		return false
	}
	for attr, bi := range b.Attrs {
		ai, ok := a.Attrs[attr]
		if !ok || len(ai) != len(bi) {
			return false
		}
		for i := range ai {
			if ai[i].Type != bi[i].Type {
				return false
			}
		}
	}
	return true
}

// valueKeys returns the value index keys of one attribute of e, coded
// code.
func valueKeys(e *Entity, attr string, code uint32) map[string]struct{} {
	keys := map[string]struct{}{}
	for _, a := range e.Attrs[attr] {
		addValueKeys(func(k []byte) { keys[string(k)] = struct{}{} }, code, a, e.ID)
	}
	return keys
}

// addValueKeys indexes what q compares (Entity.Values): a value or object,
// or each element of a list of them, as q matches any element (clause 4.9).
// It calls fn with each key (a new slice).
func addValueKeys(fn func(k []byte), attr uint32, a *Attribute, id string) {
	if a.Type == GeoProperty || a.Type == LanguageProperty {
		return
	}
	switch v := a.simpleValue().(type) {
	case []any:
		for _, x := range v {
			addValueKey(fn, attr, x, id)
		}
	default:
		addValueKey(fn, attr, v, id)
	}
}

func addValueKey(fn func(k []byte), attr uint32, v any, id string) {
	// Room for the longest value encoding: the key is built in one slice.
	b := make([]byte, 0, len(keyValue)+4+1+max(8, maxIndexedString)+1+len(id))
	b = binary.BigEndian.AppendUint32(append(b, keyValue...), attr)
	b, ok := encodeIndexValue(b, v)
	if !ok {
		return
	}
	b = append(b, 0)
	fn(append(b, id...))
}

// countKey names a counter: entities of a type (attr empty), those of
// them with an attribute of an attribute type, or (typ empty) the
// instances of an attribute of an attribute type in every entity.
type countKey struct {
	typ, attr string
	at        AttrType
}

func (c countKey) key() string {
	switch {
	case c.attr == "":
		return keyCount + c.typ + "\x00"
	case c.typ == "":
		return keyInstCount + c.attr + "\x00" + string(c.at)
	}
	return keyCount + c.typ + "\x00" + c.attr + "\x00" + string(c.at)
}

// splitCountKey parses a counter key into type, attribute and attribute type
// (the last two empty for an entity count).
func splitCountKey(k []byte) (typ, attr, attrType string) {
	parts := strings.SplitN(string(k[len(keyCount):]), "\x00", 3)
	typ = parts[0]
	if len(parts) == 3 {
		attr, attrType = parts[1], parts[2]
	}
	return typ, attr, attrType
}
