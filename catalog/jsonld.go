package catalog

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// dcatContext is the JSON-LD context of CatalogJSONLD: the DCAT-AP
// namespaces, written out so that a harvester needs to fetch nothing but
// the ODRL context of the embedded policies.
var dcatContext = map[string]any{
	"dcat": "http://www.w3.org/ns/dcat#",
	"dct":  "http://purl.org/dc/terms/",
	"foaf": "http://xmlns.com/foaf/0.1/",
	"locn": "http://www.w3.org/ns/locn#",
	"gsp":  "http://www.opengis.net/ont/geosparql#",
	"odrl": "http://www.w3.org/ns/odrl/2/",
	"owl":  "http://www.w3.org/2002/07/owl#",
	"spdx": "http://spdx.org/rdf/terms#",
	"xsd":  "http://www.w3.org/2001/XMLSchema#",
}

// PeerIRI names a publisher (a node) as an RDF resource.
func PeerIRI(peer string) string { return "urn:mim:peer:" + peer }

func dateTime(s string) map[string]any {
	return map[string]any{"@type": "xsd:dateTime", "@value": s}
}

func wktBox(minLon, minLat, maxLon, maxLat float64) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return fmt.Sprintf("POLYGON((%[1]s %[2]s,%[3]s %[2]s,%[3]s %[4]s,%[1]s %[4]s,%[1]s %[2]s))", f(minLon), f(minLat), f(maxLon), f(maxLat))
}

// CatalogJSONLD writes a node's own catalogue as DCAT-AP JSON-LD, the form
// CKAN's DCAT harvester (ckanext-dcat) and other DCAT-AP tools read: a
// dcat:Catalog whose @id is base (the URL the document is served at), with
// one dcat:Dataset per live record (retired ones are left out). Each
// dataset has its title, description, keywords, themes, publisher, spatial
// and temporal coverage, licence, entity types (dct:conformsTo), version
// (owl:versionInfo), a dcat:Distribution pulled through mimnode, one more
// dcat:Distribution per file (FileDistributions), and its offers as
// odrl:hasPolicy.
func CatalogJSONLD(records []Record, base string) ([]byte, error) {
	var datasets []any
	title := "mimnode catalogue"
	var publisher map[string]any
	for _, r := range records {
		if r.Retired {
			continue
		}
		d, err := dcatDataset(r, base)
		if err != nil {
			return nil, err
		}
		datasets = append(datasets, d)
		if publisher == nil {
			publisher = agent(r)
			if n := r.Dataset.Publisher.Name; n != "" {
				title = "Catalogue of " + n
			}
		}
	}
	cat := map[string]any{
		"@context":  dcatContext,
		"@id":       base,
		"@type":     "dcat:Catalog",
		"dct:title": title,
	}
	if publisher != nil {
		cat["dct:publisher"] = publisher
	}
	if len(datasets) > 0 {
		cat["dcat:dataset"] = datasets
	}
	return json.MarshalIndent(cat, "", "  ")
}

func agent(r Record) map[string]any {
	a := map[string]any{"@id": PeerIRI(r.Publisher), "@type": "foaf:Agent", "dct:identifier": r.Publisher}
	if n := r.Dataset.Publisher.Name; n != "" {
		a["foaf:name"] = n
	}
	return a
}

func dcatDataset(r Record, base string) (map[string]any, error) {
	d := r.Dataset
	m := map[string]any{
		"@id":            d.ID,
		"@type":          "dcat:Dataset",
		"dct:identifier": d.ID,
		"dct:title":      d.Title,
		"dct:publisher":  agent(r),
	}
	if d.Description != "" {
		m["dct:description"] = d.Description
	}
	if len(d.Keywords) > 0 {
		m["dcat:keyword"] = d.Keywords
	}
	if len(d.Themes) > 0 {
		var ts []any
		for _, t := range d.Themes {
			ts = append(ts, map[string]any{"@id": ThemeIRI + t})
		}
		m["dcat:theme"] = ts
	}
	if len(d.EntityTypes) > 0 {
		var ts []any
		for _, t := range d.EntityTypes {
			if strings.Contains(t, ":") {
				ts = append(ts, map[string]any{"@id": t})
			}
		}
		if len(ts) > 0 {
			m["dct:conformsTo"] = ts
		}
	}
	if d.Spatial != nil {
		g, err := geometryJSON(d.Spatial)
		if err != nil {
			return nil, fmt.Errorf("encoding spatial of %s: %w", d.ID, err)
		}
		b := d.Spatial.Bound()
		m["dct:spatial"] = map[string]any{
			"@type":         "dct:Location",
			"locn:geometry": map[string]any{"@type": "gsp:geoJSONLiteral", "@value": string(g)},
			"dcat:bbox":     map[string]any{"@type": "gsp:wktLiteral", "@value": wktBox(b.Min[0], b.Min[1], b.Max[0], b.Max[1])},
		}
	}
	if t := d.Temporal; t != nil {
		p := map[string]any{"@type": "dct:PeriodOfTime"}
		if !t.Start.IsZero() {
			p["dcat:startDate"] = dateTime(formatTime(t.Start))
		}
		if !t.End.IsZero() {
			p["dcat:endDate"] = dateTime(formatTime(t.End))
		}
		m["dct:temporal"] = p
	}
	if !d.Issued.IsZero() {
		m["dct:issued"] = dateTime(formatTime(d.Issued))
	}
	if !d.Modified.IsZero() {
		m["dct:modified"] = dateTime(formatTime(d.Modified))
	}
	if d.Version != "" {
		m["owl:versionInfo"] = d.Version
	}
	lic := map[string]any{"@id": LicenceIRI(d.License)}
	m["dct:license"] = lic
	m["dcat:distribution"] = append([]any{map[string]any{
		"@id":            d.ID + ":distribution",
		"@type":          "dcat:Distribution",
		"dct:title":      d.Title + " (mimnode)",
		"dct:format":     DistributionFormat,
		"dct:license":    lic,
		"dcat:accessURL": map[string]any{"@id": base},
	}}, FileDistributions(d, base)...)
	var offers []any
	for _, o := range d.Offers {
		if o.canon == nil {
			continue
		}
		offers = append(offers, json.RawMessage(o.canon))
	}
	if len(offers) > 0 {
		m["odrl:hasPolicy"] = offers
	}
	return m, nil
}

// MediaTypeIRI is the IANA register entry of a media type, the object of
// dcat:mediaType in DCAT-AP.
func MediaTypeIRI(mt string) string { return "https://www.iana.org/assignments/media-types/" + mt }

// FileDistributions describes each file of d (Source.Files) as a
// dcat:Distribution: its name as title, dcat:mediaType, dcat:byteSize, the
// SHA2-256 of its bytes as spdx:checksum and its own manifest CID as
// dct:identifier. The bytes are pulled through mimnode under an agreement,
// like the rest of the dataset's data, so the access URL is the catalogue's.
func FileDistributions(d Dataset, base string) []any {
	if d.Source == nil {
		return nil
	}
	var out []any
	for _, f := range d.Source.Files {
		x := map[string]any{
			"@id":            d.ID + ":file:" + f.Name,
			"@type":          "dcat:Distribution",
			"dct:title":      f.Name,
			"dct:format":     DistributionFormat,
			"dct:license":    map[string]any{"@id": LicenceIRI(d.License)},
			"dcat:accessURL": map[string]any{"@id": base},
			"dcat:byteSize":  map[string]any{"@type": "xsd:nonNegativeInteger", "@value": strconv.FormatInt(f.Size, 10)},
		}
		if f.MediaType != "" {
			x["dcat:mediaType"] = map[string]any{"@id": MediaTypeIRI(f.MediaType)}
		}
		if f.SHA256 != "" {
			x["spdx:checksum"] = map[string]any{
				"@type":              "spdx:Checksum",
				"spdx:algorithm":     map[string]any{"@id": "spdx:checksumAlgorithm_sha256"},
				"spdx:checksumValue": map[string]any{"@type": "xsd:hexBinary", "@value": f.SHA256},
			}
		}
		if f.Version != "" {
			x["dct:identifier"] = f.Version
		}
		out = append(out, x)
	}
	return out
}
