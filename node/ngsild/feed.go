package ngsild

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// Op is the kind of an entity change.
type Op string

// Change operations.
const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Change is one entry of the change feed: an entity write with the entity's
// state after it.
type Change struct {
	// Seq numbers changes from 1 upwards, without gaps, in commit order.
	Seq uint64
	Op  Op
	ID  string
	// Types are the entity's expanded types (before a delete, its last ones).
	Types []string
	At    time.Time
	// Entity is the new state (names expanded); nil for OpDelete.
	Entity *Entity
	// Removed are the attributes (expanded) the change deleted from the
	// entity; with Entity.Touched they are what the change changed.
	Removed []string
}

// changeRecord is a Change as stored at n/f/<seq> (see appendChange).
type changeRecord struct {
	Seq     uint64    `json:"seq"`
	Op      Op        `json:"op"`
	ID      string    `json:"id"`
	Types   []string  `json:"types"`
	At      time.Time `json:"at"`
	Removed []string  `json:"gone,omitempty"`
	Entity  []byte    `json:"-"` // the entity's stored bytes; nil for a delete
}

// LastSeq returns the sequence number of the newest committed change (0 when
// nothing has been written yet).
func (s *Service) LastSeq() uint64 { return s.seq.Load() }

// Changes returns up to max committed changes with Seq >= from, oldest first.
// Fewer than max (possibly none) means the caller has caught up.
func (s *Service) Changes(ctx context.Context, from uint64, max int) ([]Change, error) {
	if max <= 0 {
		max = 256
	}
	var out []Change
	err := s.db.View(func(tx *store.Txn) error {
		// Records below the trim mark that are kept only because they hold
		// an entity's current state are not part of the feed any more.
		if trimmed, err := readUint64(tx, keyTrim); err != nil {
			return err
		} else if from < trimmed {
			from = trimmed
		}
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyFeed), Start: feedKey(from)}, func(_, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			c, _, err := decodeChange(v, true)
			if err != nil {
				return err
			}
			out = append(out, c)
			if len(out) >= max {
				return store.ErrStop
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read changes from %d: %w", from, err)
	}
	return out, nil
}

// Notify returns a channel that receives a value after new changes are
// committed, and a function to stop. Signals are coalesced (the channel has
// room for one), so a slow consumer never blocks a write: it wakes up, reads
// Changes from its own cursor until caught up, and waits again.
func (s *Service) Notify() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.subsMu.Lock()
	s.subs[ch] = struct{}{}
	s.subsMu.Unlock()
	return ch, func() {
		s.subsMu.Lock()
		delete(s.subs, ch)
		s.subsMu.Unlock()
	}
}

func (s *Service) notify() {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Follow calls fn for every change with Seq >= from, in order, then for each
// new one as it is committed, until ctx ends or fn fails. It returns ctx's
// error or fn's. fn runs on the caller's goroutine, so a slow fn only delays
// this consumer.
func (s *Service) Follow(ctx context.Context, from uint64, fn func(Change) error) error {
	wake, stop := s.Notify()
	defer stop()
	for {
		batch, err := s.Changes(ctx, from, 256)
		if err != nil {
			return err
		}
		for _, c := range batch {
			if err := fn(c); err != nil {
				return err
			}
			from = c.Seq + 1
		}
		if len(batch) == 256 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// TrimChanges drops feed entries with Seq < before, once every consumer has
// moved past them. A record that still holds an entity's current state is
// kept for the entity but no longer returned by Changes. Sequence numbers
// are never reused.
func (s *Service) TrimChanges(before uint64) error {
	s.wmu.Lock() // no write may repoint an entity while we decide
	defer s.wmu.Unlock()
	if err := s.db.Update(func(tx *store.Txn) error {
		cur, err := readUint64(tx, keyTrim)
		if err != nil || before <= cur {
			return err
		}
		return tx.Set([]byte(keyTrim), binary.BigEndian.AppendUint64(nil, before))
	}); err != nil {
		return fmt.Errorf("trim changes: %w", err)
	}
	start := feedKey(0)
	for {
		var keys [][]byte
		states := map[uint64][]byte{} // of the records dropped, for their history
		err := s.db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: []byte(keyFeed), Start: start}, func(k, v []byte) error {
				if len(k) != len(keyFeed)+8 || binary.BigEndian.Uint64(k[len(keyFeed):]) >= before || len(keys) >= 10000 {
					return store.ErrStop
				}
				start = append(bytes.Clone(k), 0)
				c, body, err := decodeChange(v, false)
				if err != nil {
					return err
				}
				if len(body) > 0 {
					ptr, err := tx.Get(entityKey(c.ID))
					if err == nil && bytes.Equal(ptr, k[len(keyFeed):]) {
						return nil // the entity's current state
					}
				}
				keys = append(keys, bytes.Clone(k))
				if len(body) > 0 {
					states[binary.BigEndian.Uint64(k[len(keyFeed):])] = bytes.Clone(body)
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("trim changes: %w", err)
		}
		// The history records of these writes may refer to them.
		if err := s.writeOutHistory(states); err != nil {
			return fmt.Errorf("trim changes: %w", err)
		}
		if len(keys) == 0 {
			if s.feedDone(start, before) {
				return nil
			}
			continue
		}
		b := s.db.NewBatch()
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				b.Cancel()
				return fmt.Errorf("trim changes: %w", err)
			}
		}
		if err := b.Flush(); err != nil {
			return fmt.Errorf("trim changes: %w", err)
		}
	}
}

// feedDone reports whether no feed key below before remains at or after
// start.
func (s *Service) feedDone(start []byte, before uint64) bool {
	done := true
	_ = s.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyFeed), Start: start, KeysOnly: true}, func(k, _ []byte) error {
			done = len(k) != len(keyFeed)+8 || binary.BigEndian.Uint64(k[len(keyFeed):]) >= before
			return store.ErrStop
		})
	})
	return done
}

// decodeChange decodes a feed record (appendChange) and returns the
// change and the entity's stored bytes (nil for a delete). The state is
// decoded into Change.Entity when entity is true, and also when the header
// leaves out the id and types, which the state holds; a caller that wants
// the state later decodes the bytes itself when Entity is nil.
func decodeChange(v []byte, entity bool) (Change, []byte, error) {
	header, body, err := splitChange(v)
	if err != nil {
		return Change{}, nil, err
	}
	var rec changeRecord
	if len(header) > 0 && header[0] == feedHeader {
		err = decodeFeedHeader(header[1:], &rec)
	} else {
		err = json.Unmarshal(header, &rec)
	}
	if err != nil {
		return Change{}, nil, fmt.Errorf("decode change: %w", err)
	}
	c := Change{Seq: rec.Seq, Op: rec.Op, ID: rec.ID, Types: rec.Types, At: rec.At, Removed: rec.Removed}
	if len(body) == 0 {
		return c, nil, nil
	}
	if entity || rec.ID == "" {
		c.Entity = new(Entity)
		if err := decodeEntityRecord(body, c.Entity); err != nil {
			return Change{}, nil, fmt.Errorf("decode entity of change %d: %w", rec.Seq, err)
		}
		if rec.ID == "" {
			c.ID, c.Types = c.Entity.ID, c.Entity.Types
		}
	}
	return c, body, nil
}

// readUint64 reads a big-endian counter, 0 when absent.
func readUint64(tx *store.Txn, key string) (uint64, error) {
	v, err := tx.Get([]byte(key))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt counter %s", key)
	}
	return binary.BigEndian.Uint64(v), nil
}
