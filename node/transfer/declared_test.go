package transfer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/transfer"
)

// TestEntitiesOfUndeclaredTypesAreNotLanded: the provider's dataset holds
// AirQualityObserved and Thing entities, but its description, as the
// consumer found it in the catalogue, declares AirQualityObserved only.
// The consumer lands the air-quality readings, of the snapshot and of the
// live feed, and none of the Things: the fetch counts them as not landed.
func TestEntitiesOfUndeclaredTypesAreNotLanded(t *testing.T) {
	described := datasetOf(t, `["AirQualityObserved"]`)
	var provID string
	prov, cons := pairTuned(t, func(o *transfer.Options) {
		consumerTune(o)
		o.Described = func(provider, dataset string) (catalog.Dataset, bool) {
			return described, provider == provID && dataset == datasetID
		}
	})
	provID = prov.id()
	if _, err := prov.cat.Put(datasetOf(t, `["AirQualityObserved", "Thing"]`), time.Now()); err != nil {
		t.Fatal(err)
	}
	upsert(t, prov.n, entities(t, 10, 0))
	upsert(t, prov.n, things(0, 3))
	a := agreePermissions(t, prov, cons, `{"action": "read"}`)
	started := make(chan transfer.Info, 1)
	changes := make(chan transfer.LiveChange, 10)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cons.svc.Live(lctx, a, transfer.LiveOptions{
		Started:  func(in transfer.Info) { started <- in },
		OnChange: func(c transfer.LiveChange) { changes <- c }})
	var in transfer.Info
	select {
	case in = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the live transfer's snapshot did not land")
	}
	if in.NotLanded != 3 {
		t.Errorf("the snapshot left out %d entities, want the 3 Things", in.NotLanded)
	}
	if n := len(query(t, cons.n)); n != 10 {
		t.Errorf("consumer holds %d air-quality readings, want 10", n)
	}
	if got := entityWithSysAttrs(t, cons.n, "urn:ngsi-ld:Thing:1"); got != nil {
		t.Errorf("a Thing of the snapshot landed: %s", got)
	}
	// On the feed: a Thing, then a reading.
	upsert(t, prov.n, things(3, 1))
	reading := entities(t, 11, 0)[10:]
	upsert(t, prov.n, reading)
	for deadline := time.After(10 * time.Second); ; {
		select {
		case c := <-changes:
			if c.ID != reading[0]["id"] {
				continue
			}
		case <-deadline:
			t.Fatal("the reading's change was not delivered within 10 s")
		}
		break
	}
	if got := entityWithSysAttrs(t, cons.n, reading[0]["id"].(string)); got == nil {
		t.Error("the reading pushed on the feed did not land")
	}
	if got := entityWithSysAttrs(t, cons.n, "urn:ngsi-ld:Thing:4"); got != nil {
		t.Errorf("the Thing pushed on the feed landed: %s", got)
	}
}

// TestEntitiesLeftOutLandOnceDeclared: the consumer's index holds an
// older description of the dataset than the provider's (Thing was just
// added). The first fetch leaves the Things out, and so does a second
// under the same description; once the index has the new description,
// the next fetch lands them, though they sit in blocks the consumer
// fetched before and the version changed elsewhere, and so does a live
// feed's next Thing.
func TestEntitiesLeftOutLandOnceDeclared(t *testing.T) {
	var described atomic.Pointer[catalog.Dataset]
	old := datasetOf(t, `["AirQualityObserved"]`)
	described.Store(&old)
	var provID string
	prov, cons := pairTuned(t, func(o *transfer.Options) {
		consumerTune(o)
		o.Described = func(provider, dataset string) (catalog.Dataset, bool) {
			return *described.Load(), provider == provID && dataset == datasetID
		}
	})
	provID = prov.id()
	if _, err := prov.cat.Put(datasetOf(t, `["AirQualityObserved", "Thing"]`), time.Now()); err != nil {
		t.Fatal(err)
	}
	readings := entities(t, 600, 0) // several blocks
	upsert(t, prov.n, readings)
	upsert(t, prov.n, things(0, 3))
	a := agreePermissions(t, prov, cons, `{"action": "read"}`)
	in, err := cons.svc.Fetch(ctx, a, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.NotLanded != 3 || entityWithSysAttrs(t, cons.n, "urn:ngsi-ld:Thing:1") != nil {
		t.Fatalf("the first fetch left out %d entities, want the 3 Things", in.NotLanded)
	}
	// A fetch under the old description, of a version changed in a block
	// without Things, leaves nothing out, but the Things stay out.
	readings[0]["no2"].(map[string]any)["value"] = 1234.0
	upsert(t, prov.n, readings[:1])
	if in, err = cons.svc.Fetch(ctx, a, transfer.FetchOptions{}); err != nil || in.NotLanded != 0 {
		t.Fatalf("the second fetch: %v, %d left out, want none", err, in.NotLanded)
	}
	current := datasetOf(t, `["AirQualityObserved", "Thing"]`)
	described.Store(&current)
	readings[1]["no2"].(map[string]any)["value"] = 4321.0
	upsert(t, prov.n, readings[1:2])
	if in, err = cons.svc.Fetch(ctx, a, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if in.Usage.Skipped == 0 {
		t.Errorf("the third fetch fetched every block again, want the unchanged ones kept")
	}
	for i := 1; i <= 3; i++ {
		if entityWithSysAttrs(t, cons.n, fmt.Sprintf("urn:ngsi-ld:Thing:%d", i)) == nil {
			t.Errorf("Thing %d never landed after its type was declared (not landed: %d)", i, in.NotLanded)
		}
	}
	// The feed reads the description as each change comes.
	described.Store(&old)
	changes := make(chan transfer.LiveChange, 10)
	started := make(chan struct{})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cons.svc.Live(lctx, a, transfer.LiveOptions{
		Started:  func(transfer.Info) { close(started) },
		OnChange: func(c transfer.LiveChange) { changes <- c }})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the live transfer did not start")
	}
	described.Store(&current)
	upsert(t, prov.n, things(3, 1))
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("the Thing's change was not delivered within 10 s")
	}
	if entityWithSysAttrs(t, cons.n, "urn:ngsi-ld:Thing:4") == nil {
		t.Error("a Thing pushed on the feed after its type was declared did not land")
	}
}

// datasetOf is the test dataset's description declaring types (a JSON
// array).
func datasetOf(t *testing.T, types string) catalog.Dataset {
	t.Helper()
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Test air quality readings.",
		"entityTypes": `+types+`, "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// things returns n entities of type Thing, numbered from from+1.
func things(from, n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"id": fmt.Sprintf("urn:ngsi-ld:Thing:%d", from+i+1), "type": "Thing",
			"name": map[string]any{"type": "Property", "value": "a thing"}}
	}
	return out
}
