package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/mimnode/mimnode/policy"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIssueExampleAccepted checks the dataset file quoted in issue 6, as
// written, and its TOML equivalent: both parse to the same description.
func TestIssueExampleAccepted(t *testing.T) {
	fromJSON, err := ParseDataset(readTestdata(t, "air-quality.json"), "json")
	if err != nil {
		t.Fatalf("ParseDataset(air-quality.json): %v", err)
	}
	fromTOML, err := ParseDataset(readTestdata(t, "air-quality.toml"), "toml")
	if err != nil {
		t.Fatalf("ParseDataset(air-quality.toml): %v", err)
	}
	a, _ := json.Marshal(fromJSON)
	b, _ := json.Marshal(fromTOML)
	if string(a) != string(b) {
		t.Errorf("JSON and TOML differ:\n json %s\n toml %s", a, b)
	}
	d := fromJSON
	if d.ID != "urn:mim:dataset:aarhus:air-quality" || d.Title != "Air quality observations, Aarhus" {
		t.Errorf("id/title = %q/%q", d.ID, d.Title)
	}
	if len(d.Keywords) != 3 || d.Themes[0] != "ENVI" || d.License != "CC-BY-4.0" || d.Dissemination != Federation {
		t.Errorf("keywords/themes/license/dissemination wrong: %+v", d)
	}
	bb, ok := d.Bound()
	if !ok || bb != (orb.Bound{Min: orb.Point{10, 56}, Max: orb.Point{10.4, 56.3}}) {
		t.Errorf("Bound() = %v, %v; want [10 56]-[10.4 56.3]", bb, ok)
	}
	if len(d.Offers) != 1 || d.Offers[0].Template != "research-only" || len(d.Offers[0].Policy.Permissions) == 0 {
		t.Errorf("offers = %+v, want the research-only template resolved", d.Offers)
	}
	v, ok := d.EffectiveView()
	if !ok || len(v.EntityTypes) != 1 || !strings.HasSuffix(v.EntityTypes[0], "/AirQualityObserved") {
		t.Errorf("EffectiveView() = %+v, %v; want a view of AirQualityObserved", v, ok)
	}
}

// TestMarshalRoundTrip checks that what MarshalJSON writes reads back the same.
func TestMarshalRoundTrip(t *testing.T) {
	d, err := ParseDataset(readTestdata(t, "full.json"), "json")
	if err != nil {
		t.Fatalf("ParseDataset(full.json): %v", err)
	}
	a, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseDataset(a, "json")
	if err != nil {
		t.Fatalf("ParseDataset(Marshal(d)): %v\n%s", err, a)
	}
	b, _ := json.Marshal(e)
	if string(a) != string(b) {
		t.Errorf("round trip changed the dataset:\n%s\n%s", a, b)
	}
}

// edit returns the issue example with one top-level field replaced (or
// removed, when value is "-").
func edit(t *testing.T, field, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(readTestdata(t, "air-quality.json"), &m); err != nil {
		t.Fatal(err)
	}
	if value == "-" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(value)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("edit %s=%s: %v", field, value, err)
	}
	return b
}

func TestInvalidDatasetsNameTheField(t *testing.T) {
	long := `"` + strings.Repeat("x", MaxTitle+1) + `"`
	cases := []struct {
		name, field, value string
		wantField          string
	}{
		{"missing id", "id", "-", "id"},
		{"id not a URN", "id", `"air-quality"`, "id"},
		{"id with spaces", "id", `"urn:mim:air quality"`, "id"},
		{"id wrong type", "id", `42`, "id"},
		{"missing title", "title", "-", "title"},
		{"blank title", "title", `"   "`, "title"},
		{"title too long", "title", long, "title"},
		{"title with control character", "title", `"air\u0007quality"`, "title"},
		{"keywords not an array", "keywords", `"air"`, "keywords"},
		{"empty keyword", "keywords", `["air", ""]`, "keywords[1]"},
		{"duplicate keyword", "keywords", `["NO2", "no2"]`, "keywords[1]"},
		{"unknown theme", "themes", `["ENVIRONMENT"]`, "themes[0]"},
		{"entity type with spaces", "entityTypes", `["Air Quality"]`, "entityTypes[0]"},
		{"spatial not an object", "spatial", `"Aarhus"`, "spatial"},
		{"spatial feature", "spatial", `{"type":"Feature","geometry":null,"properties":{}}`, "spatial.geometry"},
		{"spatial unknown type", "spatial", `{"type":"Circle","coordinates":[10,56]}`, "spatial.type"},
		{"spatial open ring", "spatial", `{"type":"Polygon","coordinates":[[[10,56],[10.4,56],[10.4,56.3],[10,56.3]]]}`, "spatial.coordinates[0]"},
		{"spatial latitude out of range", "spatial", `{"type":"Point","coordinates":[10,95]}`, "spatial.coordinates"},
		{"spatial position of one number", "spatial", `{"type":"Point","coordinates":[10]}`, "spatial.coordinates"},
		{"spatial without coordinates", "spatial", `{"type":"Point"}`, "spatial.coordinates"},
		{"temporal end before start", "temporal", `{"start":"2026-02-01T00:00:00Z","end":"2026-01-01T00:00:00Z"}`, "temporal.end"},
		{"temporal bad date", "temporal", `{"start":"yesterday"}`, "temporal.start"},
		{"temporal empty", "temporal", `{}`, "temporal"},
		{"missing license", "license", "-", "license"},
		{"unknown licence id", "license", `"CC-BY-5.0"`, "license"},
		{"no offers", "offers", `[]`, "offers"},
		{"unknown template", "offers", `[{"template":"free-for-all"}]`, "offers[0]"},
		{"template missing param", "offers", `[{"template":"agency-internal"}]`, "offers[0]"},
		{"template unknown param", "offers", `[{"template":"agency-internal","params":{"city":"x"}}]`, "offers[0].params.city"},
		{"inline policy not ODRL", "offers", `[{"permission":"everything"}]`, "offers[0]"},
		{"inline policy not understood", "offers", `[{"@context":"http://www.w3.org/ns/odrl.jsonld","@type":"Offer","permission":[{"action":"use","constraint":[{"leftOperand":"weather","operator":"eq","rightOperand":"sunny"}]}]}]`, "offers[0]"},
		{"inline policy for another dataset", "offers", `[{"@context":"http://www.w3.org/ns/odrl.jsonld","@type":"Offer","target":"urn:other","permission":[{"action":"use"}]}]`, "offers[0]"},
		{"offer not an object", "offers", `["research-only"]`, "offers[0]"},
		{"unknown dissemination", "dissemination", `"public"`, "dissemination"},
		{"restricted without audience", "dissemination", `"restricted"`, "audience"},
		{"audience without restricted", "audience", `["12D3KooWabc"]`, "audience"},
		{"bad price type", "priceModel", `{"type":"cheap"}`, "priceModel.type"},
		{"fixed price without amount", "priceModel", `{"type":"fixed","currency":"EUR"}`, "priceModel.amount"},
		{"price with bad currency", "priceModel", `{"type":"fixed","amount":10,"currency":"euro"}`, "priceModel.currency"},
		{"free price with amount", "priceModel", `{"type":"free","amount":3}`, "priceModel"},
		{"subscription without period", "priceModel", `{"type":"subscription","amount":10,"currency":"EUR"}`, "priceModel.period"},
		{"sla availability over 100", "sla", `{"availability":101}`, "sla.availability"},
		{"sla bad update frequency", "sla", `{"updateFrequency":"hourly"}`, "sla.updateFrequency"},
		{"sla unknown field", "sla", `{"uptime":99}`, "sla.uptime"},
		{"hidden file name", "source", `{"view":{"q":"NO2>40"},"files":[{"name":".a.csv"}]}`, "source.files[0].name"},
		{"file checksum not hex", "source", `{"files":[{"name":"a.csv","sha256":"abc"}]}`, "source.files[0].sha256"},
		{"source empty", "source", `{}`, "source"},
		{"file name with directory", "source", `{"files":[{"name":"../etc/passwd"}]}`, "source.files[0].name"},
		{"view area invalid", "source", `{"view":{"area":{"type":"Point","coordinates":[200,0]}}}`, "source.view.area.coordinates"},
		{"version not a CID", "version", `"v2"`, "version"},
		{"issued not a date", "issued", `"2026"`, "issued"},
		{"unknown field", "colour", `"blue"`, "colour"},
		{"publisher unknown field", "publisher", `{"peerId":"12D3KooWabc","email":"x@y"}`, "publisher.email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDataset(edit(t, tc.field, tc.value), "json")
			if err == nil {
				t.Fatalf("ParseDataset accepted %s=%s", tc.field, tc.value)
			}
			if !errors.Is(err, ErrInvalidDataset) {
				t.Errorf("error %v does not wrap ErrInvalidDataset", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if fe.Field != tc.wantField {
				t.Errorf("ParseDataset(%s=%s) names field %q, want %q (error: %v)", tc.field, tc.value, fe.Field, tc.wantField, err)
			}
		})
	}
}

func TestInvalidDocuments(t *testing.T) {
	cases := []struct {
		name, format, doc string
	}{
		{"not JSON", "json", `{"id": `},
		{"JSON array", "json", `[]`},
		{"two JSON values", "json", `{"id":"urn:a:b"} {}`},
		{"not TOML", "toml", `id = `},
		{"unknown format", "yaml", `id: x`},
		{"too large", "json", `{"description":"` + strings.Repeat("x", MaxDatasetSize) + `"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseDataset([]byte(tc.doc), tc.format); err == nil {
				t.Errorf("ParseDataset(%.40q, %q) accepted it", tc.doc, tc.format)
			}
		})
	}
}

func TestTOMLErrorsNameTheField(t *testing.T) {
	doc := strings.Replace(string(readTestdata(t, "air-quality.toml")), `themes = ["ENVI"]`, `themes = ["ENVI"]`+"\nlicence = \"x\"", 1)
	_, err := ParseDataset([]byte(doc), "toml")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "licence" {
		t.Errorf("ParseDataset(TOML with licence typo) = %v, want an error naming licence", err)
	}
}

// A template offer marked "manual" asks for a person's approval: its
// policy carries policy.ManualApproval, and the dataset written back
// keeps the mark.
func TestManualTemplateOffer(t *testing.T) {
	d, err := ParseDataset(edit(t, "offers", `[{"template":"research-only","manual":true},{"template":"open-data"}]`), "json")
	if err != nil {
		t.Fatal(err)
	}
	if v := string(d.Offers[0].Policy.Extra[policy.ManualApproval]); !d.Offers[0].Manual || v != "true" {
		t.Errorf("manual offer: Manual %v, %s = %q; want true and true", d.Offers[0].Manual, policy.ManualApproval, v)
	}
	if _, ok := d.Offers[1].Policy.Extra[policy.ManualApproval]; ok || d.Offers[1].Manual {
		t.Errorf("an offer without \"manual\" asks for approval: %+v", d.Offers[1])
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseDataset(b, "json")
	if err != nil || !e.Offers[0].Manual || e.Offers[1].Manual {
		t.Errorf("written back and read again: %v, offers %+v\n%s", err, e.Offers, b)
	}
}
