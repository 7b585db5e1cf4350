package ngsild

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
)

const aqoType = envVocab + "AirQualityObserved"

// storedEntities writes n AirQualityObserved-shaped entities through the
// API of a source node and returns them in stored form, as a transfer's
// provider reads them (EachOfType) and its consumer receives them.
func storedEntities(t testing.TB, n int) []*Entity {
	t.Helper()
	src := newTestNode(t, func(o *Options) { o.Now = fixedClock() })
	for _, body := range batchBodies(t, n, 1000, 5) {
		wantStatus(t, src.do("POST", "/ngsi-ld/v1/entityOperations/upsert", body, link(envContext)...), http.StatusCreated)
	}
	var out []*Entity
	if err := src.svc.EachOfType(context.Background(), []string{aqoType}, func(e *Entity) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(out) != n {
		t.Fatalf("source holds %d entities, want %d", len(out), n)
	}
	return out
}

// TestLand lands a provider's entities on a consumer: they are queryable
// through the consumer's API, have history and feed entries, and a
// re-landing keeps createdAt.
func TestLand(t *testing.T) {
	ents := storedEntities(t, 50)
	n := newTestNode(t, nil)
	wake, stop := n.svc.Notify()
	defer stop()
	landAll(t, n, ents)
	select {
	case <-wake:
	default:
		t.Error("Land did not wake change feed consumers")
	}
	q := "/ngsi-ld/v1/entities?type=AirQualityObserved&limit=1000&q=" + url.QueryEscape(`stationCode=="S0000007"`)
	rec := n.do("GET", q, nil, link(envContext)...)
	wantStatus(t, rec, http.StatusOK)
	if got := ids(t, rec); !slices.Equal(got, []string{"urn:ngsi-ld:AirQualityObserved:Madrid-0000007"}) {
		t.Errorf("query by q on landed entities = %v", got)
	}
	changes, err := n.svc.Changes(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 50 || changes[0].Op != OpCreate {
		t.Fatalf("feed after landing 50: %d changes", len(changes))
	}
	id := ents[3].ID
	h, err := n.svc.History(id, envVocab+"no2", time.Time{}, time.Time{}, 0)
	if err != nil || len(h) != 1 {
		t.Fatalf("history of a landed attribute: %d instances, %v", len(h), err)
	}
	first, _ := n.svc.Entity(id)

	// Landing a newer version replaces the entity and keeps its createdAt.
	again := storedEntities(t, 50)
	again[3].Attrs[envVocab+"no2"][0].Value = 999.0
	if _, err := n.svc.Land(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	got, _ := n.svc.Entity(id)
	if v := got.Attrs[envVocab+"no2"][0].Value; v != 999.0 {
		t.Errorf("no2 after re-landing = %v, want 999", v)
	}
	if !got.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("createdAt after re-landing = %v, want %v", got.CreatedAt, first.CreatedAt)
	}
	if changes, _ := n.svc.Changes(context.Background(), 51, 100); len(changes) != 50 || changes[0].Op != OpUpdate {
		t.Errorf("re-landing gave %d changes, want 50 updates", len(changes))
	}
}

// TestLandSkipsValidationOnly checks Land accepts an entity its model
// rejects (the provider validated it) where Put refuses it, and that an
// entity with no id or type still fails alone.
func TestLandSkipsValidationOnly(t *testing.T) {
	ents := storedEntities(t, 2)
	ents[0].Attrs[envVocab+"no2"][0].Value = "lots"
	n := newTestNode(t, nil)
	bad := *ents[0]
	if errs, err := n.svc.Put([]*Entity{&bad}); err != nil || errs[0] == nil {
		t.Fatalf("Put of an entity breaking its model: errs %v, err %v; want a per-entity error", errs, err)
	}
	errs, err := n.svc.Land(context.Background(), []*Entity{ents[0], {ID: "urn:x:untyped"}, nil, ents[1]})
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("Land of valid-at-provider entities: %v, %v", errs[0], errs[3])
	}
	for _, i := range []int{1, 2} {
		if !errors.As(errs[i], &e) || e.Type != BadRequestData {
			t.Errorf("Land entity %d = %v, want BadRequestData", i, errs[i])
		}
	}
	if got, _ := n.svc.Entity("urn:x:untyped"); got != nil {
		t.Error("an untyped entity was stored")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.svc.Land(ctx, ents); !errors.Is(err, context.Canceled) {
		t.Errorf("Land with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestDelete(t *testing.T) {
	n := newTestNode(t, nil)
	if _, err := n.svc.Land(context.Background(), storedEntities(t, 5)); err != nil {
		t.Fatal(err)
	}
	gone := "urn:ngsi-ld:AirQualityObserved:Madrid-0000002"
	errs, err := n.svc.Delete(context.Background(), []string{gone, "urn:x:never"})
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if errs[0] != nil || !errors.As(errs[1], &e) || e.Type != ResourceNotFound {
		t.Fatalf("Delete errs = %v, want [nil ResourceNotFound]", errs)
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/"+gone, nil), ResourceNotFound)
	rec := n.do("GET", "/ngsi-ld/v1/entities?type=AirQualityObserved", nil, link(envContext)...)
	if got := ids(t, rec); len(got) != 4 || slices.Contains(got, gone) {
		t.Errorf("query after delete = %v", got)
	}
	last, _ := n.svc.Changes(context.Background(), n.svc.LastSeq(), 1)
	if len(last) != 1 || last[0].Op != OpDelete || last[0].ID != gone || !slices.Equal(last[0].Types, []string{aqoType}) {
		t.Errorf("last change = %+v, want a delete of %s", last, gone)
	}
}

// TestEachOfType checks the order (by id), that an entity with two of the
// types comes once, that other types are left out, and that it reads the
// store, not the feed, which may be trimmed.
func TestEachOfType(t *testing.T) {
	n := newTestNode(t, nil)
	body := func(id, types string) string { return fmt.Sprintf(`{"id": %q, "type": %s}`, id, types) }
	batch := "[" + body("urn:x:c", `"A"`) + "," + body("urn:x:a", `["A","B"]`) + "," + body("urn:x:b", `"B"`) + "," +
		body("urn:x:d", `"C"`) + "," + body("urn:x:0", `"B"`) + "]"
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", batch), http.StatusCreated)
	if err := n.svc.TrimChanges(n.svc.LastSeq() + 1); err != nil {
		t.Fatal(err)
	}
	const dflt = "https://uri.etsi.org/ngsi-ld/default-context/"
	each := func(types ...string) []string {
		var got []string
		if err := n.svc.EachOfType(context.Background(), types, func(e *Entity) error {
			got = append(got, e.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		name  string
		types []string
		want  []string
	}{
		{"one type", []string{dflt + "A"}, []string{"urn:x:a", "urn:x:c"}},
		{"two types merged", []string{dflt + "B", dflt + "A"}, []string{"urn:x:0", "urn:x:a", "urn:x:b", "urn:x:c"}},
		{"type repeated", []string{dflt + "C", dflt + "C"}, []string{"urn:x:d"}},
		{"unknown type", []string{dflt + "Z"}, nil},
		{"all", nil, []string{"urn:x:0", "urn:x:a", "urn:x:b", "urn:x:c", "urn:x:d"}},
	} {
		if got := each(tc.types...); !slices.Equal(got, tc.want) {
			t.Errorf("%s: EachOfType(%v) = %v, want %v", tc.name, tc.types, got, tc.want)
		}
	}
	// Many chunks: order across chunks, and an early stop.
	big := newTestNode(t, nil)
	if _, err := big.svc.Land(context.Background(), storedEntities(t, 300)); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := big.svc.EachOfType(context.Background(), []string{aqoType}, func(e *Entity) error {
		got = append(got, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 300 || !slices.IsSorted(got) {
		t.Errorf("EachOfType over 300 entities: %d ids, sorted %v", len(got), slices.IsSorted(got))
	}
	ctx, cancel := context.WithCancel(context.Background())
	seenN := 0
	err := big.svc.EachOfType(ctx, nil, func(*Entity) error {
		if seenN++; seenN == 150 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || seenN >= 300 {
		t.Errorf("EachOfType cancelled after 150: %v after %d calls", err, seenN)
	}
	stopErr := errors.New("enough")
	calls := 0
	err = n.svc.EachOfType(context.Background(), nil, func(*Entity) error { calls++; return stopErr })
	if !errors.Is(err, stopErr) || calls != 1 {
		t.Errorf("EachOfType with a failing fn: %v after %d calls", err, calls)
	}
}

// BenchmarkLand measures landing entities received in a transfer, 1,000
// per call as node/transfer does (target: 50,000 entities/s), on a disk
// store, half new entities and half replacements.
func BenchmarkLand(b *testing.B) {
	const per = 1000
	n := newTestNodeOn(b, openDisk(b), nil)
	src := newTestNode(b, nil)
	tc, err := src.svc.ctx.resolve(envContext)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	batch := func(i int) []*Entity {
		out := make([]*Entity, per)
		for j := range out {
			e, err := decodeEntity(aqoEntity(rng, (i%20)*per+j), tc, time.Now(), true)
			if err != nil {
				b.Fatal(err)
			}
			out[j] = e
		}
		return out
	}
	var el, cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ents := batch(i)
		b.StartTimer()
		t0, c0 := time.Now(), osstat.ProcessCPU()
		if _, err := n.svc.Land(context.Background(), ents); err != nil {
			b.Fatal(err)
		}
		el, cpu = el+time.Since(t0), cpu+osstat.ProcessCPU()-c0
	}
	b.ReportMetric(float64(b.N*per)/el.Seconds(), "entities/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*per), "cpu-µs/entity")
}

// BenchmarkEachOfType measures reading 20,000 stored entities of one type
// in id order, as a provider builds a dataset version.
func BenchmarkEachOfType(b *testing.B) {
	const total = 20_000
	n := newTestNodeOn(b, openDisk(b), nil)
	ents := storedEntities(b, 1000)
	for i := 0; i < total/len(ents); i++ {
		for _, e := range ents {
			e.ID = fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:%03d-%s", i, e.ID[len("urn:ngsi-ld:AirQualityObserved:"):])
		}
		if _, err := n.svc.Land(context.Background(), ents); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), osstat.ProcessCPU()
	for i := 0; i < b.N; i++ {
		got := 0
		if err := n.svc.EachOfType(context.Background(), []string{aqoType}, func(*Entity) error { got++; return nil }); err != nil {
			b.Fatal(err)
		}
		if got != total {
			b.Fatalf("EachOfType visited %d entities, want %d", got, total)
		}
	}
	el, cpu := time.Since(start), osstat.ProcessCPU()-cpu0
	b.ReportMetric(float64(b.N*total)/el.Seconds(), "entities/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*total), "cpu-µs/entity")
}

// FuzzSplitArray checks the batch body splitter against parseJSON: a body
// parseJSON reads as an array splits into its elements, each parsing to the
// same value; a body it rejects is rejected by the splitter or by an
// element's own parse.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[{"id":"urn:x","type":"T"}]`, ` [ 1 , "a,]}" , [2,[3]], {"k":"\"]"} ] `, `[1,]`, `[,]`, `[{]}`, `{"a":1}`, `[1 2]`, `["\\"]`, `[`} {
		f.Add([]byte(s))
	}
	f.Add(batchBodies(f, 3, 3, 1)[0])
	f.Fuzz(func(t *testing.T, body []byte) {
		want, werr := parseJSON(body)
		elems, err := splitArray(body)
		var got []any
		for _, e := range elems {
			v, perr := parseJSON(e)
			if perr != nil {
				err = perr
				break
			}
			got = append(got, v)
		}
		list, isArray := want.([]any)
		switch {
		case werr != nil:
			if err == nil {
				t.Fatalf("splitArray(%q) accepted a body parseJSON rejects (%v)", body, werr)
			}
		case err != nil:
			t.Fatalf("splitArray(%q): %v; parseJSON accepts it", body, err)
		case !isArray:
			if elems != nil {
				t.Fatalf("splitArray(%q) split a non-array", body)
			}
		case len(list) == 0:
			if elems == nil || len(elems) != 0 {
				t.Fatalf("splitArray(%q) = %q, want no elements", body, elems)
			}
		case !reflect.DeepEqual(got, list):
			t.Fatalf("splitArray(%q) elements parse to %v, want %v", body, got, list)
		}
	})
}

// BenchmarkParseBatch measures parsing a 1,000-entity upsert body.
func BenchmarkParseBatch(b *testing.B) {
	body := batchBodies(b, 1000, 1000, 3)[0]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := parseJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLandRefusesEmptyInstances: an entity received with a missing
// attribute instance (JSON null in its list, at any depth) fails alone
// with BadRequestData instead of bringing the write down, and LandNew
// creates but never replaces.
func TestLandRefusesEmptyInstances(t *testing.T) {
	n := newTestNode(t, nil)
	now := time.Now().UTC()
	top := &Entity{ID: "urn:x:top", Types: []string{"urn:t:T"}, CreatedAt: now, ModifiedAt: now,
		Attrs: map[string][]*Attribute{"urn:a:p": {nil}}}
	sub := &Entity{ID: "urn:x:sub", Types: []string{"urn:t:T"}, CreatedAt: now, ModifiedAt: now,
		Attrs: map[string][]*Attribute{"urn:a:p": {{Type: Property, Value: 1.0, Sub: map[string][]*Attribute{"urn:a:q": {nil}}}}}}
	good := &Entity{ID: "urn:x:good", Types: []string{"urn:t:T"}, CreatedAt: now, ModifiedAt: now,
		Attrs: map[string][]*Attribute{"urn:a:p": {{Type: Property, Value: 1.0}}}}
	errs, err := n.svc.Land(context.Background(), []*Entity{top, sub, good})
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	for i := 0; i < 2; i++ {
		if !errors.As(errs[i], &e) || e.Type != BadRequestData {
			t.Errorf("Land entity %d with an empty instance = %v, want BadRequestData", i, errs[i])
		}
	}
	if errs[2] != nil {
		t.Errorf("Land of a whole entity: %v", errs[2])
	}
	again := &Entity{ID: "urn:x:good", Types: []string{"urn:t:T"}, CreatedAt: now, ModifiedAt: now,
		Attrs: map[string][]*Attribute{"urn:a:p": {{Type: Property, Value: 2.0}}}}
	errs, err = n.svc.LandNew(context.Background(), []*Entity{again})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.As(errs[0], &e) || e.Type != AlreadyExists {
		t.Errorf("LandNew of an entity that exists = %v, want AlreadyExists", errs[0])
	}
	if got, err := n.svc.Entity("urn:x:good"); err != nil || got.Attrs["urn:a:p"][0].Value != 1.0 {
		t.Errorf("after LandNew the entity holds %v (%v), want the first value", got, err)
	}
}
