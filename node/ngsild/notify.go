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
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// NotifyOptions configures subscription notification delivery. The zero
// value works.
type NotifyOptions struct {
	// Client posts notifications (default: a client with a 10s timeout).
	Client *http.Client
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
	// StatusInterval is how often changed delivery status is written to
	// the store (default 1s; also at Close).
	StatusInterval time.Duration
}

func (o *NotifyOptions) setDefaults() {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
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
	status  subStatus
}

// notifier is the subscription half of a Service: the subscriptions, their
// Matcher, and the HTTP delivery.
type notifier struct {
	s     *Service
	opts  NotifyOptions
	match *Matcher

	mu    sync.Mutex
	subs  map[string]*subState // guarded by mu
	dirty map[string]bool      // subscriptions whose status changed; guarded by mu
	recv  map[string]*receiver // by endpoint URI; guarded by mu
	stop  context.CancelFunc   // ends Start's goroutines; guarded by mu
	wg    sync.WaitGroup       // Start's goroutines
	start sync.Once
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
	headers http.Header
}

func newNotifier(s *Service) (*notifier, error) {
	n := &notifier{s: s, opts: s.opts.Notify, match: NewMatcher(),
		subs: map[string]*subState{}, dirty: map[string]bool{}, recv: map[string]*receiver{}}
	n.opts.setDefaults()
	err := s.db.View(func(tx *store.Txn) error {
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
			n.subs[st.body.ID] = st
			n.match.Put(st.sub)
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
		if cursor == 0 {
			cursor = s.LastSeq() // a fresh node notifies from now on
		}
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

// dispatch follows the change feed and hands each matching change to the
// receivers' queues; it never waits for a receiver.
func (n *notifier) dispatch(ctx context.Context, cursor uint64) {
	wake, stop := n.s.Notify()
	defer stop()
	const batch = 256
	for {
		now := n.s.now()
		changes, last, full, err := n.s.changesFor(ctx, cursor+1, batch, func(id string, types []string) bool {
			return n.match.Selects(now, id, types)
		})
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
		for _, c := range changes {
			for _, sub := range n.match.Match(now, c) {
				n.send(ctx, sub.ID, []*Entity{c.Entity})
			}
		}
		if last > cursor {
			cursor = last
			// Once per batch rather than per change: after a crash the
			// batch's notifications are sent again, never lost.
			if err := n.s.db.Update(func(tx *store.Txn) error {
				return tx.Set([]byte(keySubCur), binary.BigEndian.AppendUint64(nil, cursor))
			}); err != nil {
				n.s.log.Error("persist subscription cursor", "err", err)
			}
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

// recentChanges keeps the newest committed changes in memory, with their
// entities as committed, so the dispatcher matches them without reading
// and decoding them again (that was half its cost). Writes add to it only
// while there are subscriptions; a dispatcher that falls behind reads the
// feed.
type recentChanges struct {
	mu  sync.Mutex
	buf []Change // consecutive seqs; guarded by mu
}

// recentMax bounds recentChanges: a few batch requests' worth.
const recentMax = 2048

// add records the changes of a committed chunk whose last seq is last.
func (r *recentChanges) add(ps []prepared, last uint64, at time.Time) {
	n := 0
	for i := range ps {
		if ps[i].write {
			n++
		}
	}
	seq := last - uint64(n)
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
		c := Change{Seq: seq, Op: OpUpdate, ID: p.id, Types: p.types, At: at, Removed: p.gone, Entity: p.out.entity}
		switch {
		case p.body == nil:
			c.Op, c.Entity = OpDelete, nil
		case p.out.created:
			c.Op = OpCreate
		}
		r.buf = append(r.buf, c)
	}
	if len(r.buf) > recentMax {
		r.buf = append(r.buf[:0:0], r.buf[len(r.buf)-recentMax/2:]...)
	}
}

// from returns up to max changes with Seq >= from that want selects, and
// the last seq looked at; ok is false when from is not in memory.
func (r *recentChanges) from(from uint64, max int, want func(id string, types []string) bool) (out []Change, last uint64, full, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 || from < r.buf[0].Seq || from > r.buf[len(r.buf)-1].Seq {
		return nil, 0, false, false
	}
	i := int(from - r.buf[0].Seq)
	end := min(len(r.buf), i+max)
	for _, c := range r.buf[i:end] {
		if c.Entity != nil && want(c.ID, c.Types) {
			out = append(out, c)
		}
	}
	return out, r.buf[end-1].Seq, end-i == max, true
}

// changesFor reads up to max changes from seq from on, decoding the entity
// only of changes want selects (the others are left out); last is the
// newest seq read (0 when none), full whether max records were read.
func (s *Service) changesFor(ctx context.Context, from uint64, max int, want func(id string, types []string) bool) (out []Change, last uint64, full bool, err error) {
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
			header, body, err := splitChange(v)
			if err != nil {
				return err
			}
			var rec changeRecord
			if err := json.Unmarshal(header, &rec); err != nil {
				return fmt.Errorf("decode change: %w", err)
			}
			last = rec.Seq
			n++
			if len(body) > 0 && want(rec.ID, rec.Types) {
				c := Change{Seq: rec.Seq, Op: rec.Op, ID: rec.ID, Types: rec.Types, At: rec.At, Removed: rec.Removed, Entity: new(Entity)}
				if err := decodeEntityRecord(body, c.Entity); err != nil {
					return fmt.Errorf("decode entity of change %d: %w", rec.Seq, err)
				}
				out = append(out, c)
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
		for _, sub := range n.match.Due(n.s.now()) {
			ents, err := n.s.selected(sub)
			if err != nil {
				n.s.log.Error("periodic subscription query", "id", sub.ID, "err", err)
				continue
			}
			if len(ents) > 0 {
				n.send(ctx, sub.ID, ents)
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
		eq := &entityQuery{idPattern: es.IDPattern, q: sub.Q, geo: sub.Geo, geoIRI: sub.GeoProperty, limit: s.opts.MaxLimit}
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

// send renders a Notification (clause 5.3.1) for one subscription and
// queues it at the subscription's receiver without waiting.
func (n *notifier) send(ctx context.Context, subID string, ents []*Entity) {
	n.mu.Lock()
	st := n.subs[subID]
	n.mu.Unlock()
	if st == nil {
		return // deleted meanwhile
	}
	nd := st.body.Notification
	ro := RenderOptions{Context: st.context, Format: nd.Format, Attrs: nd.Attributes, SysAttrs: nd.SysAttrs}
	data := make([]any, 0, len(ents))
	for _, e := range ents {
		m, err := n.s.Render(e, ro)
		if err != nil {
			n.failed(subID, fmt.Errorf("render notification: %w", err))
			return
		}
		data = append(data, m)
	}
	doc := map[string]any{
		"id":             "urn:ngsi-ld:Notification:" + randomID(),
		"type":           "Notification",
		"subscriptionId": subID,
		"notifiedAt":     fmtTime(n.s.now()),
		"data":           data,
	}
	h := http.Header{}
	if nd.Endpoint.Accept == "application/ld+json" {
		h.Set("Content-Type", "application/ld+json")
		doc["@context"] = contextValue(st.context)
	} else {
		h.Set("Content-Type", "application/json")
		link := CoreContextURL
		if u, ok := st.context.(string); ok {
			link = u
		}
		h.Set("Link", "<"+link+`>; rel="`+jsonldContextRel+`"; type="application/ld+json"`)
	}
	for _, kv := range nd.Endpoint.ReceiverInfo {
		h.Add(kv.Key, kv.Value)
	}
	j := job{subID: subID, uri: nd.Endpoint.URI, body: appendValue(nil, doc), headers: h}
	select {
	case n.receiver(ctx, j.uri).jobs <- j:
	default:
		n.failed(subID, errors.New("receiver queue full: notification dropped"))
	}
}

func contextValue(c any) any {
	if c == nil {
		return CoreContextURL
	}
	return c
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
	n.failed(j.subID, err)
}

func (n *notifier) post(ctx context.Context, j job) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.uri, bytes.NewReader(j.body))
	if err != nil {
		return fmt.Errorf("notify %s: %w", j.uri, err)
	}
	req.Header = j.headers.Clone()
	resp, err := n.opts.Client.Do(req)
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

func (n *notifier) failed(subID string, err error) {
	first := false
	n.record(subID, func(st *subStatus, now time.Time) {
		// Log when a subscription starts failing, not every drop: a dead
		// receiver fails every notification, and logging each one cost
		// more than the matching.
		first = st.LastFailure.IsZero() || st.LastSuccess.After(st.LastFailure)
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.flush(); err != nil {
				n.s.log.Error("persist subscription status", "err", err)
			}
		}
	}
}

// flush writes the status of subscriptions whose delivery record changed.
func (n *notifier) flush() error {
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
	if len(recs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return n.s.db.Update(func(tx *store.Txn) error {
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
