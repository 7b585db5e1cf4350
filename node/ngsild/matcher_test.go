package ngsild

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
)

// TestMatcherIndexLosesNothing checks the Matcher's index (by type, id and
// q equality value) against testing every subscription: for random
// subscriptions and changes both give the same subscriptions.
func TestMatcherIndexLosesNothing(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 11))
	voc := func(s string) string { return coreVocab + s }
	types := []string{voc("Sensor"), voc("Pump"), voc("Valve")}
	qs := []string{"", "no2==3", "no2==3,4", "no2==1..4", "no2>2", "name==\"a\"", "on==true", "no2==3;name==\"b\"", "no2==3|no2==5", "tags==\"x\"", "!no2"}
	var subs []*Subscription
	for i := 0; i < 300; i++ {
		sub := &Subscription{ID: fmt.Sprintf("urn:sub:%03d", i), IsActive: rng.IntN(10) > 0}
		for range rng.IntN(3) {
			var es EntitySelector
			switch rng.IntN(4) {
			case 0:
				es.Type = types[rng.IntN(len(types))]
			case 1:
				es.ID = fmt.Sprintf("urn:e:%d", rng.IntN(5))
			case 2:
				es.IDPattern = regexp.MustCompile(fmt.Sprintf("^urn:e:[%d-4]$", rng.IntN(5)))
			default:
				es.Type, es.ID = types[rng.IntN(len(types))], fmt.Sprintf("urn:e:%d", rng.IntN(5))
			}
			sub.Entities = append(sub.Entities, es)
		}
		if len(sub.Entities) == 0 || rng.IntN(3) == 0 {
			sub.WatchedAttributes = []string{voc([]string{"no2", "name", "on"}[rng.IntN(3)])}
		}
		if src := qs[rng.IntN(len(qs))]; src != "" {
			q, err := query.Parse(src, voc)
			if err != nil {
				t.Fatal(err)
			}
			sub.Q = q
		}
		sub.Triggers = Trigger(rng.IntN(32))
		subs = append(subs, sub)
	}
	m := NewMatcher()
	for _, sub := range subs {
		m.Put(sub)
	}
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("urn:e:%d", rng.IntN(6))
		e := &Entity{ID: id, Types: []string{types[rng.IntN(len(types))]}, ModifiedAt: now, Attrs: map[string][]*Attribute{}}
		at := now
		if rng.IntN(2) == 0 {
			at = now.Add(-time.Hour)
		}
		for _, a := range []struct {
			name string
			v    any
		}{{"no2", float64(rng.IntN(6))}, {"name", []string{"a", "b"}[rng.IntN(2)]}, {"on", rng.IntN(2) == 0}, {"tags", []any{"x", "y"}[rng.IntN(2):]}} {
			if rng.IntN(4) > 0 {
				e.Attrs[voc(a.name)] = []*Attribute{{Type: Property, Value: a.v, CreatedAt: at, ModifiedAt: now}}
			}
		}
		c := Change{Seq: uint64(i), Op: []Op{OpCreate, OpUpdate, OpDelete}[rng.IntN(3)], ID: id, Types: e.Types, Entity: e}
		var prev *Entity
		if c.Op == OpDelete {
			c.Entity, prev = nil, e
		}
		var want []string
		for _, sub := range subs {
			if sub.fires(now, &c, prev) {
				want = append(want, sub.ID)
			}
		}
		var got []string
		for _, sub := range m.MatchPrev(now, c, prev) {
			got = append(got, sub.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("change %d (%+v): Match = %v, want %v", i, c, got, want)
		}
	}
}

// BenchmarkMatcher times matching one change against 100 subscriptions
// of one type whose q pins no2 to a value (the ingest benchmark's shape).
func BenchmarkMatcher(b *testing.B) {
	voc := func(s string) string { return coreVocab + s }
	m := NewMatcher()
	for i := 0; i < 100; i++ {
		q, err := query.Parse(fmt.Sprintf("no2==%d", i), voc)
		if err != nil {
			b.Fatal(err)
		}
		m.Put(&Subscription{ID: fmt.Sprintf("urn:sub:%d", i), IsActive: true, Q: q,
			Entities: []EntitySelector{{Type: voc("AirQualityObserved")}}, WatchedAttributes: []string{voc("no2")}})
	}
	now := time.Now()
	e := &Entity{ID: "urn:e", Types: []string{voc("AirQualityObserved")}, ModifiedAt: now,
		Attrs: map[string][]*Attribute{voc("no2"): {{Type: Property, Value: 42.0, CreatedAt: now, ModifiedAt: now}}}}
	c := Change{Op: OpUpdate, ID: e.ID, Types: e.Types, Entity: e}
	b.ReportAllocs()
	for b.Loop() {
		if len(m.Match(now, c)) != 1 {
			b.Fatal("no match")
		}
	}
}
