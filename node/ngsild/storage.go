package ngsild

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/mimnode/mimnode/node/store"
)

// change is one entity write in a commit.
type change struct {
	id string
	// apply computes the new state from the stored one (nil when absent).
	// Returning (nil, nil) deletes the entity; an error fails this entity
	// only. It may run more than once (transaction retries), so it must not
	// keep state between calls.
	apply func(old *Entity) (*Entity, error)
}

// outcome is what happened to one change.
type outcome struct {
	err     error
	created bool
	deleted bool
	entity  *Entity
}

// commitChunk is how many entity writes share one transaction (and one
// fsync); a chunk that is still too big for badger is halved.
const commitChunk = 128

// commit applies the changes durably. Writes are serialized by wmu so that
// feed sequence numbers are committed in order: a consumer that has read
// sequence N never later finds a committed N-1 it missed. Badger's sync
// writes make each transaction durable before commit returns.
func (s *Service) commit(chs []change) ([]outcome, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	outs := make([]outcome, len(chs))
	var err error
	for start := 0; start < len(chs); {
		n := min(commitChunk, len(chs)-start)
		for {
			var seq uint64
			seq, err = s.commitTxn(chs[start:start+n], outs[start:start+n])
			if store.IsTooBig(err) && n > 1 {
				n /= 2
				continue
			}
			if err == nil {
				s.seq.Store(seq)
			}
			break
		}
		if err != nil {
			break
		}
		start += n
	}
	s.notify()
	if err != nil {
		return outs, fmt.Errorf("commit entity changes: %w", err)
	}
	return outs, nil
}

func (s *Service) commitTxn(chs []change, outs []outcome) (uint64, error) {
	var last uint64
	err := s.db.Update(func(tx *store.Txn) error {
		seq := s.seq.Load()
		counts := map[string]int64{}
		now := s.now()
		for i, ch := range chs {
			outs[i] = outcome{}
			old, err := getEntity(tx, ch.id)
			if err != nil {
				return err
			}
			ne, err := ch.apply(old)
			if err != nil {
				outs[i].err = err
				continue
			}
			if ne == nil && old == nil {
				continue
			}
			var oldKeys, newKeys map[string]struct{}
			if old != nil {
				oldKeys = indexKeys(old, counts, -1)
			}
			if ne != nil {
				newKeys = indexKeys(ne, counts, +1)
			}
			for k := range oldKeys {
				if _, keep := newKeys[k]; !keep {
					if err := tx.Delete([]byte(k)); err != nil {
						return err
					}
				}
			}
			for k := range newKeys {
				if _, had := oldKeys[k]; !had {
					if err := tx.Set([]byte(k), nil); err != nil {
						return err
					}
				}
			}
			seq++
			rec := changeRecord{Seq: seq, ID: ch.id, At: now}
			switch {
			case ne == nil:
				rec.Op, rec.Types = OpDelete, old.Types
				outs[i].deleted = true
				if err := tx.Delete(entityKey(ch.id)); err != nil {
					return err
				}
			default:
				b := appendEntity(nil, ne)
				if err := tx.Set(entityKey(ch.id), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
					return err
				}
				rec.Op, rec.Types, rec.Entity = OpUpdate, ne.Types, b
				if old == nil {
					rec.Op = OpCreate
					outs[i].created = true
				}
				outs[i].entity = ne
			}
			if err := tx.Set(feedKey(seq), appendChange(nil, &rec)); err != nil {
				return err
			}
		}
		last = seq
		if seq != s.seq.Load() {
			if err := tx.Set([]byte(keySeq), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
				return err
			}
		}
		return applyCounts(tx, counts)
	})
	return last, err
}

// applyCounts adds the deltas to the counters, in key order so concurrent
// readers see a consistent picture per key.
func applyCounts(tx *store.Txn, counts map[string]int64) error {
	keys := make([]string, 0, len(counts))
	for k, d := range counts {
		if d != 0 {
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
	v, err := tx.Get(entityKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read entity %s: %w", id, err)
	}
	return entityAt(tx, id, v)
}

// entityAt reads the entity state a seq pointer (an entity key's value)
// names.
func entityAt(tx *store.Txn, id string, ptr []byte) (*Entity, error) {
	if len(ptr) != 8 {
		return nil, fmt.Errorf("read entity %s: corrupt version pointer", id)
	}
	seq := binary.BigEndian.Uint64(ptr)
	rec, err := tx.Get(feedKey(seq))
	if err != nil {
		return nil, fmt.Errorf("read entity %s at change %d: %w", id, seq, err)
	}
	_, body, err := splitChange(rec)
	if err != nil || len(body) == 0 {
		return nil, fmt.Errorf("read entity %s at change %d: corrupt record", id, seq)
	}
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
