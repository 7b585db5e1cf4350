package ngsild

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// Attribute history (the temporal API's storage).
//
// Every attribute instance a write touches is kept as a temporal instance
// under
//
//	n/h/<id> 00 <attr code, 4 bytes BE> <^instant, 8 bytes BE> <seq, 8 bytes BE> <n, 2 bytes BE>
//
// written in the same transaction as the entity change. The instant is the
// instance's observedAt when it has one, otherwise its modifiedAt; storing
// it complemented puts the newest instance first, so lastN is the first N
// keys of the attribute's prefix and a time range is one key-range scan.
// seq and n (the instance's position in the write) keep instances of the
// same instant apart. The key is also the instance's identity:
// instanceId is urn:ngsi-ld:Instance: + the key's last 18 bytes in hex,
// so deleting an instance is a single key delete.
//
// Attribute IRIs are numbered (n/hd/<attrIRI> holds the code) because
// spelling the IRI out in every history key made history cost more to
// write than the entity itself; the few codes are kept in memory.

// histEntry is one temporal instance of a prepared write; seq is appended
// to key when the transaction gives out sequence numbers.
type histEntry struct {
	key []byte // n/h/<id> 00 <code> <^instant>
	val []byte // the instance as appendAttribute encodes it
}

const instancePrefix = "urn:ngsi-ld:Instance:"

func histEntityPrefix(id string) []byte {
	b := make([]byte, 0, len(keyHist)+len(id)+1+4+instanceSuffixLen)
	b = append(b, keyHist...)
	b = append(b, id...)
	return append(b, 0)
}

func histCodePrefix(id string, code uint32) []byte {
	return binary.BigEndian.AppendUint32(histEntityPrefix(id), code)
}

// histAttrPrefix is the key prefix of one attribute's history; ok is
// false when no instance of attr was ever kept.
func (s *Service) histAttrPrefix(id, attr string) ([]byte, bool) {
	code, ok := s.codes.lookup(attr)
	if !ok {
		return nil, false
	}
	return histCodePrefix(id, code), true
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

// historyOf lists the temporal instances of a new entity state: every
// instance the write stamped (its modifiedAt is the entity's), or, when
// explicit is set (POST /temporal/entities), exactly those.
//
// Keys and values share one buffer, with room after each key for the seq
// and n that writeHistory fills in: history doubled the allocations of a
// write before.
func (s *Service) historyOf(ne *Entity, explicit map[string][]*Attribute) ([]histEntry, error) {
	src := ne.Attrs
	if explicit != nil {
		src = explicit
	}
	var out []histEntry
	buf := make([]byte, 0, 128*len(src))
	for attr, insts := range src {
		var code uint32
		coded := false
		for _, a := range insts {
			if explicit == nil && !a.ModifiedAt.Equal(ne.ModifiedAt) {
				continue
			}
			if !coded {
				var err error
				if code, err = s.codes.assign(s.db, attr); err != nil {
					return nil, err
				}
				coded = true
			}
			start := len(buf)
			buf = append(buf, keyHist...)
			buf = append(buf, ne.ID...)
			buf = append(buf, 0)
			buf = binary.BigEndian.AppendUint32(buf, code)
			buf = binary.BigEndian.AppendUint64(buf, revTime(instantOf(a)))
			keyEnd := len(buf)
			buf = append(buf, make([]byte, 10)...) // seq and n
			valStart := len(buf)
			buf = appendInstance(buf, a)
			out = append(out, histEntry{key: buf[start:keyEnd:valStart], val: buf[valStart:len(buf):len(buf)]})
		}
	}
	return out, nil
}

// appendInstance encodes a temporal instance: its modifiedAt (8 bytes BE
// nanoseconds; an instance is created when written, so that is its
// createdAt too) and then the attribute as appendAttribute writes it,
// without the timestamps.
func appendInstance(b []byte, a *Attribute) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(a.ModifiedAt.UnixNano()))
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
	if len(a.Sub) > 0 {
		b = append(b, `,"c":`...)
		b = appendTime(b, a.CreatedAt)
		b = append(b, `,"s":`...)
		b = appendAttrMap(b, a.Sub, a.CreatedAt)
	}
	return append(b, '}')
}

// writeHistory stores a write's instances under the write's sequence number.
func writeHistory(tx *store.Txn, hist []histEntry, seq uint64) error {
	for i, h := range hist {
		k := h.key[:len(h.key)+10]
		binary.BigEndian.PutUint64(k[len(h.key):], seq)
		binary.BigEndian.PutUint16(k[len(h.key)+8:], uint16(i))
		if err := tx.Set(k, h.val); err != nil {
			return err
		}
	}
	return nil
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

// instanceSuffixLen is the length of ^instant, seq and n at the end of a
// history key.
const instanceSuffixLen = 18

func instanceID(k []byte) string {
	return instancePrefix + strconv.FormatUint(binary.BigEndian.Uint64(k[len(k)-18:]), 16) + "-" +
		strconv.FormatUint(binary.BigEndian.Uint64(k[len(k)-10:]), 16) + "-" +
		strconv.FormatUint(uint64(binary.BigEndian.Uint16(k[len(k)-2:])), 16)
}

// parseInstanceID returns the key suffix an instanceId names.
func parseInstanceID(s string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(s, instancePrefix)
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 {
		return nil, false
	}
	rt, err1 := strconv.ParseUint(parts[0], 16, 64)
	seq, err2 := strconv.ParseUint(parts[1], 16, 64)
	n, err3 := strconv.ParseUint(parts[2], 16, 16)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, false
	}
	b := binary.BigEndian.AppendUint64(nil, rt)
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint16(b, uint16(n)), true
}

// decodeHistInstance decodes a stored temporal instance.
func decodeHistInstance(k, v []byte) (Instance, error) {
	if len(k) < instanceSuffixLen || len(v) < 8 {
		return Instance{}, errors.New("decode history instance: short record")
	}
	parsed, err := parseJSON(v[8:])
	if err != nil {
		return Instance{}, fmt.Errorf("decode history instance: %w", err)
	}
	if _, ok := parsed.(map[string]any); !ok {
		return Instance{}, errors.New("decode history instance: not an object")
	}
	attrs, err := storedAttrs(map[string]any{"": []any{parsed}})
	if err != nil {
		return Instance{}, fmt.Errorf("decode history instance: %w", err)
	}
	a := attrs[""][0]
	a.ModifiedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = a.ModifiedAt
	}
	fillTimes(a.Sub, a.CreatedAt)
	rt := binary.BigEndian.Uint64(k[len(k)-instanceSuffixLen:])
	return Instance{InstanceID: instanceID(k), At: time.Unix(0, int64(^rt)).UTC(), Attr: a}, nil
}

// scanInstances calls fn for the instances under an attribute's history
// prefix with instants in r, newest first, until fn returns false.
func scanInstances(tx *store.Txn, pre []byte, r timeRange, fn func(Instance) (bool, error)) error {
	start := pre
	if !r.to.IsZero() {
		// Newest first: the first key in range is the one for to-1ns.
		start = binary.BigEndian.AppendUint64(bytes.Clone(pre), revTime(r.to.Add(-time.Nanosecond)))
	}
	var stop uint64
	if !r.from.IsZero() {
		stop = revTime(r.from)
	}
	return tx.Iterate(store.IterOptions{Prefix: pre, Start: start}, func(k, v []byte) error {
		if len(k) != len(pre)+instanceSuffixLen {
			return nil
		}
		if !r.from.IsZero() && binary.BigEndian.Uint64(k[len(pre):]) > stop {
			return store.ErrStop
		}
		in, err := decodeHistInstance(k, v)
		if err != nil {
			return err
		}
		more, err := fn(in)
		if err != nil {
			return err
		}
		if !more {
			return store.ErrStop
		}
		return nil
	})
}

// historyAttrs lists the attributes id has history for.
func (s *Service) historyAttrs(tx *store.Txn, id string) ([]string, error) {
	pre := histEntityPrefix(id)
	var out []string
	start := pre
	for {
		var code uint32
		found := false
		err := tx.Iterate(store.IterOptions{Prefix: pre, Start: start, KeysOnly: true}, func(k, _ []byte) error {
			if len(k) >= len(pre)+4 {
				code, found = binary.BigEndian.Uint32(k[len(pre):]), true
			}
			return store.ErrStop
		})
		if err != nil {
			return nil, err
		}
		if !found {
			return out, nil
		}
		if iri, ok := s.codes.nameOf(code); ok {
			out = append(out, iri)
		}
		if code == math.MaxUint32 {
			return out, nil
		}
		start = histCodePrefix(id, code+1)
	}
}

// deleteHistory removes the history keys under pre whose instant is before
// cutoff (every one when cutoff is zero), in batches so one trim never
// needs a huge transaction. It returns how many were removed.
func (s *Service) deleteHistory(ctx context.Context, pre []byte, cutoff time.Time) (int, error) {
	removed := 0
	for {
		var keys [][]byte
		err := s.db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: pre, KeysOnly: true}, func(k, _ []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if len(k) < len(pre)+instanceSuffixLen {
					return nil
				}
				if !cutoff.IsZero() && int64(^binary.BigEndian.Uint64(k[len(k)-instanceSuffixLen:])) >= cutoff.UnixNano() {
					return nil
				}
				keys = append(keys, bytes.Clone(k))
				if len(keys) >= 10000 {
					return store.ErrStop
				}
				return nil
			})
		})
		if err != nil {
			return removed, err
		}
		if len(keys) == 0 {
			return removed, nil
		}
		b := s.db.NewBatch()
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				b.Cancel()
				return removed, err
			}
		}
		if err := b.Flush(); err != nil {
			return removed, err
		}
		removed += len(keys)
		if len(keys) < 10000 {
			return removed, nil
		}
	}
}

// History returns the temporal instances of one attribute (expanded name)
// of an entity, newest first, at most lastN (all when lastN <= 0), with
// instants in [from, to) (zero bounds are open).
func (s *Service) History(id, attr string, from, to time.Time, lastN int) ([]Instance, error) {
	var out []Instance
	pre, ok := s.histAttrPrefix(id, attr)
	if !ok {
		return nil, nil
	}
	err := s.db.View(func(tx *store.Txn) error {
		return scanInstances(tx, pre, timeRange{from, to}, func(in Instance) (bool, error) {
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
			pre := typePrefix(typ)
			return tx.Iterate(store.IterOptions{Prefix: pre, KeysOnly: true}, func(k, _ []byte) error {
				ids = append(ids, string(k[len(pre):]))
				return ctx.Err()
			})
		})
		if err != nil {
			return removed, fmt.Errorf("trim history of %s: %w", typ, err)
		}
		for _, id := range ids {
			n, err := s.deleteHistory(ctx, histEntityPrefix(id), cutoff)
			removed += n
			if err != nil {
				return removed, fmt.Errorf("trim history of %s: %w", id, err)
			}
		}
	}
	return removed, nil
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
