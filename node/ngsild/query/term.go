package query

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type op int

const (
	opExists op = iota
	opNotExists
	opEq
	opNe
	opGt
	opGe
	opLt
	opLe
	opMatch
	opNotMatch
)

func (o op) String() string {
	switch o {
	case opEq:
		return "=="
	case opNe:
		return "!="
	case opGt:
		return ">"
	case opGe:
		return ">="
	case opLt:
		return "<"
	case opLe:
		return "<="
	case opMatch:
		return "~="
	case opNotMatch:
		return "!~="
	}
	return ""
}

// term is one comparison (or existence test) on one path.
type term struct {
	path    Path
	op      op
	vals    []literal // one value, a value list, or the two bounds of a range
	rng     bool      // vals are [low, high] of an inclusive range
	re      *regexp.Regexp
	pattern string // re as written, for String
}

func (t *term) write(b *strings.Builder) {
	if t.op == opNotExists {
		b.WriteByte('!')
	}
	t.path.write(b)
	if t.op == opExists || t.op == opNotExists {
		return
	}
	b.WriteString(t.op.String())
	if t.re != nil {
		writeQuoted(b, t.pattern)
		return
	}
	sep := ","
	if t.rng {
		sep = ".."
	}
	for i, v := range t.vals {
		if i > 0 {
			b.WriteString(sep)
		}
		v.write(b)
	}
}

func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func (t *term) match(e Entity) bool {
	vals := e.Values(t.path)
	switch t.op {
	case opExists:
		return len(vals) > 0
	case opNotExists:
		return len(vals) == 0
	}
	// Clause 4.9: a comparison on an absent target element is false, for != too.
	if len(vals) == 0 {
		return false
	}
	switch t.op {
	case opNe:
		return !anyElem(vals, t.equal)
	case opNotMatch:
		return !anyElem(vals, t.matchPattern)
	case opEq:
		return anyElem(vals, t.equal)
	case opMatch:
		return anyElem(vals, t.matchPattern)
	default:
		return anyElem(vals, t.order)
	}
}

// anyElem applies f to every value, and to every element of a value that is an
// array: a multi-valued target matches when any of its elements does.
func anyElem(vals []any, f func(v any) bool) bool {
	for _, v := range vals {
		v = unwrap(v)
		if arr, ok := v.([]any); ok {
			for _, el := range arr {
				if f(unwrap(el)) {
					return true
				}
			}
			continue
		}
		if f(v) {
			return true
		}
	}
	return false
}

// unwrap takes the value out of a JSON-LD value object such as
// {"@type": "DateTime", "@value": "2018-01-01T00:00:00Z"}.
func unwrap(v any) any {
	if m, ok := v.(map[string]any); ok {
		if inner, ok := m["@value"]; ok {
			return inner
		}
	}
	return v
}

// equal is the == condition: v equals one of the listed values, or lies in the range.
func (t *term) equal(v any) bool {
	if t.rng {
		lo, ok1 := t.vals[0].cmp(v)
		hi, ok2 := t.vals[1].cmp(v)
		return ok1 && ok2 && lo <= 0 && hi >= 0
	}
	for _, l := range t.vals {
		if c, ok := l.cmp(v); ok && c == 0 {
			return true
		}
		if s, ok := v.(string); ok && l.alt != "" && s == l.alt {
			return true // a VocabProperty holds the expanded term
		}
	}
	return false
}

func (t *term) order(v any) bool {
	c, ok := t.vals[0].cmp(v)
	if !ok {
		return false
	}
	// c compares the literal with v, so the test is mirrored: v > lit  <=>  lit < v.
	switch t.op {
	case opGt:
		return c < 0
	case opGe:
		return c <= 0
	case opLt:
		return c > 0
	case opLe:
		return c >= 0
	}
	return false
}

func (t *term) matchPattern(v any) bool {
	s, ok := v.(string)
	return ok && t.re.MatchString(s)
}

type kind int

const (
	kindNumber kind = iota
	kindString
	kindURI
	kindBool
	kindDateTime
	kindDate
	kindTime
)

func (k kind) String() string {
	switch k {
	case kindNumber:
		return "a number"
	case kindString:
		return "a quoted string"
	case kindURI:
		return "unquoted text"
	case kindBool:
		return "a boolean"
	case kindDateTime:
		return "a date-time"
	case kindDate:
		return "a date"
	case kindTime:
		return "a time"
	}
	return "a value"
}

// literal is one value written in a q expression.
type literal struct {
	kind kind
	raw  string // unquoted text as written
	num  float64
	str  string        // kindString, kindURI
	alt  string        // kindURI: the text expanded as a vocabulary term, when that differs
	b    bool          // kindBool
	t    time.Time     // kindDateTime, kindDate: the instant (a date is 00:00 UTC)
	tod  time.Duration // kindTime: time of day in UTC
}

func (l literal) comparable() bool {
	return l.kind != kindBool && l.kind != kindURI
}

// group puts kinds that compare with each other together: dates and date-times are
// both instants.
func (l literal) group() int {
	switch l.kind {
	case kindDate, kindDateTime:
		return int(kindDateTime)
	}
	return int(l.kind)
}

func (l literal) write(b *strings.Builder) {
	if l.kind == kindString {
		writeQuoted(b, l.str)
		return
	}
	b.WriteString(l.raw)
}

// cmp compares the literal with an entity value: -1, 0, +1 for literal <, ==, > v.
// ok is false when the two cannot be compared (different JSON types, or a string
// that is not a date when the literal is one), which makes the term false.
func (l literal) cmp(v any) (int, bool) {
	switch l.kind {
	case kindNumber:
		f, ok := number(v)
		if !ok {
			return 0, false
		}
		switch {
		case l.num < f:
			return -1, true
		case l.num > f:
			return 1, true
		}
		return 0, true
	case kindString, kindURI:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(l.str, s), true
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return 0, false
		}
		if b == l.b {
			return 0, true
		}
		return 1, true // only == and != reach booleans: any nonzero means unequal
	case kindDate, kindDateTime:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		t, ok := parseInstant(s)
		if !ok {
			return 0, false
		}
		return l.t.Compare(t), true
	case kindTime:
		s, ok := v.(string)
		if !ok {
			return 0, false
		}
		d, ok := parseTimeOfDay(s)
		if !ok {
			return 0, false
		}
		switch {
		case l.tod < d:
			return -1, true
		case l.tod > d:
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// classify decides what an unquoted token is. Order matters: "2024-01-31" is a
// date, not text; "true" is a boolean.
func classify(tok string) (literal, error) {
	l := literal{raw: tok}
	switch tok {
	case "true", "false":
		l.kind, l.b = kindBool, tok == "true"
		return l, nil
	}
	if looksNumeric(tok) {
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			return l, errors.New("number out of range: " + tok)
		}
		l.kind, l.num = kindNumber, f
		return l, nil
	}
	if len(tok) >= 10 && isDigits(tok[:4]) && tok[4] == '-' {
		if len(tok) == 10 {
			t, err := time.Parse(time.DateOnly, tok)
			if err != nil {
				return l, errors.New("bad date " + strconv.Quote(tok) + " (want YYYY-MM-DD)")
			}
			l.kind, l.t = kindDate, t
			return l, nil
		}
		if tok[10] == 'T' {
			t, ok := parseDateTime(tok)
			if !ok {
				return l, errors.New("bad date-time " + strconv.Quote(tok) + " (want RFC 3339, e.g. 2024-01-31T12:00:00Z)")
			}
			l.kind, l.t = kindDateTime, t
			return l, nil
		}
	}
	if len(tok) >= 5 && isDigits(tok[:2]) && tok[2] == ':' && isDigits(tok[3:5]) {
		d, ok := parseTimeOfDay(tok)
		if !ok {
			return l, errors.New("bad time " + strconv.Quote(tok) + " (want hh:mm:ss, optionally with fraction and zone)")
		}
		l.kind, l.tod = kindTime, d
		return l, nil
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return l, errors.New("unquoted value " + strconv.Quote(tok) + " contains white space; quote it")
	}
	l.kind, l.str = kindURI, tok
	return l, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// looksNumeric matches -?digits(.digits)?([eE][+-]?digits)?, the JSON number shape.
func looksNumeric(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fs {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		es := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == es {
			return false
		}
	}
	return i == len(s)
}

// parseDateTime reads an RFC 3339 date-time, also without seconds or without a
// zone. A date-time without a zone is read as UTC: Smart Data Models examples
// (AirQualityObserved dateObserved) are written so. RFC 3339 proper goes first
// because time.Parse has a fast path for it; this runs once per compared value.
func parseDateTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	if len(s) < 16 || s[10] != 'T' {
		return time.Time{}, false
	}
	zoned := s[len(s)-1] == 'Z' || strings.ContainsAny(s[11:], "+-")
	if !zoned {
		if t, err := time.Parse(time.RFC3339, s+"Z"); err == nil {
			return t, true
		}
	}
	layout := "2006-01-02T15:04Z07:00" // no seconds
	if !zoned {
		layout = "2006-01-02T15:04"
	}
	if t, err := time.Parse(layout, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// parseInstant reads an entity value as a date-time or a date (00:00 UTC).
func parseInstant(s string) (time.Time, bool) {
	if len(s) < 10 || s[4] != '-' {
		return time.Time{}, false
	}
	if len(s) == 10 {
		t, err := time.Parse(time.DateOnly, s)
		return t, err == nil
	}
	return parseDateTime(s)
}

var timeLayouts = []string{
	"15:04:05.999999999Z07:00",
	"15:04:05.999999999",
	"15:04Z07:00",
	"15:04",
}

// parseTimeOfDay reads hh:mm[:ss[.f]][zone] as the UTC time of day; a date-time
// entity value gives its UTC time of day.
func parseTimeOfDay(s string) (time.Duration, bool) {
	var t time.Time
	ok := false
	if len(s) > 10 && s[4] == '-' {
		t, ok = parseDateTime(s)
	} else {
		for _, layout := range timeLayouts {
			if p, err := time.Parse(layout, s); err == nil {
				t, ok = p, true
				break
			}
		}
	}
	if !ok {
		return 0, false
	}
	t = t.UTC()
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
		time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond()), true
}

// Term is one top-level AND-ed comparison that an index can answer.
//
// Op is one of:
//   - "==": the value equals one of Values;
//   - "..": Min <= value <= Max (an == range);
//   - ">", ">=": Values[0] and Min hold the bound;
//   - "<", "<=": Values[0] and Max hold the bound.
//
// Values, Min and Max are float64, string, bool, or time.Time for a date or
// date-time literal; a store compares those with stored strings parsed as instants
// (a date without zone is UTC). A term on an array-valued attribute matches when
// any element does, so an index must hold one entry per element.
type Term struct {
	Path     Path
	Op       string
	Values   []any
	Min, Max any
}

// IndexTerms returns the top-level AND-ed comparisons on a plain attribute path
// (== value / value list, range, < <= > >=), which a store can answer from an index
// before calling Match on the candidates; empty when none.
//
// Every entity that matches q satisfies every returned term, so a store may pick
// whichever term is most selective and must still call Match on its candidates.
func (q *Q) IndexTerms() []Term {
	var kids []node
	switch n := q.root.(type) {
	case andNode:
		kids = n
	default:
		kids = []node{n}
	}
	var out []Term
	for _, k := range kids {
		t, ok := k.(*term)
		if !ok || len(t.path.Attrs) != 1 || len(t.path.Keys) != 0 {
			continue
		}
		if it, ok := t.indexTerm(); ok {
			out = append(out, it)
		}
	}
	return out
}

func (t *term) indexTerm() (Term, bool) {
	it := Term{Path: t.path}
	vals := make([]any, 0, len(t.vals))
	for _, l := range t.vals {
		v, ok := l.indexValue()
		if !ok {
			return it, false
		}
		vals = append(vals, v)
	}
	switch {
	case t.op == opEq && t.rng:
		it.Op, it.Min, it.Max = "..", vals[0], vals[1]
	case t.op == opEq:
		for _, l := range t.vals {
			if l.alt != "" {
				vals = append(vals, l.alt)
			}
		}
		it.Op, it.Values = "==", vals
	case t.op == opGt || t.op == opGe:
		it.Op, it.Values, it.Min = t.op.String(), vals, vals[0]
	case t.op == opLt || t.op == opLe:
		it.Op, it.Values, it.Max = t.op.String(), vals, vals[0]
	default:
		return it, false
	}
	return it, true
}

// indexValue converts a literal for a Term; times of day have no index form.
func (l literal) indexValue() (any, bool) {
	switch l.kind {
	case kindNumber:
		return l.num, true
	case kindString, kindURI:
		return l.str, true
	case kindBool:
		return l.b, true
	case kindDate, kindDateTime:
		return l.t, true
	}
	return nil, false
}
