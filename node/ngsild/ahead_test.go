package ngsild

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// TestWorkAheadStaleGuess: workAhead encodes an entity it finds absent as
// created; when another write creates it before the commit, the commit
// replaces it as it would without workAhead (createdAt kept from the
// stored state, not the guessed encoding), and the guessed verdict of a
// change whose entity fails its data model is the one apply returns.
func TestWorkAheadStaleGuess(t *testing.T) {
	n := newTestNode(t, nil)
	s := n.svc
	tc, err := s.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	entity := func(i int, at time.Time) *Entity {
		e, err := decodeEntity(aqoEntity(rng, i), tc, at, true)
		if err != nil {
			t.Fatal(err)
		}
		stampNew(e, at, at)
		return e
	}
	bad := entity(3, t1)
	bad.Attrs[envVocab+"airQualityIndex"][0].Value = "not a number"
	chs := []change{s.replaceChange(entity(1, t1), false), s.replaceChange(entity(2, t1), false), s.replaceChange(bad, false)}
	s.workAhead(chs)
	for i, ch := range chs[:2] {
		if ch.ahead.body == nil || !ch.ahead.checked || ch.ahead.err != nil {
			t.Fatalf("change %d: workAhead left body %v, checked %v, err %v; want a body and a pass", i, ch.ahead.body != nil, ch.ahead.checked, ch.ahead.err)
		}
	}
	if !chs[2].ahead.checked || chs[2].ahead.err == nil {
		t.Fatalf("change 2 (breaks its model): workAhead checked %v, err %v; want a failure", chs[2].ahead.checked, chs[2].ahead.err)
	}
	// Entity 1 is created meanwhile, at t0.
	if _, err := s.commit([]change{s.createChange(entity(1, t0))}); err != nil {
		t.Fatal(err)
	}
	outs, err := s.commit(chs)
	if err != nil {
		t.Fatal(err)
	}
	if chs[0].ahead.absent || !chs[1].ahead.absent {
		t.Errorf("absent after the commit: %v, %v; want false (created meanwhile), true", chs[0].ahead.absent, chs[1].ahead.absent)
	}
	if outs[0].err != nil || outs[0].created {
		t.Errorf("replace of the entity created meanwhile: err %v, created %v; want a replace", outs[0].err, outs[0].created)
	}
	if outs[1].err != nil || !outs[1].created {
		t.Errorf("create: err %v, created %v; want a create", outs[1].err, outs[1].created)
	}
	var de *Error
	if !errors.As(outs[2].err, &de) || de.Type != BadRequestData {
		t.Errorf("entity breaking its model: %v, want BadRequestData", outs[2].err)
	}
	want := map[string]time.Time{chs[0].id: t0, chs[1].id: t1}
	for id, created := range want {
		e, err := s.Entity(id)
		if err != nil || e == nil {
			t.Fatalf("Entity(%s) = %v, %v", id, e, err)
		}
		if !e.CreatedAt.Equal(created) || !e.ModifiedAt.Equal(t1) {
			t.Errorf("Entity(%s): createdAt %v, modifiedAt %v; want %v, %v", id, e.CreatedAt, e.ModifiedAt, created, t1)
		}
		for name, insts := range e.Attrs {
			if !insts[0].CreatedAt.Equal(created) {
				t.Errorf("Entity(%s) attribute %s: createdAt %v, want %v", id, name, insts[0].CreatedAt, created)
			}
		}
	}
	if e, _ := s.Entity(chs[2].id); e != nil {
		t.Errorf("the entity breaking its model was written")
	}
}

func TestWrittenLog(t *testing.T) {
	ids := func(list ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, id := range list {
			m[id] = struct{}{}
		}
		return m
	}
	var l writtenLog
	if !l.unwritten("a", 5, 5) {
		t.Errorf("empty log, nothing committed since: want unwritten")
	}
	if l.unwritten("a", 4, 5) {
		t.Errorf("empty log, a commit since: want unknown (false)")
	}
	l.add(5, 7, ids("a", "b"))
	l.add(7, 8, ids("c"))
	for i := 0; i < writtenKept-2; i++ {
		l.add(uint64(8+i), uint64(9+i), ids("x"))
	}
	now := uint64(8 + writtenKept - 2)
	tests := []struct {
		name  string
		id    string
		since uint64
		want  bool
	}{
		{"nothing since", "a", now, true},
		{"written in the oldest kept", "a", 5, false},
		{"written in the oldest kept, partly seen", "b", 6, false},
		{"written before since", "a", 7, true},
		{"written after since", "c", 7, false},
		{"never written", "z", 5, true},
		{"before the log", "z", 4, false},
		{"written in the newest", "x", now - 1, false},
	}
	for _, tt := range tests {
		if got := l.unwritten(tt.id, tt.since, now); got != tt.want {
			t.Errorf("%s: unwritten(%q, %d, %d) = %v, want %v", tt.name, tt.id, tt.since, now, got, tt.want)
		}
	}
	l.add(now, now+1, ids("y")) // the oldest, 5..7, is dropped
	if l.unwritten("z", 6, now+1) {
		t.Errorf("since before the oldest kept commit: want unknown (false)")
	}
	if !l.unwritten("z", 7, now+1) {
		t.Errorf("since the oldest kept commit, never written: want unwritten")
	}
}

// TestWorkAheadSchemaBoundMeanwhile: a schema bound between workAhead and
// the commit applies to the commit's entities (BindModel holds the write
// lock so that writes after it are checked against it): the verdicts
// workAhead found before it are not taken.
func TestWorkAheadSchemaBoundMeanwhile(t *testing.T) {
	n := newTestNode(t, nil)
	s := n.svc
	const typ = "https://city.example/Bench"
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entity := func(id string) *Entity {
		e := &Entity{ID: id, Types: []string{typ}, Attrs: map[string][]*Attribute{
			coreVocab + "name": {{Type: Property, Value: "bench"}},
		}}
		stampNew(e, at, at)
		return e
	}
	chs := []change{s.createChange(entity("urn:bench:1")), s.putChange(entity("urn:bench:2"), true, false)}
	s.workAhead(chs)
	for i, ch := range chs {
		if !ch.ahead.checked || ch.ahead.err != nil {
			t.Fatalf("change %d: workAhead checked %v, err %v; want a pass (no schema yet)", i, ch.ahead.checked, ch.ahead.err)
		}
	}
	schema := `{"type": "object", "properties": {"seats": {"type": "integer"}}, "required": ["seats"]}`
	if err := s.BindModel(typ, "", []byte(schema)); err != nil {
		t.Fatal(err)
	}
	outs, err := s.commit(chs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		var de *Error
		if !errors.As(o.err, &de) || de.Type != BadRequestData {
			t.Errorf("change %d (no seats, bound meanwhile): %v, want BadRequestData", i, o.err)
		}
		if e, _ := s.Entity(chs[i].id); e != nil {
			t.Errorf("change %d: %s was written against the schema bound before the commit", i, chs[i].id)
		}
	}
}
