package transfer_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/transfer"
)

// TestViewQSelectsEntities: a dataset whose view has a q serves only the
// entities q matches (versions of a view without q are built from the
// stored lines, those with q from the entities: both must hold exactly
// what the view says).
func TestViewQSelectsEntities(t *testing.T) {
	prov, cons := pair(t)
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Low NO2 readings.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	ds.Source = &catalog.Source{View: &catalog.View{Q: "no2<10"}}
	if _, err := prov.cat.Put(ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	es := entities(t, 200, 0) // no2 is i%97: below 10 for 26 of them
	upsert(t, prov.n, es)
	want := map[string]bool{}
	for _, e := range es {
		if e["no2"].(map[string]any)["value"].(float64) < 10 {
			want[e["id"].(string)] = true
		}
	}
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	in, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Usage.Entities != int64(len(want)) {
		t.Errorf("fetch moved %d entities, want the %d the view's q matches", in.Usage.Entities, len(want))
	}
	got := query(t, cons.n)
	if len(got) != len(want) {
		t.Fatalf("consumer holds %d entities, want %d", len(got), len(want))
	}
	for _, raw := range got {
		var e struct {
			ID  string
			NO2 struct{ Value float64 } `json:"no2"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		if !want[e.ID] || e.NO2.Value >= 10 {
			t.Errorf("consumer holds %s with no2 %v, which the view's q (no2<10) does not select", e.ID, e.NO2.Value)
		}
	}
}
