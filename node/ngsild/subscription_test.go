package ngsild

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
	"github.com/mimnode/mimnode/node/store"
)

// TestMatcher checks the matching rules of clause 5.2.12 on the pure
// Matcher, with the clock as an argument.
func TestMatcher(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	temp, hum := coreVocab+"temperature", coreVocab+"humidity"
	sensor := func(id string, t float64, touched ...string) Change {
		e := &Entity{ID: id, Types: []string{coreVocab + "Sensor"}, ModifiedAt: now, Attrs: map[string][]*Attribute{}}
		for _, a := range []string{temp, hum} {
			m := now.Add(-time.Hour)
			if contains(touched, a) {
				m = now
			}
			e.Attrs[a] = []*Attribute{{Type: Property, Value: t, ModifiedAt: m}}
		}
		return Change{Seq: 1, Op: OpUpdate, ID: id, Types: e.Types, Entity: e}
	}
	mustQ := func(s string) *query.Q {
		q, err := query.Parse(s, func(term string) string { return coreVocab + term })
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	byType := []EntitySelector{{Type: coreVocab + "Sensor"}}
	near, err := query.ParseGeo("near;maxDistance==1000", "Point", "[-3.70,40.42]", "")
	if err != nil {
		t.Fatal(err)
	}
	at := func(lon, lat float64) Change {
		c := sensor("urn:a", 1, temp)
		c.Entity.Attrs[coreVocab+"location"] = []*Attribute{{Type: GeoProperty, Value: map[string]any{"type": "Point", "coordinates": []any{lon, lat}}}}
		return c
	}
	for _, tc := range []struct {
		name string
		sub  Subscription
		c    Change
		want bool
	}{
		{"type selects", Subscription{Entities: byType, IsActive: true}, sensor("urn:a", 1, temp), true},
		{"other type", Subscription{Entities: []EntitySelector{{Type: coreVocab + "Pump"}}, IsActive: true}, sensor("urn:a", 1, temp), false},
		{"id", Subscription{Entities: []EntitySelector{{ID: "urn:b"}}, IsActive: true}, sensor("urn:a", 1, temp), false},
		{"idPattern", Subscription{Entities: []EntitySelector{{IDPattern: regexp.MustCompile("^urn:a")}}, IsActive: true}, sensor("urn:a", 1, temp), true},
		{"watched touched", Subscription{Entities: byType, WatchedAttributes: []string{temp}, IsActive: true}, sensor("urn:a", 1, temp), true},
		{"watched untouched", Subscription{Entities: byType, WatchedAttributes: []string{temp}, IsActive: true}, sensor("urn:a", 1, hum), false},
		// Removing an attribute is attributeDeleted, not among the default triggers.
		{"watched removed", Subscription{Entities: byType, WatchedAttributes: []string{coreVocab + "gone"}, IsActive: true},
			func() Change { c := sensor("urn:a", 1, hum); c.Removed = []string{coreVocab + "gone"}; return c }(), false},
		{"watched removed, attributeDeleted", Subscription{Entities: byType, WatchedAttributes: []string{coreVocab + "gone"}, IsActive: true, Triggers: AttributeDeleted},
			func() Change { c := sensor("urn:a", 1, hum); c.Removed = []string{coreVocab + "gone"}; return c }(), true},
		{"updated, attributeCreated only", Subscription{Entities: byType, WatchedAttributes: []string{temp}, IsActive: true, Triggers: AttributeCreated}, sensor("urn:a", 1, temp), false},
		{"delete, entityDeleted", Subscription{Entities: byType, IsActive: true, Triggers: EntityDeleted}, Change{Op: OpDelete, ID: "urn:a", Types: []string{coreVocab + "Sensor"}}, true},
		{"q true", Subscription{Entities: byType, Q: mustQ("temperature>30"), IsActive: true}, sensor("urn:a", 31, temp), true},
		{"q false", Subscription{Entities: byType, Q: mustQ("temperature>30"), IsActive: true}, sensor("urn:a", 30, temp), false},
		{"inactive", Subscription{Entities: byType, IsActive: false}, sensor("urn:a", 1, temp), false},
		{"expired", Subscription{Entities: byType, IsActive: true, ExpiresAt: now}, sensor("urn:a", 1, temp), false},
		{"not yet expired", Subscription{Entities: byType, IsActive: true, ExpiresAt: now.Add(time.Second)}, sensor("urn:a", 1, temp), true},
		{"periodic ignores changes", Subscription{Entities: byType, IsActive: true, TimeInterval: time.Minute}, sensor("urn:a", 1, temp), false},
		{"geoQ near", Subscription{Entities: byType, Geo: near, GeoProperty: coreVocab + "location", IsActive: true}, at(-3.701, 40.421), true},
		{"geoQ far", Subscription{Entities: byType, Geo: near, GeoProperty: coreVocab + "location", IsActive: true}, at(-3.60, 40.42), false},
		{"geoQ no location", Subscription{Entities: byType, Geo: near, GeoProperty: coreVocab + "location", IsActive: true}, sensor("urn:a", 1, temp), false},
		{"delete", Subscription{Entities: byType, IsActive: true}, Change{Op: OpDelete, ID: "urn:a", Types: []string{coreVocab + "Sensor"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMatcher()
			tc.sub.ID = "urn:sub"
			m.Put(&tc.sub)
			if got := len(m.Match(now, tc.c)) == 1; got != tc.want {
				t.Fatalf("Match(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}

	t.Run("throttling", func(t *testing.T) {
		m := NewMatcher()
		m.Put(&Subscription{ID: "urn:sub", Entities: byType, IsActive: true, Throttling: 10 * time.Second})
		var fired []int
		for i, at := range []time.Duration{0, 5 * time.Second, 10 * time.Second, 15 * time.Second, 25 * time.Second} {
			if len(m.Match(now.Add(at), sensor("urn:a", 1, temp))) == 1 {
				fired = append(fired, i)
			}
		}
		if fmt.Sprint(fired) != "[0 2 4]" {
			t.Fatalf("throttled matches fired at %v, want [0 2 4]", fired)
		}
	})
	t.Run("timeInterval", func(t *testing.T) {
		m := NewMatcher()
		m.Put(&Subscription{ID: "urn:sub", Entities: byType, IsActive: true, TimeInterval: time.Minute})
		var due []int
		for i, at := range []time.Duration{0, 30 * time.Second, 60 * time.Second, 119 * time.Second, 120 * time.Second} {
			if len(m.Due(now.Add(at))) == 1 {
				due = append(due, i)
			}
		}
		if fmt.Sprint(due) != "[0 2 4]" {
			t.Fatalf("periodic subscription due at %v, want [0 2 4]", due)
		}
	})
}

// receiver is an httptest notification endpoint on loopback.
type testReceiver struct {
	srv   *httptest.Server
	got   chan notification
	fail  atomic.Int32 // answer 500 to this many more requests
	calls atomic.Int32
	mu    sync.Mutex
	hdr   http.Header // of the last request; guarded by mu
}

type notification struct {
	ID             string           `json:"id"`
	Type           string           `json:"type"`
	SubscriptionID string           `json:"subscriptionId"`
	NotifiedAt     string           `json:"notifiedAt"`
	Data           []map[string]any `json:"data"`
	Context        any              `json:"@context"`
}

func newReceiver(t testing.TB) *testReceiver {
	r := &testReceiver{got: make(chan notification, 10000)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.hdr = req.Header.Clone()
		r.mu.Unlock()
		if r.fail.Load() > 0 {
			r.fail.Add(-1)
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		var n notification
		if err := json.Unmarshal(body, &n); err != nil {
			t.Errorf("notification is not JSON: %v", err)
		}
		r.got <- n
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// entities waits for notifications until they hold n entities (a
// notification may carry several), failing after a deadline; it returns
// the entities in order and how many notifications brought them.
func (r *testReceiver) entities(t testing.TB, n int) ([]map[string]any, int) {
	t.Helper()
	var out []map[string]any
	count := 0
	for len(out) < n {
		nt := r.next(t)
		if nt.Type != "Notification" || len(nt.Data) == 0 {
			t.Fatalf("notification %+v", nt)
		}
		out = append(out, nt.Data...)
		count++
	}
	if len(out) > n {
		t.Fatalf("got %d entities, want %d: %v", len(out), n, out)
	}
	return out, count
}

// next waits for a notification, failing after a deadline.
func (r *testReceiver) next(t testing.TB) notification {
	t.Helper()
	select {
	case n := <-r.got:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
		return notification{}
	}
}

func startedNode(t testing.TB, db *store.DB, mod func(*Options)) *testNode {
	t.Helper()
	var n *testNode
	if db == nil {
		n = newTestNode(t, func(o *Options) {
			o.Notify = NotifyOptions{Backoff: 5 * time.Millisecond, StatusInterval: 20 * time.Millisecond}
			if mod != nil {
				mod(o)
			}
		})
	} else {
		n = newTestNodeOn(t, db, func(o *Options) {
			o.Notify = NotifyOptions{Backoff: 5 * time.Millisecond, StatusInterval: 20 * time.Millisecond}
			if mod != nil {
				mod(o)
			}
		})
	}
	if err := n.svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

func subscribe(t testing.TB, n *testNode, body map[string]any) string {
	t.Helper()
	rec := n.do("POST", "/ngsi-ld/v1/subscriptions", body)
	wantStatus(t, rec, http.StatusCreated)
	loc := rec.Header().Get("Location")
	if loc == "" {
		t.Fatal("no Location")
	}
	return loc[len("/ngsi-ld/v1/subscriptions/"):]
}

func setTemp(t testing.TB, n *testNode, id string, attrs map[string]any) {
	t.Helper()
	body := map[string]any{}
	for k, v := range attrs {
		body[k] = map[string]any{"type": "Property", "value": v}
	}
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id+"/attrs", body), http.StatusNoContent)
}

// TestSubscriptionFiresExactly checks a subscription with q and
// watchedAttributes notifies for exactly the changes that match, with the
// requested format and attributes, over HTTP on loopback.
func TestSubscriptionFiresExactly(t *testing.T) {
	n := startedNode(t, nil, func(o *Options) { o.Notify.Workers = 1 }) // one worker keeps order
	rcv := newReceiver(t)
	for _, id := range []string{"urn:ngsi-ld:Sensor:a", "urn:ngsi-ld:Sensor:b"} {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
			"id": id, "type": "Sensor",
			"temperature": map[string]any{"type": "Property", "value": 20},
			"humidity":    map[string]any{"type": "Property", "value": 50},
		}), http.StatusCreated)
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": "urn:ngsi-ld:Pump:p", "type": "Pump", "temperature": map[string]any{"type": "Property", "value": 90},
	}), http.StatusCreated)
	subID := subscribe(t, n, map[string]any{
		"type":              "Subscription",
		"entities":          []any{map[string]any{"type": "Sensor"}},
		"watchedAttributes": []any{"temperature"},
		"q":                 "temperature>30",
		"notification": map[string]any{
			"format": "keyValues", "attributes": []any{"temperature"},
			"endpoint": map[string]any{"uri": rcv.srv.URL, "receiverInfo": []any{map[string]any{"key": "X-Token", "value": "s3cret"}}},
		},
	})
	steps := []struct {
		id    string
		attrs map[string]any
		fires bool
	}{
		{"urn:ngsi-ld:Sensor:a", map[string]any{"temperature": 35}, true},
		{"urn:ngsi-ld:Sensor:a", map[string]any{"humidity": 60}, false}, // q holds, but not watched
		{"urn:ngsi-ld:Sensor:a", map[string]any{"temperature": 25}, false},
		{"urn:ngsi-ld:Pump:p", map[string]any{"temperature": 95}, false},
		{"urn:ngsi-ld:Sensor:b", map[string]any{"temperature": 31, "humidity": 1}, true},
		{"urn:ngsi-ld:Sensor:b", map[string]any{"humidity": 2}, false},
		{"urn:ngsi-ld:Sensor:a", map[string]any{"temperature": 40}, true},
	}
	var want []string
	for _, s := range steps {
		setTemp(t, n, s.id, s.attrs)
		if s.fires {
			want = append(want, fmt.Sprintf("%s=%v", s.id, s.attrs["temperature"]))
		}
	}
	var got []string
	data, sent := rcv.entities(t, len(want))
	for _, d := range data {
		if _, ok := d["humidity"]; ok {
			t.Fatalf("notification.attributes=[temperature] sent humidity: %v", d)
		}
		got = append(got, fmt.Sprintf("%s=%v", d["id"], d["temperature"]))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
	// A final matching change is notified next, so nothing else was queued
	// in between.
	setTemp(t, n, "urn:ngsi-ld:Sensor:b", map[string]any{"temperature": 99.0})
	if nt := rcv.next(t); nt.SubscriptionID != subID || len(nt.Data) != 1 || nt.Data[0]["temperature"] != 99.0 {
		t.Fatalf("unexpected extra notification %v", nt)
	}
	rcv.mu.Lock()
	tok, ct := rcv.hdr.Get("X-Token"), rcv.hdr.Get("Content-Type")
	rcv.mu.Unlock()
	if tok != "s3cret" || ct != "application/json" {
		t.Fatalf("receiverInfo header %q, Content-Type %q", tok, ct)
	}
	waitStatus(t, n, subID, func(nd map[string]any) bool { return nd["timesSent"] == float64(sent+1) && nd["lastSuccess"] != nil })
}

// waitDispatched waits until the dispatcher has matched every committed
// change (its persisted cursor reached the last sequence number).
func waitDispatched(t testing.TB, n *testNode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := readCursor(n.db)
		if err != nil {
			t.Fatal(err)
		}
		if c >= n.svc.LastSeq() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispatcher stuck at %d of %d", c, n.svc.LastSeq())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStatus polls the subscription until its notification status
// satisfies ok, with a deadline.
func waitStatus(t testing.TB, n *testNode, id string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil)
		wantStatus(t, rec, http.StatusOK)
		nd := decode(t, rec).(map[string]any)["notification"].(map[string]any)
		if ok(nd) {
			return nd
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription status never as expected: %v", nd)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNotificationRetried checks a receiver that fails twice gets the
// notification on the third attempt, and the status says so.
func TestNotificationRetried(t *testing.T) {
	n := startedNode(t, nil, nil)
	rcv := newReceiver(t)
	rcv.fail.Store(2)
	subID := subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL, "accept": "application/ld+json"}},
	})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": "urn:ngsi-ld:Sensor:r", "type": "Sensor", "temperature": map[string]any{"type": "Property", "value": 1},
	}), http.StatusCreated)
	nt := rcv.next(t)
	if nt.Context != CoreContextURL || nt.Data[0]["temperature"].(map[string]any)["value"] != 1.0 {
		t.Fatalf("ld+json notification %+v", nt)
	}
	if c := rcv.calls.Load(); c != 3 {
		t.Fatalf("receiver saw %d requests, want 3 (two failures, one success)", c)
	}
	nd := waitStatus(t, n, subID, func(nd map[string]any) bool { return nd["timesSent"] == 1.0 })
	if nd["status"] != "ok" || nd["timesFailed"] != 0.0 {
		t.Fatalf("status after retried success: %v", nd)
	}
}

// TestDeadReceiverDoesNotBlock checks a receiver that never answers
// neither blocks writes nor delays another subscriber, and its failures
// show in its subscription's status.
func TestDeadReceiverDoesNotBlock(t *testing.T) {
	hang := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(dead.Close)
	t.Cleanup(func() { close(hang) })
	n := startedNode(t, nil, func(o *Options) {
		o.Notify.Queue, o.Notify.Workers, o.Notify.Retries = 64, 1, 1
	})
	live := newReceiver(t)
	deadID := subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": dead.URL}},
	})
	subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": live.srv.URL}},
	})
	const writes, burst = 200, 20
	for i := 0; i < writes; i += burst {
		for j := i; j < i+burst; j++ {
			wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
				"id": fmt.Sprintf("urn:ngsi-ld:Sensor:%d", j), "type": "Sensor", "v": map[string]any{"type": "Property", "value": j},
			}), http.StatusCreated)
		}
		// The live receiver gets every change of the burst while the dead
		// one holds its worker.
		seen := map[string]bool{}
		data, _ := live.entities(t, burst)
		for _, d := range data {
			seen[d["id"].(string)] = true
		}
		if len(seen) != burst {
			t.Fatalf("live receiver got %d distinct entities of a burst of %d", len(seen), burst)
		}
	}
	// The dead receiver's worker (1) and queue (64) hold at most 65
	// notifications; the rest were dropped as failures, without waiting
	// (failed, and not sent).
	waitStatus(t, n, deadID, func(nd map[string]any) bool {
		f, _ := nd["timesFailed"].(float64)
		sent, _ := nd["timesSent"].(float64)
		return f > 0 && sent < f && sent <= 65 && nd["status"] == "failed" && nd["lastFailure"] != nil
	})
}

// TestSubscriptionCRUD covers create, retrieve, list, update (pausing
// stops notifications) and delete, and rejects bad bodies.
func TestSubscriptionCRUD(t *testing.T) {
	n := startedNode(t, nil, nil)
	rcv := newReceiver(t)
	id := subscribe(t, n, map[string]any{
		"id": "urn:ngsi-ld:Subscription:s1", "type": "Subscription", "subscriptionName": "hot",
		"entities":     []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL}},
	})
	if id != "urn:ngsi-ld:Subscription:s1" {
		t.Fatalf("id %q", id)
	}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{
		"id": id, "type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL}},
	}), AlreadyExists)
	m := decode(t, n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil)).(map[string]any)
	if m["subscriptionName"] != "hot" || m["status"] != "active" || m["isActive"] != true {
		t.Fatalf("retrieved %v", m)
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/subscriptions", nil)); fmt.Sprint(got) != "["+id+"]" {
		t.Fatalf("list %v", got)
	}
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, map[string]any{"isActive": false}), http.StatusNoContent)
	m = decode(t, n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil)).(map[string]any)
	if m["status"] != "paused" || m["subscriptionName"] != "hot" {
		t.Fatalf("after pausing %v", m)
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:x", "type": "Sensor"}), http.StatusCreated)
	waitDispatched(t, n)
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, map[string]any{"isActive": true}), http.StatusNoContent)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:y", "type": "Sensor"}), http.StatusCreated)
	if got := rcv.next(t).Data[0]["id"]; got != "urn:ngsi-ld:Sensor:y" {
		t.Fatalf("first notification after resuming is for %v, want Sensor:y (x was written while paused)", got)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/subscriptions/"+id, nil), http.StatusNoContent)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil), ResourceNotFound)
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/subscriptions/"+id, nil), ResourceNotFound)
	wantProblem(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, map[string]any{"isActive": true}), ResourceNotFound)

	ep := map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL}}
	sel := []any{map[string]any{"type": "Sensor"}}
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"wrong type", map[string]any{"type": "Sub", "entities": sel, "notification": ep}},
		{"nothing to watch", map[string]any{"type": "Subscription", "notification": ep}},
		{"empty selector", map[string]any{"type": "Subscription", "entities": []any{map[string]any{}}, "notification": ep}},
		{"bad idPattern", map[string]any{"type": "Subscription", "entities": []any{map[string]any{"idPattern": "("}}, "notification": ep}},
		{"bad q", map[string]any{"type": "Subscription", "entities": sel, "q": "temperature>>", "notification": ep}},
		{"bad geoQ", map[string]any{"type": "Subscription", "entities": sel, "geoQ": map[string]any{"georel": "near", "geometry": "Point", "coordinates": "[1]"}, "notification": ep}},
		{"no endpoint", map[string]any{"type": "Subscription", "entities": sel, "notification": map[string]any{}}},
		{"ftp endpoint", map[string]any{"type": "Subscription", "entities": sel, "notification": map[string]any{"endpoint": map[string]any{"uri": "ftp://x/"}}}},
		{"bad accept", map[string]any{"type": "Subscription", "entities": sel, "notification": map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL, "accept": "text/csv"}}}},
		{"bad format", map[string]any{"type": "Subscription", "entities": sel, "notification": map[string]any{"format": "xml", "endpoint": map[string]any{"uri": rcv.srv.URL}}}},
		{"expired", map[string]any{"type": "Subscription", "entities": sel, "expiresAt": "2000-01-01T00:00:00Z", "notification": ep}},
		{"bad expiresAt", map[string]any{"type": "Subscription", "entities": sel, "expiresAt": "soon", "notification": ep}},
		{"interval with watched", map[string]any{"type": "Subscription", "entities": sel, "timeInterval": 5, "watchedAttributes": []any{"a"}, "notification": ep}},
		{"negative throttling", map[string]any{"type": "Subscription", "entities": sel, "throttling": -1, "notification": ep}},
		{"wrong member type", map[string]any{"type": "Subscription", "entities": "Sensor", "notification": ep}},
		{"empty entities", map[string]any{"type": "Subscription", "entities": []any{}, "watchedAttributes": []any{"a"}, "notification": ep}},
		{"empty watchedAttributes", map[string]any{"type": "Subscription", "entities": sel, "watchedAttributes": []any{}, "notification": ep}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, n.do("POST", "/ngsi-ld/v1/subscriptions", tc.body), BadRequestData)
		})
	}
}

// TestPeriodicSubscription checks a timeInterval subscription sends the
// entities it selects without any change.
func TestPeriodicSubscription(t *testing.T) {
	n := startedNode(t, nil, nil)
	rcv := newReceiver(t)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": "urn:ngsi-ld:Sensor:p", "type": "Sensor", "temperature": map[string]any{"type": "Property", "value": 7},
	}), http.StatusCreated)
	subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}}, "timeInterval": 60,
		"notification": map[string]any{"format": "concise", "endpoint": map[string]any{"uri": rcv.srv.URL}},
	})
	nt := rcv.next(t)
	if len(nt.Data) != 1 || nt.Data[0]["temperature"] != 7.0 {
		t.Fatalf("periodic notification %+v", nt)
	}
}

// TestSubscriptionsSurviveRestart checks subscriptions, their status and
// the delivery cursor are kept: a change made while the node was down is
// notified after it restarts.
func TestSubscriptionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	rcv := newReceiver(t)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := startedNode(t, db, nil)
	subID := subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL}},
	})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor"}), http.StatusCreated)
	rcv.next(t)
	waitStatus(t, n, subID, func(nd map[string]any) bool { return nd["timesSent"] == 1.0 })
	if err := n.svc.Close(); err != nil {
		t.Fatal(err)
	}

	// Written with the service running but not started: as if delivery
	// was down when the change happened.
	n = newTestNodeOn(t, db, nil)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:2", "type": "Sensor"}), http.StatusCreated)
	if err := n.svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n = startedNode(t, db, nil)
	if got := rcv.next(t).Data[0]["id"]; got != "urn:ngsi-ld:Sensor:2" {
		t.Fatalf("after restart notified %v, want the change made while down", got)
	}
	waitStatus(t, n, subID, func(nd map[string]any) bool { return nd["timesSent"] == 2.0 })
}

// TestGeoJSONNotifications checks a subscription whose endpoint accepts
// application/geo+json (clause 5.2.15): each notification is sent as
// application/geo+json with data as a FeatureCollection, each entity a
// Feature with the location as its geometry and the rest as properties
// (keyValues here), and a deleted entity as a Feature without geometry.
func TestGeoJSONNotifications(t *testing.T) {
	type delivery struct {
		ct   string
		body map[string]any
	}
	got := make(chan delivery, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("notification is not JSON: %v: %s", err, body)
		}
		got <- delivery{r.Header.Get("Content-Type"), m}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	n := startedNode(t, nil, nil)
	subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Bench"}},
		"notificationTrigger": []any{"entityCreated", "entityDeleted"},
		"notification":        map[string]any{"format": "keyValues", "endpoint": map[string]any{"uri": srv.URL, "accept": "application/geo+json"}}})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:g1", "type": "Bench",
		"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [10.2, 56.15]}},
		"seats": {"type": "Property", "value": 4}}`), http.StatusCreated)
	next := func() delivery {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no notification within 10s")
			return delivery{}
		}
	}
	d := next()
	if d.ct != "application/geo+json" {
		t.Errorf("Content-Type %q, want application/geo+json", d.ct)
	}
	fc, _ := d.body["data"].(map[string]any)
	feats, _ := fc["features"].([]any)
	if d.body["type"] != "Notification" || fc["type"] != "FeatureCollection" || len(feats) != 1 {
		t.Fatalf("notification %v, want data as a FeatureCollection of one", d.body)
	}
	f := feats[0].(map[string]any)
	want := map[string]any{"id": "urn:x:g1", "type": "Feature",
		"geometry":   map[string]any{"type": "Point", "coordinates": []any{10.2, 56.15}},
		"properties": map[string]any{"type": "Bench", "seats": 4.0, "location": map[string]any{"type": "Point", "coordinates": []any{10.2, 56.15}}}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("feature %v\nwant %v", f, want)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:x:g1", nil), http.StatusNoContent)
	d = next()
	fc, _ = d.body["data"].(map[string]any)
	feats, _ = fc["features"].([]any)
	if len(feats) != 1 || feats[0].(map[string]any)["geometry"] != nil || feats[0].(map[string]any)["id"] != "urn:x:g1" {
		t.Errorf("deletion notified as %v, want one Feature without geometry", d.body)
	}
}

// TestSubscriptionScopeQAndLang checks a subscription's scopeQ (clause
// 4.18: only entities in a matching scope notify) and lang (clause 4.15:
// a LanguageProperty notified as a Property in that language), which were
// dropped without a word.
func TestSubscriptionScopeQAndLang(t *testing.T) {
	r := newReceiver(t)
	n := startedNode(t, nil, nil)
	id := subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Sign"}},
		"scopeQ": "/Madrid", "lang": "de",
		"notification": map[string]any{"endpoint": map[string]any{"uri": r.srv.URL}}})
	stored := decode(t, n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil)).(map[string]any)
	if stored["scopeQ"] != "/Madrid" || stored["lang"] != "de" {
		t.Errorf("stored subscription %v, want its scopeQ and lang", stored)
	}
	label := `"label": {"type": "LanguageProperty", "languageMap": {"en": "Stop", "de": "Halt"}}`
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:berlin", "type": "Sign", "scope": "/Berlin", `+label+`}`), http.StatusCreated)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:madrid", "type": "Sign", "scope": "/Madrid", `+label+`}`), http.StatusCreated)
	got, _ := r.entities(t, 1)
	if got[0]["id"] != "urn:x:madrid" {
		t.Fatalf("notified %v, want only the entity in /Madrid", got[0]["id"])
	}
	if l, _ := got[0]["label"].(map[string]any); l["type"] != "Property" || l["value"] != "Halt" || l["lang"] != "de" {
		t.Errorf("label notified as %v, want the Property in German", got[0]["label"])
	}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Sign"}},
		"scopeQ": "Madrid(", "notification": map[string]any{"endpoint": map[string]any{"uri": r.srv.URL}}}), BadRequestData)
}

// TestSubscriptionPathAndPatchChecks checks what a PATCH or a path may not
// do: an id that is not a URI is BadRequestData (not "not found"), an
// expiresAt in the past or an empty watchedAttributes is refused as on
// create, and an endpoint that is
// not http(s) is refused for its scheme before any name is looked up.
func TestSubscriptionPathAndPatchChecks(t *testing.T) {
	r := newReceiver(t)
	n := startedNode(t, nil, nil)
	id := subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Sign"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": r.srv.URL}}})
	for _, m := range []string{"GET", "DELETE"} {
		wantProblem(t, n.do(m, "/ngsi-ld/v1/subscriptions/nope", nil), BadRequestData)
	}
	wantProblem(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/nope", `{}`), BadRequestData)
	wantProblem(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, `{"expiresAt": "2020-01-01T00:00:00Z"}`), BadRequestData)
	wantProblem(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, `{"watchedAttributes": []}`), BadRequestData)
	rec := n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, `{"notification": {"endpoint": {"uri": "ftp://x"}}}`)
	wantProblem(t, rec, BadRequestData)
	if !strings.Contains(rec.Body.String(), "http or https") {
		t.Errorf("ftp endpoint refused with %s, want the scheme named", rec.Body.String())
	}
	stored := decode(t, n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil)).(map[string]any)
	if stored["expiresAt"] != nil || stored["status"] != "active" {
		t.Errorf("refused PATCHes changed the subscription: %v", stored)
	}
}

// TestSubscriptionListKeepsEachContext checks that GET /subscriptions as
// application/ld+json gives each subscription the @context it was created
// with: its names are kept as written, and under the request's context a
// JSON-LD reader would take them for other IRIs.
func TestSubscriptionListKeepsEachContext(t *testing.T) {
	n := newTestNode(t, nil)
	own := []any{map[string]any{"Room": "https://example.org/Room"}, CoreContextURL}
	body := map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Room"}},
		"notification": map[string]any{"endpoint": map[string]any{"uri": "http://127.0.0.1:9/n"}}, "@context": own}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/subscriptions", body, ldJSON()...), http.StatusCreated)
	rec := n.do("GET", "/ngsi-ld/v1/subscriptions", nil, "Accept", "application/ld+json")
	wantStatus(t, rec, http.StatusOK)
	list := decode(t, rec).([]any)
	if len(list) != 1 || !reflect.DeepEqual(list[0].(map[string]any)["@context"], own) {
		t.Errorf("listed %v, want the subscription with its own @context %v", list, own)
	}
}

// TestSubscriptionPatchUsesItsContext checks that a PATCH's names are
// read with the PATCH's own @context: watchedAttributes and q patched
// under a context that maps humidity elsewhere watch that IRI, not the
// subscription's humidity.
func TestSubscriptionPatchUsesItsContext(t *testing.T) {
	r := newReceiver(t)
	n := startedNode(t, nil, nil)
	id := subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Room"}},
		"watchedAttributes": []any{"temperature"}, "notification": map[string]any{"endpoint": map[string]any{"uri": r.srv.URL}}})
	other := []any{map[string]any{"humidity": "https://other.org/humidity"}, CoreContextURL}
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/subscriptions/"+id, map[string]any{"watchedAttributes": []any{"humidity"},
		"q": "humidity>50", "@context": other}, ldJSON()...), http.StatusNoContent)
	// The core context's humidity does not fire it; the other one does.
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:r1", "type": "Room", "humidity": {"type": "Property", "value": 60}}`), http.StatusCreated)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:r2", "type": "Room", "https://other.org/humidity": {"type": "Property", "value": 60}}`), http.StatusCreated)
	got, _ := r.entities(t, 1)
	if got[0]["id"] != "urn:x:r2" {
		t.Errorf("notified %v, want only the entity with the other humidity", got[0]["id"])
	}
}

// TestImplicitContextForNotifications: a subscription whose @context is an
// array gets an ImplicitlyCreated context holding it (clause 5.13.1; the
// ETSI suite's 051_06), named in its jsonldContext, and its application/json
// notifications link to it: their names are compacted with the whole
// @context, which the core context (linked before) does not give back.
func TestImplicitContextForNotifications(t *testing.T) {
	links := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		links <- r.Header.Get("Link")
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	n := startedNode(t, nil, nil)
	compound := []any{envContext, map[string]any{"Bench": "https://example.org/vocab/Bench", "seats": "https://example.org/vocab/seats"}}
	sub := func(id string) string {
		t.Helper()
		rec := n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{"id": id, "type": "Subscription",
			"entities": []any{map[string]any{"type": "Bench"}}, "@context": compound,
			"notification": map[string]any{"endpoint": map[string]any{"uri": srv.URL, "accept": "application/json"}}},
			"Content-Type", "application/ld+json")
		wantStatus(t, rec, http.StatusCreated)
		got := decode(t, n.do("GET", "/ngsi-ld/v1/subscriptions/"+id, nil)).(map[string]any)
		u, _ := got["jsonldContext"].(string)
		return u
	}
	u := sub("urn:ngsi-ld:Subscription:compound-1")
	local, ok := strings.CutPrefix(u, n.svc.hostedPrefix())
	if !ok || local == "" {
		t.Fatalf("jsonldContext %q, want a context this node hosts", u)
	}
	// Retrieved as application/json, the subscription links it too.
	if l := n.do("GET", "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:compound-1", nil).Header().Get("Link"); !strings.Contains(l, "<"+u+">") {
		t.Errorf("retrieved subscription's Link %q, want the implicit context %s", l, u)
	}
	// An empty id is refused, not replaced by one the node chooses.
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{"id": "", "type": "Subscription",
		"entities": []any{map[string]any{"type": "T"}}, "notification": map[string]any{"endpoint": map[string]any{"uri": srv.URL}}}), BadRequestData)
	if again := sub("urn:ngsi-ld:Subscription:compound-2"); again != u {
		t.Errorf("a second subscription with the same @context got %s, want the same %s", again, u)
	}
	if got := decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+local, nil)).(map[string]any); !reflect.DeepEqual(got["@context"], compound) {
		t.Errorf("the implicit context serves %v, want the subscription's @context %v", got["@context"], compound)
	}
	listed := decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts?kind=ImplicitlyCreated&details=true", nil)).([]any)
	if len(listed) != 1 || listed[0].(map[string]any)["URL"] != u {
		t.Errorf("ImplicitlyCreated contexts %v, want the one %s", listed, u)
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:ngsi-ld:Bench:c1", "type": "Bench",
		"seats": {"type": "Property", "value": 4}, "@context": `+string(mustJSON(t, compound))+`}`, "Content-Type", "application/ld+json"), http.StatusCreated)
	select {
	case l := <-links:
		if !strings.Contains(l, "<"+u+">") {
			t.Errorf("notification Link %q, want the implicit context %s", l, u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
	// A subscription naming its own jsonldContext keeps it; one that is
	// no URL is refused.
	rec := n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{"type": "Subscription", "jsonldContext": "not a url",
		"entities": []any{map[string]any{"type": "T"}}, "notification": map[string]any{"endpoint": map[string]any{"uri": srv.URL}}})
	wantProblem(t, rec, BadRequestData)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/"+local, nil), http.StatusNoContent)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSimplifiedNotificationFormat: "simplified", keyValues' name since
// NGSI-LD 1.6, is accepted as a notification format and gives keyValues.
func TestSimplifiedNotificationFormat(t *testing.T) {
	got := make(chan map[string]any, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		got <- m
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	n := startedNode(t, nil, nil)
	subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Bench"}},
		"notification": map[string]any{"format": "simplified", "endpoint": map[string]any{"uri": srv.URL}}})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:s1", "type": "Bench", "seats": {"type": "Property", "value": 4}}`), http.StatusCreated)
	select {
	case m := <-got:
		data, _ := m["data"].([]any)
		if len(data) != 1 || data[0].(map[string]any)["seats"] != 4.0 {
			t.Errorf("notification %v, want the entity in keyValues form (seats: 4)", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
}
