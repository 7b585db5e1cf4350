package node_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/testnet"
)

// TestDescribedFromTheCatalogue: a node finds another member's dataset as
// its publisher describes it in the federation's catalogue, by publisher
// and dataset id, which its transfers check received entities against;
// not under another publisher, nor a dataset nobody published.
func TestDescribedFromTheCatalogue(t *testing.T) {
	net := testnet.New(t, testnet.Shape{Cities: 1, AgenciesPerCity: 2}, testnet.Options{EntitiesPerModel: 2}).Federate().Seed().Publish()
	holder, other := net.Members[0], net.Members[1]
	id := testnet.DatasetID(holder, "AirQualityObserved")
	provider := holder.Node().ID().String()
	net.WaitFor(10*time.Second, "the other member indexes the dataset", func() bool {
		_, ok := other.Node().Described(provider, id)
		return ok
	})
	ds, _ := other.Node().Described(provider, id)
	if ds.ID != id || !slices.ContainsFunc(ds.EntityTypes, func(t string) bool { return catalog.ShortType(t) == "AirQualityObserved" }) {
		t.Errorf("described %s as %s with types %v", id, ds.ID, ds.EntityTypes)
	}
	if _, ok := other.Node().Described(other.Node().ID().String(), id); ok {
		t.Error("the dataset is described under a publisher that did not publish it")
	}
	if _, ok := other.Node().Described(provider, "urn:mim:dataset:nobody:published"); ok {
		t.Error("a dataset nobody published is described")
	}
}
