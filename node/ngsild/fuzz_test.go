package ngsild

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/piprate/json-gold/ld"
)

// coreTermContext builds the core-only term context without a store, so the
// fuzz body stays pure and fast.
func coreTermContext(t testing.TB) *termContext {
	t.Helper()
	var doc any
	if err := json.Unmarshal(coreContextDoc, &doc); err != nil {
		t.Fatal(err)
	}
	active, err := ld.NewContext(nil, nil).Parse(doc.(map[string]any)["@context"])
	if err != nil {
		t.Fatal(err)
	}
	return buildTermContext(active)
}

// FuzzParseEntity feeds request bodies through the entity parser and the
// storage encoding: no input may panic, and an entity that is accepted must
// survive the stored encoding unchanged.
func FuzzParseEntity(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "smart-data-models", "*", "*.jsonld"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, e := range fixture {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"urn:x:1","type":"T","p":[{"type":"Property","value":1,"datasetId":"urn:d:1"},{"value":2}],"l":{"languageMap":{"en":"x"}}}`))
	f.Add([]byte(`{"id":"urn:x:1","type":["A","B"],"r":{"type":"Relationship","object":["urn:a","urn:b"],"observedAt":"2024-01-01T00:00:00Z"}}`))
	aqo, _ := json.Marshal(aqoEntity(rand.New(rand.NewPCG(1, 1)), 1))
	f.Add(aqo)
	f.Add([]byte(`{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1,"value":2}}`))
	f.Add([]byte(`{"id":"urn:x:1","type":"T","p":{"type":"Property","value":null},"r":{"type":"Relationship","object":"x"}}`))
	f.Add([]byte(`{"id":"urn:x:1","type":"T","g":{"type":"GeoProperty","value":{"type":"Point","coordinates":[1]}},"p":{"type":"Property","value":1,"observedAt":"x"}}`))
	tc := coreTermContext(f)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		// The plain-shape decoder (bodydecode.go) may only accept what
		// the generic one does, and must make the same entity.
		fast, ferr := decodeBodyEntity(body, tc, now)
		if ferr != nil && ferr != errBodyShape {
			t.Fatalf("plain-shape decoder failed with %v, not errBodyShape", ferr)
		}
		m, err := ParseEntity(body)
		if err != nil {
			if ferr == nil {
				t.Fatalf("plain-shape decoder accepted a body the parser rejects (%v)", err)
			}
			return
		}
		e, err := decodeEntity(m, tc, now, true)
		if err != nil {
			if ferr == nil {
				t.Fatalf("plain-shape decoder accepted an entity the generic decoder rejects (%v)", err)
			}
			return
		}
		if ferr == nil && !reflect.DeepEqual(fast, e) {
			t.Fatalf("plain-shape decoder made another entity:\n%s\n%s", appendEntity(nil, fast), appendEntity(nil, e))
		}
		stored := packEntity(e)
		var back Entity
		if err := decodeEntityRecord(stored, &back); err != nil {
			t.Fatalf("stored form does not decode: %v\n%s", err, appendEntity(nil, e))
		}
		for _, f := range []format{normalized, concise} {
			want := e.render(tc, renderOpts{format: f, sysAttrs: true})
			got := back.render(tc, renderOpts{format: f, sysAttrs: true})
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("format %d changed through storage:\n%v\n%v", f, want, got)
			}
		}
		_ = indexKeys(e, fnv32, map[countKey]int64{}, 1, func(string) bool { return true })
	})
}

// FuzzQuery sends arbitrary query parameters to GET /entities over the
// fixture: the planner, the indexes and the geo code must answer 200 or a
// problem, never panic or fail internally.
func FuzzQuery(f *testing.F) {
	n := newTestNode(f, nil)
	loadFixture(f, n)
	seeds := []struct{ typ, q, georel, geometry, coords string }{
		{"Sensor", `temperature>20;name=="alpha"`, "", "", ""},
		{"", `temperature==18..22|address[city]=="Madrid"`, "near;maxDistance==2000", "Point", "[-3.70,40.42]"},
		{"Room,Road", `!temperature`, "within", "Polygon", "[[[-3.8,40.3],[-3.6,40.3],[-3.6,40.5],[-3.8,40.5],[-3.8,40.3]]]"},
		{"", `installedAt<2024-01-01`, "near;minDistance==10", "Point", "[179.9,89.9]"},
		{"", `p==1`, "intersects", "LineString", "[[-180,-90],[180,90]]"},
	}
	for _, s := range seeds {
		f.Add(s.typ, s.q, s.georel, s.geometry, s.coords)
	}
	f.Fuzz(func(t *testing.T, typ, q, georel, geometry, coords string) {
		v := url.Values{}
		for k, val := range map[string]string{"type": typ, "q": q, "georel": georel, "geometry": geometry, "coordinates": coords} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("limit", "1000")
		tn := *n
		tn.t = t
		rec := tn.do("GET", "/ngsi-ld/v1/entities?"+v.Encode(), nil)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d: %s", v.Encode(), rec.Code, rec.Body.String())
		}
	})
}
