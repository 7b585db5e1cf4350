package query

import (
	"fmt"
	"strings"
	"unicode"
)

// The entity type selection language (clause 4.17) and the scope query
// language (clause 4.19) are the same boolean shell around different leaves:
// leaves joined by ';' (AND, binds tighter), '|' or ',' (OR), grouped with
// parentheses. expr is that shell; TypeSelection and ScopeQuery give the
// leaves their meaning.

// expr is a parsed boolean combination of leaves.
type expr struct {
	op   byte // 0 for a leaf, ';' for AND, '|' for OR
	leaf string
	kids []*expr
}

// eval reports whether the expression holds when each leaf's truth is f(leaf).
func (x *expr) eval(f func(leaf string) bool) bool {
	switch x.op {
	case ';':
		for _, k := range x.kids {
			if !k.eval(f) {
				return false
			}
		}
		return true
	case '|':
		for _, k := range x.kids {
			if k.eval(f) {
				return true
			}
		}
		return false
	}
	return f(x.leaf)
}

func (x *expr) write(b *strings.Builder) {
	if x.op == 0 {
		b.WriteString(x.leaf)
		return
	}
	for i, k := range x.kids {
		if i > 0 {
			b.WriteByte(x.op)
		}
		if k.op == '|' && x.op == ';' {
			b.WriteByte('(')
			k.write(b)
			b.WriteByte(')')
		} else {
			k.write(b)
		}
	}
}

func (x *expr) String() string {
	var b strings.Builder
	x.write(&b)
	return b.String()
}

// join builds an AND or OR node, flattening children of the same operator.
func join(op byte, kids []*expr) *expr {
	if len(kids) == 1 {
		return kids[0]
	}
	n := &expr{op: op}
	for _, k := range kids {
		if k.op == op {
			n.kids = append(n.kids, k.kids...)
		} else {
			n.kids = append(n.kids, k)
		}
	}
	return n
}

// exprParser parses the shell; leaf checks (and may rewrite) one leaf as
// written, returning what the expression keeps or why it is wrong.
type exprParser struct {
	cursor
	leaf func(s string) (string, error)
}

func parseExpr(param, src string, leaf func(string) (string, error)) (*expr, error) {
	p := &exprParser{cursor: cursor{param: param, src: src}, leaf: leaf}
	if strings.TrimSpace(src) == "" {
		return nil, p.errAt(0, "empty expression")
	}
	x, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(src) {
		if src[p.pos] == ')' {
			return nil, p.errAt(p.pos, "unbalanced ')'")
		}
		return nil, p.errAt(p.pos, fmt.Sprintf("unexpected %q, want ';', '|', ',' or end", src[p.pos]))
	}
	return x, nil
}

// cursor is a parser's place in the text of one query parameter; the q,
// type and scopeQ parsers share it.
type cursor struct {
	param string // names the parameter in errors
	src   string
	pos   int
	depth int // open parentheses
}

func (c *cursor) errAt(off int, msg string) error {
	return &SyntaxError{Param: c.param, Offset: off, Msg: msg}
}

func (c *cursor) peek() byte {
	if c.pos < len(c.src) {
		return c.src[c.pos]
	}
	return 0
}

// group parses a parenthesised inner expression at c, which is at '(',
// nesting at most maxDepth deep so a hostile query cannot exhaust the stack.
func group[T any](c *cursor, inner func() (T, error)) (T, error) {
	var zero T
	open := c.pos
	c.depth++
	if c.depth > maxDepth {
		return zero, c.errAt(open, "parentheses nested too deeply")
	}
	c.pos++
	x, err := inner()
	if err != nil {
		return zero, err
	}
	if c.peek() != ')' {
		if c.pos >= len(c.src) {
			return zero, c.errAt(open, "unclosed '('")
		}
		return zero, c.errAt(c.pos, fmt.Sprintf("unexpected %q, want ')'", c.src[c.pos]))
	}
	c.pos++
	c.depth--
	return x, nil
}

func (p *exprParser) or() (*expr, error) {
	var kids []*expr
	for {
		k, err := p.and()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
		if c := p.peek(); c != '|' && c != ',' {
			return join('|', kids), nil
		}
		p.pos++
	}
}

func (p *exprParser) and() (*expr, error) {
	var kids []*expr
	for {
		k, err := p.factor()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
		if p.peek() != ';' {
			return join(';', kids), nil
		}
		p.pos++
	}
}

func (p *exprParser) factor() (*expr, error) {
	if p.peek() != '(' {
		return p.leafAt()
	}
	return group(&p.cursor, p.or)
}

func (p *exprParser) leafAt() (*expr, error) {
	start := p.pos
	for p.pos < len(p.src) && !strings.ContainsRune(";|,()", rune(p.src[p.pos])) {
		p.pos++
	}
	raw := p.src[start:p.pos]
	if raw == "" {
		if p.pos >= len(p.src) {
			return nil, p.errAt(p.pos, "expected a term, found end of input")
		}
		return nil, p.errAt(p.pos, fmt.Sprintf("expected a term, found %q", p.src[p.pos]))
	}
	if i := strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f || unicode.IsSpace(r) }); i >= 0 {
		return nil, p.errAt(start+i, fmt.Sprintf("white space or a control character in %q", raw))
	}
	v, err := p.leaf(raw)
	if err != nil {
		return nil, p.errAt(start, err.Error())
	}
	return &expr{leaf: v}, nil
}
