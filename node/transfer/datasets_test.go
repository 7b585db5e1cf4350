package transfer_test

import (
	"errors"
	"testing"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/transfer"
)

// TestPublishedDatasets: the provider serves only live datasets it
// publishes itself through its catalogue service.
func TestPublishedDatasets(t *testing.T) {
	p := &peer{cfg: initDir(t, "Publisher")}
	p.start(t)
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Test.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.n.Catalog().Publish(ctx, ds); err != nil {
		t.Fatal(err)
	}
	src := transfer.PublishedDatasets{Catalog: p.n.Catalog(), Self: p.id()}
	cases := []struct {
		name, id string
		wantErr  error
	}{
		{"published", datasetID, nil},
		{"unknown", "urn:mim:dataset:test:nope", transfer.ErrUnknownDataset},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := src.Dataset(c.id)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Dataset(%q) error = %v, want %v", c.id, err, c.wantErr)
			}
			if err == nil && got.ID != c.id {
				t.Errorf("Dataset(%q) = %s", c.id, got.ID)
			}
		})
	}
	if _, err := p.n.Catalog().Retire(ctx, datasetID); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Dataset(datasetID); !errors.Is(err, transfer.ErrUnknownDataset) {
		t.Errorf("retired dataset: error = %v, want ErrUnknownDataset", err)
	}
}
