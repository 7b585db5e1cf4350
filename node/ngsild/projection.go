package ngsild

import (
	"fmt"
	"strings"
)

// Projection (NGSI-LD 1.8, clause 4.21): pick lists the entity members a
// response keeps (id, type, scope and attribute names), omit those it
// leaves out; what is not named is kept by omit and dropped by pick. A name
// may be followed by a braced list (locatedAt{id,name}) that projects the
// entity a Relationship links to when linked entities are inlined (join);
// this node does not inline linked entities, so such a list is checked and
// then has nothing to act on.

// projection is a parsed pick or omit value: the members named at the top
// level, attribute names expanded, id/type/scope as written.
type projection map[string]bool

// maxProjectionDepth bounds nested braces, as maxDepth does parentheses in q.
const maxProjectionDepth = 16

var coreMembers = map[string]bool{"id": true, "type": true, "scope": true}

// parseProjection parses the value of the pick or omit parameter.
func parseProjection(param, s string, expand func(string) string) (projection, error) {
	p := &projParser{param: param, src: s, expand: expand}
	out := projection{}
	if err := p.list(out, 0); err != nil {
		return nil, err
	}
	if p.pos < len(s) {
		return nil, p.errorf("unexpected %q", s[p.pos])
	}
	return out, nil
}

type projParser struct {
	param  string
	src    string
	pos    int
	expand func(string) string
}

func (p *projParser) errorf(format string, args ...any) error {
	return newError(BadRequestData, "invalid "+p.param, "%s at offset %d", fmt.Sprintf(format, args...), p.pos)
}

// list reads name[{list}] (',' name[{list}])*; only the top level (into
// out) is kept.
func (p *projParser) list(out projection, depth int) error {
	if depth > maxProjectionDepth {
		return p.errorf("braces nested too deeply")
	}
	for {
		start := p.pos
		for p.pos < len(p.src) && !strings.ContainsRune(",{}", rune(p.src[p.pos])) {
			p.pos++
		}
		name := p.src[start:p.pos]
		if name == "" {
			if p.pos >= len(p.src) {
				return p.errorf("expected a member name, found end of input")
			}
			return p.errorf("expected a member name, found %q", p.src[p.pos])
		}
		if err := checkName(name); err != nil {
			return err
		}
		if out != nil {
			if coreMembers[name] {
				out[name] = true
			} else {
				out[p.expand(name)] = true
			}
		}
		if p.pos < len(p.src) && p.src[p.pos] == '{' {
			p.pos++
			if err := p.list(nil, depth+1); err != nil {
				return err
			}
			if p.pos >= len(p.src) || p.src[p.pos] != '}' {
				return p.errorf("unclosed '{'")
			}
			p.pos++
		}
		if p.pos >= len(p.src) || p.src[p.pos] != ',' {
			return nil
		}
		p.pos++
	}
}

// keeps reports whether a member (id, type, scope, or an attribute IRI)
// survives pick and omit.
func (o renderOpts) keeps(member string) bool {
	if o.pick != nil && !o.pick[member] {
		return false
	}
	return !o.omit[member]
}
