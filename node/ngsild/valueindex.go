package ngsild

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mimnode/mimnode/node/store"
)

// valueIndexes tracks which attributes have a value index. Indexing every
// attribute of every entity doubled the cost of a write (a Smart Data Models
// entity has twenty-odd attributes, each one more key), while queries use a
// handful of attributes. So an attribute is indexed once a query filters on
// it (or Options.IndexedAttributes names it): the index is built in the
// background from the stored entities, kept by every later write, and used
// by the planner once complete. Until then, queries on that attribute use
// the other indexes. The set survives restarts (keys n/i/<attrIRI>: 'b'
// while building, 'r' when ready).
type valueIndexes struct {
	// write is the set writers index (building or ready); it changes only
	// under Service.wmu, so one commit sees one set.
	write atomic.Pointer[map[string]bool]
	// ready is the set the planner may use.
	ready atomic.Pointer[map[string]bool]

	mu       sync.Mutex
	building map[string]chan struct{} // closed when the build ends; guarded by mu
}

const (
	indexBuilding = 'b'
	indexReady    = 'r'
)

// backfillChunk is how many entities one backfill step indexes while
// holding the write lock.
const backfillChunk = 500

func (vi *valueIndexes) isWritten(attr string) bool { return (*vi.write.Load())[attr] }
func (vi *valueIndexes) isReady(attr string) bool   { return (*vi.ready.Load())[attr] }

func withAttr(m map[string]bool, attr string) *map[string]bool {
	n := make(map[string]bool, len(m)+1)
	for k := range m {
		n[k] = true
	}
	n[attr] = true
	return &n
}

// loadValueIndexes reads the set and resumes unfinished builds.
func (s *Service) loadValueIndexes() error {
	write, ready := map[string]bool{}, map[string]bool{}
	var resume []string
	err := s.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyIndexed)}, func(k, v []byte) error {
			attr := string(k[len(keyIndexed):])
			write[attr] = true
			if len(v) == 1 && v[0] == indexReady {
				ready[attr] = true
			} else {
				resume = append(resume, attr)
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read value index set: %w", err)
	}
	s.vidx.write.Store(&write)
	s.vidx.ready.Store(&ready)
	s.vidx.building = map[string]chan struct{}{}
	for _, attr := range resume {
		s.startIndex(attr)
	}
	for _, attr := range s.opts.IndexedAttributes {
		s.startIndex(attr)
	}
	return nil
}

// requestIndex asks for a value index on attr; it returns at once.
func (s *Service) requestIndex(attr string) {
	if s.vidx.isWritten(attr) {
		return
	}
	s.startIndex(attr)
}

// startIndex starts building attr's index unless it exists or is being
// built.
func (s *Service) startIndex(attr string) {
	s.vidx.mu.Lock()
	defer s.vidx.mu.Unlock()
	if _, ok := s.vidx.building[attr]; ok || s.vidx.isReady(attr) || s.closed.Load() {
		return
	}
	done := make(chan struct{})
	s.vidx.building[attr] = done
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(done)
		err := s.buildIndex(attr)
		s.vidx.mu.Lock()
		delete(s.vidx.building, attr)
		s.vidx.mu.Unlock()
		if err != nil && !errors.Is(err, errClosed) {
			s.log.Error("build value index", "attribute", attr, "err", err)
		}
	}()
}

var errClosed = errors.New("ngsild: service closed")

// buildIndex registers attr for writers, indexes every stored entity, then
// marks the index ready. Each step holds the write lock, so no write can
// slip between reading an entity and indexing it.
func (s *Service) buildIndex(attr string) error {
	s.wmu.Lock()
	err := s.db.Update(func(tx *store.Txn) error {
		return tx.Set([]byte(keyIndexed+attr), []byte{indexBuilding})
	})
	if err == nil {
		s.vidx.write.Store(withAttr(*s.vidx.write.Load(), attr))
	}
	s.wmu.Unlock()
	if err != nil {
		return err
	}
	cursor := []byte(keyEntity)
	for {
		if s.closed.Load() {
			return errClosed
		}
		done, err := s.backfill(attr, &cursor)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err = s.db.Update(func(tx *store.Txn) error {
		return tx.Set([]byte(keyIndexed+attr), []byte{indexReady})
	})
	if err != nil {
		return err
	}
	s.vidx.ready.Store(withAttr(*s.vidx.ready.Load(), attr))
	return nil
}

// backfill indexes attr for the next backfillChunk entities after cursor.
func (s *Service) backfill(attr string, cursor *[]byte) (done bool, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	code, err := s.codes.assign(s.db, attr)
	if err != nil {
		return false, err
	}
	var keys []string
	n, more := 0, false
	err = s.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyEntity), Start: *cursor}, func(k, v []byte) error {
			if n == backfillChunk {
				*cursor = append((*cursor)[:0], k...)
				more = true
				return store.ErrStop
			}
			n++
			e, err := entityAt(tx, string(k[len(keyEntity):]), v)
			if err != nil {
				return err
			}
			for key := range valueKeys(e, attr, code) {
				keys = append(keys, key)
			}
			return nil
		})
	})
	if err != nil {
		return false, err
	}
	b := s.db.NewBatch()
	for _, k := range keys {
		if err := b.Set([]byte(k), nil); err != nil {
			b.Cancel()
			return false, err
		}
	}
	if err := b.Flush(); err != nil {
		return false, err
	}
	return !more, nil
}

// waitIndexes waits until no value index is being built.
func (s *Service) waitIndexes(ctx context.Context) error {
	for {
		s.vidx.mu.Lock()
		var ch chan struct{}
		for _, c := range s.vidx.building {
			ch = c
			break
		}
		s.vidx.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
