package ngsild

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

	"github.com/mimnode/mimnode/internal/ordered"
	"github.com/mimnode/mimnode/node/store"
)

// change is one entity write in a commit.
type change struct {
	id string
	// apply computes the new state from the stored one (nil when absent).
	// Returning (nil, nil) deletes the entity; returning old itself says
	// the change leaves it as it is (every attribute skipped), so nothing
	// is written, stamped or notified unless history is set; an error
	// fails this entity only. It runs once, possibly on another goroutine
	// than the caller's and concurrently with other changes' apply; it
	// must not modify old.
	apply func(old *Entity) (*Entity, error)
	// history, when set, are the temporal instances to keep for this write
	// (POST /temporal/entities); otherwise every instance the write
	// stamped is kept.
	history map[string][]*Attribute
	// summary says apply reads of old only its types, times and the
	// attribute instances' types and datasetIds (a replace): prepare
	// may then give it a summary (decodeRecordKeeping).
	summary bool
	// ahead, when set, is what workAhead works out of the entity apply
	// returns before the write lock is taken (ahead.go).
	ahead *ahead
}

// outcome is what happened to one change.
type outcome struct {
	err     error
	created bool
	deleted bool
	entity  *Entity
}

// commitChunk is how many entity writes are prepared at a time (the next
// chunk is prepared while the previous one is written). A chunk is written
// in as few transactions as hold it (txnFit): each transaction is one
// fsync of the write-ahead log, which cost about a sixth of the CPU time
// of a batch upsert with transactions of 128 entities.
const commitChunk = 256

// prepared is one change worked out before its transaction: the new state
// encoded, the index keys to delete and to set, the counter deltas.
type prepared struct {
	out   outcome
	write bool
	id    string
	types []string // of the new state, or of the deleted entity
	body  []byte   // the new state as stored; nil for a delete
	del   [][]byte
	set   [][]byte
	count map[countKey]int64
	// countAs is set for a create, which adds one to each of its
	// counters (eachCount): the entity it writes, or an earlier create of
	// the commit with the same counters (sameCounted, found by prepare
	// where the entity is still in the cache). writeTxn adds the creates
	// up per countAs and each countAs's counters once, instead of ~20
	// counters per entity: a batch of one model adds to the same ones.
	countAs *Entity
	hist    []histEntry // history records (history.go)
	mark    *histEntry  // history attribute marker to set, if it changed
	gone    []string    // attributes the write removed
	old     *Entity     // the state before the write (nil: none), for notifications
	// oldSummary says old is a summary, without the values
	// notifications compare.
	oldSummary bool
}

// commit applies the changes durably and returns one outcome per change.
//
// Writes are serialized by wmu, so feed sequence numbers commit in order (a
// consumer that has read sequence N never later finds a committed N-1 it
// missed) and nothing else changes entity keys meanwhile. That lets the
// CPU-heavy part (apply, validation, encoding, index keys) run before the
// transaction, spread over the cores and overlapped with the previous
// chunk's commit; the transaction then only writes. Transactions are
// committed without waiting for the disk, and one store sync after the
// last makes all of them durable before commit returns or anyone is
// notified; wmu is let go before that sync, so the next commit writes
// while this one's sync runs, and concurrent commits share syncs.
//
// A commit that finds wmu taken works out meanwhile what does not need the
// stored states (workAhead), on the cores the holder's write leaves free;
// one that finds it free goes straight in, where preparing a chunk
// overlaps writing the one before, as a lone writer's commits did.
func (s *Service) commit(chs []change) ([]outcome, error) {
	if !s.wmu.TryLock() {
		s.workAhead(chs)
		s.wmu.Lock()
	}
	outs, wrote, err := s.commitNoSync(chs)
	if wrote {
		if serr := s.db.Sync(); err == nil && serr != nil {
			err = fmt.Errorf("commit entity changes: %w", serr)
		}
		s.notify()
	}
	return outs, err
}

// commitNoSync is commit up to the sync, called with wmu held, which it
// lets go; wrote says whether it wrote anything.
func (s *Service) commitNoSync(chs []change) (outs []outcome, wrote bool, err error) {
	defer s.wmu.Unlock()
	outs = make([]outcome, len(chs))
	preps := make([]prepared, len(chs))
	from := s.seq.Load()
	for i := range chs {
		if a := chs[i].ahead; a != nil && a.body != nil {
			a.absent = s.written.unwritten(chs[i].id, a.absentAt, from)
		}
	}
	defer func() {
		if to := s.seq.Load(); to != from {
			ids := make(map[string]struct{}, len(chs))
			for i := range preps {
				if preps[i].write || err != nil {
					ids[chs[i].id] = struct{}{}
				}
			}
			s.written.add(from, to, ids)
		}
	}()
	workers := max(1, min(runtime.GOMAXPROCS(0), (len(chs)+31)/32))
	// Read before any change is prepared: when a subscription wants
	// previous states only from now on, the changes it gets have
	// full ones or none (recentChanges.add).
	summaries := !s.recent.keepPrev.Load()
	overlays := make([]map[string]*Entity, workers)
	marks := make([]map[string][]byte, workers) // history markers set, by id (markOf)
	shapes := make([]*Entity, workers)          // the last create with new counters (prepared.countAs)
	for w := range overlays {
		overlays[w], marks[w] = map[string]*Entity{}, map[string][]byte{}
	}
	prep := func(lo, hi int) error {
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				errs[w] = s.db.View(func(tx *store.Txn) error {
					for i := lo; i < hi; i++ {
						// The same id always goes to the same worker, so
						// its overlay holds what earlier changes of this
						// commit made of the entity, and marks the
						// history marker they set.
						if workers > 1 && int(fnv32(chs[i].id)%uint32(workers)) != w {
							continue
						}
						if err := s.prepare(tx, chs[i], summaries, overlays[w], marks[w], &shapes[w], &preps[i]); err != nil {
							return err
						}
					}
					return nil
				})
			}(w)
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	if len(chs) > 0 {
		err = prep(0, min(commitChunk, len(chs)))
	}
	tooBig := map[string]bool{}
	for lo := 0; lo < len(chs) && err == nil; lo += commitChunk {
		hi := min(lo+commitChunk, len(chs))
		next := make(chan error, 1)
		if hi < len(chs) {
			go func() { next <- prep(hi, min(hi+commitChunk, len(chs))) }()
		} else {
			next <- nil
		}
		for i := lo; i < hi && !wrote; i++ {
			wrote = preps[i].write
		}
		err = s.writeChunk(preps[lo:hi], tooBig)
		if perr := <-next; err == nil {
			err = perr
		}
	}
	for i := range preps {
		outs[i] = preps[i].out
	}
	if err != nil {
		return outs, wrote, fmt.Errorf("commit entity changes: %w", err)
	}
	return outs, wrote, nil
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// prepare works out one change against the state in tx (or in overlay, when
// an earlier change of the same commit touched the entity, and marks for
// the history marker it set). With summaries, the stored state is read as
// a summary for a change that needs no more (change.summary). shape is
// the last create this worker gave new counters (prepared.countAs).
func (s *Service) prepare(tx *store.Txn, ch change, summaries bool, overlay map[string]*Entity, marks map[string][]byte, shape **Entity, p *prepared) error {
	old, seen := overlay[ch.id]
	if a := ch.ahead; !seen && a != nil && a.absent {
		// workAhead found none, and no commit wrote one since: old is nil.
		seen = true
	}
	if !seen {
		var keep func(string) bool
		if summaries && ch.summary {
			// Values are read for the value index keys only.
			keep, p.oldSummary = s.vidx.isWritten, true
		}
		var err error
		if old, err = getEntityKeeping(tx, ch.id, keep); err != nil {
			return err
		}
	}
	ne, err := ch.apply(old)
	if err != nil {
		p.out.err = err
		return nil
	}
	if ne == old && (old == nil || ch.history == nil) {
		return nil
	}
	overlay[ch.id] = ne
	p.write, p.id, p.old = true, ch.id, old
	var counts map[countKey]int64
	switch {
	case old != nil && ne != nil && sameCounted(old, ne):
		// The counter contributions of old and ne would cancel out: an
		// entity replaced with the same attributes, the usual update.
	case old == nil && ne != nil:
		// A create adds one to each of its counters: writeTxn counts them.
		if *shape == nil || !sameCounted(*shape, ne) {
			*shape = ne
		}
		p.countAs = *shape
	case ne != nil:
		// A counter per type, per type and attribute, and per
		// attribute (indexKeys): sized for them, the map is not grown
		// and rehashed twice.
		p.count = make(map[countKey]int64, len(ne.Types)*(1+len(ne.Attrs))+len(ne.Attrs))
		counts = p.count
	default:
		p.count = map[countKey]int64{}
		counts = p.count
	}
	if old == nil {
		// A create sets every key of ne and deletes none: no sets of
		// keys to compare, so the keys go straight into p.set.
		if err := s.codeIndexed(ne); err != nil {
			return err
		}
		eachIndexKey(ne, s.codes.codeOf, s.vidx.isWritten, func(k []byte) { p.set = append(p.set, k) })
	} else {
		oldKeys := indexKeys(old, s.codes.codeOf, counts, -1, s.vidx.isWritten)
		var newKeys map[string]struct{}
		if ne != nil {
			if err := s.codeIndexed(ne); err != nil {
				return err
			}
			newKeys = indexKeys(ne, s.codes.codeOf, counts, +1, s.vidx.isWritten)
		}
		for k := range oldKeys {
			if _, keep := newKeys[k]; !keep {
				p.del = append(p.del, []byte(k))
			}
		}
		for k := range newKeys {
			if _, had := oldKeys[k]; !had {
				p.set = append(p.set, []byte(k))
			}
		}
	}
	if ne == nil {
		p.types = old.Types
		p.out.deleted = true
		// The marker lists the attributes with history the state drops.
		p.mark, err = s.markOf(tx, ch.id, old, nil, nil, marks)
		return err
	}
	if old != nil {
		for attr := range old.Attrs {
			if _, ok := ne.Attrs[attr]; !ok {
				p.gone = append(p.gone, attr)
			}
		}
	}
	// What workAhead made of the entity holds when it is the new state:
	// its history records whatever it replaces, its encoding when
	// nothing was there, as workAhead guessed.
	a := ch.ahead
	fromAhead := a != nil && a.e == ne && ch.history == nil
	mode := histRefs // the instances are in the feed record the write adds
	if ch.history != nil {
		mode = histFull
	}
	if fromAhead && a.histOK {
		p.hist = a.hist
	} else if p.hist, err = s.history(ne, ch.history, mode); err != nil {
		return err
	}
	if p.mark, err = s.markOf(tx, ch.id, old, ne, ch.history, marks); err != nil {
		return err
	}
	p.types = ne.Types
	if fromAhead && old == nil && a.body != nil {
		p.body = a.body
	} else {
		p.body = packEntity(ne)
	}
	p.out.created, p.out.entity = old == nil, ne
	return nil
}

// writeChunk writes prepared changes, giving each a sequence number, in
// transactions of as many changes as fit (txnFit). tooBig holds the ids
// of the commit's changes that failed for their size (writeSplit).
func (s *Service) writeChunk(ps []prepared, tooBig map[string]bool) error {
	for len(ps) > 0 {
		n := s.txnFit(ps)
		if err := s.writeSplit(ps[:n], tooBig); err != nil {
			return err
		}
		ps = ps[n:]
	}
	return nil
}

// writeSplit writes prepared changes in one transaction, or in halves when
// badger finds it too big after all (txnFit only estimates).
//
// One change too big for a transaction alone (a temporal write of many
// mid-sized instances, an entity of tens of thousands of attributes:
// values of valueThreshold and more go to the value log and count little)
// is the client's to split: it fails alone with BadRequestData, as its
// outcome, and the rest of the commit is written. Its id goes into
// tooBig: a later change of the commit to the same entity was worked out
// from the state it would have made, and fails too.
func (s *Service) writeSplit(ps []prepared, tooBig map[string]bool) error {
	for i := 0; i < len(ps) && len(tooBig) > 0; i++ {
		if p := &ps[i]; p.write && tooBig[p.id] {
			p.write, p.out = false, outcome{err: newError(BadRequestData, "earlier change too large",
				"an earlier change of entity %q in this request was too large to write, and this one was worked out from it; nothing of either was written", p.id)}
		}
	}
	err := s.writeTxn(ps)
	if store.IsTooBig(err) && len(ps) > 1 {
		if err := s.writeSplit(ps[:len(ps)/2], tooBig); err != nil {
			return err
		}
		return s.writeSplit(ps[len(ps)/2:], tooBig)
	}
	if store.IsTooBig(err) {
		maxBytes, _ := s.db.TxnLimits()
		p := &ps[0]
		tooBig[p.id] = true
		p.write, p.out = false, outcome{err: newError(BadRequestData, "write too large", "the change of entity %q, with its history, feed record and index entries, is more than one write of this node holds (%d MiB); send it in smaller requests (fewer instances or attributes in each)",
			p.id, maxBytes>>20)}
		return nil
	}
	return err
}

// txnFit returns how many of ps (at least one) fit in one transaction,
// counted as badger counts (store.TxnLimits) with a quarter left for what
// the estimate misses (counters, the sequence key).
func (s *Service) txnFit(ps []prepared) int {
	maxBytes, maxEntries := s.db.TxnLimits()
	maxBytes, maxEntries = maxBytes*3/4, maxEntries*3/4
	const perEntry = 12 // badger's overhead per entry
	var size, count int64
	var shape *Entity // the last create's countAs: a run of them shares its counters
	for i := range ps {
		p := &ps[i]
		if !p.write {
			continue
		}
		n := int64(2) // entity key and feed record
		b := int64(len(keyEntity)+len(p.id)+8) + int64(len(keyFeed)+8+len(p.body)+len(p.id)+128)
		for _, k := range p.del {
			b += int64(len(k))
		}
		for _, k := range p.set {
			b += int64(len(k))
		}
		for _, h := range p.hist {
			b += int64(len(h.key) + 8 + len(h.val))
		}
		n += int64(len(p.del) + len(p.set) + len(p.hist) + len(p.count))
		if e := p.countAs; e != nil && e != shape {
			// Its counters (eachCount), about; writeTxn writes those of
			// creates with one countAs once.
			n += int64(len(e.Types)*(1+len(e.Attrs)) + len(e.Attrs))
			shape = e
		}
		if p.mark != nil {
			n++
			b += int64(len(p.mark.key) + len(p.mark.val))
		}
		size, count = size+b+perEntry*n, count+n
		if i > 0 && (size > maxBytes || count > maxEntries) {
			return i
		}
	}
	return len(ps)
}

func (s *Service) writeTxn(ps []prepared) error {
	now := s.now()
	var last uint64
	err := s.db.UpdateNoSync(func(tx *store.Txn) error {
		seq := s.seq.Load()
		counts := map[countKey]int64{}
		creates := map[*Entity]int64{} // by countAs
		for i := range ps {
			p := &ps[i]
			if !p.write {
				continue
			}
			for _, k := range p.del {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			for _, k := range p.set {
				if err := tx.Set(k, nil); err != nil {
					return err
				}
			}
			for k, d := range p.count {
				counts[k] += d
			}
			if e := p.countAs; e != nil {
				creates[e]++
			}
			seq++
			rec := changeRecord{Seq: seq, ID: p.id, At: now, Types: p.types, Removed: p.gone, Entity: p.body}
			if err := writeHistory(tx, p.hist, p.mark, seq); err != nil {
				return err
			}
			switch {
			case p.body == nil:
				rec.Op = OpDelete
				if err := tx.Delete(entityKey(p.id)); err != nil {
					return err
				}
			default:
				rec.Op = OpUpdate
				if p.out.created {
					rec.Op = OpCreate
				}
				if err := tx.Set(entityKey(p.id), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
					return err
				}
			}
			// Room for a header without id and types; a delete's grows.
			rec0 := make([]byte, 0, 4+64+len(p.body))
			if err := tx.Set(feedKey(seq), appendChange(rec0, &rec)); err != nil {
				return err
			}
		}
		for e, n := range creates {
			eachCount(e, func(c countKey) { counts[c] += n })
		}
		last = seq
		if seq != s.seq.Load() {
			if err := tx.Set([]byte(keySeq), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
				return err
			}
		}
		return applyCounts(tx, counts)
	})
	if err == nil {
		if s.notif.match.Len() > 0 {
			s.recent.add(ps, last, now)
		}
		s.seq.Store(last)
	}
	return err
}

// applyCounts adds the deltas to the counters, in key order so concurrent
// readers see a consistent picture per key.
func applyCounts(tx *store.Txn, deltas map[countKey]int64) error {
	counts := make(map[string]int64, len(deltas))
	keys := make([]string, 0, len(deltas))
	for c, d := range deltas {
		if d != 0 {
			k := c.key()
			counts[k] = d
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		var n int64
		v, err := tx.Get([]byte(k))
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		case len(v) == 8:
			n = int64(binary.BigEndian.Uint64(v))
		}
		n += counts[k]
		if n <= 0 {
			if err := tx.Delete([]byte(k)); err != nil {
				return err
			}
			continue
		}
		if err := tx.Set([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

// getEntity reads an entity, nil when absent. The entity key holds the
// sequence number of the feed record with the entity's current state, so
// each state is stored once.
func getEntity(tx *store.Txn, id string) (*Entity, error) {
	return getEntityKeeping(tx, id, nil)
}

// getEntityKeeping is getEntity, reading a summary when keep is not nil
// (decodeRecordKeeping).
func getEntityKeeping(tx *store.Txn, id string, keep func(attr string) bool) (*Entity, error) {
	v, err := tx.Get(entityKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read entity %s: %w", id, err)
	}
	rb := readScratch.Get().(*readBuffers)
	defer rb.put()
	body, err := appendEntityBodyAt(tx, id, v, &rb.rec)
	if err != nil {
		return nil, err
	}
	js, err := unpackEntityInto(&rb.js, body)
	if err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", id, err)
	}
	e := new(Entity)
	if err := decodeJSONKeeping(js, e, keep); err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", id, err)
	}
	return e, nil
}

// readBuffers hold a feed record and its entity's unpacked JSON while
// getEntityKeeping decodes the state a write replaces: the decoded Entity
// copies what it keeps, so neither outlives the read, and every replace
// would otherwise allocate both (about 1 KB and 2.3 KB for an
// AirQualityObserved).
type readBuffers struct{ rec, js []byte }

var readScratch = sync.Pool{New: func() any { return new(readBuffers) }}

func (rb *readBuffers) put() {
	const keepAtMost = 256 << 10 // one huge entity does not pin its buffers
	if cap(rb.rec) > keepAtMost {
		rb.rec = nil
	}
	if cap(rb.js) > keepAtMost {
		rb.js = nil
	}
	readScratch.Put(rb)
}

// entityAt reads the entity state a seq pointer (an entity key's value)
// names.
func entityAt(tx *store.Txn, id string, ptr []byte) (*Entity, error) {
	body, err := entityBodyAt(tx, id, ptr)
	if err != nil {
		return nil, err
	}
	return decodeStored(id, body)
}

// entityBodyAt reads the stored bytes of the entity state a seq pointer
// names.
func entityBodyAt(tx *store.Txn, id string, ptr []byte) ([]byte, error) {
	return appendEntityBodyAt(tx, id, ptr, nil)
}

// appendEntityBodyAt is entityBodyAt reading the record into *buf (kept
// for the next call) when buf is not nil; the bytes returned are in it.
func appendEntityBodyAt(tx *store.Txn, id string, ptr []byte, buf *[]byte) ([]byte, error) {
	if len(ptr) != 8 {
		return nil, fmt.Errorf("read entity %s: corrupt version pointer", id)
	}
	seq := binary.BigEndian.Uint64(ptr)
	var rec []byte
	var err error
	if buf != nil {
		rec, err = tx.AppendValue((*buf)[:0], feedKey(seq))
		*buf = rec
	} else {
		rec, err = tx.Get(feedKey(seq))
	}
	if err != nil {
		return nil, fmt.Errorf("read entity %s at change %d: %w", id, seq, err)
	}
	_, body, err := splitChange(rec)
	if err != nil || len(body) == 0 {
		return nil, fmt.Errorf("read entity %s at change %d: corrupt record", id, seq)
	}
	return body, nil
}

func decodeStored(id string, body []byte) (*Entity, error) {
	e := new(Entity)
	if err := decodeEntityRecord(body, e); err != nil {
		return nil, fmt.Errorf("decode entity %s: %w", id, err)
	}
	return e, nil
}

// Entity returns the stored entity with the given id (names expanded), or
// nil when there is none. It is the read side the transfer feature uses.
func (s *Service) Entity(id string) (*Entity, error) {
	var e *Entity
	err := s.db.View(func(tx *store.Txn) error {
		var err error
		e, err = getEntity(tx, id)
		return err
	})
	return e, err
}

// lastSeq reads the last sequence number given out; it is kept apart from
// the feed so trimming the feed never lets a number be reused.
func lastSeq(db *store.DB) (uint64, error) {
	var seq uint64
	err := db.View(func(tx *store.Txn) error {
		v, err := tx.Get([]byte(keySeq))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(v) != 8 {
			return fmt.Errorf("corrupt sequence counter (%d bytes)", len(v))
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read change sequence: %w", err)
	}
	return seq, nil
}

// EachOfType calls fn for every stored entity with one of types (expanded
// IRIs), or for every entity when types is empty, in ascending order of id
// and once per entity however many of the types it has. It reads the
// current state straight from the store, so it does not depend on the
// change feed (which may be trimmed) and is what a dataset version is built
// from. All calls see one snapshot: writes committed meanwhile are not
// seen. fn runs on the caller's goroutine and owns the entity it gets;
// reading and decoding run ahead of it on the other cores. It stops at fn's
// first error, or when ctx ends, and returns it.
func (s *Service) EachOfType(ctx context.Context, types []string, fn func(*Entity) error) error {
	type stored struct {
		id   string
		body []byte
	}
	return ordered.Map(ctx, 128, func(emit func(stored) error) error {
		return s.eachStored(ctx, types, func(id string, body []byte) error { return emit(stored{id, body}) })
	}, func(chunk []stored) ([]*Entity, error) {
		ents := make([]*Entity, len(chunk))
		for i, st := range chunk {
			var err error
			if ents[i], err = decodeStored(st.id, st.body); err != nil {
				return nil, err
			}
		}
		return ents, nil
	}, func(ents []*Entity) error {
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachStored calls fn with the id and stored bytes of every entity
// EachOfType visits, in its order, in one read transaction; fn may keep
// the bytes (they are copies).
func (s *Service) eachStored(ctx context.Context, types []string, fn func(id string, body []byte) error) error {
	return s.db.View(func(tx *store.Txn) error {
		if len(types) == 0 {
			return tx.Iterate(store.IterOptions{Prefix: []byte(keyEntity)}, func(k, v []byte) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				id := string(k[len(keyEntity):])
				body, err := entityBodyAt(tx, id, v)
				if err != nil {
					return err
				}
				return fn(id, body)
			})
		}
		// One walk of the type index per type, merged by id: each walk is
		// in id order because the id ends the key.
		var its []*store.Iterator
		defer func() {
			for _, it := range its {
				it.Close()
			}
		}()
		seen := map[string]bool{}
		for _, t := range types {
			if !seen[t] {
				seen[t] = true
				its = append(its, tx.NewIterator(store.IterOptions{Prefix: typePrefix(s.codes.codeOf(t)), KeysOnly: true}))
			}
		}
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var next []byte
			for _, it := range its {
				if it.Valid() {
					if id := typeKeyID(it.Key()); next == nil || bytes.Compare(id, next) < 0 {
						next = id
					}
				}
			}
			if next == nil {
				return nil
			}
			id := string(next)
			for _, it := range its {
				if it.Valid() && string(typeKeyID(it.Key())) == id {
					it.Next()
				}
			}
			ptr, err := tx.Get(entityKey(id))
			if err != nil {
				return fmt.Errorf("read entity %s named by the type index: %w", id, err)
			}
			body, err := entityBodyAt(tx, id, ptr)
			if err != nil {
				return err
			}
			if err := fn(id, body); err != nil {
				return err
			}
		}
	})
}

// typeKeyID returns the id part of a type index key (after its code).
func typeKeyID(k []byte) []byte {
	return k[len(keyType)+4:]
}

// codeIndexed gives codes to the IRIs of e that its index keys name (its
// types, GeoProperty attributes and attributes with a value index) and
// have none yet.
func (s *Service) codeIndexed(e *Entity) error {
	for _, t := range e.Types {
		if _, err := s.codes.assign(s.db, t); err != nil {
			return err
		}
	}
	for attr, insts := range e.Attrs {
		if s.vidx.isWritten(attr) {
			if _, err := s.codes.assign(s.db, attr); err != nil {
				return err
			}
			continue
		}
		for _, a := range insts {
			if a.Type == GeoProperty {
				if _, err := s.codes.assign(s.db, attr); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
