package ngsild

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/s2"

	"github.com/mimnode/mimnode/node/store"
)

// appendEntity encodes e as the JSON that encoding/json would produce for
// its struct tags (so json.Unmarshal reads it back), without reflection:
// encoding is on the write path of every entity, and reflection-based
// encoding cost more than the rest of a batch upsert together.
func appendEntity(b []byte, e *Entity) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"t":[`...)
	for i, t := range e.Types {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t)
	}
	b = append(b, ']')
	if len(e.Scope) > 0 {
		b = append(b, `,"sc":[`...)
		for i, sc := range e.Scope {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, sc)
		}
		b = append(b, ']')
	}
	if len(e.Attrs) > 0 {
		am := attrsModified(e)
		if !am.IsZero() {
			b = append(b, `,"am":`...)
			b = appendTime(b, am)
		}
		b = append(b, `,"a":`...)
		b = appendAttrMapModified(b, e.Attrs, e.CreatedAt, am)
	}
	b = append(b, `,"c":`...)
	b = appendTime(b, e.CreatedAt)
	b = append(b, `,"m":`...)
	b = appendTime(b, e.ModifiedAt)
	return append(b, '}')
}

// appendAttrMap encodes attribute instances. Timestamps equal to their
// default (createdAt: the parent's createdAt, modifiedAt: the instance's
// createdAt) are left out, which makes a typical stored entity 40% smaller;
// fillTimes restores them after decoding.
func appendAttrMap(b []byte, m map[string][]*Attribute, parentCreated time.Time) []byte {
	return appendAttrMapModified(b, m, parentCreated, time.Time{})
}

// attrsModified returns the modifiedAt an entity record gives as its
// attributes' default ("am"), or the zero time for none. A replace stamps
// every attribute with the write's modifiedAt while each keeps its
// createdAt, so without it each instance repeats the time (~700 of an
// AirQualityObserved's ~3,000 bytes before packing, ~65 after). An
// instance with a zero modifiedAt could not be told from one that takes
// the default, so then there is none.
func attrsModified(e *Entity) time.Time {
	if e.ModifiedAt.IsZero() {
		return time.Time{}
	}
	n := 0
	for _, insts := range e.Attrs {
		for _, a := range insts {
			switch {
			case a.ModifiedAt.IsZero():
				return time.Time{}
			case a.ModifiedAt.Equal(e.ModifiedAt) && !a.ModifiedAt.Equal(a.CreatedAt):
				n++
			}
		}
	}
	if n < 2 {
		return time.Time{}
	}
	return e.ModifiedAt
}

// appendAttrMapModified is appendAttrMap for instances whose default
// modifiedAt is modified instead of their createdAt (when not zero).
func appendAttrMapModified(b []byte, m map[string][]*Attribute, parentCreated, modified time.Time) []byte {
	// The names sorted in an array on the stack for the usual entity
	// (sortedKeys allocates on every write).
	var buf [32]string
	keys := appendSortedAttrNames(buf[:0], m)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ":["...)
		for j, a := range m[k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendAttribute(b, a, parentCreated, modified)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// lastAttrOrder holds the sorted attribute names of the entity encoded
// last. The entities a node writes are mostly of one model with the same
// attributes: appendSortedAttrNames looks those names up in the next
// entity instead of collecting and sorting its names (about a third of
// encoding an AirQualityObserved's attribute map).
var lastAttrOrder atomic.Pointer[[]string]

// maxAttrOrder caps the names lastAttrOrder keeps.
const maxAttrOrder = 64

// appendSortedAttrNames is appendSortedKeys for an entity's attributes;
// the slice returned may be lastAttrOrder's, which is never changed, so
// the caller only reads it.
func appendSortedAttrNames(keys []string, m map[string][]*Attribute) []string {
	if p := lastAttrOrder.Load(); p != nil && len(*p) == len(m) {
		// As many names, all in m: the same set, already sorted.
		same := true
		for _, k := range *p {
			if _, ok := m[k]; !ok {
				same = false
				break
			}
		}
		if same {
			return *p
		}
	}
	keys = appendSortedKeys(keys, m)
	if len(keys) <= maxAttrOrder {
		order := slices.Clone(keys)
		lastAttrOrder.Store(&order)
	}
	return keys
}

func appendAttribute(b []byte, a *Attribute, parentCreated, defModified time.Time) []byte {
	b = append(b, `{"t":`...)
	b = appendString(b, string(a.Type))
	if a.Value != nil {
		b = append(b, `,"v":`...)
		b = appendValue(b, a.Value)
	}
	if a.Object != nil {
		b = append(b, `,"o":`...)
		b = appendValue(b, a.Object)
	}
	if len(a.LanguageMap) > 0 {
		b = append(b, `,"l":`...)
		b = appendValue(b, a.LanguageMap)
	}
	for _, f := range [...]struct{ k, v string }{{"d", a.DatasetID}, {"oa", a.ObservedAt}, {"u", a.UnitCode}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.k...)
			b = append(b, `":`...)
			b = appendString(b, f.v)
		}
	}
	if !a.CreatedAt.Equal(parentCreated) {
		b = append(b, `,"c":`...)
		b = appendTime(b, a.CreatedAt)
	}
	if defModified.IsZero() {
		defModified = a.CreatedAt
	}
	if !a.ModifiedAt.Equal(defModified) {
		b = append(b, `,"m":`...)
		b = appendTime(b, a.ModifiedAt)
	}
	if len(a.Sub) > 0 {
		b = append(b, `,"s":`...)
		b = appendAttrMap(b, a.Sub, a.CreatedAt)
	}
	return append(b, '}')
}

// lastTime caches the most recent formatted timestamp: every instance of an
// entity written in one request carries the same createdAt/modifiedAt, and
// formatting them was a visible share of the write cost.
var lastTime struct {
	sync.Mutex
	t time.Time
	s []byte
}

func appendTime(b []byte, t time.Time) []byte {
	lastTime.Lock()
	if !lastTime.t.Equal(t) || lastTime.t.Location() != t.Location() || lastTime.s == nil {
		lastTime.t = t
		lastTime.s = append(t.AppendFormat(append(lastTime.s[:0], '"'), time.RFC3339Nano), '"')
	}
	b = append(b, lastTime.s...)
	lastTime.Unlock()
	return b
}

// appendValue encodes decoded JSON (maps with sorted keys, as encoding/json
// does); other types fall back to encoding/json.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return append(b, "null"...)
		}
		// The same formatting rule as encoding/json.
		abs := math.Abs(x)
		fmtc := byte('f')
		if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			fmtc = 'e'
		}
		b = strconv.AppendFloat(b, x, fmtc, -1, 64)
		if fmtc == 'e' {
			// e-07 becomes e-7, as encoding/json writes it.
			if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
				b[n-2] = b[n-1]
				b = b[:n-1]
			}
		}
		return b
	case bool:
		return strconv.AppendBool(b, x)
	case map[string]any:
		var buf [16]string // on the stack for the usual object
		keys := appendSortedKeys(buf[:0], x)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendValue(b, x[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, el := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, el)
		}
		return append(b, ']')
	}
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}

const hexDigits = "0123456789abcdef"

// plainJSON marks the ASCII bytes a JSON string holds unescaped.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString quotes s as JSON, escaping like encoding/json (HTML-safe).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	i := 0
	for i < len(s) && plainJSON[s[i]] {
		i++
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainJSON[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendChange encodes a feed record: a 4-byte length, the header, then
// the entity's stored bytes (absent for a delete). The entity key points at
// this record, so the bytes are not repeated anywhere else and reading an
// entity needs no second JSON scan. The header is binary (feedHeader):
// every byte of a record is copied into the write-ahead log and the
// memtable, and the JSON header it replaces was ~70 bytes. The id and
// types are in it only for a delete: the entity's bytes hold them
// otherwise (decodeChange). Records written before have a JSON header,
// with the id and types in it for every change before they were left out.
func appendChange(b []byte, rec *changeRecord) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, feedHeader)
	b = binary.AppendUvarint(b, rec.Seq)
	b = appendVarString(b, string(rec.Op))
	b = binary.AppendVarint(b, rec.At.Unix())
	b = binary.AppendUvarint(b, uint64(rec.At.Nanosecond()))
	var id string
	var types []string
	if len(rec.Entity) == 0 {
		id, types = rec.ID, rec.Types
	}
	b = appendVarString(b, id)
	b = appendVarStrings(b, types)
	b = appendVarStrings(b, rec.Removed)
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return append(b, rec.Entity...)
}

// feedHeader starts a binary feed record header: uvarint seq, op, varint
// Unix seconds and uvarint nanoseconds of at, id, types, removed
// attributes; strings are a uvarint length and the bytes, lists a uvarint
// count and the strings. A JSON header starts with '{'.
const feedHeader = 0x01

func appendVarString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendVarStrings(b []byte, list []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, s := range list {
		b = appendVarString(b, s)
	}
	return b
}

// errFeedShort is decodeFeedHeader's error for a header that ends early,
// made once rather than for every record decoded.
var errFeedShort = errors.New("truncated feed record header")

// decodeFeedHeader decodes a binary header (appendChange) after its first
// byte.
func decodeFeedHeader(h []byte, rec *changeRecord) error {
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(h)
		if n <= 0 {
			return 0, false
		}
		h = h[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := uvarint()
		if !ok || n > uint64(len(h)) {
			return "", false
		}
		s := string(h[:n])
		h = h[n:]
		return s, true
	}
	strs := func() ([]string, bool) {
		n, ok := uvarint()
		if !ok || n > uint64(len(h)) { // each string takes a byte at least
			return nil, false
		}
		if n == 0 {
			return nil, true
		}
		out := make([]string, n)
		for i := range out {
			if out[i], ok = str(); !ok {
				return nil, false
			}
		}
		return out, true
	}
	var ok bool
	if rec.Seq, ok = uvarint(); !ok {
		return errFeedShort
	}
	op, ok := str()
	if !ok {
		return errFeedShort
	}
	rec.Op = Op(op)
	sec, n := binary.Varint(h)
	if n <= 0 {
		return errFeedShort
	}
	h = h[n:]
	nsec, ok := uvarint()
	if !ok || nsec >= 1e9 {
		return errFeedShort
	}
	rec.At = time.Unix(sec, int64(nsec)).UTC()
	if rec.ID, ok = str(); !ok {
		return errFeedShort
	}
	if rec.Types, ok = strs(); !ok {
		return errFeedShort
	}
	if rec.Removed, ok = strs(); !ok {
		return errFeedShort
	}
	if len(h) != 0 {
		return errors.New("feed record header has trailing bytes")
	}
	return nil
}

// splitChange splits a feed record into its header and entity bytes.
func splitChange(v []byte) (header, entity []byte, err error) {
	if len(v) < 4 {
		return nil, nil, errors.New("short change record")
	}
	n := binary.BigEndian.Uint32(v)
	if uint64(n) > uint64(len(v)-4) {
		return nil, nil, errors.New("corrupt change record header")
	}
	return v[4 : 4+n], v[4+n:], nil
}

// fillModified gives the instances without a modifiedAt the record's
// default for them ("am", attrsModified), when it has one; fillTimes
// does the rest.
func fillModified(m map[string][]*Attribute, am time.Time) {
	if am.IsZero() {
		return
	}
	for _, insts := range m {
		for _, a := range insts {
			if a.ModifiedAt.IsZero() {
				a.ModifiedAt = am
			}
		}
	}
}

// fillTimes restores the timestamps appendAttrMap left out.
func fillTimes(m map[string][]*Attribute, parentCreated time.Time) {
	for _, insts := range m {
		for _, a := range insts {
			if a.CreatedAt.IsZero() {
				a.CreatedAt = parentCreated
			}
			if a.ModifiedAt.IsZero() {
				a.ModifiedAt = a.CreatedAt
			}
			fillTimes(a.Sub, a.CreatedAt)
		}
	}
}

// Entity states are stored packed (store.Pack: the JSON appendEntity
// writes, compressed in the Snappy block format). Attribute names are
// expanded IRIs that repeat the same few vocabularies, so an
// AirQualityObserved of 2,300 bytes packs into about 830, in 2 µs, and
// unpacks in 0.5 µs; every byte of a write is copied into the write-ahead
// log, the memtable and the level-0 table, which cost far more. Records
// written before packing are plain JSON and are read as they are.

// maxUnpackedEntity bounds what a packed record may claim to unpack to.
const maxUnpackedEntity = 64 << 20

// entityScratch holds the JSON of an entity while it is being packed.
var entityScratch = sync.Pool{New: func() any { return new([]byte) }}

// packEntity encodes e as stored: packed with entityDict.
func packEntity(e *Entity) []byte {
	bp := entityScratch.Get().(*[]byte)
	js := appendEntity((*bp)[:0], e)
	out := packEntityJSON(js)
	*bp = js
	entityScratch.Put(bp)
	return out
}

// entityDictMarker starts an entity state packed with entityDict: the
// Snappy block format (s2) whose copies may reach back into the
// dictionary. States packed before start with store.PackedMarker (no
// dictionary) and older ones are plain JSON ('{'); both read as they did.
const entityDictMarker = 0x04

// entityDictText is what nearly every stored entity spells out once and
// Snappy alone must write in full in each record (it only refers back
// within one): the members appendEntity writes and the IRIs of the core
// context and the Smart Data Models vocabularies. About 145 of an
// AirQualityObserved state's ~820 packed bytes. It is part of the stored
// format: never change it; another dictionary needs another marker.
const entityDictText = `{"id":"urn:ngsi-ld:` +
	`","t":["https://smartdatamodels.org/dataModel.` + `"],"a":{` +
	`"https://smartdatamodels.org/dataModel.` + `"https://smartdatamodels.org/` +
	`":[{"t":"Property","v":` + `"t":"Relationship","o":"urn:ngsi-ld:` +
	`"https://uri.etsi.org/ngsi-ld/location":[{"t":"GeoProperty","v":{"coordinates":[` + `],"type":"Point"}}]` +
	`"https://uri.etsi.org/ngsi-ld/default-context/` +
	`,"oa":"20` + `,"u":"` + `,"d":"urn:ngsi-ld:` + `T00:00:00Z"` +
	`},"c":"20` + `,"m":"20` + `,"am":"20`

// entityDict is entityDictText as an s2 dictionary; a block starts by
// repeating its first bytes (the start of every record).
var entityDict = s2.MakeDictManual([]byte(entityDictText), 0)

// packEntityJSON packs an entity state's JSON with entityDict, in a slice
// of its own length (as packExact).
func packEntityJSON(js []byte) []byte {
	return packPooled(js, entityDictMarker, entityDict.Encode)
}

// unpackDict unpacks a state packEntityJSON packed into buf's storage when
// it is large enough, failing (store.ErrPacked) as store.UnpackTo does.
func unpackDict(buf, b []byte) ([]byte, error) {
	n, err := s2.DecodedLen(b[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrPacked, err)
	}
	if n > maxUnpackedEntity {
		return nil, fmt.Errorf("%w: claims %d bytes, at most %d", store.ErrPacked, n, maxUnpackedEntity)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	js, err := entityDict.Decode(buf[:n], b[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrPacked, err)
	}
	return js, nil
}

// packScratch holds a value while packExact compresses it.
var packScratch = sync.Pool{New: func() any { return new([]byte) }}

// packExact returns store.Pack(js) (the same bytes) in a slice of its own
// length. Pack allocates the encoder's worst case, a little more than js,
// of which an entity state uses about a third; the slice is kept until
// the write commits, and every byte allocated on the write path is
// zeroed and collected. Here the encoder writes into a pooled buffer and
// only the result is copied out.
func packExact(js []byte) []byte {
	return packPooled(js, store.PackedMarker, s2.EncodeSnappy)
}

// packPooled returns marker followed by encode's block of js, encoded
// into a pooled buffer and copied out into a slice of its own length.
// A value too large for one block is left to store.Pack.
func packPooled(js []byte, marker byte, encode func(dst, src []byte) []byte) []byte {
	need := s2.MaxEncodedLen(len(js))
	if need < 0 {
		return store.Pack(js)
	}
	bp := packScratch.Get().(*[]byte)
	if cap(*bp) < need {
		*bp = make([]byte, need)
	}
	enc := encode((*bp)[:need], js)
	out := make([]byte, 1+len(enc))
	out[0] = marker
	copy(out[1:], enc)
	packScratch.Put(bp)
	return out
}

// unpackEntity returns the JSON of a stored entity.
func unpackEntity(b []byte) ([]byte, error) {
	var js []byte
	var err error
	if len(b) > 0 && b[0] == entityDictMarker {
		js, err = unpackDict(nil, b)
	} else {
		js, err = store.Unpack(b, maxUnpackedEntity)
	}
	if err != nil {
		return nil, fmt.Errorf("unpack stored entity: %w", err)
	}
	return js, nil
}

// unpackEntityInto is unpackEntity unpacking into *buf's storage (grown
// when short, and kept for the next call): store.Unpack allocates the JSON
// on every read. A plain record is returned as it is.
func unpackEntityInto(buf *[]byte, b []byte) ([]byte, error) {
	var js []byte
	var err error
	if len(b) > 0 && b[0] == entityDictMarker {
		js, err = unpackDict(*buf, b)
	} else {
		js, err = store.UnpackTo(*buf, b, maxUnpackedEntity)
	}
	if err != nil {
		return nil, fmt.Errorf("unpack stored entity: %w", err)
	}
	if len(b) > 0 && (b[0] == store.PackedMarker || b[0] == entityDictMarker) {
		*buf = js
	}
	return js, nil
}

// decodeEntityRecord decodes a stored entity (packed, or the JSON
// appendEntity writes), without reflection for the same reason as
// parseJSON.
func decodeEntityRecord(b []byte, e *Entity) error {
	return decodeEntityKeeping(b, e, nil)
}

// decodeEntityKeeping is decodeEntityRecord, decoding a summary when keep
// is not nil (decodeRecordKeeping); a record the fast decoder does not
// know is decoded in full.
func decodeEntityKeeping(b []byte, e *Entity, keep func(attr string) bool) error {
	b, err := unpackEntity(b)
	if err != nil {
		return err
	}
	return decodeJSONKeeping(b, e, keep)
}

// decodeJSONKeeping is decodeEntityKeeping on an unpacked record. The
// Entity shares no bytes with b.
func decodeJSONKeeping(b []byte, e *Entity, keep func(attr string) bool) error {
	if err := decodeRecordKeeping(b, e, keep); !errors.Is(err, errRecordShape) {
		return err
	}
	*e = Entity{}
	return decodeRecordGeneric(b, e)
}

// decodeRecordGeneric decodes a stored entity through parseJSON; it reads
// what decodeRecord does not know.
func decodeRecordGeneric(b []byte, e *Entity) error {
	v, err := parseJSON(b)
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("stored entity is not an object")
	}
	e.ID, _ = m["id"].(string)
	types, _ := m["t"].([]any)
	e.Types = make([]string, 0, len(types))
	for _, t := range types {
		if s, ok := t.(string); ok {
			e.Types = append(e.Types, s)
		}
	}
	if sc, ok := m["sc"].([]any); ok {
		for _, x := range sc {
			if s, ok := x.(string); ok {
				e.Scope = append(e.Scope, s)
			}
		}
	}
	if e.CreatedAt, err = storedTime(m["c"]); err != nil {
		return err
	}
	if e.ModifiedAt, err = storedTime(m["m"]); err != nil {
		return err
	}
	if e.Attrs, err = storedAttrs(m["a"]); err != nil {
		return err
	}
	if e.Attrs == nil {
		e.Attrs = map[string][]*Attribute{}
	}
	am, err := storedTime(m["am"])
	if err != nil {
		return err
	}
	fillModified(e.Attrs, am)
	fillTimes(e.Attrs, e.CreatedAt)
	return nil
}

func storedTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, nil // elided: fillTimes supplies it
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

func storedAttrs(v any) (map[string][]*Attribute, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil
	}
	out := make(map[string][]*Attribute, len(m))
	for name, list := range m {
		insts, _ := list.([]any)
		as := make([]*Attribute, 0, len(insts))
		for _, x := range insts {
			am, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("stored attribute %s is not an object", name)
			}
			a := &Attribute{Value: am["v"], Object: am["o"]}
			t, _ := am["t"].(string)
			a.Type = AttrType(t)
			a.LanguageMap, _ = am["l"].(map[string]any)
			a.DatasetID, _ = am["d"].(string)
			a.ObservedAt, _ = am["oa"].(string)
			a.UnitCode, _ = am["u"].(string)
			var err error
			if a.CreatedAt, err = storedTime(am["c"]); err != nil {
				return nil, err
			}
			if a.ModifiedAt, err = storedTime(am["m"]); err != nil {
				return nil, err
			}
			if a.Sub, err = storedAttrs(am["s"]); err != nil {
				return nil, err
			}
			as = append(as, a)
		}
		out[name] = as
	}
	return out, nil
}
