package ngsild

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

const sensorID = "urn:ngsi-ld:Sensor:s1"

var histT0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func obs(i int) string { return histT0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }

// writeReadings creates the sensor with temperature 0 observed at minute
// 0, then updates it n times: temperature i observed at minute i.
// temperatureInstance returns the instanceId of the sensor's i-th
// temperature instance, in the order the temporal representation lists
// them.
func temperatureInstance(t testing.TB, n *testNode, i int) string {
	t.Helper()
	m := decode(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?attrs=temperature", nil)).(map[string]any)
	return m["temperature"].([]any)[i].(map[string]any)["instanceId"].(string)
}

func writeReadings(t testing.TB, n *testNode, count int) {
	t.Helper()
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": sensorID, "type": "Sensor",
		"temperature": map[string]any{"type": "Property", "value": 0, "observedAt": obs(0)},
		"name":        map[string]any{"type": "Property", "value": "roof"},
	}), http.StatusCreated)
	for i := 1; i <= count; i++ {
		wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+sensorID+"/attrs", map[string]any{
			"temperature": map[string]any{"type": "Property", "value": i, "observedAt": obs(i)},
		}), http.StatusNoContent)
	}
}

// temporalValues returns the values of one attribute of a temporal
// representation, in the order given.
func temporalValues(t testing.TB, m map[string]any, attr string) []float64 {
	t.Helper()
	list, _ := m[attr].([]any)
	out := []float64{}
	for _, x := range list {
		inst, _ := x.(map[string]any)
		v, ok := inst["value"].(float64)
		if !ok {
			t.Fatalf("instance without a number value: %v", inst)
		}
		if id, _ := inst["instanceId"].(string); id == "" {
			t.Fatalf("instance without instanceId: %v", inst)
		}
		out = append(out, v)
	}
	return out
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestClause4_11_Timerel checks an entity's history after N updates comes
// back oldest first, whole and under each timerel, lastN and timeproperty.
func TestClause4_11_Timerel(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 20)
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID + "?attrs=temperature"
	for _, tc := range []struct {
		name, query string
		want        []float64
	}{
		{"all", "", seq(0, 20)},
		{"before", "&timerel=before&timeAt=" + obs(5), seq(0, 4)},
		{"after", "&timerel=after&timeAt=" + obs(15), seq(16, 20)},
		{"between", "&timerel=between&timeAt=" + obs(3) + "&endTimeAt=" + obs(7), seq(3, 6)},
		{"lastN", "&lastN=3", seq(18, 20)},
		{"between+lastN", "&timerel=between&timeAt=" + obs(3) + "&endTimeAt=" + obs(7) + "&lastN=2", seq(5, 6)},
		{"before first", "&timerel=before&timeAt=" + obs(0), []float64{}},
		{"modifiedAt", "&timeproperty=modifiedAt&timerel=after&timeAt=2000-01-01T00:00:00Z&lastN=4", seq(17, 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := n.do("GET", base+tc.query, nil)
			wantStatus(t, rec, http.StatusOK)
			m := decode(t, rec).(map[string]any)
			if m["id"] != sensorID || m["type"] != "Sensor" {
				t.Fatalf("entity head %v %v", m["id"], m["type"])
			}
			if got := temporalValues(t, m, "temperature"); !equalFloats(got, tc.want) {
				t.Fatalf("GET %s = %v, want %v", tc.query, got, tc.want)
			}
			if _, ok := m["name"]; ok {
				t.Fatalf("attrs=temperature returned name too")
			}
		})
	}
}

// TestTemporalValues checks the simplified temporal representation
// (clause 4.5.9): [value, observedAt] pairs.
func TestTemporalValues(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 2)
	rec := n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?options=temporalValues", nil)
	wantStatus(t, rec, http.StatusOK)
	m := decode(t, rec).(map[string]any)
	temp := m["temperature"].(map[string]any)
	want := fmt.Sprint([]any{[]any{0.0, "2026-03-01T00:00:00.000000Z"}, []any{1.0, "2026-03-01T00:01:00.000000Z"}, []any{2.0, "2026-03-01T00:02:00.000000Z"}})
	if temp["type"] != "Property" || fmt.Sprint(temp["values"]) != want {
		t.Fatalf("temporalValues = %v, want Property with %s", temp, want)
	}
	if name := m["name"].(map[string]any); fmt.Sprint(name["values"]) != fmt.Sprint([]any{[]any{"roof", name["values"].([]any)[0].([]any)[1]}}) {
		t.Fatalf("name history %v", name)
	}
}

// TestTemporalQueryEntities checks GET /temporal/entities selects entities
// by type and q (on their current state) and returns each one's history.
func TestTemporalQueryEntities(t *testing.T) {
	n := newTestNode(t, nil)
	for i, v := range []int{10, 30, 50} {
		id := fmt.Sprintf("urn:ngsi-ld:Sensor:q%d", i)
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
			"id": id, "type": "Sensor",
			"level": map[string]any{"type": "Property", "value": v - 5, "observedAt": obs(0)},
		}), http.StatusCreated)
		wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/"+id+"/attrs", map[string]any{
			"level": map[string]any{"type": "Property", "value": v, "observedAt": obs(1)},
		}), http.StatusNoContent)
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": "urn:ngsi-ld:Pump:p", "type": "Pump", "level": map[string]any{"type": "Property", "value": 99},
	}), http.StatusCreated)
	rec := n.do("GET", "/ngsi-ld/v1/temporal/entities?type=Sensor&q="+url.QueryEscape("level>20"), nil)
	wantStatus(t, rec, http.StatusOK)
	list := decode(t, rec).([]any)
	got := map[string][]float64{}
	for _, x := range list {
		m := x.(map[string]any)
		got[m["id"].(string)] = temporalValues(t, m, "level")
	}
	want := map[string][]float64{"urn:ngsi-ld:Sensor:q1": {25, 30}, "urn:ngsi-ld:Sensor:q2": {45, 50}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("temporal query = %v, want %v", got, want)
	}
}

// TestClause4_5_19_Aggregation checks aggregated history over a day of
// minute readings against a brute-force computation of every method, per
// hour and for the whole day.
func TestClause4_5_19_Aggregation(t *testing.T) {
	n := newTestNode(t, nil)
	const minutes = 24 * 60
	vals := make([]float64, minutes)
	insts := make([]any, minutes)
	for i := range vals {
		// Repeating values make distinctCount differ from totalCount.
		vals[i] = float64((i*37)%101) / 4
		insts[i] = map[string]any{"type": "Property", "value": vals[i], "observedAt": obs(i)}
	}
	rec := n.do("POST", "/ngsi-ld/v1/temporal/entities", map[string]any{"id": sensorID, "type": "Sensor", "temperature": insts})
	wantStatus(t, rec, http.StatusCreated)
	// The newest reading became the current value.
	e, err := n.svc.Entity(sensorID)
	if err != nil || e == nil {
		t.Fatal(e, err)
	}
	if v := e.Attrs[coreVocab+"temperature"][0].Value; v != vals[minutes-1] {
		t.Fatalf("current temperature %v, want the newest reading %v", v, vals[minutes-1])
	}

	brute := func(lo, hi int) map[string]float64 {
		seen := map[float64]bool{}
		sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
		for _, v := range vals[lo:hi] {
			seen[v] = true
			sum += v
			mn, mx = math.Min(mn, v), math.Max(mx, v)
		}
		mean, sumsq, dev := sum/float64(hi-lo), 0.0, 0.0
		for _, v := range vals[lo:hi] {
			sumsq += v * v
			dev += (v - mean) * (v - mean)
		}
		return map[string]float64{"totalCount": float64(hi - lo), "distinctCount": float64(len(seen)),
			"sum": sum, "avg": mean, "min": mn, "max": mx, "sumsq": sumsq, "stddev": math.Sqrt(dev / float64(hi-lo-1))}
	}
	methods := []string{"totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"}
	for _, tc := range []struct {
		name, period string
		buckets      int
	}{
		{"hourly", "PT1H", 24},
		{"quarter-daily", "PT6H", 4},
		{"daily", "P1D", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "?options=aggregatedValues&aggrMethods=" + strings.Join(methods, ",") + "&aggrPeriodDuration=" + tc.period +
				"&timerel=between&timeAt=" + obs(0) + "&endTimeAt=" + obs(minutes)
			rec := n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+q, nil)
			wantStatus(t, rec, http.StatusOK)
			agg := decode(t, rec).(map[string]any)["temperature"].(map[string]any)
			per := minutes / tc.buckets
			for _, m := range methods {
				list, _ := agg[m].([]any)
				if len(list) != tc.buckets {
					t.Fatalf("%s: %d periods, want %d", m, len(list), tc.buckets)
				}
				for b, x := range list {
					triple := x.([]any)
					want := brute(b*per, (b+1)*per)[m]
					if got := triple[0].(float64); math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
						t.Fatalf("%s period %d = %v, want %v", m, b, got, want)
					}
					if start := histT0.Add(time.Duration(b*per) * time.Minute).Format("2006-01-02T15:04:05.000000Z"); triple[1] != start {
						t.Fatalf("%s period %d starts %v, want %s", m, b, triple[1], start)
					}
				}
			}
		})
	}
}

// TestAggregationPeriodsAfter checks that with timerel=after the
// periods start at timeAt (an instance at timeAt is left out, as after
// says), so that each period holds the instances between the start and
// end it reports; and that options=aggregatedValues without aggrMethods
// is refused rather than answered with the plain temporal form.
func TestAggregationPeriodsAfter(t *testing.T) {
	n := newTestNode(t, nil)
	var insts []any
	for i := range 4 { // 10, 20, 30, 40 at 0, 60, 120 and 180 minutes
		insts = append(insts, map[string]any{"type": "Property", "value": float64(10 * (i + 1)), "observedAt": obs(60 * i)})
	}
	rec := n.do("POST", "/ngsi-ld/v1/temporal/entities", map[string]any{"id": sensorID, "type": "Sensor", "temperature": insts})
	wantStatus(t, rec, http.StatusCreated)
	q := "?options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=PT2H&timerel=after&timeAt=" + obs(0)
	rec = n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+q, nil)
	wantStatus(t, rec, http.StatusOK)
	got := decode(t, rec).(map[string]any)["temperature"].(map[string]any)["sum"]
	at := func(min int) string {
		return histT0.Add(time.Duration(min) * time.Minute).Format("2006-01-02T15:04:05.000000Z")
	}
	want := []any{[]any{20.0, at(0), at(120)}, []any{70.0, at(120), at(240)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sum per 2 hours after timeAt = %v, want %v", got, want)
	}

	rec = n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?options=aggregatedValues", nil)
	wantProblem(t, rec, BadRequestData)
	if !strings.Contains(rec.Body.String(), "aggrMethods") {
		t.Errorf("the error does not name aggrMethods: %s", rec.Body.String())
	}
}

// TestClause6_18_3_1_AddInstances checks POST /temporal/entities on an
// existing entity adds to its history (204) and moves the current value
// to the newest instance.
func TestClause6_18_3_1_AddInstances(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 2)
	rec := n.do("POST", "/ngsi-ld/v1/temporal/entities", map[string]any{"id": sensorID, "type": "Sensor", "temperature": []any{
		map[string]any{"type": "Property", "value": 50, "observedAt": obs(50)},
		map[string]any{"type": "Property", "value": 40, "observedAt": obs(40)},
	}})
	wantStatus(t, rec, http.StatusNoContent)
	m := decode(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{0, 1, 2, 40, 50}) {
		t.Fatalf("history after adding instances %v", got)
	}
	e := fetch(t, n, sensorID, "?options=keyValues")
	if e["temperature"] != 50.0 || e["name"] != "roof" {
		t.Fatalf("current state %v, want temperature 50 and name kept", e)
	}
}

// TestTemporalDeletes checks instance, attribute and entity history
// deletion (clauses 6.19.3.2, 6.21.3.1, 6.22.3.2).
func TestTemporalDeletes(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 3)
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID
	first := temperatureInstance(t, n, 1)
	wantStatus(t, n.do("DELETE", base+"/attrs/temperature/"+url.PathEscape(first), nil), http.StatusNoContent)
	wantProblem(t, n.do("DELETE", base+"/attrs/temperature/"+url.PathEscape(first), nil), ResourceNotFound)
	wantProblem(t, n.do("DELETE", base+"/attrs/temperature/not-an-instance", nil), BadRequestData)
	m := decode(t, n.do("GET", base+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{0, 2, 3}) {
		t.Fatalf("after deleting instance of value 1: %v", got)
	}
	wantStatus(t, n.do("DELETE", base+"/attrs/temperature", nil), http.StatusNoContent)
	m = decode(t, n.do("GET", base, nil)).(map[string]any)
	if _, ok := m["temperature"]; ok || m["name"] == nil {
		t.Fatalf("after deleting temperature history: %v", m)
	}
	wantStatus(t, n.do("DELETE", base, nil), http.StatusNoContent)
	m = decode(t, n.do("GET", base, nil)).(map[string]any)
	if len(m) != 2 {
		t.Fatalf("after deleting the history only id and type remain, got %v", m)
	}
	// A second delete finds no history to delete; once the entity is
	// gone too, there is no temporal representation at all.
	wantProblem(t, n.do("DELETE", base, nil), ResourceNotFound)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/"+sensorID, nil), http.StatusNoContent)
	wantProblem(t, n.do("GET", base, nil), ResourceNotFound)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Sensor:none", nil), ResourceNotFound)
}

// TestTemporalPatchInstance checks PATCH of one instance of an
// attribute's history (clause 5.6.14): the members given replace the
// instance's, which keeps its instanceId, place in time and other
// members; the entity's current value stays; an instance cannot move in
// time or to another dataset, and a patch that is refused changes nothing.
func TestTemporalPatchInstance(t *testing.T) {
	n := newTestNode(t, func(o *Options) { o.Now = fixedClock() })
	writeReadings(t, n, 3)
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID
	instances := func() []map[string]any {
		m := decode(t, n.do("GET", base+"?attrs=temperature&options=sysAttrs", nil)).(map[string]any)
		var out []map[string]any
		for _, x := range m["temperature"].([]any) {
			out = append(out, x.(map[string]any))
		}
		return out
	}
	orig := instances()
	id := orig[1]["instanceId"].(string)
	path := base + "/attrs/temperature/" + url.PathEscape(id)

	wantStatus(t, n.do("PATCH", path, map[string]any{"value": 10, "unitCode": "CEL"}), http.StatusNoContent)
	got := instances()
	for _, i := range []int{0, 2, 3} {
		if !reflect.DeepEqual(got[i], orig[i]) {
			t.Errorf("instance %d changed by patching instance 1: %v, was %v", i, got[i], orig[i])
		}
	}
	if got[1]["createdAt"] != orig[1]["createdAt"] || got[1]["modifiedAt"] == orig[1]["modifiedAt"] {
		t.Errorf("patched instance: createdAt %v modifiedAt %v, was %v %v; want createdAt kept and modifiedAt now",
			got[1]["createdAt"], got[1]["modifiedAt"], orig[1]["createdAt"], orig[1]["modifiedAt"])
	}
	if v := temporalValues(t, map[string]any{"temperature": toAny(got)}, "temperature"); !equalFloats(v, []float64{0, 10, 2, 3}) {
		t.Fatalf("history after the patch: %v", v)
	}
	p := got[1]
	if p["instanceId"] != id || p["unitCode"] != "CEL" || p["observedAt"] != histT0.Add(time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("patched instance %v: want the same instanceId, unitCode CEL and observedAt kept", p)
	}
	if e := fetch(t, n, sensorID, "?options=keyValues"); e["temperature"] != 3.0 {
		t.Errorf("current temperature %v after patching history, want 3", e["temperature"])
	}

	// The entity-fragment form, with a sub-attribute; members not named
	// stay.
	wantStatus(t, n.do("PATCH", path, map[string]any{"temperature": []any{map[string]any{"type": "Property", "value": 11,
		"accuracy": map[string]any{"type": "Property", "value": 0.5}}}}), http.StatusNoContent)
	p = instances()[1]
	if acc, _ := p["accuracy"].(map[string]any); acc == nil || acc["value"] != 0.5 {
		t.Errorf("patched instance lacks the sub-attribute given: %v", p)
	}
	if p["value"] != 11.0 || p["unitCode"] != "CEL" || p["createdAt"] != orig[1]["createdAt"] {
		t.Errorf("after the fragment patch: %v", p)
	}
	wantStatus(t, n.do("PATCH", path, map[string]any{"value": 12}), http.StatusNoContent)
	if p := instances()[1]; p["value"] != 12.0 || p["accuracy"] == nil || p["createdAt"] != orig[1]["createdAt"] {
		t.Errorf("sub-attributes not named in a patch stay: %v", p)
	}

	for _, bad := range []struct {
		name string
		body any
	}{
		{"another instant", map[string]any{"value": 12, "observedAt": obs(7)}},
		{"another dataset", map[string]any{"value": 12, "datasetId": "urn:ngsi-ld:Dataset:other"}},
		{"two instances", map[string]any{"temperature": []any{map[string]any{"value": 12}, map[string]any{"value": 13}}}},
		{"another attribute too", map[string]any{"temperature": map[string]any{"value": 12}, "name": map[string]any{"type": "Property", "value": "x"}}},
		{"not an object", map[string]any{"temperature": 12}},
		{"nothing", map[string]any{}},
	} {
		rec := n.do("PATCH", path, bad.body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad.name, rec.Code, rec.Body.String())
		}
	}
	if p := instances()[1]; p["value"] != 12.0 {
		t.Errorf("refused patches changed the instance: %v", p)
	}
	wantProblem(t, n.do("PATCH", base+"/attrs/temperature/not-an-instance", map[string]any{"value": 1}), BadRequestData)
	wantProblem(t, n.do("PATCH", base+"/attrs/name/"+url.PathEscape(id), map[string]any{"value": 1}), ResourceNotFound)
	wantStatus(t, n.do("DELETE", path, nil), http.StatusNoContent)
	wantProblem(t, n.do("PATCH", path, map[string]any{"value": 1}), ResourceNotFound)
	if v := temporalValues(t, map[string]any{"temperature": toAny(instances())}, "temperature"); !equalFloats(v, []float64{0, 2, 3}) {
		t.Errorf("history after deleting the patched instance: %v", v)
	}
}

// TestHistoryEditKeepsConcurrentCorrection: trimming history (retention,
// DELETE of an attribute's history) rewrites records it read earlier; a
// record an instance PATCH changed in between is left as patched, not
// written back with the bytes from before the patch.
func TestHistoryEditKeepsConcurrentCorrection(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 3)
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID
	id := temperatureInstance(t, n, 1)
	var once sync.Once
	at1, _ := time.Parse(time.RFC3339, obs(1))
	_, err := n.svc.editHistory(context.Background(), sensorID, time.Time{}, func(_ uint32, at time.Time, _ int) bool {
		if !at.Equal(at1) {
			return true
		}
		// The trim has read this record; a correction lands before it
		// writes.
		once.Do(func() {
			wantStatus(t, n.do("PATCH", base+"/attrs/temperature/"+url.PathEscape(id), map[string]any{"value": 42}), http.StatusNoContent)
		})
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, n.do("GET", base+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{0, 42, 2, 3}) {
		t.Errorf("history after a trim raced a correction: %v, want the correction kept", got)
	}
}

func toAny(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// TestTemporalBadInput checks malformed temporal queries are
// BadRequestData, never a crash or an empty answer.
func TestTemporalBadInput(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 1)
	for _, tc := range []struct{ name, query string }{
		{"unknown timerel", "timerel=during&timeAt=" + obs(0)},
		{"timerel without timeAt", "timerel=before"},
		{"bad timeAt", "timerel=before&timeAt=yesterday"},
		{"between without end", "timerel=between&timeAt=" + obs(0)},
		{"end before start", "timerel=between&timeAt=" + obs(5) + "&endTimeAt=" + obs(1)},
		{"timeAt without timerel", "timeAt=" + obs(0)},
		{"bad lastN", "lastN=-3"},
		{"bad timeproperty", "timeproperty=deletedAt"},
		{"bad aggrMethods", "aggrMethods=median"},
		{"bad aggrPeriodDuration", "aggrMethods=sum&aggrPeriodDuration=1H"},
		{"period without methods", "aggrPeriodDuration=PT1H"},
		{"values and aggregation", "options=temporalValues&aggrMethods=sum"},
		{"unknown option", "options=bogus"},
		{"unsupported format", "format=concise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?"+tc.query, nil), BadRequestData)
		})
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/temporal/entities?lastN=2", nil), BadRequestData)
	// format= names the representation as options= does.
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID
	ref := n.do("GET", base+"?options=temporalValues", nil)
	wantStatus(t, ref, http.StatusOK)
	want := ref.Body.String()
	for _, q := range []string{"format=temporalValues", "format=simplified", "options=simplified"} {
		if got := n.do("GET", base+"?"+q, nil).Body.String(); got != want {
			t.Errorf("%s: %s, want the temporalValues form %s", q, got, want)
		}
	}
	for name, body := range map[string]any{
		"no id":          map[string]any{"type": "Sensor", "t": []any{map[string]any{"type": "Property", "value": 1}}},
		"null attribute": map[string]any{"id": "urn:x:1", "type": "Sensor", "t": nil},
		"not an object":  []any{1},
		"bad observedAt": map[string]any{"id": "urn:x:1", "type": "Sensor", "t": []any{map[string]any{"type": "Property", "value": 1, "observedAt": "noon"}}},
	} {
		t.Run("POST "+name, func(t *testing.T) {
			wantProblem(t, n.do("POST", "/ngsi-ld/v1/temporal/entities", body), BadRequestData)
		})
	}
}

// TestHistoryEditLargeRecords: a temporal write of more history than one
// transaction holds (700 instants of a 4 KiB reading beside a small one)
// is refused with BadRequestData and writes nothing; sent in two halves
// it is stored, and deleting the small attribute's history then rewrites
// more than one transaction takes, in several.
func TestHistoryEditLargeRecords(t *testing.T) {
	n := newTestNode(t, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	var temp, hum []any
	const count = 700
	for i := range count {
		big := make([]byte, 2048)
		for j := range big {
			big[j] = byte(rnd.Uint32())
		}
		temp = append(temp, map[string]any{"type": "Property", "value": hex.EncodeToString(big), "observedAt": obs(i)})
		hum = append(hum, map[string]any{"type": "Property", "value": i, "observedAt": obs(i)})
	}
	body := func(lo, hi int) map[string]any {
		return map[string]any{"id": sensorID, "type": "Sensor", "reading": temp[lo:hi], "humidity": hum[lo:hi]}
	}
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/temporal/entities", body(0, count)), BadRequestData)
	wantProblem(t, n.do("GET", base, nil), ResourceNotFound)

	wantStatus(t, n.do("POST", "/ngsi-ld/v1/temporal/entities", body(0, count/2)), http.StatusCreated)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/temporal/entities", body(count/2, count)), http.StatusNoContent)
	wantStatus(t, n.do("DELETE", base+"/attrs/humidity", nil), http.StatusNoContent)
	m := decode(t, n.do("GET", base+"?lastN=1000", nil)).(map[string]any)
	if readings, _ := m["reading"].([]any); len(readings) != count || m["humidity"] != nil {
		t.Fatalf("after deleting humidity's history: %d readings (want %d), humidity left: %v", len(readings), count, m["humidity"] != nil)
	}
}

// TestHistoryRetention checks TrimHistory drops instances older than their
// type's retention and keeps other types' history.
func TestHistoryRetention(t *testing.T) {
	n := newTestNode(t, func(o *Options) {
		o.Retention = map[string]time.Duration{coreVocab + "Sensor": 10 * time.Minute}
	})
	writeReadings(t, n, 30)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", map[string]any{
		"id": "urn:ngsi-ld:Pump:p", "type": "Pump", "level": map[string]any{"type": "Property", "value": 1, "observedAt": obs(0)},
	}), http.StatusCreated)
	removed, err := n.svc.TrimHistory(context.Background(), histT0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if removed != 20 {
		t.Fatalf("trim removed %d instances, want 20 (minutes 0-19)", removed)
	}
	got, err := n.svc.History(sensorID, coreVocab+"temperature", time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 || got[0].Attr.Value != 30.0 || got[10].Attr.Value != 20.0 {
		t.Fatalf("kept %d instances (newest %v), want minutes 20-30", len(got), got[0].Attr.Value)
	}
	pump, err := n.svc.History("urn:ngsi-ld:Pump:p", coreVocab+"level", time.Time{}, time.Time{}, 0)
	if err != nil || len(pump) != 1 {
		t.Fatalf("pump history %v %v, want kept", pump, err)
	}
}

// TestHistorySurvivesRestart reopens the store: the history is there.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNodeOn(t, db, nil)
	writeReadings(t, n, 5)
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
	n = newTestNodeOn(t, db, nil)
	m := decode(t, n.do("GET", "/ngsi-ld/v1/temporal/entities/"+sensorID+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, seq(0, 5)) {
		t.Fatalf("history after restart %v", got)
	}
}

func TestParseISODuration(t *testing.T) {
	day := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"PT1H", day.Add(time.Hour)},
		{"PT1M30.5S", day.Add(90*time.Second + 500*time.Millisecond)},
		{"P1D", day.AddDate(0, 0, 1)},
		{"P1W", day.AddDate(0, 0, 7)},
		{"P1M", day.AddDate(0, 1, 0)},
		{"P1Y2M3DT4H5M6S", day.AddDate(1, 2, 3).Add(4*time.Hour + 5*time.Minute + 6*time.Second)},
	} {
		d, err := parseISODuration(tc.in)
		if err != nil {
			t.Fatalf("parseISODuration(%q): %v", tc.in, err)
		}
		if got := d.addTo(day); !got.Equal(tc.want) {
			t.Errorf("parseISODuration(%q) added to %v = %v, want %v", tc.in, day, got, tc.want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "1H", "PH", "P1H", "PT1D", "P1.5D", "PT1H2", "P99999999999D", "PTS"} {
		if _, err := parseISODuration(bad); err == nil {
			t.Errorf("parseISODuration(%q) accepted", bad)
		}
	}
}

// coreVocab is where the core context puts terms it does not define.
const coreVocab = "https://uri.etsi.org/ngsi-ld/default-context/"

// TestAppendTemporalAttrs checks POST /temporal/entities/{id}/attrs
// (clause 6.20.3.1): instances added to the history of an existing entity
// (the newest becomes the current value), ResourceNotFound for an entity
// that is not there, BadRequestData for a body naming another id.
func TestAppendTemporalAttrs(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 2)
	base := "/ngsi-ld/v1/temporal/entities/" + sensorID
	wantStatus(t, n.do("POST", base+"/attrs", map[string]any{"temperature": []any{
		map[string]any{"type": "Property", "value": 30, "observedAt": obs(30)},
		map[string]any{"type": "Property", "value": 20, "observedAt": obs(20)},
	}}), http.StatusNoContent)
	m := decode(t, n.do("GET", base+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{0, 1, 2, 20, 30}) {
		t.Errorf("history after the append: %v", got)
	}
	if e, _ := n.svc.Entity(sensorID); e.Attrs[coreVocab+"temperature"][0].Value != 30.0 {
		t.Errorf("current temperature %v, want the newest instance, 30", e.Attrs[coreVocab+"temperature"][0].Value)
	}
	// A late reading (back-filled history) goes into the history and
	// leaves the current value, which is newer, as it is.
	wantStatus(t, n.do("POST", base+"/attrs", map[string]any{"temperature": []any{
		map[string]any{"type": "Property", "value": 5, "observedAt": obs(5)},
	}}), http.StatusNoContent)
	m = decode(t, n.do("GET", base+"?attrs=temperature", nil)).(map[string]any)
	if got := temporalValues(t, m, "temperature"); !equalFloats(got, []float64{0, 1, 2, 5, 20, 30}) {
		t.Errorf("history after a late reading: %v", got)
	}
	if e, _ := n.svc.Entity(sensorID); e.Attrs[coreVocab+"temperature"][0].Value != 30.0 {
		t.Errorf("current temperature %v after a late reading, want the newest, 30", e.Attrs[coreVocab+"temperature"][0].Value)
	}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Sensor:none/attrs", map[string]any{
		"temperature": []any{map[string]any{"type": "Property", "value": 1, "observedAt": obs(1)}}}), ResourceNotFound)
	wantProblem(t, n.do("POST", base+"/attrs", map[string]any{"id": "urn:ngsi-ld:Sensor:other",
		"temperature": []any{map[string]any{"type": "Property", "value": 1, "observedAt": obs(1)}}}), BadRequestData)
}

// TestPostTemporalQuery checks POST /temporal/entityOperations/query
// (clause 6.24.3.1): the same answer as GET /temporal/entities with the
// restrictions and temporalQ in the body, and lastN in the URL.
func TestPostTemporalQuery(t *testing.T) {
	n := newTestNode(t, nil)
	writeReadings(t, n, 4)
	body := map[string]any{"type": "Query", "entities": []any{map[string]any{"type": "Sensor"}}, "attrs": []any{"temperature"},
		"temporalQ": map[string]any{"timerel": "before", "timeAt": obs(3)}}
	rec := n.do("POST", "/ngsi-ld/v1/temporal/entityOperations/query?lastN=2", body)
	wantStatus(t, rec, http.StatusOK)
	want := n.do("GET", "/ngsi-ld/v1/temporal/entities?type=Sensor&attrs=temperature&timerel=before&timeAt="+url.QueryEscape(obs(3))+"&lastN=2", nil)
	wantStatus(t, want, http.StatusOK)
	if rec.Body.String() != want.Body.String() {
		t.Errorf("POST query answered %s\nGET answered %s", rec.Body.String(), want.Body.String())
	}
	list := decode(t, rec).([]any)
	if len(list) != 1 || !equalFloats(temporalValues(t, list[0].(map[string]any), "temperature"), []float64{1, 2}) {
		t.Errorf("POST query: %v, want the sensor's last 2 readings before minute 3", list)
	}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/temporal/entityOperations/query", map[string]any{"type": "Query",
		"entities": []any{map[string]any{"type": "Sensor"}}, "temporalQ": map[string]any{"timerel": "during"}}), BadRequestData)
}
