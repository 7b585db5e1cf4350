package node_test

import (
	"context"
	"testing"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/testnet"
)

func TestDatasetVersionsFollowTheirEntities(t *testing.T) {
	net := testnet.New(t, testnet.Shape{Cities: 1, AgenciesPerCity: 1}, testnet.Options{EntitiesPerModel: 5}).Federate().Seed().Publish()
	m := net.Members[0]
	n := m.Node()
	ctx := context.Background()
	id := testnet.DatasetID(m, "AirQualityObserved")
	recs, err := n.UpdateVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := version(t, n.Catalog().Get, id)
	if first == "" || len(recs) == 0 {
		t.Fatalf("no version built: %d records republished, version %q", len(recs), first)
	}
	// Nothing changed: same version, nothing republished.
	if recs, err := n.UpdateVersions(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("second pass republished %d records (%v), want none", len(recs), err)
	}
	// One reading changes: a new version id.
	ents, err := net.Entities(m, "AirQualityObserved", 1)
	if err != nil {
		t.Fatal(err)
	}
	ents[0]["NO2"] = map[string]any{"type": "Property", "value": 99.0}
	if err := testnet.Upsert(ctx, n.APIURL(), ents); err != nil {
		t.Fatal(err)
	}
	if _, err := n.UpdateVersions(ctx); err != nil {
		t.Fatal(err)
	}
	if second := version(t, n.Catalog().Get, id); second == first || second == "" {
		t.Fatalf("version after a change = %q, want a new one (was %q)", second, first)
	}
}

func version(t *testing.T, get func(string) (catalog.Record, error), id string) string {
	t.Helper()
	r, err := get(id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Dataset.Version
}
