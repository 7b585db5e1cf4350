package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/piprate/json-gold/ld"
)

// offlineContexts serves the one remote context CatalogJSONLD's output
// refers to (the ODRL context of the embedded offers) from testdata, so
// the test never touches the network. The DSP copy of the ODRL profile
// context defines the ODRL terms the offers use.
type offlineContexts struct{}

func (offlineContexts) LoadDocument(u string) (*ld.RemoteDocument, error) {
	if u != "http://www.w3.org/ns/odrl.jsonld" {
		return nil, fmt.Errorf("offline loader: no local copy of %s", u)
	}
	b, err := os.ReadFile("testdata/dsp/context/odrl.jsonld")
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

// TestCatalogJSONLDIsDCATAP expands the catalogue document to RDF (as a
// harvester such as ckanext-dcat does) and looks for the DCAT-AP triples a
// harvester maps to its fields.
func TestCatalogJSONLDIsDCATAP(t *testing.T) {
	pub := newTestKey(1)
	c, _ := NewCatalog(pub, nil)
	d, err := ParseDataset(readTestdata(t, "full.json"), "json")
	if err != nil {
		t.Fatal(err)
	}
	d.Dissemination, d.Audience = Federation, nil
	d.Temporal.End = time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	d.Version = "bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea"
	d.Source.Files = []File{{Name: "car-parks.csv", MediaType: "text/csv", Size: 123456,
		Version: "bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea",
		SHA256:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}
	if _, err := c.Put(d, t0); err != nil {
		t.Fatal(err)
	}
	gone := exampleDataset(t)
	gone.ID = "urn:mim:dataset:aarhus:gone"
	c.Put(gone, t0)
	if _, err := c.Retire(gone.ID, t0); err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:8470/api/v1/catalog.jsonld"
	doc, err := CatalogJSONLD(c.All(), base)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	opts := ld.NewJsonLdOptions("")
	opts.DocumentLoader = offlineContexts{}
	opts.Format = "application/n-quads"
	nq, err := ld.NewJsonLdProcessor().ToRDF(v, opts)
	if err != nil {
		t.Fatalf("ToRDF: %v\n%s", err, doc)
	}
	quads := nq.(string)
	ds := "<urn:mim:dataset:aarhus:parking>"
	const (
		dcat = "http://www.w3.org/ns/dcat#"
		dct  = "http://purl.org/dc/terms/"
		rdf  = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
		odrl = "http://www.w3.org/ns/odrl/2/"
	)
	want := []string{
		"<" + base + "> <" + rdf + "type> <" + dcat + "Catalog>",
		"<" + base + "> <" + dcat + "dataset> " + ds,
		ds + " <" + rdf + "type> <" + dcat + "Dataset>",
		ds + " <" + dct + "title> \"Parking occupancy, Aarhus\"",
		ds + " <" + dct + "description> \"Free spaces",
		ds + " <" + dcat + "keyword> \"parking\"",
		ds + " <" + dcat + "keyword> \"mobility\"",
		ds + " <" + dcat + "theme> <" + ThemeIRI + "TRAN>",
		ds + " <" + dct + "publisher> <" + PeerIRI(pub.PeerID()) + ">",
		"<" + PeerIRI(pub.PeerID()) + "> <http://xmlns.com/foaf/0.1/name> \"Aarhus Kommune, Teknik og Miljø\"",
		ds + " <" + dct + "license> <https://data.aarhus.dk/licence>",
		ds + " <" + dct + "conformsTo> <https://smartdatamodels.org/dataModel.Parking/OffStreetParking>",
		ds + " <" + dct + "issued> \"2026-03-01T12:00:00Z\"^^<http://www.w3.org/2001/XMLSchema#dateTime>",
		ds + " <http://www.w3.org/2002/07/owl#versionInfo> \"" + d.Version + "\"",
		"<" + dcat + "bbox> \"POLYGON((10.1 56.1,10.3 56.1,10.3 56.2,10.1 56.2,10.1 56.1))\"^^<http://www.opengis.net/ont/geosparql#wktLiteral>",
		"<http://www.w3.org/ns/locn#geometry> \"{\\\"type\\\":\\\"MultiPolygon\\\"",
		"<" + dcat + "startDate> \"2024-01-01T00:00:00Z\"",
		"<" + dcat + "endDate> \"2026-12-31T00:00:00Z\"",
		ds + " <" + dcat + "distribution> <urn:mim:dataset:aarhus:parking:distribution>",
		"<urn:mim:dataset:aarhus:parking:distribution> <" + dcat + "accessURL> <" + base + ">",
		ds + " <" + dcat + "distribution> <urn:mim:dataset:aarhus:parking:file:car-parks.csv>",
		"<urn:mim:dataset:aarhus:parking:file:car-parks.csv> <" + dct + "title> \"car-parks.csv\"",
		"<urn:mim:dataset:aarhus:parking:file:car-parks.csv> <" + dcat + "mediaType> <https://www.iana.org/assignments/media-types/text/csv>",
		"<urn:mim:dataset:aarhus:parking:file:car-parks.csv> <" + dcat + "byteSize> \"123456\"^^<http://www.w3.org/2001/XMLSchema#nonNegativeInteger>",
		"<http://spdx.org/rdf/terms#checksumValue> \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"^^<http://www.w3.org/2001/XMLSchema#hexBinary>",
		"<http://spdx.org/rdf/terms#algorithm> <http://spdx.org/rdf/terms#checksumAlgorithm_sha256>",
		ds + " <" + odrl + "hasPolicy> <urn:mim:dataset:aarhus:parking:offer:1>",
		"<urn:mim:dataset:aarhus:parking:offer:1> <" + rdf + "type> <" + odrl + "Offer>",
		"<urn:mim:dataset:aarhus:parking:offer:2> <" + odrl + "permission>",
	}
	for _, w := range want {
		if !strings.Contains(quads, w) {
			t.Errorf("RDF lacks %s", w)
		}
	}
	if strings.Contains(quads, "aarhus:gone") {
		t.Errorf("retired dataset is in the catalogue")
	}
	if t.Failed() {
		t.Logf("N-Quads:\n%s", quads)
	}
}
