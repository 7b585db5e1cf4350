package ngsild

import (
	"fmt"
	"net/http"
	"testing"
)

// TestClause5_2_12NotificationTrigger checks notificationTrigger and
// showChanges (NGSI-LD 1.8) through the HTTP API with a receiver on
// loopback: each subscription is told of exactly the kinds of change it
// asked for, deletions included, with previous values where asked.
func TestClause5_2_12NotificationTrigger(t *testing.T) {
	n := startedNode(t, nil, func(o *Options) { o.Notify.Workers = 1 })
	const id = "urn:ngsi-ld:Sensor:t1"
	type sub struct {
		name string
		body map[string]any
		rcv  *testReceiver
	}
	subs := []*sub{
		{name: "lifecycle", body: map[string]any{"notificationTrigger": []any{"entityCreated", "entityDeleted"},
			"notification": map[string]any{"format": "keyValues"}}},
		{name: "updated", body: map[string]any{"notificationTrigger": []any{"attributeUpdated"},
			"notification": map[string]any{"showChanges": true}}},
		{name: "attrDeleted", body: map[string]any{"notificationTrigger": []any{"attributeDeleted"}, "watchedAttributes": []any{"humidity"},
			"notification": map[string]any{"showChanges": true, "sysAttrs": true}}},
		{name: "default", body: map[string]any{"notification": map[string]any{"format": "concise"}}},
		{name: "deletedWithQ", body: map[string]any{"notificationTrigger": []any{"entityDeleted"}, "q": "temperature>100",
			"notification": map[string]any{}}},
	}
	for _, s := range subs {
		s.rcv = newReceiver(t)
		s.body["type"] = "Subscription"
		s.body["entities"] = []any{map[string]any{"type": "Sensor"}}
		s.body["notification"].(map[string]any)["endpoint"] = map[string]any{"uri": s.rcv.srv.URL}
		subscribe(t, n, s.body)
	}
	// got drains what each receiver was sent after a step, as
	// "name: entity summary" lines.
	summary := func(d map[string]any) string {
		out := fmt.Sprint(d["id"])
		for _, k := range []string{"temperature", "humidity"} {
			v, ok := d[k]
			if !ok {
				continue
			}
			if m, isMap := v.(map[string]any); isMap {
				for _, ts := range []string{"createdAt", "modifiedAt", "deletedAt"} {
					if _, has := m[ts]; has {
						m[ts] = "X" // the instant varies; its presence is checked
					}
				}
			}
			out += fmt.Sprintf(" %s=%v", k, v)
		}
		return out
	}
	step := func(name string, do func(), want map[string][]string) {
		t.Helper()
		do()
		waitDispatched(t, n)
		for _, s := range subs {
			w := want[s.name]
			data, _ := s.rcv.entities(t, len(w))
			var got []string
			for _, d := range data {
				got = append(got, summary(d))
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Fatalf("%s: subscription %s notified %q, want %q", name, s.name, got, w)
			}
		}
	}
	step("create", func() {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
			"id": id, "type": "Sensor",
			"temperature": map[string]any{"type": "Property", "value": 20},
			"humidity":    map[string]any{"type": "Property", "value": 50},
		}), http.StatusCreated)
	}, map[string][]string{
		"lifecycle": {id + " temperature=20 humidity=50"},
		"default":   {id + " temperature=20 humidity=50"},
	})
	step("update", func() { setTemp(t, n, id, map[string]any{"temperature": 25}) }, map[string][]string{
		"updated": {id + " temperature=map[previousValue:20 type:Property value:25] humidity=map[type:Property value:50]"},
		"default": {id + " temperature=25 humidity=50"},
	})
	step("delete attribute", func() {
		wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id+"/attrs/humidity", nil), http.StatusNoContent)
	}, map[string][]string{
		"attrDeleted": {id + " temperature=map[createdAt:X modifiedAt:X type:Property value:25] humidity=map[deletedAt:X previousValue:50 type:Property value:urn:ngsi-ld:null]"},
	})
	step("delete entity", func() {
		wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+id, nil), http.StatusNoContent)
	}, map[string][]string{
		"lifecycle": {id},
	})
	// deletedWithQ saw nothing so far: the entity was never hotter than
	// 100. Its q is tested on the state a deletion removed.
	const hot = "urn:ngsi-ld:Sensor:t2"
	step("create hot", func() {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
			"id": hot, "type": "Sensor", "temperature": map[string]any{"type": "Property", "value": 200},
		}), http.StatusCreated)
	}, map[string][]string{
		"lifecycle": {hot + " temperature=200"},
		"default":   {hot + " temperature=200"},
	})
	step("delete hot", func() {
		wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+hot, nil), http.StatusNoContent)
	}, map[string][]string{
		"lifecycle":    {hot},
		"deletedWithQ": {hot},
	})
}

// TestNotificationTriggerRejected checks bad notificationTrigger and
// showChanges values are refused with BadRequestData.
func TestNotificationTriggerRejected(t *testing.T) {
	n := startedNode(t, nil, nil)
	rcv := newReceiver(t)
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"unknown trigger", map[string]any{"notificationTrigger": []any{"entityRenamed"}, "notification": map[string]any{}}},
		{"trigger not a list", map[string]any{"notificationTrigger": "entityCreated", "notification": map[string]any{}}},
		{"showChanges with keyValues", map[string]any{"notification": map[string]any{"showChanges": true, "format": "keyValues"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["type"] = "Subscription"
			tc.body["entities"] = []any{map[string]any{"type": "Sensor"}}
			tc.body["notification"].(map[string]any)["endpoint"] = map[string]any{"uri": rcv.srv.URL}
			wantProblem(t, n.do("POST", "/ngsi-ld/v1/subscriptions", tc.body), BadRequestData)
		})
	}
}

// TestDeletionReplayedAfterRestart checks an entity deleted while
// notification delivery was down is still notified (without the state it
// had, which only the running dispatcher knows) once it restarts.
func TestDeletionReplayedAfterRestart(t *testing.T) {
	db := openDisk(t)
	rcv := newReceiver(t)
	n := startedNode(t, db, nil)
	subscribe(t, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
		"notificationTrigger": []any{"entityDeleted"},
		"notification":        map[string]any{"endpoint": map[string]any{"uri": rcv.srv.URL}},
	})
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:ngsi-ld:Sensor:d", "type": "Sensor"}), http.StatusCreated)
	waitDispatched(t, n)
	if err := n.svc.Close(); err != nil {
		t.Fatal(err)
	}
	n = newTestNodeOn(t, db, nil) // running, delivery not started
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:d", nil), http.StatusNoContent)
	if err := n.svc.Close(); err != nil {
		t.Fatal(err)
	}
	n = startedNode(t, db, nil)
	data, _ := rcv.entities(t, 1)
	if data[0]["id"] != "urn:ngsi-ld:Sensor:d" || data[0]["type"] != "Sensor" || len(data[0]) != 2 {
		t.Fatalf("deletion notified after restart as %v, want id and type", data[0])
	}
}
