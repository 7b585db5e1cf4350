package query

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrSyntax is the error every malformed q expression or geo-query wraps; an HTTP
// layer maps it to the NGSI-LD InvalidRequest (or BadRequestData) problem type. The
// concrete error is a *SyntaxError that says where the input went wrong.
var ErrSyntax = errors.New("invalid NGSI-LD query")

// SyntaxError reports what is wrong with a q expression or geo-query parameter and
// at which byte offset of the input (as given to Parse, after URL decoding).
type SyntaxError struct {
	Param  string // "q", "georel", "geometry", "coordinates" or "geoproperty"
	Offset int    // byte offset into the parameter, -1 when the whole value is wrong
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("%s: %s", e.Param, e.Msg)
	}
	return fmt.Sprintf("%s: %s at offset %d", e.Param, e.Msg, e.Offset)
}

// Unwrap lets errors.Is(err, ErrSyntax) hold for every parse error.
func (e *SyntaxError) Unwrap() error { return ErrSyntax }

// maxDepth bounds parenthesis nesting so a hostile query cannot exhaust the stack.
const maxDepth = 64

// metadataNames are the attribute members a q path may end with to address metadata
// rather than a sub-attribute (clause 4.9). They are core terms, so they are never
// run through the caller's expansion: the Entity sees them as written.
var metadataNames = map[string]bool{
	"observedAt": true, "createdAt": true, "modifiedAt": true,
	"unitCode": true, "datasetId": true,
}

// Q is a parsed q expression. It is immutable and safe for concurrent use.
type Q struct {
	root node
}

// Path addresses a value inside an entity: an attribute, optionally sub-attributes
// (a.b.c), optionally keys inside the compound value reached (a[k1.k2]).
type Path struct {
	Attrs []string // expanded attribute name, then expanded sub-attribute names (a.b.c)
	Keys  []string // keys inside a compound value: a[k1.k2] (not expanded)
}

// String renders the path in q syntax.
func (p Path) String() string {
	var b strings.Builder
	p.write(&b)
	return b.String()
}

func (p Path) write(b *strings.Builder) {
	b.WriteString(strings.Join(p.Attrs, "."))
	if len(p.Keys) > 0 {
		b.WriteByte('[')
		b.WriteString(strings.Join(p.Keys, "."))
		b.WriteByte(']')
	}
}

// Entity gives a query read access to one entity.
type Entity interface {
	// Values returns every value found at p (several when an attribute has several
	// datasetId instances), nil when absent. For a Property the value, for a
	// Relationship the object IRI, for a GeoProperty the GeoJSON geometry, for a
	// LanguageProperty the languageMap; when the last element of p.Attrs is one of
	// observedAt, createdAt, modifiedAt, unitCode, datasetId, the metadata value.
	// Values are decoded JSON: float64, string, bool, nil, map[string]any, []any.
	Values(p Path) []any
}

type node interface {
	match(e Entity) bool
	write(b *strings.Builder)
}

// Parse parses an NGSI-LD q expression (ETSI GS CIM 009 clause 4.9). expand maps a
// term as written (attribute or sub-attribute name) to its expanded IRI; nil = identity.
//
// The grammar accepted is clause 4.9's: terms joined by ';' (AND, binds tighter) and
// '|' (OR), grouped with parentheses. A term is a bare attribute path (the attribute
// exists), '!' path (it does not), or path op value with op one of
// == != > >= < <= ~= !~=. After == and != the value may be a list (a,b,c) or a range
// (a..b). Values are numbers, "quoted strings", true/false, dates (2024-01-31),
// times (12:00:00Z), date-times (RFC 3339), or unquoted URIs (== and != only).
// An unquoted value also matches its expansion as a term by expand, which is
// how a VocabProperty's value is stored (category==commercial matches the
// IRI commercial stands for in the request's @context).
// Dates and date-times compare as instants (a date is 00:00 UTC, a date-time
// without zone is UTC) with entity strings read the same way; a time compares
// with the UTC time of day. A comparison on an absent attribute, or between
// values of different JSON types, is false (for != too); on an array value or
// several datasetId instances it holds when any element matches (for != and !~=:
// when none matches the positive form).
// A pattern after ~= is a Go RE2 expression, unquoted or quoted; unquoted, it ends
// at a ';' or '|' outside parentheses, so write alternations as (a|b).
//
// An attribute name containing "://" is taken as an already expanded IRI and may
// contain dots; it then runs to the next operator or '['.
func Parse(q string, expand func(term string) string) (*Q, error) {
	if expand == nil {
		expand = func(s string) string { return s }
	}
	p := &parser{cursor: cursor{param: "q", src: q}, expand: expand}
	if q == "" {
		return nil, p.errAt(0, "empty expression")
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(q) {
		if q[p.pos] == ')' {
			return nil, p.errAt(p.pos, "unbalanced ')'")
		}
		return nil, p.errAt(p.pos, fmt.Sprintf("unexpected %q, want ';', '|' or end", q[p.pos]))
	}
	return &Q{root: root}, nil
}

// Match reports whether e satisfies the expression.
func (q *Q) Match(e Entity) bool { return q.root.match(e) }

// String renders the expression in canonical q syntax with expanded names; parsing
// it again with identity expansion gives an equal expression.
func (q *Q) String() string {
	var b strings.Builder
	q.root.write(&b)
	return b.String()
}

type andNode []node
type orNode []node

// add appends k, flattening a parenthesised AND inside an AND so that the
// top-level conjunction IndexTerms looks at is complete.
func (n andNode) add(k node) andNode {
	if inner, ok := k.(andNode); ok {
		return append(n, inner...)
	}
	return append(n, k)
}

func (n orNode) add(k node) orNode {
	if inner, ok := k.(orNode); ok {
		return append(n, inner...)
	}
	return append(n, k)
}

func (n andNode) match(e Entity) bool {
	for _, k := range n {
		if !k.match(e) {
			return false
		}
	}
	return true
}

func (n orNode) match(e Entity) bool {
	for _, k := range n {
		if k.match(e) {
			return true
		}
	}
	return false
}

func (n andNode) write(b *strings.Builder) {
	for i, k := range n {
		if i > 0 {
			b.WriteByte(';')
		}
		if _, isOr := k.(orNode); isOr {
			b.WriteByte('(')
			k.write(b)
			b.WriteByte(')')
		} else {
			k.write(b)
		}
	}
}

func (n orNode) write(b *strings.Builder) {
	for i, k := range n {
		if i > 0 {
			b.WriteByte('|')
		}
		k.write(b)
	}
}

type parser struct {
	cursor
	expand func(string) string
}

func (p *parser) parseOr() (node, error) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	if p.peek() != '|' {
		return first, nil
	}
	var kids orNode
	kids = kids.add(first)
	for p.peek() == '|' {
		p.pos++
		n, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		kids = kids.add(n)
	}
	return kids, nil
}

func (p *parser) parseAnd() (node, error) {
	first, err := p.parseFactor()
	if err != nil {
		return nil, err
	}
	if p.peek() != ';' {
		return first, nil
	}
	var kids andNode
	kids = kids.add(first)
	for p.peek() == ';' {
		p.pos++
		n, err := p.parseFactor()
		if err != nil {
			return nil, err
		}
		kids = kids.add(n)
	}
	return kids, nil
}

func (p *parser) parseFactor() (node, error) {
	if p.peek() != '(' {
		return p.parseTerm()
	}
	return group(&p.cursor, p.parseOr)
}

// isNameByte reports whether c may appear in an attribute name or compound key.
// Clause 4.9 lets names be full IRIs, so everything that is not q punctuation is
// allowed.
func isNameByte(c byte) bool {
	switch c {
	case '=', '!', '<', '>', '~', ';', '|', '(', ')', '[', ']', '.', ',', '"', '\'', ' ', '\t', '\r', '\n':
		return false
	}
	return c >= 0x20 && c != 0x7f
}

// name scans one attribute name, sub-attribute name or key; an IRI ("://") also
// swallows dots.
func (p *parser) name(what string) (string, error) {
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if isNameByte(c) || (c == '.' && strings.Contains(p.src[start:p.pos], "://")) {
			p.pos++
			continue
		}
		break
	}
	if p.pos == start {
		if p.pos >= len(p.src) {
			return "", p.errAt(p.pos, "expected "+what+", found end of input")
		}
		return "", p.errAt(p.pos, fmt.Sprintf("expected %s, found %q", what, p.src[p.pos]))
	}
	return p.src[start:p.pos], nil
}

func (p *parser) parsePath() (Path, error) {
	var path Path
	first, err := p.name("attribute name")
	if err != nil {
		return path, err
	}
	raw := []string{first}
	for p.peek() == '.' {
		p.pos++
		n, err := p.name("sub-attribute name")
		if err != nil {
			return path, err
		}
		raw = append(raw, n)
	}
	for i, n := range raw {
		if i > 0 && i == len(raw)-1 && metadataNames[n] {
			path.Attrs = append(path.Attrs, n)
			continue
		}
		path.Attrs = append(path.Attrs, p.expand(n))
	}
	// Compound keys: a[k1.k2], and the older a[k1][k2] spelling.
	for p.peek() == '[' {
		p.pos++
		for {
			k, err := p.name("key")
			if err != nil {
				return path, err
			}
			path.Keys = append(path.Keys, k)
			if p.peek() != '.' {
				break
			}
			p.pos++
		}
		if p.peek() != ']' {
			if p.pos >= len(p.src) {
				return path, p.errAt(p.pos, "unclosed '['")
			}
			return path, p.errAt(p.pos, fmt.Sprintf("unexpected %q, want ']'", p.src[p.pos]))
		}
		p.pos++
	}
	return path, nil
}

// operator tokens, longest first so that "!~=" wins over "!=".
var operators = []struct {
	tok string
	op  op
}{
	{"!~=", opNotMatch}, {"==", opEq}, {"!=", opNe}, {">=", opGe}, {"<=", opLe},
	{"~=", opMatch}, {">", opGt}, {"<", opLt},
}

func (p *parser) parseTerm() (node, error) {
	start := p.pos
	if p.peek() == '!' {
		p.pos++
		path, err := p.parsePath()
		if err != nil {
			return nil, err
		}
		return &term{path: path, op: opNotExists}, nil
	}
	path, err := p.parsePath()
	if err != nil {
		return nil, err
	}
	switch c := p.peek(); c {
	case 0, ';', '|', ')':
		return &term{path: path, op: opExists}, nil
	}
	t := &term{path: path}
	opAt := p.pos
	found := false
	for _, o := range operators {
		if strings.HasPrefix(p.src[p.pos:], o.tok) {
			t.op = o.op
			p.pos += len(o.tok)
			found = true
			break
		}
	}
	if !found {
		return nil, p.errAt(opAt, fmt.Sprintf("unexpected %q after attribute %q, want an operator (== != > >= < <= ~= !~=)", p.src[opAt], p.src[start:opAt]))
	}
	switch t.op {
	case opMatch, opNotMatch:
		return t, p.parsePattern(t)
	case opEq, opNe:
		return t, p.parseEqualityValue(t)
	default:
		at := p.pos
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		if !v.comparable() {
			return nil, p.errAt(at, fmt.Sprintf("%s needs a number, quoted string, date, time or date-time, found %s", t.op, v.kind))
		}
		switch p.peek() {
		case ',':
			return nil, p.errAt(p.pos, fmt.Sprintf("a value list is only allowed after == and !=, not %s", t.op))
		case '.':
			return nil, p.errAt(p.pos, fmt.Sprintf("a range is only allowed after == and !=, not %s", t.op))
		}
		t.vals = []literal{v}
		return t, nil
	}
}

func (p *parser) parseEqualityValue(t *term) error {
	at := p.pos
	v, err := p.parseValue()
	if err != nil {
		return err
	}
	t.vals = []literal{v}
	switch {
	case strings.HasPrefix(p.src[p.pos:], ".."):
		dots := p.pos
		p.pos += 2
		at2 := p.pos
		hi, err := p.parseValue()
		if err != nil {
			return err
		}
		if !v.comparable() {
			return p.errAt(at, fmt.Sprintf("a range needs numbers, quoted strings, dates, times or date-times, found %s", v.kind))
		}
		if !hi.comparable() {
			return p.errAt(at2, fmt.Sprintf("a range needs numbers, quoted strings, dates, times or date-times, found %s", hi.kind))
		}
		if v.group() != hi.group() {
			return p.errAt(dots, fmt.Sprintf("range bounds differ in kind: %s..%s", v.kind, hi.kind))
		}
		t.vals = append(t.vals, hi)
		t.rng = true
		if p.peek() == ',' {
			return p.errAt(p.pos, "a range cannot be part of a value list")
		}
	case p.peek() == ',':
		for p.peek() == ',' {
			p.pos++
			next, err := p.parseValue()
			if err != nil {
				return err
			}
			t.vals = append(t.vals, next)
		}
		if strings.HasPrefix(p.src[p.pos:], "..") {
			return p.errAt(p.pos, "a range cannot be part of a value list")
		}
	}
	return nil
}

// parseValue reads one literal: a quoted string or an unquoted token, which ends at
// ';', '|', ')', ',' or "..".
func (p *parser) parseValue() (literal, error) {
	start := p.pos
	if p.peek() == '"' {
		s, err := p.quoted()
		if err != nil {
			return literal{}, err
		}
		return literal{kind: kindString, str: s}, nil
	}
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ';' || c == '|' || c == ')' || c == ',' || c == '"' || c == '(' {
			break
		}
		if c == '.' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '.' {
			break
		}
		p.pos++
	}
	tok := p.src[start:p.pos]
	if tok == "" {
		if p.pos >= len(p.src) {
			return literal{}, p.errAt(p.pos, "expected a value, found end of input")
		}
		return literal{}, p.errAt(p.pos, fmt.Sprintf("expected a value, found %q", p.src[p.pos]))
	}
	if p.peek() == '"' || p.peek() == '(' {
		return literal{}, p.errAt(p.pos, fmt.Sprintf("unexpected %q inside value", p.peek()))
	}
	v, err := classify(tok)
	if err != nil {
		return literal{}, p.errAt(start, err.Error())
	}
	if v.kind == kindURI {
		// An unquoted term may name a vocabulary value (VocabProperty,
		// clause 4.5.20), which is stored expanded with the @context.
		if x := p.expand(tok); x != tok {
			v.alt = x
		}
	}
	return v, nil
}

// quoted reads a double-quoted string starting at p.pos. Only \" and \\ are
// escapes; any other backslash is kept, so a quoted pattern like "\d+" means \d+.
func (p *parser) quoted() (string, error) {
	open := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return b.String(), nil
		case c == '\\' && p.pos+1 < len(p.src) && (p.src[p.pos+1] == '"' || p.src[p.pos+1] == '\\'):
			b.WriteByte(p.src[p.pos+1])
			p.pos += 2
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
	return "", p.errAt(open, "unterminated quoted string")
}

// parsePattern reads the regular expression after ~= or !~=.
func (p *parser) parsePattern(t *term) error {
	start := p.pos
	var pat string
	if p.peek() == '"' {
		s, err := p.quoted()
		if err != nil {
			return err
		}
		pat = s
	} else {
		depth, inClass := 0, false
	scan:
		for p.pos < len(p.src) {
			c := p.src[p.pos]
			switch {
			case c == '\\':
				p.pos++ // the escaped byte is part of the pattern whatever it is
			case inClass:
				if c == ']' {
					inClass = false
				}
			case c == '[':
				inClass = true
			case c == '(':
				depth++
			case c == ')':
				if depth == 0 {
					break scan
				}
				depth--
			case (c == ';' || c == '|') && depth == 0:
				break scan
			}
			p.pos++
		}
		if p.pos > len(p.src) {
			p.pos = len(p.src)
		}
		pat = p.src[start:p.pos]
	}
	if pat == "" {
		return p.errAt(start, "expected a pattern")
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return p.errAt(start, fmt.Sprintf("bad pattern: %v", err))
	}
	t.re = re
	t.pattern = pat
	return nil
}
