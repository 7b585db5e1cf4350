// Package resend holds the two mechanisms the negotiation and transfer state
// machines share to make a lossy, restartable exchange reliable: the resend
// schedule of the one message a side waits to have answered (Pending), and
// the record of peer messages already answered, so that a resend gets the
// same answer (Seen). Both are plain values with a JSON form, persisted as
// part of their state machine; neither reads a clock.
package resend

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mimnode/mimnode/protocol"
)

// Policy is a resend schedule: the first resend after Initial, doubling up
// to Max between resends, giving up Timeout after the first send, or
// FinalTimeout for a Final message.
type Policy struct {
	Initial, Max, Timeout, FinalTimeout time.Duration
}

// WithDefaults fills unset fields: 500ms, 30s, 2 minutes, 24 hours.
func (p Policy) WithDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = 500 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Timeout <= 0 {
		p.Timeout = 2 * time.Minute
	}
	if p.FinalTimeout < p.Timeout {
		p.FinalTimeout = 24 * time.Hour
	}
	return p
}

func (p Policy) timeout(final bool) time.Duration {
	if final {
		return p.FinalTimeout
	}
	return p.Timeout
}

// Pending is a sent message awaiting its answer.
type Pending struct {
	// Msg is the message; it must not change once Wire or MarshalJSON
	// has encoded it.
	Msg protocol.Message
	// Expect is the state the peer reports once it processed Msg; an
	// answer with another state belongs to an older message.
	Expect      string
	Attempts    int
	FirstSent   time.Time
	NextAttempt time.Time
	// Final marks a message that settles the outcome (a termination, a
	// completion, an agreement verification, FINALIZED). It is resent for
	// FinalTimeout instead of Timeout: giving up early could leave the two
	// sides in different end states.
	Final bool

	// wire is Msg's wire form once encoded: the message is stored at
	// every persisted step until it is answered and sent (and resent) as
	// well, and encoding it, offer or agreement included, cost more than
	// the rest of the stored negotiation.
	wire []byte
}

// Wire returns Msg's wire form (protocol.Encode), encoded once.
func (o *Pending) Wire() ([]byte, error) {
	if o.wire == nil {
		b, err := protocol.Encode(o.Msg)
		if err != nil {
			return nil, err
		}
		o.wire = b
	}
	return o.wire, nil
}

// Start records msg as sent now.
func Start(now time.Time, p Policy, msg protocol.Message, expect string, final bool) *Pending {
	return &Pending{Msg: msg, Expect: expect, Attempts: 1, FirstSent: now, NextAttempt: now.Add(p.Initial), Final: final}
}

// Action is what Tick asks the state machine to do.
type Action int

// The actions.
const (
	Wait Action = iota
	Resend
	GiveUp
)

// Tick decides what to do at now: nothing yet, resend Msg (the schedule
// has advanced), or give up.
func (o *Pending) Tick(now time.Time, p Policy) Action {
	if !now.Before(o.FirstSent.Add(p.timeout(o.Final))) {
		return GiveUp
	}
	if now.Before(o.NextAttempt) {
		return Wait
	}
	backoff := p.Initial << o.Attempts
	if backoff > p.Max || backoff <= 0 {
		backoff = p.Max
	}
	o.Attempts++
	o.NextAttempt = now.Add(backoff)
	return Resend
}

// Next returns when Tick has something to do.
func (o *Pending) Next(p Policy) time.Time {
	next := o.NextAttempt
	if giveUp := o.FirstSent.Add(p.timeout(o.Final)); giveUp.Before(next) {
		next = giveUp
	}
	return next
}

// GiveUpReason says why a message was given up, for termination reasons.
func (o *Pending) GiveUpReason(peer string, p Policy) string {
	return fmt.Sprintf("no answer from %s to %s after %d attempts in %s", peer, o.Msg.MessageType(), o.Attempts, p.timeout(o.Final))
}

type pendingJSON struct {
	Msg         json.RawMessage `json:"msg"`
	Expect      string          `json:"expect"`
	Attempts    int             `json:"attempts"`
	FirstSent   time.Time       `json:"firstSent"`
	NextAttempt time.Time       `json:"nextAttempt"`
	Final       bool            `json:"final,omitempty"`
}

// MarshalJSON stores Msg in its wire form. It writes what
// json.Marshal(pendingJSON) writes, without re-checking and compacting
// the wire form (Encode makes it compact and escaped as json.Marshal
// would) and the time stamps going through reflection.
func (o *Pending) MarshalJSON() ([]byte, error) {
	return o.AppendJSON(nil)
}

// AppendJSON appends MarshalJSON's form of o to dst.
func (o *Pending) AppendJSON(dst []byte) ([]byte, error) {
	w, err := o.Wire()
	if err != nil {
		return nil, fmt.Errorf("persisting pending message: %w", err)
	}
	b := append(append(append(dst, `{"msg":`...), w...), `,"expect":`...)
	if plainState(o.Expect) {
		b = append(append(append(b, '"'), o.Expect...), '"')
	} else {
		expect, err := json.Marshal(o.Expect)
		if err != nil {
			return nil, fmt.Errorf("persisting pending message: %w", err)
		}
		b = append(b, expect...)
	}
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(o.Attempts), 10)
	for _, t := range []struct {
		name string
		at   time.Time
	}{{`,"firstSent":`, o.FirstSent}, {`,"nextAttempt":`, o.NextAttempt}} {
		// What MarshalJSON writes (RFC 3339 between quotes), appended.
		tb, err := t.at.AppendText(append(append(b, t.name...), '"'))
		if err != nil {
			_, err = t.at.MarshalJSON() // its error, as before
			return nil, fmt.Errorf("persisting pending message: %w", err)
		}
		b = append(tb, '"')
	}
	if o.Final {
		b = append(b, `,"final":true`...)
	}
	return append(b, '}'), nil
}

// plainState reports whether json.Marshal writes s between quotes as it
// is: printable ASCII without the quote, the backslash, <, > and &.
func plainState(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// UnmarshalJSON restores a Pending, decoding Msg.
func (o *Pending) UnmarshalJSON(b []byte) error {
	var j pendingJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	msg, err := protocol.Decode(j.Msg)
	if err != nil {
		return fmt.Errorf("pending message: %w", err)
	}
	if j.Attempts < 1 || j.Expect == "" {
		return errors.New("pending message: no attempts or expected state")
	}
	*o = Pending{Msg: msg, Expect: j.Expect, Attempts: j.Attempts, FirstSent: j.FirstSent, NextAttempt: j.NextAttempt, Final: j.Final}
	return nil
}

// Seen records peer messages already answered, with the state each was
// answered with, newest last.
type Seen []Entry

// Entry is one answered message.
type Entry struct {
	Digest string `json:"digest"`
	State  string `json:"state"`
}

// MaxSeen bounds the record: a process has a handful of peer messages per
// round; 32 covers many rounds of counter-offers or suspensions.
const MaxSeen = 32

// Lookup returns the state a message with this digest was answered with.
func (s Seen) Lookup(digest string) (string, bool) {
	for _, e := range s {
		if e.Digest == digest {
			return e.State, true
		}
	}
	return "", false
}

// Add records an answer, forgetting the oldest beyond MaxSeen.
func (s Seen) Add(digest, state string) Seen {
	s = append(s, Entry{Digest: digest, State: state})
	if len(s) > MaxSeen {
		s = append(Seen(nil), s[len(s)-MaxSeen:]...)
	}
	return s
}

// Digest identifies a message for Seen. Encode compacts embedded JSON, so
// a resend that differs only in whitespace is the same message.
func Digest(m protocol.Message) (string, error) {
	// Every message received is digested, its offer or agreement
	// included: the wire form is only hashed, in a buffer reused.
	bp := digestBufs.Get().(*[]byte)
	b, err := protocol.AppendEncode((*bp)[:0], m)
	if err != nil {
		digestBufs.Put(bp)
		return "", err
	}
	sum := sha256.Sum256(b)
	if cap(b) <= maxDigestBuf {
		*bp = b
	}
	digestBufs.Put(bp)
	return hex.EncodeToString(sum[:16]), nil
}

// digestBufs holds Digest's buffers; one grown past maxDigestBuf (a
// message with a large policy) is not kept.
var digestBufs = sync.Pool{New: func() any { return new([]byte) }}

const maxDigestBuf = 64 << 10
