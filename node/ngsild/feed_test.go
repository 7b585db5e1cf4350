package ngsild

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
	"github.com/mimnode/mimnode/node/store"
)

// TestChangeFeed checks every write lands in the feed, in order, with the
// entity's new state.
func TestChangeFeed(t *testing.T) {
	n := newTestNode(t, nil)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:x:1", "T", `, "p": 1`)), http.StatusCreated)
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:x:1/attrs", `{"p": 2}`), http.StatusNoContent)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", "["+entityJSON("urn:x:2", "T", "")+","+entityJSON("urn:x:1", "T", `, "p": 3`)+"]"), http.StatusCreated)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:x:1", nil), http.StatusNoContent)
	// A failed write leaves no trace.
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:x:1", nil), ResourceNotFound)

	changes, err := n.svc.Changes(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	const p = "https://uri.etsi.org/ngsi-ld/default-context/p"
	want := []struct {
		op Op
		id string
		p  any
	}{
		{OpCreate, "urn:x:1", 1.0}, {OpUpdate, "urn:x:1", 2.0}, {OpCreate, "urn:x:2", nil}, {OpUpdate, "urn:x:1", 3.0}, {OpDelete, "urn:x:1", nil},
	}
	if len(changes) != len(want) {
		t.Fatalf("%d changes, want %d", len(changes), len(want))
	}
	for i, c := range changes {
		w := want[i]
		if c.Seq != uint64(i+1) || c.Op != w.op || c.ID != w.id {
			t.Errorf("change %d = seq %d %s %s, want seq %d %s %s", i, c.Seq, c.Op, c.ID, i+1, w.op, w.id)
		}
		if w.op == OpDelete {
			if c.Entity != nil || len(c.Types) != 1 {
				t.Errorf("delete change carries entity %v, types %v", c.Entity, c.Types)
			}
			continue
		}
		var got any
		if insts := c.Entity.Attrs[p]; len(insts) > 0 {
			got = insts[0].Value
		}
		if got != w.p {
			t.Errorf("change %d: p = %v, want %v", i, got, w.p)
		}
	}
	if n.svc.LastSeq() != 5 {
		t.Errorf("LastSeq = %d, want 5", n.svc.LastSeq())
	}
	tail, _ := n.svc.Changes(context.Background(), 4, 100)
	if len(tail) != 2 || tail[0].Seq != 4 {
		t.Errorf("Changes(from 4) = %d changes starting at %d", len(tail), tail[0].Seq)
	}
}

// TestFollow checks a consumer sees history, then live changes, and that a
// consumer that never reads does not hold up writes.
func TestFollow(t *testing.T) {
	n := newTestNode(t, nil)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:x:0", "T", "")), http.StatusCreated)

	// A subscriber that never drains its channel.
	_, stop := n.svc.Notify()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan Change, 100)
	done := make(chan error, 1)
	go func() { done <- n.svc.Follow(ctx, 1, func(c Change) error { got <- c; return nil }) }()

	for i := 1; i <= 50; i++ {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON(fmt.Sprintf("urn:x:%d", i), "T", "")), http.StatusCreated)
	}
	for want := uint64(1); want <= 51; want++ {
		select {
		case c := <-got:
			if c.Seq != want {
				t.Fatalf("follower got seq %d, want %d", c.Seq, want)
			}
		case <-ctx.Done():
			t.Fatalf("follower stalled before seq %d", want)
		}
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Follow returned %v, want context.Canceled", err)
	}
}

// TestFeedSurvivesRestart checks sequence numbers persist, continue after a
// restart and are never reused after trimming.
func TestFeedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	open := func() (*store.DB, *testNode) {
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return db, newTestNodeOn(t, db, nil)
	}
	db, n := open()
	for i := 0; i < 3; i++ {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON(fmt.Sprintf("urn:x:%d", i), "T", "")), http.StatusCreated)
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities/urn:x:0/attrs", `{"p": 1}`), http.StatusNoContent)
	if err := n.svc.TrimChanges(5); err != nil {
		t.Fatal(err)
	}
	// Seq 1 (urn:x:0's first state) is gone; 2, 3 and 4 hold current states.
	var kept []uint64
	_ = db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyFeed), KeysOnly: true}, func(k, _ []byte) error {
			kept = append(kept, binary.BigEndian.Uint64(k[len(keyFeed):]))
			return nil
		})
	})
	if !reflect.DeepEqual(kept, []uint64{2, 3, 4}) {
		t.Errorf("feed records after trim: %v, want [2 3 4]", kept)
	}
	n.svc.Close()
	db.Close()

	db, n = open()
	defer db.Close()
	if n.svc.LastSeq() != 4 {
		t.Fatalf("LastSeq after restart = %d, want 4", n.svc.LastSeq())
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:x:new", "T", "")), http.StatusCreated)
	changes, err := n.svc.Changes(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Seq != 5 || changes[0].ID != "urn:x:new" {
		t.Errorf("after trim and restart: %+v, want only seq 5 for urn:x:new", changes)
	}
	for i := 0; i < 3; i++ {
		if e, _ := n.svc.Entity(fmt.Sprintf("urn:x:%d", i)); e == nil {
			t.Errorf("trimming the feed lost urn:x:%d", i)
		}
	}
	if e := fetch(t, n, "urn:x:0", "?options=keyValues"); e["p"] != 1.0 {
		t.Errorf("urn:x:0 after trim and restart: %v", e)
	}
}

// TestRenderAndMatchChanges shows how a feed consumer (subscriptions, live
// transfers) uses a Change: match it with a q expression and render it for
// its client's @context.
func TestRenderAndMatchChanges(t *testing.T) {
	n := newTestNode(t, nil)
	body, _ := readExample(t, "AirQualityObserved", "example.jsonld")
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body, ldJSON()...), http.StatusCreated)
	changes, err := n.svc.Changes(context.Background(), 0, 10)
	if err != nil || len(changes) != 1 {
		t.Fatalf("changes %v, %v", changes, err)
	}
	e := changes[0].Entity
	expand := func(term string) string {
		iri, err := n.svc.Expand(envContext, term)
		if err != nil {
			t.Fatal(err)
		}
		return iri
	}
	for q, want := range map[string]bool{"no2>50": true, "no2>100": false, `airQualityLevel=="moderate"`: true} {
		parsed, err := query.Parse(q, expand)
		if err != nil {
			t.Fatal(err)
		}
		if got := parsed.Match(e); got != want {
			t.Errorf("%s matched %v, want %v", q, got, want)
		}
	}
	out, err := n.svc.Render(e, RenderOptions{Context: envContext, Format: "keyValues", Attrs: []string{"no2"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, map[string]any{"id": e.ID, "type": "AirQualityObserved", "no2": 69.0}) {
		t.Errorf("Render = %v", out)
	}
	if _, err := n.svc.Render(e, RenderOptions{Context: "https://example.org/unknown.jsonld"}); err == nil {
		t.Error("Render with an unavailable context succeeded")
	}
}

// TestDecodeChangeHeaders checks a feed record written with the id and
// types in its header (every record before they were left to the entity's
// state, and a delete's still) and one without them read as the same
// change, whether or not the state is asked for.
func TestDecodeChangeHeaders(t *testing.T) {
	at := time.Date(2026, 12, 4, 21, 0, 0, 123456789, time.UTC)
	e := &Entity{ID: "urn:x:1", Types: []string{"https://example.org/T", "https://example.org/U"}, Attrs: map[string][]*Attribute{
		"https://example.org/p": {{Type: "Property", Value: 1.0, CreatedAt: at, ModifiedAt: at}},
	}, CreatedAt: at, ModifiedAt: at}
	body := packEntity(e)
	rec := changeRecord{Seq: 7, Op: OpUpdate, ID: e.ID, Types: e.Types, At: at, Removed: []string{"https://example.org/q"}, Entity: body}
	header := fmt.Sprintf(`{"seq":7,"op":"update","id":"urn:x:1","types":["https://example.org/T","https://example.org/U"],"at":%q,"gone":["https://example.org/q"]}`, at.Format(time.RFC3339Nano))
	old := binary.BigEndian.AppendUint32(nil, uint32(len(header)))
	old = append(append(old, header...), body...)
	cur := appendChange(nil, &rec)
	if len(cur) >= len(old) {
		t.Errorf("record without id and types is %d bytes, with them %d", len(cur), len(old))
	}
	for _, entity := range []bool{false, true} {
		for name, v := range map[string][]byte{"with id and types": old, "without": cur} {
			c, gotBody, err := decodeChange(v, entity)
			if err != nil {
				t.Fatalf("decodeChange(%s, %v): %v", name, entity, err)
			}
			if c.Seq != 7 || c.Op != OpUpdate || c.ID != e.ID || !reflect.DeepEqual(c.Types, e.Types) || !c.At.Equal(at) || !reflect.DeepEqual(c.Removed, rec.Removed) {
				t.Errorf("decodeChange(%s, %v) = %+v, want seq 7 update %s %v at %v gone %v", name, entity, c, e.ID, e.Types, at, rec.Removed)
			}
			if string(gotBody) != string(body) {
				t.Errorf("decodeChange(%s, %v) body differs", name, entity)
			}
			if entity && (c.Entity == nil || c.Entity.Attrs["https://example.org/p"][0].Value != 1.0) {
				t.Errorf("decodeChange(%s, %v) entity = %+v", name, entity, c.Entity)
			}
		}
	}
	del := changeRecord{Seq: 8, Op: OpDelete, ID: e.ID, Types: e.Types, At: at}
	c, gotBody, err := decodeChange(appendChange(nil, &del), false)
	if err != nil || c.ID != e.ID || !reflect.DeepEqual(c.Types, e.Types) || c.Entity != nil || gotBody != nil {
		t.Errorf("decodeChange(delete) = %+v, %q, %v; want id %s types %v, no entity", c, gotBody, err, e.ID, e.Types)
	}
}

// TestFeedHeader checks that a binary feed record header reads back as the
// change written (a delete's id and types, removed attributes, times
// before 1970 and with nanoseconds, the zero time, a large seq), and that
// every truncation of one is an error.
func TestFeedHeader(t *testing.T) {
	at := time.Date(2026, 12, 4, 21, 0, 0, 123456789, time.UTC)
	body := packEntity(&Entity{ID: "urn:x:1", Types: []string{"https://example.org/T"}, CreatedAt: at, ModifiedAt: at})
	recs := []changeRecord{
		{Seq: 1, Op: OpCreate, At: at, Entity: body},
		{Seq: 1<<63 + 5, Op: OpUpdate, At: at, Removed: []string{"https://example.org/q", "https://example.org/r"}, Entity: body},
		{Seq: 9, Op: OpDelete, ID: "urn:x:1", Types: []string{"https://example.org/T", "https://example.org/U"}, At: time.Date(1960, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Seq: 10, Op: OpDelete, ID: "urn:x:2", At: time.Time{}},
	}
	for i, rec := range recs {
		v := appendChange(nil, &rec)
		c, gotBody, err := decodeChange(v, false)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		wantID, wantTypes := rec.ID, rec.Types
		if len(rec.Entity) > 0 {
			wantID, wantTypes = "urn:x:1", []string{"https://example.org/T"}
		}
		if c.Seq != rec.Seq || c.Op != rec.Op || c.ID != wantID || !reflect.DeepEqual(c.Types, wantTypes) || !c.At.Equal(rec.At) || !reflect.DeepEqual(c.Removed, rec.Removed) {
			t.Errorf("record %d decodes to %+v, want %+v", i, c, rec)
		}
		if string(gotBody) != string(rec.Entity) {
			t.Errorf("record %d: body differs", i)
		}
		header, _, err := splitChange(v)
		if err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut < len(header); cut++ {
			short := binary.BigEndian.AppendUint32(nil, uint32(cut))
			short = append(short, header[:cut]...)
			if _, _, err := decodeChange(short, false); err == nil {
				t.Errorf("record %d: header cut to %d of %d bytes decoded", i, cut, len(header))
			}
		}
	}
}

// FuzzFeedHeader checks the feed record decoder on arbitrary bytes: an
// error or a change, never a panic, and a change that encodes back to a
// record decoding to the same change.
func FuzzFeedHeader(f *testing.F) {
	at := time.Date(2026, 12, 4, 21, 0, 0, 123456789, time.UTC)
	f.Add(appendChange(nil, &changeRecord{Seq: 9, Op: OpDelete, ID: "urn:x:1", Types: []string{"https://example.org/T"}, At: at, Removed: []string{"a"}}))
	f.Add(appendChange(nil, &changeRecord{Seq: 1, Op: OpCreate, At: at, Entity: []byte{1, 2, 3}}))
	f.Add([]byte("\x00\x00\x00\x0b{\"seq\":1,\"op\":\"create\"}"))
	f.Fuzz(func(t *testing.T, v []byte) {
		header, _, err := splitChange(v)
		if err != nil || len(header) == 0 || header[0] != feedHeader {
			return
		}
		var rec changeRecord
		if err := decodeFeedHeader(header[1:], &rec); err != nil {
			return
		}
		var again changeRecord
		back := appendChange(nil, &rec)
		h2, _, err := splitChange(back)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeFeedHeader(h2[1:], &again); err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if again.Seq != rec.Seq || again.Op != rec.Op || again.ID != rec.ID || !reflect.DeepEqual(again.Types, rec.Types) || !again.At.Equal(rec.At) || !reflect.DeepEqual(again.Removed, rec.Removed) {
			t.Fatalf("header changed through encoding: %+v, then %+v", rec, again)
		}
	})
}
