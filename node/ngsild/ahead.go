package ngsild

import (
	"errors"
	"runtime"
	"sync"

	"github.com/mimnode/mimnode/node/store"
)

// ahead is the part of a change that does not depend on the state it
// replaces, worked out by workAhead before commit takes the write lock:
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
	hist    []histEntry // s.history(e, nil, histRefs), when histOK
	histOK  bool
	// body is packEntity(e) when the store held no entity e.ID as
	// workAhead read it: e is the new state unchanged when created.
	body []byte
}

// check returns the verdict of s.val.check(e): the one worked out ahead
// when it was for this entity, with the types it has now.
func (a *ahead) check(s *Service, e *Entity) error {
	if a != nil && a.checked && a.e == e {
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
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// A failed read only leaves bodies out; prepare reads again.
			_ = s.db.View(func(tx *store.Txn) error {
				for i := w; i < len(chs); i += workers {
					if err := s.workOut(tx, chs[i].ahead); err != nil {
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
func (s *Service) workOut(tx *store.Txn, a *ahead) error {
	if a == nil || a.e == nil {
		return nil
	}
	e := a.e
	// A replace without types takes the stored entity's: its verdict
	// waits for them.
	if a.validate && len(e.Types) > 0 {
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
		a.body = packEntity(e)
	case err != nil:
		return err
	}
	return nil
}
