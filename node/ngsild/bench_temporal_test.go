package ngsild

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
)

// BenchmarkNotifyLatency measures the time from an entity write to the
// notification's arrival at a receiver on loopback (target: p50 under
// 5 ms), on a disk store with synced writes: "write" from the request's
// start (including the fsync), "ack" from the moment the write was
// acknowledged.
func BenchmarkNotifyLatency(b *testing.B) {
	n := newTestNodeOn(b, openDisk(b), nil)
	if err := n.svc.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	arrived := make(chan time.Time, 1)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- time.Now()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(rcv.Close)
	wantStatus(b, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": sensorID, "type": "Sensor", "temperature": map[string]any{"type": "Property", "value": 0},
	}), http.StatusCreated)
	subscribe(b, n, map[string]any{
		"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}}, "watchedAttributes": []any{"temperature"},
		"notification": map[string]any{"endpoint": map[string]any{"uri": rcv.URL}},
	})
	fromWrite := make([]time.Duration, 0, b.N)
	fromAck := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		rec := n.do("PATCH", "/ngsi-ld/v1/entities/"+sensorID+"/attrs", map[string]any{
			"temperature": map[string]any{"type": "Property", "value": i},
		})
		t1 := time.Now()
		if rec.Code != http.StatusNoContent {
			b.Fatalf("update: %d %s", rec.Code, rec.Body.String())
		}
		select {
		case at := <-arrived:
			fromWrite, fromAck = append(fromWrite, at.Sub(t0)), append(fromAck, max(0, at.Sub(t1)))
		case <-time.After(10 * time.Second):
			b.Fatal("no notification")
		}
	}
	b.StopTimer()
	reportPercentiles(b, "write", fromWrite)
	reportPercentiles(b, "ack", fromAck)
}

func reportPercentiles(b *testing.B, name string, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, name+"-p95-ms")
}

// BenchmarkIngestSubscriptions measures batch upsert throughput (1,000
// AirQualityObserved entities per request, disk store, synced) with no
// subscription and with 100 active ones (target: within 20%). The 100
// watch no2 with q no2==0 ... no2==99, so about half the written entities
// fire one of them and those notifications are delivered to a receiver on
// loopback while the writes go on. "quiet" has the 100 subscriptions
// match nothing (q no2==1000 ...), which separates matching from delivery
// (the receiver shares the machine's cores in this benchmark); "dead"
// sends to a receiver that never answers.
func BenchmarkIngestSubscriptions(b *testing.B) {
	for _, tc := range []struct {
		name      string
		subs, off int
		dead      bool
	}{{"subs-0", 0, 0, false}, {"subs-100", 100, 0, false}, {"subs-100-quiet", 100, 1000, false}, {"subs-100-dead", 100, 0, true}} {
		subs := tc.subs
		b.Run(tc.name, func(b *testing.B) {
			n := newTestNodeOn(b, openDisk(b), nil)
			if err := n.svc.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			hang := make(chan struct{})
			var posts, notified atomic.Int64
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.dead {
					select {
					case <-hang:
					case <-r.Context().Done():
					}
					return
				}
				var nt struct {
					Data []json.RawMessage `json:"data"`
				}
				if err := json.NewDecoder(r.Body).Decode(&nt); err != nil {
					b.Errorf("notification: %v", err)
				}
				posts.Add(1)
				notified.Add(int64(len(nt.Data)))
				w.WriteHeader(http.StatusNoContent)
			}))
			b.Cleanup(rcv.Close)
			b.Cleanup(func() { close(hang) })
			for i := 0; i < subs; i++ {
				wantStatus(b, n.do("POST", "/ngsi-ld/v1/subscriptions", map[string]any{
					"type": "Subscription", "entities": []any{map[string]any{"type": "AirQualityObserved"}},
					"watchedAttributes": []any{"no2"}, "q": fmt.Sprintf("no2==%d", tc.off+i),
					"notification": map[string]any{"format": "keyValues", "attributes": []any{"no2"}, "endpoint": map[string]any{"uri": rcv.URL}},
				}, link(envContext)...), http.StatusCreated)
			}
			const per = 1000
			bodies := batchBodies(b, 20*per, per, 7)
			// Every upsert of an entity whose no2 one of the subscriptions
			// asks for is notified (a replace updates no2).
			fires := make([]int64, len(bodies))
			for i, body := range bodies {
				var list []struct {
					NO2 struct{ Value float64 } `json:"no2"`
				}
				if err := json.Unmarshal(body, &list); err != nil {
					b.Fatal(err)
				}
				for _, e := range list {
					if v := e.NO2.Value; subs > 0 && v == math.Trunc(v) && v >= float64(tc.off) && v < float64(tc.off+subs) {
						fires[i]++
					}
				}
			}
			var want int64
			b.ResetTimer()
			start, cpu0 := time.Now(), osstat.ProcessCPU()
			for i := 0; i < b.N; i++ {
				rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", bodies[i%len(bodies)], link(envContext)...)
				if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
					b.Fatalf("upsert: %d %s", rec.Code, rec.Body.String())
				}
				want += fires[i%len(bodies)]
			}
			// The clock runs until every notification has arrived, so
			// delivery is measured, not left behind; drain-ms is how long
			// that took after the last write was acknowledged.
			acked := time.Now()
			if !tc.dead {
				for deadline := time.Now().Add(30 * time.Second); notified.Load() < want; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d notified entities arrived", notified.Load(), want)
					}
				}
			}
			drained := time.Since(acked)
			el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
			if !tc.dead && notified.Load() != want {
				b.Fatalf("%d entities notified, want %d", notified.Load(), want)
			}
			b.ReportMetric(float64(b.N*per)/el.Seconds(), "entities/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*per), "cpu-µs/entity")
			b.ReportMetric(float64(notified.Load())/float64(b.N), "notified/op")
			b.ReportMetric(float64(posts.Load())/float64(b.N), "posts/op")
			b.ReportMetric(float64(drained.Microseconds())/1000, "drain-ms")
		})
	}
}

// BenchmarkTemporalLastN measures GET /temporal/entities/{id}?lastN=100 on
// an attribute with 1,000,000 instances (target: under 20 ms). The history
// is written with a store batch directly (the keys the write path makes),
// which takes a few seconds; the benchmark only runs with -bench.
func BenchmarkTemporalLastN(b *testing.B) {
	const instances = 1_000_000
	n := newTestNodeOn(b, openDisk(b), nil)
	wantStatus(b, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": sensorID, "type": "Sensor", "temperature": map[string]any{"type": "Property", "value": 0},
	}), http.StatusCreated)
	attr := coreVocab + "temperature"
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // after the creating write's instance
	batch := n.db.NewBatch()
	for i := 0; i < instances; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		a := &Attribute{Type: Property, Value: float64(i % 1000), ObservedAt: at.Format(time.RFC3339), CreatedAt: at, ModifiedAt: at}
		recs, mark, err := n.svc.historyOf(nil, nil, &Entity{ID: sensorID, ModifiedAt: at, Attrs: map[string][]*Attribute{attr: {a}}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := batch.Set(binary.BigEndian.AppendUint64(recs[0].key, uint64(i+10)), recs[0].val); err != nil {
			b.Fatal(err)
		}
		if mark != nil { // none: the entity's state lists the attribute
			if err := batch.Set(mark.key, mark.val); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := batch.Flush(); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := time.Now()
		rec := n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?attrs=temperature&lastN=100", nil)
		lat = append(lat, time.Since(s))
		if rec.Code != http.StatusOK {
			b.Fatalf("lastN: %d %s", rec.Code, rec.Body.String())
		}
		if i == 0 {
			m := decode(b, rec).(map[string]any)
			list := m["temperature"].([]any)
			last := list[len(list)-1].(map[string]any)
			if len(list) != 100 || last["value"] != float64((instances-1)%1000) {
				b.Fatalf("lastN=100 gave %d instances, newest %v", len(list), last["value"])
			}
		}
	}
	b.StopTimer()
	reportPercentiles(b, "lastN100", lat)
}
