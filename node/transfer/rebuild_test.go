package transfer_test

import (
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
)

// TestRebuildMatchesFullBuild: a version built from the one before (few
// changes since) is the version a build of every entity makes, byte for
// byte, and writes only the blocks around the changes: a reading changed,
// an entity grown, one inserted between two others, one deleted, the
// first entity of a block changed, one appended after the last.
func TestRebuildMatchesFullBuild(t *testing.T) {
	prov, _ := pair(t)
	es := entities(t, 1500, 0)
	upsert(t, prov.n, es)
	ds, _ := transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
	build := func() string {
		t.Helper()
		v, err := prov.svc.Build(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := build()
	refs, err := transfer.ManifestRefs(prov.svc, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) < 8 {
		t.Fatalf("%d blocks; the test needs several", len(refs))
	}
	blockFirst := refs[len(refs)/2].First
	var changed []map[string]any
	for i, e := range es {
		switch id := e["id"].(string); {
		case i == 10:
			e["no2"].(map[string]any)["value"] = 55.5
		case i == 700:
			e["no2"].(map[string]any)["value"] = 123456789.25
		case id == blockFirst:
			e["no2"].(map[string]any)["value"] = 77.75
		default:
			continue
		}
		changed = append(changed, e)
	}
	inserted := entities(t, 1, 0)[0]
	inserted["id"] = testID(800) + "a"
	appended := entities(t, 1, 0)[0]
	appended["id"] = testID(999999)
	changed = append(changed, inserted, appended)
	upsert(t, prov.n, changed)
	deleteEntity(t, prov.n, testID(1200))

	second := build()
	whole, recut := transfer.LastBuild(prov.svc, datasetID)
	if whole {
		t.Fatalf("the build after %d changes read every entity; want it built from the version before", len(changed)+1)
	}
	t.Logf("%d changes: %d of %d blocks written again", len(changed)+1, recut, len(refs))
	// Six changes in at most five places, each re-cutting its block and
	// perhaps the next two or three.
	if recut == 0 || recut > 16 || recut >= len(refs)/2 {
		t.Errorf("the build from the version before wrote %d blocks of %d", recut, len(refs))
	}
	transfer.ForgetBuilt(prov.svc)
	full := build()
	if whole, _ := transfer.LastBuild(prov.svc, datasetID); !whole {
		t.Fatal("the build after ForgetBuilt did not read every entity")
	}
	if second != full {
		t.Errorf("version built from the one before = %s, a whole build = %s", second, full)
	}
	if got, want := transfer.ManifestEntities(prov.svc, second), len(es)+2-1; got != want {
		t.Errorf("version holds %d entities, want %d", got, want)
	}
	// Nothing changed: the same version, nothing written.
	if again := build(); again != full {
		t.Errorf("a build with no change since gave %s, want %s", again, full)
	}
}

// TestRebuildOfViewWithQ: for a view with q, the build from the version
// before takes in an entity that came into q, leaves out one that left
// it, and makes the version a whole build makes.
func TestRebuildOfViewWithQ(t *testing.T) {
	prov, _ := pair(t)
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Lower NO2 readings.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	ds.Source = &catalog.Source{View: &catalog.View{Q: "no2<50"}}
	if _, err := prov.cat.Put(ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	es := entities(t, 1500, 0) // no2 is i%97: below 50 for about half
	upsert(t, prov.n, es)
	ds, _ = transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
	first, err := prov.svc.Build(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	in, out, kept := es[60], es[400], es[402] // no2 60 (out of q), 12 and 14 (in q)
	in["no2"].(map[string]any)["value"] = 5.0
	out["no2"].(map[string]any)["value"] = 70.0
	kept["no2"].(map[string]any)["value"] = 15.0
	upsert(t, prov.n, []map[string]any{in, out, kept})
	second, err := prov.svc.Build(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if whole, _ := transfer.LastBuild(prov.svc, datasetID); whole {
		t.Fatal("the build after 3 changes read every entity; want it built from the version before")
	}
	transfer.ForgetBuilt(prov.svc)
	full, err := prov.svc.Build(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if second != full || second == first {
		t.Errorf("version built from the one before = %s, a whole build = %s (first %s)", second, full, first)
	}
	if got, want := transfer.ManifestEntities(prov.svc, second), transfer.ManifestEntities(prov.svc, first); got != want {
		t.Errorf("version holds %d entities, want %d (one came into q, one left)", got, want)
	}
}

// TestRebuildAfterLandingIsWhole: a landing can make an entity
// unservable without changing it (the consumer received it under an
// agreement that let it pass the data on, and receives it again under one
// that forbids distribute); the next build reads every entity again, and
// leaves it out.
func TestRebuildAfterLandingIsWhole(t *testing.T) {
	prov, cons := pair(t)
	es := entities(t, 30, 0)
	upsert(t, prov.n, es)
	first := agreePermissions(t, prov, cons, `{"action": "use"}`)
	if _, err := cons.svc.Fetch(ctx, first, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := transfer.ManifestEntities(cons.svc, buildResold(t, cons)); got != len(es) {
		t.Fatalf("consumer's own version holds %d of the entities it may pass on, want %d", got, len(es))
	}
	a, b := agreementFile(t, prov, cons, `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:uuid:offer-3",
		"target": "`+datasetID+`", "assigner": "`+prov.id()+`", "permission": [{"action": "read"}]}`,
		func(a *policy.Agreement) { a.ID = "urn:uuid:agreement-read-only" })
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	if _, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	version := buildResold(t, cons)
	if got := transfer.ManifestEntities(cons.svc, version); got != 0 {
		t.Errorf("consumer's own version holds %d entities received without distribute, want 0", got)
	}
	if whole, _ := transfer.LastBuild(cons.svc, "urn:mim:dataset:test:resold"); !whole {
		t.Error("the build after a landing started from the version before")
	}
}
