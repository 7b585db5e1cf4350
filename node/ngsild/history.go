package ngsild

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// Attribute history (the temporal API's storage).
//
// Every attribute instance a write touches is kept as a temporal instance,
// in the same transaction as the entity change. The instances of one write
// that share an instant (observedAt when the instance has one, otherwise
// its modifiedAt) share one record:
//
//	n/h/<id> 00 <^instant, 8 bytes BE> <seq, 8 bytes BE>   02 <modifiedAt, 8 bytes BE>, then entries:
//	                                                      <attr code, uvarint> <length, uvarint>
//	                                                      <instance without its modifiedAt>
//	                                                      (records written before, and records
//	                                                      whose instances differ in modifiedAt:
//	                                                      entries <attr code, 4 bytes BE>
//	                                                      <length, 4 bytes BE> <instance>)
//	                                                      (records the write path writes:
//	                                                      03 <attr codes, uvarint each>,
//	                                                      histFeed, the instances being in
//	                                                      the feed record seq)
//	n/ha/<id>                                              codes of the attributes id has
//	                                                      history of, 4 bytes BE each
//
// Storing the instant complemented puts the newest record first, so lastN
// reads the first records that hold the attribute and a time range is one
// key-range scan. One key per attribute instance cost as much to write as
// the entity itself (an AirQualityObserved has 20 attributes, about two
// distinct instants); one per instant keeps history at a fraction of it.
// The marker lists, with the attributes of the entity's current state,
// the attributes it has history of without reading that history; it is
// written only when an attribute leaves the state (a replace or update
// dropping it, the entity's delete) or explicit instances bring one the
// state does not have, so a create or a replace of the same attributes
// writes none. Markers written before list every attribute and read as
// they did.
//
// Attribute IRIs are numbered (n/hd/<attrIRI> holds the code); the few
// codes are kept in memory.
//
// A record's value is stored packed (store.Pack) when that is smaller:
// history is a third of the bytes of an entity write, and every byte is
// copied into badger's log, memtable and tables. The instances of one
// write share their modifiedAt, so a record says it once (histShared)
// and numbers its entries in varints: an AirQualityObserved write's
// history packs into ~90 bytes less than with 8 bytes of modifiedAt and
// 8 of code and length per instance. A plain value of the older layout
// starts with an attribute code, whose first byte is 0 (codes are
// numbered from 1 and stay below 2^24, maxAttrCodes), so it is told from
// a packed value (store.PackedMarker) and a shared one (histShared);
// packHistory packs any value that starts with the marker whatever its
// size.
//
// The instances a write stamps are all in the entity state its feed
// record holds, so the write path stores no copy of them: its records
// refer to the feed record (histFeed) and list the attributes' codes, and
// readers (histReader) make of them the records historyOf would have
// written, from the state, before decoding entries. That halves the
// bytes of history a write copies into badger's log, memtable and tables
// (an AirQualityObserved write: ~540 bytes of values to ~25). The feed
// record outlives them: TrimChanges writes the full records out before
// dropping a feed record (writeOutHistory). Explicit instances (POST
// /temporal/entities) are not in the state and are stored in full.
//
// instanceId is urn:ngsi-ld:Instance:<^instant>-<seq>-<code>-<n> in hex
// (n counts the attribute's instances in the record, one per datasetId),
// so an instance is found with one key read.

const instancePrefix = "urn:ngsi-ld:Instance:"

// maxUnpackedHistory bounds what a packed history record may claim to
// unpack to.
const maxUnpackedHistory = 64 << 20

// histShared starts a record whose instances share one modifiedAt.
const histShared = 0x02

// histFeed starts a record whose instances are in its write's feed record
// (the seq of its key): the instances of the entity state there that have
// the state's modifiedAt and are filed under the record's instant, which
// is what the write stamped. The codes of their attributes follow as
// uvarints, so a reader of one attribute skips the records without it.
// Readers resolve it (histReader) to the record historyOf would have
// written; TrimChanges writes that record out before it drops the feed
// record.
const histFeed = 0x03

// maxAttrCodes bounds attribute codes: a code of the older record layout
// is its first 4 bytes, whose first byte must stay 0 to tell it from
// store.PackedMarker and histShared.
const maxAttrCodes = 1<<24 - 1

// packHistory returns a history record's value as stored: packed, or a
// copy of v (historyOf builds v in a buffer it reuses).
func packHistory(v []byte) []byte {
	if p := packExact(v); len(p) < len(v) || (len(v) > 0 && v[0] == store.PackedMarker) {
		return p
	}
	return bytes.Clone(v)
}

// histScratch holds a history record of a write while historyOf builds
// it; the value stored is packed (or copied) out of it.
var histScratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// histRecordSuffix is the length of ^instant and seq after a history
// record key's entity prefix.
const histRecordSuffix = 16

func histEntityPrefix(id string) []byte {
	b := make([]byte, 0, len(keyHist)+len(id)+1+histRecordSuffix)
	b = append(b, keyHist...)
	b = append(b, id...)
	return append(b, 0)
}

func histMarkKey(id string) []byte { return []byte(keyHistAttr + id) }

// markCodes decodes a marker value: the codes, 4 bytes BE each.
func markCodes(v []byte) []uint32 {
	return appendMarkCodes(make([]uint32, 0, len(v)/4), v)
}

// appendMarkCodes appends the codes of a marker value to out.
func appendMarkCodes(out []uint32, v []byte) []uint32 {
	for ; len(v) >= 4; v = v[4:] {
		out = append(out, binary.BigEndian.Uint32(v))
	}
	return out
}

// attrCodes numbers attribute IRIs for history keys.
type attrCodes struct {
	mu   sync.RWMutex
	code map[string]uint32 // guarded by mu
	name map[uint32]string // guarded by mu
}

func loadAttrCodes(db *store.DB) (*attrCodes, error) {
	c := &attrCodes{code: map[string]uint32{}, name: map[uint32]string{}}
	err := db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyHistCode)}, func(k, v []byte) error {
			if len(v) != 4 {
				return fmt.Errorf("corrupt history code of %s", k[len(keyHistCode):])
			}
			n, iri := binary.BigEndian.Uint32(v), string(k[len(keyHistCode):])
			c.code[iri], c.name[n] = n, iri
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load history attribute codes: %w", err)
	}
	return c, nil
}

func (c *attrCodes) lookup(iri string) (uint32, bool) {
	c.mu.RLock()
	n, ok := c.code[iri]
	c.mu.RUnlock()
	return n, ok
}

// codeOf returns iri's code, 0 (never given out) when it has none.
func (c *attrCodes) codeOf(iri string) uint32 {
	n, _ := c.lookup(iri)
	return n
}

func (c *attrCodes) nameOf(n uint32) (string, bool) {
	c.mu.RLock()
	iri, ok := c.name[n]
	c.mu.RUnlock()
	return iri, ok
}

// assign returns iri's code, numbering it first (durably, before any
// history key can use it) when it is new.
func (c *attrCodes) assign(db *store.DB, iri string) (uint32, error) {
	if n, ok := c.lookup(iri); ok {
		return n, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.code[iri]; ok {
		return n, nil
	}
	if len(c.code) >= maxAttrCodes {
		return 0, fmt.Errorf("number attribute %s for history: %d attributes already have history", iri, len(c.code))
	}
	n := uint32(len(c.code) + 1)
	if err := db.Update(func(tx *store.Txn) error {
		return tx.Set([]byte(keyHistCode+iri), binary.BigEndian.AppendUint32(nil, n))
	}); err != nil {
		return 0, fmt.Errorf("number attribute %s for history: %w", iri, err)
	}
	c.code[iri], c.name[n] = n, iri
	return n, nil
}

// instantOf is the time an instance is filed under: observedAt when it is
// a valid date, else modifiedAt.
func instantOf(a *Attribute) time.Time {
	if a.ObservedAt != "" {
		if t, err := time.Parse(time.RFC3339Nano, a.ObservedAt); err == nil {
			return t
		}
	}
	return a.ModifiedAt
}

func revTime(t time.Time) uint64 { return ^uint64(t.UnixNano()) }

// fromRevTime is the instant revTime gave rt for.
func fromRevTime(rt uint64) time.Time { return time.Unix(0, int64(^rt)).UTC() }

// histEntry is one history record of a prepared write; seq is filled in
// (the 8 bytes after key) when the transaction gives out numbers.
type histEntry struct {
	key []byte // n/h/<id> 00 <^instant>
	val []byte
}

// historyOf lists the history records of a write from old to ne (the
// instances the write stamped: their modifiedAt is the entity's), or of
// exactly the explicit instances (POST /temporal/entities), and the new
// marker (markOf); tx, when not nil, is read for the stored marker.
func (s *Service) historyOf(tx *store.Txn, old, ne *Entity, explicit map[string][]*Attribute) (recs []histEntry, mark *histEntry, err error) {
	if recs, err = s.history(ne, explicit, histFull); err != nil {
		return nil, nil, err
	}
	mark, err = s.markOf(tx, ne.ID, old, ne, explicit, nil)
	return recs, mark, err
}

// feedHistoryOf is historyOf for a write's own instances, as the write
// path stores them: records that refer to the write's feed record
// (histFeed), which holds the instances in the entity's state.
func (s *Service) feedHistoryOf(tx *store.Txn, old, ne *Entity) (recs []histEntry, mark *histEntry, err error) {
	if recs, err = s.history(ne, nil, histRefs); err != nil {
		return nil, nil, err
	}
	mark, err = s.markOf(tx, ne.ID, old, ne, nil, nil)
	return recs, mark, err
}

// What history makes of a write's instances.
const (
	histFull     = iota // records holding the instances
	histRefs            // records referring to the write's feed record
	histResolved        // records holding the instances (resolving histFeed)
)

// history lists the history records of the write that made ne, or of the
// explicit instances, as mode says.
func (s *Service) history(ne *Entity, explicit map[string][]*Attribute, mode int) (recs []histEntry, err error) {
	src := ne.Attrs
	if explicit != nil {
		src = explicit
	}
	type group struct {
		at   time.Time
		val  []byte
		buf  *[]byte // from histScratch, holding val
		last uint32  // histRefs: the last code listed (0: none; codes start at 1)
	}
	var groupsBuf [4]group // a write's instances have one or two instants, as a rule
	groups := groupsBuf[:0]
	// A write's instances all have its modifiedAt; explicit ones
	// (temporal POST) may not.
	shared := explicit == nil
	defer func() {
		for _, g := range groups {
			*g.buf = g.val[:0]
			histScratch.Put(g.buf)
		}
	}()
	// Instances observed together carry the same observedAt: it is
	// parsed once (instantOf).
	var observed string
	var observedAt time.Time
	for attr, insts := range src {
		var code uint32
		coded := false
		for _, a := range insts {
			if explicit == nil && !a.ModifiedAt.Equal(ne.ModifiedAt) {
				continue
			}
			if !coded {
				if code, err = s.codes.assign(s.db, attr); err != nil {
					return nil, err
				}
				coded = true
			}
			var at time.Time
			if a.ObservedAt != "" && a.ObservedAt == observed {
				at = observedAt
			} else if at = instantOf(a); a.ObservedAt != "" && !at.Equal(a.ModifiedAt) {
				observed, observedAt = a.ObservedAt, at
			}
			g := -1
			for i := range groups {
				if groups[i].at.Equal(at) {
					g = i
					break
				}
			}
			if g < 0 {
				buf := histScratch.Get().(*[]byte)
				v := (*buf)[:0]
				switch {
				case mode == histRefs:
					v = append(v, histFeed)
				case shared:
					v = binary.BigEndian.AppendUint64(append(v, histShared), uint64(ne.ModifiedAt.UnixNano()))
				}
				groups = append(groups, group{at: at, val: v, buf: buf})
				g = len(groups) - 1
			}
			if mode != histRefs {
				groups[g].val = appendHistEntry(groups[g].val, shared, code, a, at)
			} else if groups[g].last != code {
				// An attribute's instances are listed together: its
				// code once per record.
				groups[g].val = binary.AppendUvarint(groups[g].val, uint64(code))
				groups[g].last = code
			}
		}
	}
	for _, g := range groups {
		if recs == nil {
			recs = make([]histEntry, 0, len(groups))
		}
		k := make([]byte, 0, len(keyHist)+len(ne.ID)+1+histRecordSuffix)
		k = append(append(append(k, keyHist...), ne.ID...), 0)
		k = binary.BigEndian.AppendUint64(k, revTime(g.at))
		var v []byte
		if mode == histRefs {
			v = bytes.Clone(g.val)
		} else {
			v = packHistory(g.val)
		}
		recs = append(recs, histEntry{key: k, val: v})
	}
	return recs, nil
}

// markOf returns the marker to write for the write of id from old to ne
// (nil: a delete), nil when the marker stored (or pending, the one an
// earlier change of the same commit set, by id) already lists what it
// must: the attributes with history that the state no longer has (or,
// explicit, never had). tx, when not nil, is read for the stored marker.
// A marker it returns is recorded in pending (when not nil).
func (s *Service) markOf(tx *store.Txn, id string, old, ne *Entity, explicit map[string][]*Attribute, pending map[string][]byte) (*histEntry, error) {
	var needBuf [16]uint32
	need := needBuf[:0]
	missing := func(attrs map[string][]*Attribute) {
		for attr := range attrs {
			if ne != nil && ne.Attrs[attr] != nil {
				continue
			}
			if c, ok := s.codes.lookup(attr); ok {
				need = append(need, c)
			}
		}
	}
	if old != nil {
		missing(old.Attrs)
	}
	missing(explicit)
	if len(need) == 0 {
		return nil, nil
	}
	key := histMarkKey(id)
	stored, ok := pending[id]
	if !ok && tx != nil {
		v, err := tx.Get(key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		stored = v
	}
	list := appendMarkCodes(make([]uint32, 0, len(stored)/4+len(need)), stored)
	n := len(list)
	for _, c := range need {
		if !slices.Contains(list[:n], c) {
			list = append(list, c)
		}
	}
	if len(list) == n {
		return nil, nil
	}
	slices.Sort(list)
	list = slices.Compact(list)
	val := make([]byte, 0, 4*len(list))
	for _, c := range list {
		val = binary.BigEndian.AppendUint32(val, c)
	}
	if pending != nil {
		pending[id] = val
	}
	return &histEntry{key: key, val: val}, nil
}

// appendInstance encodes a temporal instance filed under instant at: its
// modifiedAt (8 bytes BE nanoseconds; an instance is created when written,
// so that is its createdAt too), a flags byte, then the attribute as
// appendAttribute writes it without the timestamps, the type when it is
// Property, and observedAt when it is the record's instant (flag 1).
// History is written with every change, so its size is write cost.
//
// With own (an instance corrected after it was written, whose createdAt
// is no longer its modifiedAt) a's createdAt is the instance's and is
// kept in "c" (flag 2); otherwise "c" is only the time its sub-attributes
// take.
func appendInstance(b []byte, a *Attribute, at time.Time, own bool) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(a.ModifiedAt.UnixNano()))
	oa := a.ObservedAt
	var flags byte
	if oa != "" && len(oa) <= 40 && string(at.UTC().AppendFormat(make([]byte, 0, 40), time.RFC3339Nano)) == oa {
		flags, oa = instObservedAt, ""
	}
	if own {
		flags |= instOwnCreated
	}
	b = append(b, flags)
	b = append(b, '{')
	comma := false
	member := func(k string) {
		if comma {
			b = append(b, ',')
		}
		comma = true
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	if a.Type != Property {
		member("t")
		b = appendString(b, string(a.Type))
	}
	if a.Value != nil {
		member("v")
		b = appendValue(b, a.Value)
	}
	if a.Object != nil {
		member("o")
		b = appendValue(b, a.Object)
	}
	if len(a.LanguageMap) > 0 {
		member("l")
		b = appendValue(b, a.LanguageMap)
	}
	for _, f := range [...]struct{ k, v string }{{"d", a.DatasetID}, {"oa", oa}, {"u", a.UnitCode}} {
		if f.v != "" {
			member(f.k)
			b = appendString(b, f.v)
		}
	}
	if len(a.Sub) > 0 || own {
		member("c")
		b = appendTime(b, a.CreatedAt)
	}
	if len(a.Sub) > 0 {
		member("s")
		b = appendAttrMap(b, a.Sub, a.CreatedAt)
	}
	return append(b, '}')
}

// appendEntry appends an entry of the older record layout, an instance
// as appendInstance wrote it, to v: what records rewritten whole are
// written in.
func appendEntry(v []byte, code uint32, inst []byte) []byte {
	v = binary.BigEndian.AppendUint32(v, code)
	v = binary.BigEndian.AppendUint32(v, uint32(len(inst)))
	return append(v, inst...)
}

// appendHistEntry appends a's entry to a record: in the shared layout
// (histShared; a's modifiedAt is the record's) or the older one.
func appendHistEntry(v []byte, shared bool, code uint32, a *Attribute, at time.Time) []byte {
	if !shared {
		v = binary.BigEndian.AppendUint32(v, code)
		lenAt := len(v)
		v = appendInstance(append(v, 0, 0, 0, 0), a, at, false)
		binary.BigEndian.PutUint32(v[lenAt:], uint32(len(v)-lenAt-4))
		return v
	}
	// The instance is appended after room for its length and moved back
	// over what the varint does not use; it drops its first 8 bytes
	// (modifiedAt).
	v = binary.AppendUvarint(v, uint64(code))
	at0 := len(v)
	v = appendInstance(append(v, make([]byte, binary.MaxVarintLen64)...), a, at, false)
	inst := v[at0+binary.MaxVarintLen64+8:]
	n := binary.PutUvarint(v[at0:], uint64(len(inst)))
	m := copy(v[at0+n:], inst)
	return v[:at0+n+m]
}

// writeHistory stores a write's records under the write's sequence number.
func writeHistory(tx *store.Txn, recs []histEntry, mark *histEntry, seq uint64) error {
	for _, h := range recs {
		k := binary.BigEndian.AppendUint64(h.key, seq) // h.key has room for it
		if err := tx.Set(k, h.val); err != nil {
			return err
		}
	}
	if mark != nil {
		return tx.Set(mark.key, mark.val)
	}
	return nil
}

// recordEntries calls fn for each entry of a history record (as stored:
// packed or not, in either layout) until fn returns false. inst is the
// instance as appendInstance wrote it, modifiedAt first.
func recordEntries(v []byte, fn func(code uint32, inst []byte) bool) error {
	v, err := store.Unpack(v, maxUnpackedHistory)
	if err != nil {
		return fmt.Errorf("decode history record: %w", err)
	}
	if len(v) > 0 && v[0] == histShared {
		return sharedEntries(v[1:], fn)
	}
	if len(v) > 0 && v[0] == histFeed {
		return errors.New("decode history record: it refers to its feed record (histReader resolves it)")
	}
	for len(v) > 0 {
		if len(v) < 8 {
			return errors.New("decode history record: truncated entry")
		}
		code, n := binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])
		if uint64(n) > uint64(len(v)-8) {
			return errors.New("decode history record: entry overruns record")
		}
		if !fn(code, v[8:8+n]) {
			return nil
		}
		v = v[8+n:]
	}
	return nil
}

// sharedEntries is recordEntries for a record of the shared layout, after
// its first byte.
func sharedEntries(v []byte, fn func(code uint32, inst []byte) bool) error {
	if len(v) < 8 {
		return errors.New("decode history record: truncated entry")
	}
	mod := v[:8]
	for v = v[8:]; len(v) > 0; {
		code, k := binary.Uvarint(v)
		if k <= 0 || code > math.MaxUint32 {
			return errors.New("decode history record: truncated entry")
		}
		n, k2 := binary.Uvarint(v[k:])
		if k2 <= 0 {
			return errors.New("decode history record: truncated entry")
		}
		v = v[k+k2:]
		if n > uint64(len(v)) {
			return errors.New("decode history record: entry overruns record")
		}
		inst := make([]byte, 8+n)
		copy(inst[copy(inst, mod):], v[:n])
		if !fn(uint32(code), inst) {
			return nil
		}
		v = v[n:]
	}
	return nil
}

// histReader reads history records in one transaction, resolving those
// that refer to their write's feed record (histFeed). It keeps the last
// feed state it resolved, as records: a write's records (one per instant)
// are read one after the other.
type histReader struct {
	s    *Service
	tx   *store.Txn
	seq  uint64      // of recs
	recs []histEntry // the records feed record seq resolves to
	read bool        // recs holds those of seq (false before the first)
}

// entries is recordEntries for the record stored under history key k.
func (h *histReader) entries(k, v []byte, fn func(code uint32, inst []byte) bool) error {
	if len(v) == 0 || v[0] != histFeed {
		return recordEntries(v, fn)
	}
	full, err := h.resolve(k)
	if err != nil {
		return err
	}
	return recordEntries(full, fn)
}

// resolve returns the record, as historyOf writes it, of the histFeed
// record under history key k.
func (h *histReader) resolve(k []byte) ([]byte, error) {
	if len(k) < len(keyHist)+1+histRecordSuffix {
		return nil, errors.New("decode history record: short key")
	}
	rt := binary.BigEndian.Uint64(k[len(k)-histRecordSuffix:])
	seq := binary.BigEndian.Uint64(k[len(k)-8:])
	if !h.read || h.seq != seq {
		rec, err := h.tx.Get(feedKey(seq))
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("decode history record: change %d it refers to is gone", seq)
		}
		if err != nil {
			return nil, fmt.Errorf("decode history record: read change %d: %w", seq, err)
		}
		c, body, err := decodeChange(rec, true)
		if err != nil {
			return nil, fmt.Errorf("decode history record: %w", err)
		}
		if len(body) == 0 || c.Entity == nil {
			return nil, fmt.Errorf("decode history record: change %d it refers to holds no entity", seq)
		}
		recs, err := h.s.history(c.Entity, nil, histResolved)
		if err != nil {
			return nil, err
		}
		h.seq, h.recs, h.read = seq, recs, true
	}
	return recordAt(h.recs, rt), nil
}

// resolvedRecord returns the record historyOf writes for the instances of
// e's write filed under ^instant rt (nil when none are).
func (s *Service) resolvedRecord(e *Entity, rt uint64) ([]byte, error) {
	recs, err := s.history(e, nil, histResolved)
	if err != nil {
		return nil, err
	}
	return recordAt(recs, rt), nil
}

// recordAt returns the value of the record of recs filed under ^instant
// rt (nil when none is).
func recordAt(recs []histEntry, rt uint64) []byte {
	for _, r := range recs {
		if binary.BigEndian.Uint64(r.key[len(r.key)-8:]) == rt {
			return r.val
		}
	}
	return nil
}

// refersTo reports whether a history record may hold instances of the
// attribute code: false only for a histFeed record not listing it.
func refersTo(v []byte, code uint32) bool {
	if len(v) == 0 || v[0] != histFeed {
		return true
	}
	for v = v[1:]; len(v) > 0; {
		c, n := binary.Uvarint(v)
		if n <= 0 {
			return true // damaged: let the reader say so
		}
		if c == uint64(code) {
			return true
		}
		v = v[n:]
	}
	return false
}

// writeOutHistory replaces the histFeed records of the writes whose feed
// records TrimChanges is about to drop (their states, by seq) with the
// records they resolve to, so their instances outlive the feed records.
// Records edited or deleted meanwhile are left as they are.
func (s *Service) writeOutHistory(states map[uint64][]byte) error {
	seqs := slices.Sorted(maps.Keys(states))
	for len(seqs) > 0 {
		n := min(len(seqs), 256) // states per transaction
		err := s.db.Update(func(tx *store.Txn) error {
			for _, seq := range seqs[:n] {
				e := new(Entity)
				if err := decodeEntityRecord(states[seq], e); err != nil {
					return fmt.Errorf("decode entity of change %d: %w", seq, err)
				}
				recs, err := s.history(e, nil, histResolved)
				if err != nil {
					return err
				}
				for _, r := range recs {
					k := binary.BigEndian.AppendUint64(r.key, seq)
					v, err := tx.Get(k)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					if len(v) > 0 && v[0] == histFeed {
						if err := tx.Set(k, r.val); err != nil {
							return err
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write out history of trimmed changes: %w", err)
		}
		seqs = seqs[n:]
	}
	return nil
}

// decodeInstanceBytes decodes one instance as appendInstance wrote it
// for instant at.
func decodeInstanceBytes(v []byte, at time.Time) (*Attribute, error) {
	if len(v) < 9 {
		return nil, errors.New("decode history instance: short instance")
	}
	parsed, err := parseJSON(v[9:])
	if err != nil {
		return nil, fmt.Errorf("decode history instance: %w", err)
	}
	if _, ok := parsed.(map[string]any); !ok {
		return nil, errors.New("decode history instance: not an object")
	}
	attrs, err := storedAttrs(map[string]any{"": []any{parsed}})
	if err != nil {
		return nil, fmt.Errorf("decode history instance: %w", err)
	}
	a := attrs[""][0]
	if a.Type == "" {
		a.Type = Property
	}
	if v[8]&instObservedAt != 0 {
		a.ObservedAt = at.UTC().Format(time.RFC3339Nano)
	}
	a.ModifiedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
	// An instance was created when it was written: appendInstance keeps
	// "c" only as the time its sub-attributes take, so a "c" without
	// them is not the instance's, unless it says so (a corrected one).
	if a.CreatedAt.IsZero() || len(a.Sub) == 0 && v[8]&instOwnCreated == 0 {
		a.CreatedAt = a.ModifiedAt
	}
	fillTimes(a.Sub, a.CreatedAt)
	return a, nil
}

// Flags of a stored instance (appendInstance).
const (
	instObservedAt = 1 // observedAt is the record's instant
	instOwnCreated = 2 // "c" is the instance's createdAt
)

// instanceRef names one instance: its record and its place in it.
type instanceRef struct {
	rt, seq uint64
	code    uint32
	n       int
}

func (r instanceRef) String() string {
	return instancePrefix + strconv.FormatUint(r.rt, 16) + "-" + strconv.FormatUint(r.seq, 16) + "-" +
		strconv.FormatUint(uint64(r.code), 16) + "-" + strconv.Itoa(r.n)
}

func parseInstanceID(s string) (instanceRef, bool) {
	rest, ok := strings.CutPrefix(s, instancePrefix)
	if !ok {
		return instanceRef{}, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 4 {
		return instanceRef{}, false
	}
	rt, err1 := strconv.ParseUint(parts[0], 16, 64)
	seq, err2 := strconv.ParseUint(parts[1], 16, 64)
	code, err3 := strconv.ParseUint(parts[2], 16, 32)
	n, err4 := strconv.Atoi(parts[3])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || n < 0 {
		return instanceRef{}, false
	}
	return instanceRef{rt: rt, seq: seq, code: uint32(code), n: n}, true
}

func (r instanceRef) key(id string) []byte {
	k := binary.BigEndian.AppendUint64(histEntityPrefix(id), r.rt)
	return binary.BigEndian.AppendUint64(k, r.seq)
}

// scanInstances calls fn for the instances of attribute code of id with
// instants in r, newest first, until fn returns false.
func (s *Service) scanInstances(tx *store.Txn, id string, code uint32, r timeRange, fn func(Instance) (bool, error)) error {
	hr := histReader{s: s, tx: tx}
	pre := histEntityPrefix(id)
	start := pre
	if !r.to.IsZero() {
		// Newest first: the first record in range is the one for to-1ns.
		start = binary.BigEndian.AppendUint64(bytes.Clone(pre), revTime(r.to.Add(-time.Nanosecond)))
	}
	var stop uint64
	if !r.from.IsZero() {
		stop = revTime(r.from)
	}
	return tx.Iterate(store.IterOptions{Prefix: pre, Start: start}, func(k, v []byte) error {
		if len(k) != len(pre)+histRecordSuffix {
			return nil
		}
		rt := binary.BigEndian.Uint64(k[len(pre):])
		if !r.from.IsZero() && rt > stop {
			return store.ErrStop
		}
		ref := instanceRef{rt: rt, seq: binary.BigEndian.Uint64(k[len(pre)+8:]), code: code}
		at := fromRevTime(rt)
		if !refersTo(v, code) {
			return nil
		}
		var ferr error
		more := true
		err := hr.entries(k, v, func(c uint32, inst []byte) bool {
			if c != code {
				return true
			}
			a, err := decodeInstanceBytes(inst, at)
			if err != nil {
				ferr = err
				return false
			}
			more, ferr = fn(Instance{InstanceID: ref.String(), At: at, Attr: a})
			ref.n++
			return more && ferr == nil
		})
		switch {
		case err != nil:
			return err
		case ferr != nil:
			return ferr
		case !more:
			return store.ErrStop
		}
		return nil
	})
}

// historyAttrs lists the attributes id has (or had) history for: those
// of its marker and of its current state (markOf), by code.
func (s *Service) historyAttrs(tx *store.Txn, id string) ([]string, error) {
	v, err := tx.Get(histMarkKey(id))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	codes := markCodes(v)
	e, err := getEntityKeeping(tx, id, func(string) bool { return false })
	if err != nil {
		return nil, err
	}
	if e != nil {
		for attr := range e.Attrs {
			if c, ok := s.codes.lookup(attr); ok {
				codes = append(codes, c)
			}
		}
		slices.Sort(codes)
		codes = slices.Compact(codes)
	}
	var out []string
	for _, c := range codes {
		if iri, ok := s.codes.nameOf(c); ok {
			out = append(out, iri)
		}
	}
	return out, nil
}

// editTxnBytes bounds the keys and values one transaction of editHistory
// writes: well under badger's limit for a transaction (15% of a 16 MiB
// memtable).
const editTxnBytes = 512 << 10

// editHistory rewrites the records of id with instants before before
// (all when zero), in batches so no transaction grows too big: keep says
// which entries stay (by code, instant and the entry's position among the
// code's entries); a record left empty is deleted. It returns how many
// entries it removed.
func (s *Service) editHistory(ctx context.Context, id string, before time.Time, keep func(code uint32, at time.Time, n int) bool) (int, error) {
	pre := histEntityPrefix(id)
	removed := 0
	start := pre
	if !before.IsZero() {
		// Older records sort after newer ones: skip straight past those
		// at or after before.
		start = binary.BigEndian.AppendUint64(bytes.Clone(pre), revTime(before)+1)
	}
	for {
		type rewrite struct {
			k, old, v []byte
			dropped   int
		}
		var edits []rewrite
		more := false
		err := s.db.View(func(tx *store.Txn) error {
			hr := histReader{s: s, tx: tx}
			return tx.Iterate(store.IterOptions{Prefix: pre, Start: start}, func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if len(edits) >= 2000 {
					more = true
					return store.ErrStop
				}
				start = append(bytes.Clone(k), 0)
				if len(k) != len(pre)+histRecordSuffix {
					return nil
				}
				at := fromRevTime(binary.BigEndian.Uint64(k[len(pre):]))
				var out []byte
				dropped := 0
				counts := map[uint32]int{}
				err := hr.entries(k, v, func(code uint32, inst []byte) bool {
					n := counts[code]
					counts[code]++
					if keep(code, at, n) {
						out = appendEntry(out, code, inst)
					} else {
						dropped++
					}
					return true
				})
				if err != nil {
					return err
				}
				if dropped > 0 {
					edits = append(edits, rewrite{bytes.Clone(k), bytes.Clone(v), packHistory(out), dropped})
				}
				return nil
			})
		})
		if err != nil {
			return removed, fmt.Errorf("edit history of %s: %w", id, err)
		}
		// Each record is written only if it is still what was read: a
		// record another write changed meanwhile (a PATCH or DELETE of
		// one instance, editInstance) is left for the next pass rather
		// than overwritten with the bytes from before it. Transactions
		// are kept to editTxnBytes (a history record can be large).
		for len(edits) > 0 {
			size, m := 0, 0
			for m < len(edits) && (m == 0 || size+len(edits[m].k)+len(edits[m].v) <= editTxnBytes) {
				size += len(edits[m].k) + len(edits[m].v)
				m++
			}
			chunk := edits[:m]
			edits = edits[m:]
			n := 0
			err := s.db.Update(func(tx *store.Txn) error {
				n = 0
				for _, e := range chunk {
					cur, err := tx.Get(e.k)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					if !bytes.Equal(cur, e.old) {
						continue
					}
					if len(e.v) == 0 {
						err = tx.Delete(e.k)
					} else {
						err = tx.Set(e.k, e.v)
					}
					if err != nil {
						return err
					}
					n += e.dropped
				}
				return nil
			})
			if err != nil {
				return removed, fmt.Errorf("edit history of %s: %w", id, err)
			}
			removed += n
		}
		if !more {
			return removed, nil
		}
	}
}

// dropInstance is the edit (editInstance) that deletes the instance.
func dropInstance([]byte, time.Time) ([]byte, error) { return nil, nil }

// editInstance rewrites instance ref of id's history: edit gets the
// instance as appendInstance wrote it, filed at instant at, and returns
// its replacement (written for the same instant), or nil to delete it; ok
// says the instance was there. The record is written in the older layout
// (one entry per instance, each with its modifiedAt).
func (s *Service) editInstance(id string, ref instanceRef, edit func(inst []byte, at time.Time) ([]byte, error)) (ok bool, err error) {
	k := ref.key(id)
	at := fromRevTime(ref.rt)
	err = s.db.Update(func(tx *store.Txn) error {
		ok = false
		v, err := tx.Get(k)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var out []byte
		var editErr error
		n := 0
		hr := histReader{s: s, tx: tx}
		if err := hr.entries(k, v, func(code uint32, inst []byte) bool {
			if code == ref.code {
				n++
				if n-1 == ref.n {
					ok = true
					if inst, editErr = edit(inst, at); editErr != nil || inst == nil {
						return editErr == nil
					}
				}
			}
			out = appendEntry(out, code, inst)
			return true
		}); err != nil {
			return err
		}
		switch {
		case editErr != nil:
			return editErr
		case !ok:
			return nil
		case len(out) == 0:
			return tx.Delete(k)
		default:
			return tx.Set(k, packHistory(out))
		}
	})
	if err != nil {
		return false, fmt.Errorf("edit instance %s: %w", ref, err)
	}
	return ok, nil
}

// deleteMarks removes id's attribute marker (when its whole history and
// the entity itself are gone).
func (s *Service) deleteMarks(id string) error {
	return s.db.Update(func(tx *store.Txn) error { return tx.Delete(histMarkKey(id)) })
}

// History returns the temporal instances of one attribute (expanded name)
// of an entity, newest first, at most lastN (all when lastN <= 0), with
// instants in [from, to) (zero bounds are open).
func (s *Service) History(id, attr string, from, to time.Time, lastN int) ([]Instance, error) {
	code, ok := s.codes.lookup(attr)
	if !ok {
		return nil, nil
	}
	var out []Instance
	err := s.db.View(func(tx *store.Txn) error {
		return s.scanInstances(tx, id, code, timeRange{from, to}, func(in Instance) (bool, error) {
			out = append(out, in)
			return lastN <= 0 || len(out) < lastN, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read history of %s %s: %w", id, attr, err)
	}
	return out, nil
}

// TrimHistory enforces Options.Retention: it deletes the instances older
// than their entity type's retention, measured from now. It returns how
// many instances it removed. Start runs it periodically.
func (s *Service) TrimHistory(ctx context.Context, now time.Time) (int, error) {
	removed := 0
	for typ, keep := range s.opts.Retention {
		if keep <= 0 {
			continue
		}
		cutoff := now.Add(-keep)
		var ids []string
		err := s.db.View(func(tx *store.Txn) error {
			pre := typePrefix(s.codes.codeOf(typ))
			return tx.Iterate(store.IterOptions{Prefix: pre, KeysOnly: true}, func(k, _ []byte) error {
				ids = append(ids, string(k[len(pre):]))
				return ctx.Err()
			})
		})
		if err != nil {
			return removed, fmt.Errorf("trim history of %s: %w", typ, err)
		}
		for _, id := range ids {
			n, err := s.editHistory(ctx, id, cutoff, func(uint32, time.Time, int) bool { return false })
			removed += n
			if err != nil {
				return removed, fmt.Errorf("trim history: %w", err)
			}
		}
	}
	return removed, nil
}

// Instance is one temporal instance of an attribute.
type Instance struct {
	// InstanceID identifies the instance (for deleting it).
	InstanceID string
	// At is the instant the instance is filed under: observedAt, or
	// modifiedAt when it has none.
	At   time.Time
	Attr *Attribute
}

// timeRange selects instants: From <= t < To; zero bounds are open.
type timeRange struct {
	from, to time.Time
}

// Touched lists the attributes (expanded) the write that produced e
// changed: those with an instance stamped at e's modifiedAt.
func (e *Entity) Touched() []string {
	var out []string
	for attr, insts := range e.Attrs {
		for _, a := range insts {
			if a.ModifiedAt.Equal(e.ModifiedAt) {
				out = append(out, attr)
				break
			}
		}
	}
	return out
}
