package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"

	"github.com/mimnode/mimnode/node/store"
)

// Errors.
var (
	// ErrBroken means the stored chain does not verify: an entry was
	// changed, removed or inserted. It is wrapped by *BrokenError, which
	// names the first entry that does not fit.
	ErrBroken = errors.New("audit log chain broken")
	// ErrBadEntry means an entry given to Append lacks its kind or subject.
	ErrBadEntry = errors.New("bad audit entry")
)

// Kinds of entries the node writes. Kind is an open string so that later
// features (transfers, consent checks) add their own without touching
// this package; these are the ones the contract driver uses.
const (
	KindNegotiationRequested  = "negotiation.requested"
	KindNegotiationTransition = "negotiation.transition"
	KindNegotiationRefused    = "negotiation.refused"
	KindAgreementSigned       = "agreement.signed"
	KindAgreementRevoked      = "agreement.revoked"
	KindDecision              = "decision"
)

// Entry is one line of the log. Seq, Prev and Hash are filled in by
// Append; the caller sets the rest.
type Entry struct {
	Seq     uint64          `json:"seq"`
	Time    time.Time       `json:"time"`
	Kind    string          `json:"kind"`
	Subject string          `json:"subject"`
	Peer    string          `json:"peer,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	// Prev is the hex SHA-256 of the previous entry ("" for the first).
	Prev string `json:"prev"`
	// Hash is hex SHA-256(prev hash bytes || JCS(entry without hash)).
	Hash string `json:"hash"`
}

// Key layout under store.PrefixAudit:
//
//	a/e/<seq, 20 decimal digits>  one Entry as JSON
//	a/head                        {"seq":N,"hash":"..."} of the last entry
var (
	entryPrefix = store.Key(store.PrefixAudit, "e", "")
	headKey     = store.Key(store.PrefixAudit, "head")
)

func entryKey(seq uint64) []byte {
	var d [20]byte
	digits := strconv.AppendUint(d[:0], seq, 10)
	b := make([]byte, 0, len(entryPrefix)+max(20, len(digits)))
	b = append(b, entryPrefix...)
	for range 20 - len(digits) {
		b = append(b, '0')
	}
	return append(b, digits...)
}

type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Log is a node's hash-chained transaction log. It is safe for concurrent
// use.
type Log struct {
	db *store.DB
	// leader holds a token while one Update call commits a batch; the
	// others queue meanwhile and are committed together by the next
	// leader (group commit: one synced write for many appenders, and no
	// conflicts on the head key between them). A queued caller waits for
	// either its result or the token, so that a batch's callers return
	// as soon as it is committed, each on its own, not one after another
	// through a lock that the next leader then waits for as well.
	leader chan struct{} // capacity 1: full while a leader commits

	mu    sync.Mutex
	queue []*pending // guarded by mu
}

// pending is one Update waiting to be committed and synced.
type pending struct {
	fn    func(tx *store.Txn) error
	done  chan error
	taken bool // guarded by Log.mu; in a leader's batch
	// panicked says fn panicked with panicVal, which its caller panics
	// with in turn: a panic runs on the leader's goroutine, whose caller
	// is not fn's. Set by the leader before done is sent.
	panicked bool
	panicVal any
}

// errPanicked is the error of a fn that panicked, which aborts its batch.
var errPanicked = errors.New("audit: update function panicked")

// run runs p.fn in tx, recovering a panic as errPanicked.
func (p *pending) run(tx *store.Txn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.panicked, p.panicVal, err = true, r, errPanicked
		}
	}()
	return p.fn(tx)
}

// outcome returns err, received from p.done, or panics as p.fn did.
func (p *pending) outcome(err error) error {
	if p.panicked {
		panic(p.panicVal)
	}
	return err
}

// errLeaderGone is the outcome of an Update whose batch's leader left
// before it handed the outcomes (a panic or runtime.Goexit outside the
// callers' functions).
var errLeaderGone = errors.New("audit: the commit of the batch was abandoned")

// Open returns the log kept in db.
func Open(db *store.DB) *Log { return &Log{db: db, leader: make(chan struct{}, 1)} }

// Hash computes e's hash from its fields and e.Prev, ignoring e.Hash.
func Hash(e Entry) (string, error) {
	return hashEntry(e, len(e.Data) > 0 && isCanonical(e.Data))
}

// hashEntry is Hash, told whether e.Data is in the canonical subset
// (isCanonical) by a caller that checked it already.
func hashEntry(e Entry, dataCanonical bool) (string, error) {
	// One buffer holds the previous hash and the canonical entry after it,
	// hashed at once: Hash runs for every entry appended. Names, quotes,
	// the sequence number and the time take under 160 bytes. The entries
	// the contract driver appends fit in stack, which is used unless one
	// does not (the buffer never escapes: it is only hashed).
	var stack [1024]byte
	buf := slices.Grow(stack[:0], sha256.Size+160+len(e.Data)+len(e.Subject)+len(e.Peer)+len(e.Kind)+len(e.Prev))
	buf, err := hex.AppendDecode(buf, []byte(e.Prev))
	if err != nil {
		return "", fmt.Errorf("hashing audit entry %d: prev is not hex: %w", e.Seq, err)
	}
	e.Hash = ""
	e.Time = e.Time.UTC()
	if withCanon, ok := appendCanonicalEntry(buf, e, dataCanonical); ok {
		sum := sha256.Sum256(withCanon)
		return hex.EncodeToString(sum[:]), nil
	}
	raw, err := json.Marshal(struct {
		Entry
		Hash string `json:"hash,omitempty"`
	}{Entry: e})
	if err != nil {
		return "", fmt.Errorf("hashing audit entry %d: %w", e.Seq, err)
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		return "", fmt.Errorf("hashing audit entry %d: canonical form: %w", e.Seq, err)
	}
	sum := sha256.Sum256(append(buf, canon...))
	return hex.EncodeToString(sum[:]), nil
}

// appendCanonicalEntry appends e (Hash empty, Time in UTC) to b in the
// JSON Canonicalization Scheme directly, without encoding it and parsing
// it back: Hash runs for every entry appended, inside the log's commit.
// It appends the bytes jcs.Transform(json.Marshal(e)) gives, and says !ok
// for what it does not write itself: strings that need escaping, data
// that is not JSON, sequence numbers beyond 2^53 and years outside
// 0-9999.
func appendCanonicalEntry(b []byte, e Entry, dataCanonical bool) ([]byte, bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 || e.Seq > 1<<53 {
		return nil, false
	}
	for _, s := range []string{e.Kind, e.Subject, e.Peer, e.Prev} {
		if !plainString(s) {
			return nil, false
		}
	}
	b = append(b, '{')
	// Members in the order RFC 8785 sorts them: data, kind, peer, prev,
	// seq, subject, time ("hash" is left out while hashing).
	if len(e.Data) > 0 {
		data := []byte(e.Data)
		if !dataCanonical {
			var err error
			if data, err = jcs.Transform(e.Data); err != nil {
				return nil, false
			}
		}
		b = append(append(b, `"data":`...), data...)
		b = append(b, ',')
	}
	b = appendMember(b, "kind", e.Kind)
	if e.Peer != "" {
		b = appendMember(b, "peer", e.Peer)
	}
	b = appendMember(b, "prev", e.Prev)
	b = strconv.AppendUint(append(b, `"seq":`...), e.Seq, 10)
	b = append(b, ',')
	b = appendMember(b, "subject", e.Subject)
	b = append(e.Time.AppendFormat(append(b, `"time":"`...), time.RFC3339Nano), '"', '}')
	return b, true
}

// isCanonical reports whether b is JSON that the JSON Canonicalization
// Scheme leaves as it is, for a subset simple to check without parsing
// it into values: no white space, objects with their keys in strictly
// increasing byte order, strings of printable ASCII without escapes,
// integers of at most 15 digits (exact as doubles, so written the same)
// and the literals. Data the driver writes for its steps is in it; for
// anything else it says false and jcs.Transform decides.
func isCanonical(b []byte) bool {
	c := canonScanner{b: b}
	return c.value(0) && c.i == len(b)
}

// canonScanner walks a document for isCanonical; i is the next byte.
type canonScanner struct {
	b []byte
	i int
}

func (c *canonScanner) value(depth int) bool {
	if depth > 32 || c.i >= len(c.b) {
		return false
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		_, ok := c.str()
		return ok
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || (ch >= '0' && ch <= '9'):
		return c.integer()
	}
	return false
}

// container reads an object or array (its opening byte at c.i) whose
// members member reads, each followed by ',' or the closing byte.
func (c *canonScanner) container(closing byte, member func(n int) bool) bool {
	c.i++ // '{' or '['
	if c.i < len(c.b) && c.b[c.i] == closing {
		c.i++
		return true
	}
	for n := 0; ; n++ {
		if !member(n) || c.i >= len(c.b) {
			return false
		}
		switch c.b[c.i] {
		case ',':
			c.i++
		case closing:
			c.i++
			return true
		default:
			return false
		}
	}
}

func (c *canonScanner) object(depth int) bool {
	var prev []byte
	return c.container('}', func(n int) bool {
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			return false
		}
		key, ok := c.str()
		if !ok || (n > 0 && bytes.Compare(prev, key) >= 0) {
			return false
		}
		prev = key
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return false
		}
		c.i++
		return c.value(depth + 1)
	})
}

func (c *canonScanner) array(depth int) bool {
	return c.container(']', func(int) bool { return c.value(depth + 1) })
}

// str reads a string of printable ASCII without escapes and returns its
// content.
func (c *canonScanner) str() ([]byte, bool) {
	start := c.i + 1
	for j := start; j < len(c.b); j++ {
		switch ch := c.b[j]; {
		case ch == '"':
			c.i = j + 1
			return c.b[start:j], true
		case ch == '\\' || ch < 0x20 || ch >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

func (c *canonScanner) literal(lit string) bool {
	if !bytes.HasPrefix(c.b[c.i:], []byte(lit)) {
		return false
	}
	c.i += len(lit)
	return true
}

// integer reads -?(0|[1-9][0-9]*) of at most 15 digits, not -0.
func (c *canonScanner) integer() bool {
	neg := c.b[c.i] == '-'
	if neg {
		c.i++
	}
	start := c.i
	for c.i < len(c.b) && c.b[c.i] >= '0' && c.b[c.i] <= '9' {
		c.i++
	}
	digits := c.b[start:c.i]
	switch {
	case len(digits) == 0 || len(digits) > 15:
		return false
	case digits[0] == '0' && (len(digits) > 1 || neg):
		return false
	}
	// A fraction or exponent follows: not an integer, leave it to jcs.
	return c.i >= len(c.b) || (c.b[c.i] != '.' && c.b[c.i] != 'e' && c.b[c.i] != 'E')
}

func appendMember(b []byte, name, value string) []byte {
	b = append(append(append(b, '"'), name...), `":"`...)
	return append(append(b, value...), '"', ',')
}

// plainString reports whether s is valid UTF-8 with nothing JSON escapes
// (quote, backslash, control characters) or encoding/json rewrites (<, >,
// &, U+2028, U+2029), so that it is written between quotes as it is.
func plainString(s string) bool {
	for _, r := range s {
		switch {
		case r < 0x20, r == '"', r == '\\', r == '<', r == '>', r == '&', r == '\u2028', r == '\u2029', r == utf8.RuneError:
			return false
		}
	}
	return true
}

// AppendTx appends e to the log inside tx, so that the entry is stored if
// and only if the state change tx makes is. It returns the entry as stored
// (Seq, Prev and Hash set). Concurrent transactions that append conflict on
// the head and are retried by store.Update; Log.Update avoids that by
// committing appenders together.
func AppendTx(tx *store.Txn, e Entry) (Entry, error) {
	if err := checkEntry(e); err != nil {
		return Entry{}, err
	}
	h, err := readHead(tx)
	if err != nil {
		return Entry{}, err
	}
	if e, err = appendEntry(tx, h, e); err != nil {
		return Entry{}, err
	}
	if err := writeHead(tx, e); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// AppendAllTx appends es inside tx in their order, as AppendTx appends
// each, reading the head before the first and writing it after the last
// only (a step of a negotiation appends two or three entries).
func AppendAllTx(tx *store.Txn, es []Entry) error {
	for _, e := range es {
		if err := checkEntry(e); err != nil {
			return err
		}
	}
	if len(es) == 0 {
		return nil
	}
	h, err := readHead(tx)
	if err != nil {
		return err
	}
	var e Entry
	for _, next := range es {
		if e, err = appendEntry(tx, h, next); err != nil {
			return err
		}
		h = head{Seq: e.Seq, Hash: e.Hash}
	}
	return writeHead(tx, e)
}

func checkEntry(e Entry) error {
	if e.Kind == "" || e.Subject == "" {
		return fmt.Errorf("appending to audit log: %w: kind and subject are required", ErrBadEntry)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("appending to audit log: %w: time is required", ErrBadEntry)
	}
	return nil
}

// appendEntry stores e as the entry after h, the head, and returns it as
// stored; the head is the caller's to write.
func appendEntry(tx *store.Txn, h head, e Entry) (Entry, error) {
	var err error
	e.Seq, e.Prev, e.Time = h.Seq+1, h.Hash, e.Time.UTC()
	canon := len(e.Data) > 0 && isCanonical(e.Data)
	if e.Hash, err = hashEntry(e, canon); err != nil {
		return Entry{}, err
	}
	b, ok := storedEntry(e, canon)
	if !ok {
		if b, err = json.Marshal(e); err != nil {
			return Entry{}, fmt.Errorf("appending to audit log: %w", err)
		}
	}
	if err := tx.Set(entryKey(e.Seq), b); err != nil {
		return Entry{}, fmt.Errorf("appending audit entry %d: %w", e.Seq, err)
	}
	return e, nil
}

// writeHead makes e, just appended, the head.
func writeHead(tx *store.Txn, e Entry) error {
	hb := appendHead(make([]byte, 0, len(`{"seq":,"hash":""}`)+20+len(e.Hash)), head{Seq: e.Seq, Hash: e.Hash})
	if err := tx.Set(headKey, hb); err != nil {
		return fmt.Errorf("appending audit entry %d: head: %w", e.Seq, err)
	}
	return nil
}

// Entries and the head are written and the head read for every entry
// appended, inside the log's commit: storedEntry, appendHead and
// parseHead do by hand what encoding/json does, for the entries and
// heads the log writes, and leave anything else to encoding/json.

// storedEntry returns json.Marshal(e) for an entry whose strings need no
// escaping and whose data is in the canonical subset (isCanonical)
// without the characters json.Marshal escapes; false for any other.
func storedEntry(e Entry, dataCanonical bool) ([]byte, bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return nil, false
	}
	for _, s := range []string{e.Kind, e.Subject, e.Peer, e.Prev, e.Hash} {
		if !plainString(s) {
			return nil, false
		}
	}
	if len(e.Data) > 0 && (!dataCanonical || bytes.ContainsAny(e.Data, "<>&")) {
		return nil, false
	}
	// Members' names, quotes and separators, seq and time take under 128 bytes.
	b := make([]byte, 0, 128+len(e.Kind)+len(e.Subject)+len(e.Peer)+len(e.Data)+len(e.Prev)+len(e.Hash))
	b = strconv.AppendUint(append(b, `{"seq":`...), e.Seq, 10)
	b = append(e.Time.AppendFormat(append(b, `,"time":"`...), time.RFC3339Nano), '"', ',')
	b = appendMember(b, "kind", e.Kind)
	b = appendMember(b, "subject", e.Subject)
	if e.Peer != "" {
		b = appendMember(b, "peer", e.Peer)
	}
	if len(e.Data) > 0 {
		b = append(append(append(b, `"data":`...), e.Data...), ',')
	}
	b = appendMember(b, "prev", e.Prev)
	b = appendMember(b, "hash", e.Hash)
	b[len(b)-1] = '}'
	return b, true
}

// appendHead appends json.Marshal(h) to dst.
func appendHead(dst []byte, h head) []byte {
	if !plainString(h.Hash) {
		b, _ := json.Marshal(h)
		return append(dst, b...)
	}
	dst = strconv.AppendUint(append(dst, `{"seq":`...), h.Seq, 10)
	return append(append(append(dst, `,"hash":"`...), h.Hash...), '"', '}')
}

// parseHead reads a head as appendHead writes it; false for anything
// else.
func parseHead(b []byte) (head, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`))
	if !ok {
		return head{}, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 20 || (rest[0] == '0' && i > 1) {
		return head{}, false
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return head{}, false
	}
	hash, ok := bytes.CutPrefix(rest[i:], []byte(`,"hash":"`))
	if !ok {
		return head{}, false
	}
	hash, ok = bytes.CutSuffix(hash, []byte(`"}`))
	if !ok {
		return head{}, false
	}
	for _, c := range hash {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return head{}, false
		}
	}
	return head{Seq: seq, Hash: string(hash)}, true
}

func readHead(tx *store.Txn) (head, error) {
	b, err := tx.Get(headKey)
	if errors.Is(err, store.ErrNotFound) {
		return head{}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("reading audit log head: %w", err)
	}
	if h, ok := parseHead(b); ok {
		return h, nil
	}
	var h head
	if err := json.Unmarshal(b, &h); err != nil {
		return head{}, fmt.Errorf("reading audit log head: %w: %w", ErrBroken, err)
	}
	return h, nil
}

// Update runs fn in a store transaction and returns when it is committed
// and on disk; fn appends with AppendTx. Use it for every transaction that
// appends. Concurrent calls are committed together, in arrival order, in
// one transaction (fn must therefore not assume it sees the store as it
// was before other callers' changes, which store.Update's retries already
// require); if that batch fails, each is retried alone so that one
// failing fn fails only its own caller. Only the commit holds up the
// callers queued behind: the next batch commits while this one's sync
// runs (the chain's order is the commit order, and a crash of the machine
// loses a suffix of it, never a middle entry).
//
// The leader that committed a batch asks for the sync once for all of it
// and hands each caller the outcome: a sync that starts after the commit
// covers every write in it. Callers that each asked for it themselves
// after the commit found the leader's sync running, and waited for
// another one after it.
//
// A panic in fn is its caller's: the others in its batch are committed
// without it, and Update panics with the same value in fn's caller.
func (l *Log) Update(fn func(tx *store.Txn) error) error {
	p := &pending{fn: fn, done: make(chan error, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, p)
	l.mu.Unlock()

	select {
	case err := <-p.done: // committed and synced by a leader
		return p.outcome(err)
	case l.leader <- struct{}{}:
	}
	l.mu.Lock()
	if p.taken {
		// Committed by the previous leader, which is syncing it: its
		// outcome comes from there. Leading the next batch would hold
		// this caller up for that batch's sync as well.
		l.mu.Unlock()
		<-l.leader
		return p.outcome(<-p.done)
	}
	batch := l.queue
	l.queue = nil
	for _, b := range batch {
		b.taken = true
	}
	l.mu.Unlock()
	// Every caller in the batch waits for its outcome from here, so each
	// gets one even if this goroutine leaves early.
	handed := 0
	defer func() {
		for _, b := range batch[handed:] {
			b.done <- errLeaderGone
		}
	}()
	errs := l.commitLeading(batch)
	var synced error
	needSync := true
	for i, b := range batch {
		if errs[i] == nil && needSync {
			synced, needSync = l.db.Sync(), false
		}
		if errs[i] != nil {
			b.done <- errs[i]
		} else {
			b.done <- synced
		}
		handed++
	}
	return p.outcome(<-p.done)
}

// commitLeading is commit by the leader, which hands the token on when it
// returns, even by a panic (an HTTP handler's panic is recovered, and the
// log must not stay locked after it).
func (l *Log) commitLeading(batch []*pending) []error {
	defer func() { <-l.leader }()
	return l.commit(batch)
}

// commit commits batch's functions in one transaction, not synced, and
// returns each one's error; if that transaction fails, each is committed
// alone but those that panicked, which are not run again. A panic in a
// function is its error (errPanicked), and the leader goes on: it is a
// caller's, and the other callers wait for their outcome.
func (l *Log) commit(batch []*pending) []error {
	errs := make([]error, len(batch))
	if len(batch) == 0 {
		return errs
	}
	err := l.db.UpdateNoSync(func(tx *store.Txn) error {
		for _, b := range batch {
			if err := b.run(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for i, b := range batch {
			if b.panicked {
				errs[i] = errPanicked
				continue
			}
			errs[i] = l.db.UpdateNoSync(b.run)
		}
		return errs
	}
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// Append appends e in a transaction of its own and returns it as stored.
func (l *Log) Append(e Entry) (Entry, error) {
	var out Entry
	err := l.Update(func(tx *store.Txn) error {
		var err error
		out, err = AppendTx(tx, e)
		return err
	})
	return out, err
}

// List returns up to limit entries starting at sequence number from (1 is
// the first entry). limit <= 0 means all.
func (l *Log) List(from uint64, limit int) ([]Entry, error) {
	if from == 0 {
		from = 1
	}
	var out []Entry
	err := l.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: entryPrefix, Start: entryKey(from)}, func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("reading audit entry %s: %w: %w", k[len(entryPrefix):], ErrBroken, err)
			}
			out = append(out, e)
			if limit > 0 && len(out) >= limit {
				return store.ErrStop
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing audit log: %w", err)
	}
	return out, nil
}

// BrokenError names the first entry at which Verify found the chain broken.
type BrokenError struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("%s at entry %d: %s", ErrBroken, e.Seq, e.Reason)
}

func (e *BrokenError) Unwrap() error { return ErrBroken }

// Report is the result of a successful Verify.
type Report struct {
	Entries uint64 `json:"entries"`
	Head    string `json:"head"`
	// Anchor names the head for a later Verify ("SEQ:HASH"); kept
	// outside the node, it shows a rewrite or a cut of the log up to it.
	Anchor string `json:"anchor,omitempty"`
}

// Anchor is an entry a later Verify must find unchanged: its sequence
// number and hash, as Report.Anchor wrote them.
type Anchor struct {
	Seq  uint64
	Hash string
}

func (a Anchor) String() string { return strconv.FormatUint(a.Seq, 10) + ":" + a.Hash }

// ParseAnchor reads an anchor written as "SEQ:HASH" (Report.Anchor).
func ParseAnchor(s string) (Anchor, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || n == 0 || len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return Anchor{}, fmt.Errorf("anchor %q: want SEQ:HASH as 'mimnode audit --verify' prints it (an entry number, a colon and 64 hex digits)", s)
	}
	return Anchor{Seq: n, Hash: hash}, nil
}

// Verify walks the whole chain: every entry must be stored under its own
// sequence number, follow its predecessor without a gap, name the
// predecessor's hash as Prev and carry the hash of its own content. The
// head must name the last entry. The first entry that fails is reported as
// a *BrokenError (errors.Is ErrBroken).
//
// The chain alone shows changes made without recomputing the hashes after
// them: accidental damage, a careless edit. Someone who can write the
// data directory can rewrite the chain from an entry on, or cut its end,
// and recompute it. An anchor defeats that: the head Verify reported
// once (Report.Anchor), kept outside the node; given back, Verify checks
// that the entry it names is still there with that hash.
func (l *Log) Verify(anchors ...Anchor) (Report, error) {
	var rep Report
	anchored := make(map[uint64]string, len(anchors))
	for _, a := range anchors {
		anchored[a.Seq] = a.Hash
	}
	err := l.db.View(func(tx *store.Txn) error {
		prev := ""
		var want uint64 = 1
		err := tx.Iterate(store.IterOptions{Prefix: entryPrefix}, func(k, v []byte) error {
			keySeq, perr := strconv.ParseUint(string(k[len(entryPrefix):]), 10, 64)
			if perr != nil {
				return &BrokenError{Seq: want, Reason: fmt.Sprintf("stray key %q", k)}
			}
			if keySeq != want {
				return &BrokenError{Seq: want, Reason: fmt.Sprintf("entry missing (next stored is %d)", keySeq)}
			}
			var e Entry
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&e); err != nil {
				return &BrokenError{Seq: want, Reason: "not a valid entry: " + err.Error()}
			}
			if e.Seq != keySeq {
				return &BrokenError{Seq: want, Reason: fmt.Sprintf("stored under %d but says %d", keySeq, e.Seq)}
			}
			if e.Prev != prev {
				return &BrokenError{Seq: want, Reason: "prev does not match the hash of the entry before"}
			}
			h, err := Hash(e)
			if err != nil {
				return &BrokenError{Seq: want, Reason: err.Error()}
			}
			if h != e.Hash {
				return &BrokenError{Seq: want, Reason: "content does not match its hash"}
			}
			if a, ok := anchored[want]; ok && a != e.Hash {
				return &BrokenError{Seq: want, Reason: fmt.Sprintf("entry %d is not the one anchored (hash %s, now %s): the log was rewritten from here or before", want, a, e.Hash)}
			}
			prev = e.Hash
			want++
			return nil
		})
		if err != nil {
			return err
		}
		for seq := range anchored {
			if seq >= want {
				return &BrokenError{Seq: seq, Reason: fmt.Sprintf("the log ends at entry %d, before anchored entry %d: it was cut", want-1, seq)}
			}
		}
		h, err := readHead(tx)
		if err != nil {
			return &BrokenError{Seq: want, Reason: err.Error()}
		}
		if h.Seq != want-1 || h.Hash != prev {
			return &BrokenError{Seq: want - 1, Reason: fmt.Sprintf("head names entry %d, last stored is %d", h.Seq, want-1)}
		}
		rep = Report{Entries: want - 1, Head: prev}
		if want > 1 {
			rep.Anchor = Anchor{Seq: want - 1, Hash: prev}.String()
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("verifying audit log: %w", err)
	}
	return rep, nil
}
