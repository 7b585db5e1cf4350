package ngsild

import (
	"errors"
	"runtime"
	"sync"

	"github.com/mimnode/mimnode/node/store"
)

// ahead is the part of a change that does not depend on the state it
// replaces, worked out by workAhead while commit waits for the write lock:
// two requests in flight then validate and encode on both cores while
// one of them holds the lock to read old states and write. A change's
// apply and prepare take from it only what still holds for the state
// they find (the same entity, a create when body was made for one), and
// work the rest out as before.
type ahead struct {
	e        *Entity
	validate bool // apply checks e against its data model (check)

	// Set by workAhead; read only once it has returned.
	checked bool
	err     error       // s.val.check(e), when checked
	gen     uint64      // s.val.gen before that check
	hist    []histEntry // s.history(e, nil, histRefs), when histOK
	histOK  bool
	// body is packEntity(e) when the store held no entity e.ID as
	// workAhead read it (after sequence number absentAt was committed):
	// e is the new state unchanged when created.
	body     []byte
	absentAt uint64
	// absent is set by commitNoSync, under the write lock, when no
	// commit since absentAt wrote e.ID: prepare need not read it again.
	absent bool
}

// check returns the verdict of s.val.check(e): the one worked out ahead
// when it was for this entity, with the types it has now, and no schema
// was bound since (apply runs under the write lock, as BindModel does).
func (a *ahead) check(s *Service, e *Entity) error {
	if a != nil && a.checked && a.e == e && a.gen == s.val.gen.Load() {
		return a.err
	}
	return s.val.check(e)
}

// workAheadMin is the smallest commit worked out ahead: a single write
// gains nothing from it and would pay a second existence read.
const workAheadMin = 2

// workAhead fills in each change's ahead, over the cores, outside the
// write lock. It reads the store only to learn which entities are absent
// (their state will be e as it is); a change whose entity is written by
// someone else meanwhile is prepared again from what prepare reads, so a
// wrong guess costs time, never correctness.
func (s *Service) workAhead(chs []change) {
	if len(chs) < workAheadMin {
		return
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), (len(chs)+31)/32))
	// Every commit up to seq is in the transactions' snapshots: a commit
	// stores its last number after its transaction.
	seq := s.seq.Load()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// A failed read only leaves bodies out; prepare reads again.
			_ = s.db.View(func(tx *store.Txn) error {
				for i := w; i < len(chs); i += workers {
					if err := s.workOut(tx, chs[i].ahead, seq); err != nil {
						return err
					}
				}
				return nil
			})
		}(w)
	}
	wg.Wait()
}

// workOut fills in a for one change (nil: nothing to do).
func (s *Service) workOut(tx *store.Txn, a *ahead, seq uint64) error {
	if a == nil || a.e == nil {
		return nil
	}
	e := a.e
	// A replace without types takes the stored entity's: its verdict
	// waits for them.
	if a.validate && len(e.Types) > 0 {
		a.gen = s.val.gen.Load() // before the check: a binding during it changes gen after
		a.err, a.checked = s.val.check(e), true
		if a.err != nil {
			return nil
		}
	}
	if hist, err := s.history(e, nil, histRefs); err == nil {
		a.hist, a.histOK = hist, true
	}
	_, err := tx.Get(entityKey(e.ID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.body, a.absentAt = packEntity(e), seq
	case err != nil:
		return err
	}
	return nil
}

// writtenLog lists the ids the latest commits that wrote anything wrote,
// newest last, so a commit can trust workAhead's finding that an entity
// is absent when none of the commits since wrote it: one existence read
// per created entity instead of two. Commits are logged in the order they
// hold the write lock, and only they give out sequence numbers, so the
// logged ranges follow each other.
type writtenLog struct {
	recs [writtenKept]writtenRec
	n    int // commits logged; the newest is recs[(n-1)%writtenKept]
}

// writtenKept is how many commits the log keeps: with two requests in
// flight one or two commit between a request's workAhead and its own.
const writtenKept = 8

// writtenRec is one commit: the sequence numbers before and after it and
// the ids it wrote (or may have: a failed commit lists all it prepared).
type writtenRec struct {
	from, to uint64
	ids      map[string]struct{}
}

// add logs a commit that moved the sequence from from to to.
func (l *writtenLog) add(from, to uint64, ids map[string]struct{}) {
	l.recs[l.n%writtenKept] = writtenRec{from: from, to: to, ids: ids}
	l.n++
}

// unwritten reports whether no commit after sequence number since and up
// to now wrote id; false when the log does not reach back to since.
func (l *writtenLog) unwritten(id string, since, now uint64) bool {
	if since >= now {
		return true
	}
	reached := false
	for k := 0; k < min(l.n, writtenKept); k++ {
		r := &l.recs[(l.n-1-k)%writtenKept]
		if r.to <= since {
			reached = true
			break
		}
		if _, ok := r.ids[id]; ok {
			return false
		}
		if r.from <= since {
			reached = true
			break
		}
	}
	return reached
}
