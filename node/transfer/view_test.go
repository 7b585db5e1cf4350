package transfer_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
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

// TestShortTypeNameMatchesStoredTypes: a dataset that names its type by
// the short name (AirQualityObserved), as a city's staff write it, holds
// the entities written under the Smart Data Models context, whose type
// is the model's IRI: with the core context alone the name would expand
// to the default-context IRI, and the dataset would be empty.
func TestShortTypeNameMatchesStoredTypes(t *testing.T) {
	prov, cons := pair(t)
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Readings.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.cat.Put(ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	const sdm = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
	es := entities(t, 30, 0)
	for _, e := range es {
		// The model's example breaks its own schema in these two, which
		// the core context does not bind; mend them for the model's.
		e["tsp"].(map[string]any)["value"] = 5.0
		e["windDirection"].(map[string]any)["value"] = 90.0
	}
	b, _ := json.Marshal(es)
	req, _ := http.NewRequest("POST", prov.n.APIURL()+"/ngsi-ld/v1/entityOperations/upsert", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Link", "<"+sdm+`>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upsert under the Smart Data Models context: %s %.600s", resp.Status, body)
	}
	a, ab := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, ab)
	cons.shelf.put(a.ID, ab)
	in, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Usage.Entities != int64(len(es)) {
		t.Errorf("fetch moved %d entities, want the %d stored as https://smartdatamodels.org/dataModel.Environment/AirQualityObserved", in.Usage.Entities, len(es))
	}
}
