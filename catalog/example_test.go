package catalog_test

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/policy"
)

// key is a stand-in for the node's libp2p key.
type key struct{ priv ed25519.PrivateKey }

func (k key) PeerID() string                  { return "12D3KooWExamplePublisher" }
func (k key) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// Publish the issue's example dataset and find it in the federated index.
func Example() {
	file, err := os.ReadFile("testdata/air-quality.json")
	if err != nil {
		panic(err)
	}
	d, err := catalog.ParseDataset(file, "json")
	if err != nil {
		fmt.Println(err)
		return
	}
	cat, _ := catalog.NewCatalog(key{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec, err := cat.Put(d, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("published", rec.Dataset.ID, "at seq", rec.Seq)

	// What a researcher in the federation gets, and finds.
	viewer := catalog.Viewer{PeerID: "12D3KooWResearcher", Role: policy.RoleResearcher, Now: now}
	index := catalog.NewIndex()
	for _, r := range cat.Since(0, viewer) {
		index.Put(r)
	}
	bbox, _ := catalog.ParseBBox("10.1,56.1,10.2,56.2")
	res, _ := index.Search(catalog.Query{Text: "NO2 readings", Type: "AirQualityObserved", BBox: &bbox})
	for _, h := range res.Hits {
		fmt.Printf("found %q under %d offer(s)\n", h.Record.Dataset.Title, len(h.Record.Dataset.Offers))
	}
	// Output:
	// published urn:mim:dataset:aarhus:air-quality at seq 1
	// found "Air quality observations, Aarhus" under 1 offer(s)
}
