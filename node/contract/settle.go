package contract

import (
	"time"

	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// settleDelay bounds how long a finished negotiation's settled state
// waits for another write to ride along with before it is written on its
// own.
const settleDelay = 100 * time.Millisecond

// A negotiation's last change is usually the peer's answer to its final
// message (the provider's FINALIZED, say). Storing it only spares a
// resend after a restart, which the peer answers the same way, so it
// needs no synced write of its own: it is stored in the transaction of the
// next negotiation step this node persists (takeSettled), or after
// settleDelay on its own (flushSettled), or at Close. Until then the
// negotiation stays in memory, where messages for it find it.

// settle queues finished, changed e to be stored. e.mu is held.
func (s *Service) settle(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settling[e.key] = e
	if s.settleTimer == nil && !s.closed {
		s.settleTimer = time.AfterFunc(settleDelay, func() { s.goDo(s.flushSettled) })
	}
}

// dropLocked forgets finished e in memory: it stays in the store, where
// resends of finished negotiations find it. e.mu is held.
func (s *Service) dropLocked(e *entry) {
	e.gone = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[e.key] == e {
		delete(s.live, e.key)
	}
	if s.settling[e.key] == e {
		delete(s.settling, e.key)
	}
	s.releaseAgreementIDLocked(e)
	if e.key.Role == negotiation.Provider {
		// The store index answers resends from now on.
		delete(s.firsts, e.n.Peer()+" "+e.n.Pids().ConsumerPid)
	}
}

// settledRecord is a finished negotiation, locked, and its record to store.
type settledRecord struct {
	e      *entry
	record []byte
}

// takeSettled locks the queued finished negotiations it can lock without
// waiting (other than e, whose lock the caller holds) and returns them
// with their records, to be written in the caller's transaction and then
// handed to doneSettled.
func (s *Service) takeSettled(e *entry, now time.Time) []settledRecord {
	s.mu.Lock()
	var cands []*entry
	for k, o := range s.settling {
		if o != e && o.mu.TryLock() {
			delete(s.settling, k)
			cands = append(cands, o)
		}
	}
	s.mu.Unlock()
	return s.settledRecords(cands, now)
}

// settledRecords encodes the records of locked entries that still need
// storing, and unlocks (and drops from memory, if finished and stored)
// the others.
func (s *Service) settledRecords(es []*entry, now time.Time) []settledRecord {
	var out []settledRecord
	for _, o := range es {
		if o.gone || !o.dirty || !o.n.State().Terminal() || !o.n.NextTick().IsZero() {
			// Moved on since it was queued: its own steps store it.
			if !o.gone && !o.dirty && o.n.State().Terminal() && o.n.NextTick().IsZero() {
				s.dropLocked(o)
			}
			o.mu.Unlock()
			continue
		}
		b, err := recordOf(o, now)
		if err != nil {
			s.log.Warn("encoding finished negotiation", "pid", o.key.Pid, "err", err)
			o.mu.Unlock()
			continue
		}
		out = append(out, settledRecord{e: o, record: b})
	}
	return out
}

// doneSettled finishes what takeSettled took once the transaction is
// over: stored, the negotiations leave memory; not stored, they are
// queued again.
func (s *Service) doneSettled(rs []settledRecord, stored bool) {
	for _, r := range rs {
		if stored {
			r.e.dirty = false
			s.dropLocked(r.e)
		} else {
			s.settle(r.e)
		}
		r.e.mu.Unlock()
	}
}

// flushSettled stores every queued finished negotiation in one
// transaction. A failure only costs resends after a restart; they are
// queued again.
func (s *Service) flushSettled() {
	s.mu.Lock()
	s.settleTimer = nil
	es := make([]*entry, 0, len(s.settling))
	for k, o := range s.settling {
		delete(s.settling, k)
		es = append(es, o)
	}
	s.mu.Unlock()
	if len(es) == 0 {
		return
	}
	// Locking one entry after another cannot deadlock: nobody waits for
	// an entry's lock while holding another (takeSettled only tries).
	for _, o := range es {
		o.mu.Lock()
	}
	rs := s.settledRecords(es, s.o.Now())
	if len(rs) == 0 {
		return
	}
	err := s.o.Store.Update(func(tx *store.Txn) error {
		for _, r := range rs {
			if err := tx.Set(negKey(r.e.key), r.record); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("storing finished negotiations", "count", len(rs), "err", err)
	}
	s.doneSettled(rs, err == nil)
}
