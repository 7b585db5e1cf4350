package ngsild

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimnode/mimnode/internal/lognote"
	"github.com/mimnode/mimnode/node/store"
)

// NotifyOptions configures subscription notification delivery. The zero
// value works.
type NotifyOptions struct {
	// Allow is the endpoint allowlist (notifyallow.go): CIDRs and
	// [scheme://]host[:port] patterns. nil means DefaultNotifyAllow
	// (loopback only); an empty, non-nil list allows nothing.
	Allow []string
	// Resolver resolves endpoint host names for the allowlist (default
	// net.DefaultResolver).
	Resolver Resolver
	// Timeout bounds one notification POST (default 10s).
	Timeout time.Duration
	// Workers is how many notifications to one receiver (endpoint URI) are
	// in flight at once (default 4); other receivers have their own.
	Workers int
	// Queue is how many notifications may wait per receiver (default
	// 1024). A full queue drops the notification and records a failure on
	// its subscription rather than slowing anything down.
	Queue int
	// Retries is how often a failed notification is retried (default 5),
	// after Backoff, doubling up to MaxBackoff (defaults 100ms and 10s).
	Retries    int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// StatusInterval is how often changed delivery status and the
	// dispatcher's cursor are written to the store (default 1s; also at
	// Close). After a crash, what was notified since is notified again.
	StatusInterval time.Duration
}

func (o *NotifyOptions) setDefaults() {
	if o.Allow == nil {
		o.Allow = DefaultNotifyAllow
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Queue <= 0 {
		o.Queue = 1024
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.StatusInterval <= 0 {
		o.StatusInterval = time.Second
	}
}

// subStatus is a subscription's delivery record (clause 5.2.15).
type subStatus struct {
	TimesSent        int64     `json:"timesSent"`
	TimesFailed      int64     `json:"timesFailed"`
	LastNotification time.Time `json:"lastNotification,omitzero"`
	LastSuccess      time.Time `json:"lastSuccess,omitzero"`
	LastFailure      time.Time `json:"lastFailure,omitzero"`
	LastError        string    `json:"lastError,omitempty"`
}

// subRecord is a subscription as stored at n/s/<id>.
type subRecord struct {
	Body    json.RawMessage `json:"body"`    // subscriptionBody
	Context any             `json:"context"` // as the client gave it; nil: core
	Status  subStatus       `json:"status"`
}

// subState is one subscription the service holds.
type subState struct {
	body    subscriptionBody
	context any
	sub     *Subscription
	spec    *notifySpec // nil while sub is
	status  subStatus
}

// notifier is the subscription half of a Service: the subscriptions, their
// Matcher, and the HTTP delivery.
type notifier struct {
	s      *Service
	opts   NotifyOptions
	match  *Matcher
	allow  *Allowlist
	client *http.Client

	mu    sync.Mutex
	subs  map[string]*subState // guarded by mu
	dirty map[string]bool      // subscriptions whose status changed; guarded by mu
	recv  map[string]*receiver // by endpoint URI; guarded by mu
	stop  context.CancelFunc   // ends Start's goroutines; guarded by mu
	wg    sync.WaitGroup       // Start's goroutines
	start sync.Once
	// cursor is the last change the dispatcher has matched; saved is the
	// one in the store (written by flush, which never runs concurrently).
	cursor atomic.Uint64
	saved  uint64
}

// receiver is the queue and workers of one endpoint URI, so a slow or dead
// receiver only ever delays its own notifications.
type receiver struct {
	jobs chan job
}

type job struct {
	subID   string
	uri     string
	body    []byte
	headers http.Header // shared by the subscription's jobs: read only
}

func newNotifier(s *Service) (*notifier, error) {
	n := &notifier{s: s, opts: s.opts.Notify, match: NewMatcher(),
		subs: map[string]*subState{}, dirty: map[string]bool{}, recv: map[string]*receiver{}}
	n.opts.setDefaults()
	var err error
	if n.allow, err = ParseNotifyAllow(n.opts.Allow); err != nil {
		return nil, fmt.Errorf("notification endpoint allowlist: %w", err)
	}
	if n.opts.Resolver != nil {
		n.allow.resolver = n.opts.Resolver
	}
	n.client = n.allow.client(n.opts.Timeout, n.opts.Workers)
	err = s.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keySub)}, func(k, v []byte) error {
			var rec subRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode subscription %s: %w", k[len(keySub):], err)
			}
			st := &subState{context: rec.Context, status: rec.Status}
			if err := json.Unmarshal(rec.Body, &st.body); err != nil {
				return fmt.Errorf("decode subscription %s: %w", k[len(keySub):], err)
			}
			tc, err := s.ctx.resolve(rec.Context)
			if err != nil {
				// Keep it listed (so it can be fixed or deleted); it cannot
				// match until its context loads.
				s.log.Error("subscription context unavailable", "id", st.body.ID, "err", err)
				n.subs[st.body.ID] = st
				return nil
			}
			if st.sub, err = compileSubscription(&st.body, tc); err != nil {
				return fmt.Errorf("compile stored subscription %s: %w", st.body.ID, err)
			}
			st.spec = compileSpec(&st.body, st.sub, tc, st.context)
			n.put(st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load subscriptions: %w", err)
	}
	return n, nil
}

// Start begins background work: notification delivery for subscriptions
// (driven by the change feed from a cursor kept in the store, so no change
// is missed across a restart), periodic timeInterval notifications, and
// history retention. It returns at once; the work ends when ctx ends or
// Close is called. A second call does nothing.
func (s *Service) Start(ctx context.Context) error {
	n := s.notif
	var err error
	n.start.Do(func() {
		if s.closed.Load() {
			err = errors.New("ngsild: start after close")
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		n.mu.Lock()
		n.stop = cancel
		n.mu.Unlock()
		var cursor uint64
		cursor, err = readCursor(s.db)
		if err != nil {
			cancel()
			return
		}
		n.saved = cursor
		if cursor == 0 {
			cursor = s.LastSeq() // a fresh node notifies from now on
		}
		n.cursor.Store(cursor)
		n.wg.Add(3)
		go func() { defer n.wg.Done(); n.dispatch(ctx, cursor) }()
		go func() { defer n.wg.Done(); n.periodic(ctx) }()
		go func() { defer n.wg.Done(); n.flushLoop(ctx) }()
		s.startRetention(ctx)
	})
	return err
}

func (n *notifier) close() {
	n.mu.Lock()
	stop := n.stop
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
	n.wg.Wait()
	n.client.CloseIdleConnections()
	if err := n.flush(); err != nil {
		n.s.log.Error("persist subscription status", "err", err)
	}
}

func readCursor(db *store.DB) (uint64, error) {
	var c uint64
	err := db.View(func(tx *store.Txn) error {
		var err error
		c, err = readUint64(tx, keySubCur)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read subscription cursor: %w", err)
	}
	return c, nil
}

// checkEndpoint applies the allowlist to a new notification endpoint.
func (n *notifier) checkEndpoint(ctx context.Context, uri string) error {
	// The scheme first: the allow check may resolve the name.
	if err := checkEndpointURI(uri); err != nil {
		return err
	}
	if err := n.allow.Check(ctx, uri); err != nil {
		return &Error{Type: BadRequestData, Title: "notification endpoint not allowed", Detail: err.Error(), Err: err}
	}
	return nil
}

// put adds or replaces a subscription's state; n.mu is held or the
// notifier is not shared yet.
func (n *notifier) put(st *subState) {
	n.subs[st.body.ID] = st
	if st.sub != nil {
		n.match.Put(st.sub)
	}
	n.notePrev()
}

// remove drops a subscription; n.mu is held.
func (n *notifier) remove(id string) {
	delete(n.subs, id)
	delete(n.dirty, id)
	n.match.Remove(id)
	n.notePrev()
}

// notePrev tells the write path whether committed changes must keep the
// entity's previous state: only subscriptions with showChanges or that
// fire on deletions use it. n.mu is held.
func (n *notifier) notePrev() {
	need := false
	for _, st := range n.subs {
		if st.sub != nil && (st.body.Notification.ShowChanges || st.sub.triggers()&(EntityDeleted|AttributeDeleted) != 0) {
			need = true
			break
		}
	}
	n.s.recent.keepPrev.Store(need)
}

// dispatchBatch is how many changes one dispatch round matches; the
// entities one subscription matches in a round share one Notification.
const dispatchBatch = 1024

// dispatch follows the change feed and hands each matching change to the
// receivers' queues; it never waits for a receiver.
func (n *notifier) dispatch(ctx context.Context, cursor uint64) {
	wake, stop := n.s.Notify()
	defer stop()
	for {
		now := n.s.now()
		var evs []event
		var last uint64
		var full bool
		var err error
		if n.match.Len() == 0 {
			// Nobody to notify: pass the changes without reading them.
			last = n.s.LastSeq()
		} else {
			evs, last, full, err = n.s.changesFor(ctx, cursor+1, dispatchBatch, func(id string, types []string) bool {
				return n.match.Selects(now, id, types)
			})
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			n.s.log.Error("read change feed for subscriptions", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if len(evs) > 0 {
			n.notifyRound(ctx, now, evs)
		}
		if last > cursor {
			cursor = last
			n.s.recent.done(cursor)
			// Written with the status (flush), not per round: a synced
			// write per round competed with the writes being notified.
			// After a crash the notifications since the last flush are
			// sent again, never lost.
			n.cursor.Store(cursor)
		}
		if full {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
	}
}

// notifyRound matches a round of changes and queues one Notification per
// subscription that any of them fired, with the matched entities in
// change order.
func (n *notifier) notifyRound(ctx context.Context, now time.Time, evs []event) {
	fired := map[string][]*event{}
	var order []string
	for i := range evs {
		ev := &evs[i]
		for _, sub := range n.match.MatchPrev(now, ev.Change, ev.prev) {
			if fired[sub.ID] == nil {
				order = append(order, sub.ID)
			}
			fired[sub.ID] = append(fired[sub.ID], ev)
		}
	}
	rc := renderCache{}
	for _, id := range order {
		n.send(ctx, id, fired[id], rc)
	}
}

// recentChanges keeps the newest committed changes in memory, with their
// entities as committed (and, when keepPrev, as they were before), so the
// dispatcher matches them without reading and decoding them again (that
// was half its cost). Writes add to it only while there are
// subscriptions; a dispatcher that falls behind reads the feed.
type recentChanges struct {
	keepPrev atomic.Bool
	mu       sync.Mutex
	buf      []event // consecutive seqs; guarded by mu
}

// recentMax bounds recentChanges: several batch requests' worth. The
// dispatcher releases what it has matched (done), so the buffer only
// grows this far while it lags.
const recentMax = 8192

// add records the changes of a committed chunk whose last seq is last.
func (r *recentChanges) add(ps []prepared, last uint64, at time.Time) {
	n := 0
	for i := range ps {
		if ps[i].write {
			n++
		}
	}
	seq := last - uint64(n)
	keepPrev := r.keepPrev.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) > 0 && r.buf[len(r.buf)-1].Seq != seq {
		r.buf = r.buf[:0] // a gap (changes made while nobody subscribed)
	}
	for i := range ps {
		p := &ps[i]
		if !p.write {
			continue
		}
		seq++
		ev := event{Change: Change{Seq: seq, Op: OpUpdate, ID: p.id, Types: p.types, At: at, Removed: p.gone, Entity: p.out.entity}}
		switch {
		case p.body == nil:
			ev.Op, ev.Entity = OpDelete, nil
		case p.out.created:
			ev.Op = OpCreate
		}
		if keepPrev && !p.oldSummary {
			ev.prev = p.old
		}
		r.buf = append(r.buf, ev)
	}
	if len(r.buf) > recentMax {
		r.buf = append(r.buf[:0:0], r.buf[len(r.buf)-recentMax/2:]...)
	}
}

// done releases the changes up to seq, which the dispatcher has matched.
func (r *recentChanges) done(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 || seq < r.buf[0].Seq {
		return
	}
	if seq >= r.buf[len(r.buf)-1].Seq {
		clear(r.buf) // let the entities go
		r.buf = r.buf[:0]
		return
	}
	i := int(seq - r.buf[0].Seq + 1)
	clear(r.buf[:i])
	r.buf = r.buf[i:]
}

// from returns up to max changes with Seq >= from that want selects, and
// the last seq looked at; ok is false when from is not in memory.
func (r *recentChanges) from(from uint64, max int, want func(id string, types []string) bool) (out []event, last uint64, full, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 || from < r.buf[0].Seq || from > r.buf[len(r.buf)-1].Seq {
		return nil, 0, false, false
	}
	i := int(from - r.buf[0].Seq)
	end := min(len(r.buf), i+max)
	for _, ev := range r.buf[i:end] {
		if want(ev.ID, ev.Types) {
			out = append(out, ev)
		}
	}
	return out, r.buf[end-1].Seq, end-i == max, true
}

// changesFor reads up to max changes from seq from on, decoding the entity
// only of changes want selects (the others are left out); last is the
// newest seq read (0 when none), full whether max records were read.
// Changes read from the store do not know the entity's previous state.
func (s *Service) changesFor(ctx context.Context, from uint64, max int, want func(id string, types []string) bool) (out []event, last uint64, full bool, err error) {
	if out, last, full, ok := s.recent.from(from, max, want); ok {
		return out, last, full, nil
	}
	err = s.db.View(func(tx *store.Txn) error {
		if trimmed, err := readUint64(tx, keyTrim); err != nil {
			return err
		} else if from < trimmed {
			from = trimmed
		}
		n := 0
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyFeed), Start: feedKey(from)}, func(_, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			c, body, err := decodeChange(v, false)
			if err != nil {
				return err
			}
			last = c.Seq
			n++
			if want(c.ID, c.Types) {
				if len(body) > 0 && c.Entity == nil {
					c.Entity = new(Entity)
					if err := decodeEntityRecord(body, c.Entity); err != nil {
						return fmt.Errorf("decode entity of change %d: %w", c.Seq, err)
					}
				}
				out = append(out, event{Change: c})
			}
			if n >= max {
				full = true
				return store.ErrStop
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("read changes from %d: %w", from, err)
	}
	return out, last, full, nil
}

// periodic fires timeInterval subscriptions with the entities they select.
func (n *notifier) periodic(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rc := renderCache{}
		for _, sub := range n.match.Due(n.s.now()) {
			ents, err := n.s.selected(sub)
			if err != nil {
				n.s.log.Error("periodic subscription query", "id", sub.ID, "err", err)
				continue
			}
			evs := make([]*event, len(ents))
			for i, e := range ents {
				evs[i] = &event{Change: Change{Op: OpUpdate, ID: e.ID, Types: e.Types, Entity: e}}
			}
			if len(evs) > 0 {
				n.send(ctx, sub.ID, evs, rc)
			}
		}
	}
}

// selected lists the stored entities a subscription selects (up to
// MaxLimit), for periodic notifications.
func (s *Service) selected(sub *Subscription) ([]*Entity, error) {
	sels := sub.Entities
	if len(sels) == 0 {
		sels = []EntitySelector{{}}
	}
	seen := map[string]bool{}
	var out []*Entity
	for _, es := range sels {
		eq := &entityQuery{idPattern: es.IDPattern, q: sub.Q, geo: sub.Geo, geoIRI: sub.GeoProperty, scopeQ: sub.ScopeQ, limit: s.opts.MaxLimit}
		if es.ID != "" {
			eq.ids = map[string]bool{es.ID: true}
		}
		if es.Type != "" {
			eq.types = []string{es.Type}
		}
		page, _, err := s.run(eq)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if !seen[e.ID] && (len(sub.WatchedAttributes) == 0 || hasAny(e, sub.WatchedAttributes)) {
				seen[e.ID] = true
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func hasAny(e *Entity, attrs []string) bool {
	for _, a := range attrs {
		if _, ok := e.Attrs[a]; ok {
			return true
		}
	}
	return false
}

// send queues Notifications (clause 5.3.1) of evs for one subscription at
// its receiver without waiting, maxNotifyEntities entities per
// Notification; rc renders each entity once per look.
func (n *notifier) send(ctx context.Context, subID string, evs []*event, rc renderCache) {
	n.mu.Lock()
	st := n.subs[subID]
	n.mu.Unlock()
	if st == nil || st.spec == nil {
		return // deleted meanwhile
	}
	sp := st.spec
	for len(evs) > 0 {
		part := evs[:min(len(evs), maxNotifyEntities)]
		evs = evs[len(part):]
		items := make([][]byte, len(part))
		for i, ev := range part {
			items[i] = rc.item(sp, ev)
		}
		j := job{subID: subID, uri: sp.uri, body: sp.notification(subID, n.s.now(), items), headers: sp.header}
		select {
		case n.receiver(ctx, j.uri).jobs <- j:
		default:
			n.failed(subID, errors.New("receiver queue full: notification dropped"), false)
		}
	}
}

// receiver returns the queue for uri, starting its workers on first use.
func (n *notifier) receiver(ctx context.Context, uri string) *receiver {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.recv[uri]
	if r != nil {
		return r
	}
	r = &receiver{jobs: make(chan job, n.opts.Queue)}
	n.recv[uri] = r
	for i := 0; i < n.opts.Workers; i++ {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-r.jobs:
					n.deliver(ctx, j)
				}
			}
		}()
	}
	return r
}

// deliver posts one notification, retrying with exponential backoff.
func (n *notifier) deliver(ctx context.Context, j job) {
	wait := n.opts.Backoff
	var err error
	for attempt := 0; attempt <= n.opts.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, n.opts.MaxBackoff)
		}
		if err = n.post(ctx, j); err == nil {
			n.record(j.subID, func(st *subStatus, now time.Time) {
				st.TimesSent++
				st.LastNotification, st.LastSuccess = now, now
			})
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	n.failed(j.subID, err, true)
}

func (n *notifier) post(ctx context.Context, j job) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.uri, bytes.NewReader(j.body))
	if err != nil {
		return fmt.Errorf("notify %s: %w", j.uri, err)
	}
	req = req.WithContext(n.allow.requestContext(ctx, req.URL))
	req.Header = j.headers.Clone()
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("notify %s: %w", j.uri, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notify %s: receiver answered %s", j.uri, resp.Status)
	}
	return nil
}

// failed records a notification that failed: sent, and answered with an
// error or not at all, or dropped unsent (a full queue).
func (n *notifier) failed(subID string, err error, sent bool) {
	first := false
	n.record(subID, func(st *subStatus, now time.Time) {
		// Log when a subscription starts failing, not every drop: a dead
		// receiver fails every notification, and logging each one cost
		// more than the matching.
		first = st.LastFailure.IsZero() || st.LastSuccess.After(st.LastFailure)
		// timesSent counts every notification sent, timesFailed those
		// that failed (clause 5.2.14), so a monitor's success rate is
		// (timesSent - timesFailed) / timesSent; a dropped one is a
		// failure that was never sent.
		if sent {
			st.TimesSent++
		}
		st.TimesFailed++
		st.LastNotification, st.LastFailure = now, now
		st.LastError = err.Error()
	})
	if first {
		n.s.log.Warn("notifications failing", "subscription", subID, "err", err)
	}
}

func (n *notifier) record(subID string, fn func(*subStatus, time.Time)) {
	now := n.s.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if st := n.subs[subID]; st != nil {
		fn(&st.status, now)
		n.dirty[subID] = true
	}
}

func (n *notifier) flushLoop(ctx context.Context) {
	t := time.NewTicker(n.opts.StatusInterval)
	defer t.Stop()
	// A full disk refuses this write every tick until space is freed:
	// said once an hour, and again when writing works, not every second.
	var failing lognote.Note
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := n.flush()
			switch {
			case err == nil:
				if failing.End() {
					n.s.log.Info("saving the subscriptions' delivery state works again")
				}
			case failing.Hold(failureKind(err), time.Now()):
				n.s.log.Error("saving the subscriptions' delivery state (and where notifications are up to) failed; it is tried again every tick, and said again hourly", "err", err)
			}
		}
	}
}

// failureKind names a failure for lognote: a full disk is one failure
// however many MiB its text says are free.
func failureKind(err error) string {
	if errors.Is(err, store.ErrDiskFull) {
		return store.ErrDiskFull.Error()
	}
	return err.Error()
}

// flush writes the dispatcher's cursor and the status of subscriptions
// whose delivery record changed.
func (n *notifier) flush() error {
	cursor := n.cursor.Load()
	n.mu.Lock()
	recs := map[string][]byte{}
	for id := range n.dirty {
		if st := n.subs[id]; st != nil {
			b, err := st.record()
			if err != nil {
				n.mu.Unlock()
				return err
			}
			recs[id] = b
		}
	}
	n.dirty = map[string]bool{}
	n.mu.Unlock()
	if len(recs) == 0 && cursor <= n.saved {
		return nil
	}
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	err := n.s.db.Update(func(tx *store.Txn) error {
		if cursor > n.saved {
			if err := tx.Set([]byte(keySubCur), binary.BigEndian.AppendUint64(nil, cursor)); err != nil {
				return err
			}
		}
		for _, id := range ids {
			// A subscription deleted since is not brought back.
			if has, err := tx.Has([]byte(keySub + id)); err != nil || !has {
				if err != nil {
					return err
				}
				continue
			}
			if err := tx.Set([]byte(keySub+id), recs[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		n.saved = max(n.saved, cursor)
	}
	return err
}

func (st *subState) record() ([]byte, error) {
	body, err := json.Marshal(&st.body)
	if err != nil {
		return nil, fmt.Errorf("encode subscription %s: %w", st.body.ID, err)
	}
	b, err := json.Marshal(subRecord{Body: body, Context: st.context, Status: st.status})
	if err != nil {
		return nil, fmt.Errorf("encode subscription %s: %w", st.body.ID, err)
	}
	return b, nil
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
