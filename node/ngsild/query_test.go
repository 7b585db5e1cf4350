package ngsild

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// fixture is a small city: sensors, a room, a road and a district, in
// normalized form under the core context (names fall back to its @vocab).
var fixture = []map[string]any{
	{
		"id": "urn:ngsi-ld:Sensor:a", "type": "Sensor",
		"temperature": map[string]any{"type": "Property", "value": 21.5, "observedAt": "2024-05-01T10:00:00Z", "unitCode": "CEL",
			"accuracy": map[string]any{"type": "Property", "value": 0.5}},
		"name":         map[string]any{"type": "Property", "value": "alpha"},
		"status":       map[string]any{"type": "Property", "value": "ok"},
		"address":      map[string]any{"type": "Property", "value": map[string]any{"city": "Madrid", "zip": "28001"}},
		"installedAt":  map[string]any{"type": "Property", "value": map[string]any{"@type": "DateTime", "@value": "2023-01-10T08:00:00Z"}},
		"opensAt":      map[string]any{"type": "Property", "value": "08:00:00Z"},
		"controlledBy": map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Device:1"},
		"location":     map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{-3.70, 40.42}}},
	},
	{
		"id": "urn:ngsi-ld:Sensor:b", "type": "Sensor",
		"temperature":  map[string]any{"type": "Property", "value": 18.0},
		"name":         map[string]any{"type": "Property", "value": "beta"},
		"status":       map[string]any{"type": "Property", "value": "fault"},
		"address":      map[string]any{"type": "Property", "value": map[string]any{"city": "Barcelona"}},
		"installedAt":  map[string]any{"type": "Property", "value": map[string]any{"@type": "DateTime", "@value": "2024-06-01T00:00:00Z"}},
		"opensAt":      map[string]any{"type": "Property", "value": "10:00:00Z"},
		"controlledBy": map[string]any{"type": "Relationship", "object": "urn:ngsi-ld:Device:2"},
		"location":     map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Point", "coordinates": []any{2.17, 41.39}}},
	},
	{
		"id": "urn:ngsi-ld:Room:c", "type": "Room",
		"temperature": map[string]any{"type": "Property", "value": 25.0},
		"name":        map[string]any{"type": "Property", "value": "gamma"},
		"address":     map[string]any{"type": "Property", "value": map[string]any{"city": "Madrid"}},
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "Polygon", "coordinates": []any{
			[]any{[]any{-3.71, 40.41}, []any{-3.69, 40.41}, []any{-3.69, 40.43}, []any{-3.71, 40.43}, []any{-3.71, 40.41}},
		}}},
	},
	{
		"id": "urn:ngsi-ld:Road:d", "type": "Road",
		"name": map[string]any{"type": "Property", "value": "delta"},
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "LineString", "coordinates": []any{
			[]any{-3.75, 40.40}, []any{-3.65, 40.45},
		}}},
	},
	{
		"id": "urn:ngsi-ld:District:e", "type": []any{"District", "Sensor"},
		"name": map[string]any{"type": "Property", "value": "epsilon"},
		"location": map[string]any{"type": "GeoProperty", "value": map[string]any{"type": "MultiPolygon", "coordinates": []any{
			[]any{[]any{[]any{2.30, 48.85}, []any{2.40, 48.85}, []any{2.40, 48.90}, []any{2.30, 48.90}, []any{2.30, 48.85}}},
			[]any{[]any{[]any{2.50, 48.85}, []any{2.60, 48.85}, []any{2.60, 48.90}, []any{2.50, 48.90}, []any{2.50, 48.85}}},
		}}},
	},
}

func loadFixture(t testing.TB, n *testNode) {
	t.Helper()
	for _, e := range fixture {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", e), http.StatusCreated)
	}
}

func short(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id[len(id)-1:])
	}
	sort.Strings(out)
	return out
}

// TestQueryLanguage runs one query per construct of the NGSI-LD query
// language (ETSI GS CIM 009 clause 4.9) through GET /entities.
func TestQueryLanguage(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	tests := []struct {
		name, q string
		want    []string
	}{
		{"clause4.9/equal-number", `temperature==21.5`, []string{"a"}},
		{"clause4.9/unequal", `temperature!=21.5`, []string{"b", "c"}},
		{"clause4.9/greater", `temperature>20`, []string{"a", "c"}},
		{"clause4.9/greater-or-equal", `temperature>=21.5`, []string{"a", "c"}},
		{"clause4.9/less", `temperature<20`, []string{"b"}},
		{"clause4.9/less-or-equal", `temperature<=21.5`, []string{"a", "b"}},
		{"clause4.9/range", `temperature==18..22`, []string{"a", "b"}},
		{"clause4.9/value-list", `name=="alpha","beta"`, []string{"a", "b"}},
		{"clause4.9/equal-string", `status=="fault"`, []string{"b"}},
		{"clause4.9/pattern", `name~=^(al|ga)`, []string{"a", "c"}},
		{"clause4.9/not-pattern", `name!~=a$`, []string{"e"}},
		{"clause4.9/and", `status=="ok";temperature>20`, []string{"a"}},
		{"clause4.9/or", `status=="fault"|name=="gamma"`, []string{"b", "c"}},
		{"clause4.9/parentheses", `(status=="ok"|status=="fault");temperature<20`, []string{"b"}},
		{"clause4.9/sub-attribute", `temperature.accuracy==0.5`, []string{"a"}},
		{"clause4.9/compound-key", `address[city]=="Madrid"`, []string{"a", "c"}},
		{"clause4.9/metadata-observedAt", `temperature.observedAt>=2024-01-01T00:00:00Z`, []string{"a"}},
		{"clause4.9/metadata-unitCode", `temperature.unitCode=="CEL"`, []string{"a"}},
		{"clause4.9/date-time", `installedAt>2024-01-01T00:00:00Z`, []string{"b"}},
		{"clause4.9/date", `installedAt<2024-01-01`, []string{"a"}},
		{"clause4.9/time", `opensAt<09:00:00Z`, []string{"a"}},
		{"clause4.9/relationship-uri", `controlledBy==urn:ngsi-ld:Device:1`, []string{"a"}},
		{"clause4.9/exists", `temperature`, []string{"a", "b", "c"}},
		{"clause4.9/not-exists", `!temperature`, []string{"d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := n.do("GET", "/ngsi-ld/v1/entities?q="+url.QueryEscape(tt.q), nil)
			wantStatus(t, rec, http.StatusOK)
			if got := short(ids(t, rec)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("q=%s found %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

// TestGeoQueries runs one geo-query per relation and geometry type (clause
// 4.10) through GET /entities.
func TestGeoQueries(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	madrid := `[[[-3.8,40.3],[-3.6,40.3],[-3.6,40.5],[-3.8,40.5],[-3.8,40.3]]]`
	tests := []struct {
		name, georel, geometry, coords string
		want                           []string
	}{
		{"clause4.10/near-maxDistance", "near;maxDistance==2000", "Point", `[-3.70,40.42]`, []string{"a", "c", "d"}},
		{"clause4.10/near-minDistance", "near;minDistance==100000", "Point", `[-3.70,40.42]`, []string{"b", "e"}},
		{"clause4.10/within-polygon", "within", "Polygon", madrid, []string{"a", "c", "d"}},
		{"clause4.10/within-multipolygon", "within", "MultiPolygon",
			`[` + madrid + `,[[[2.0,41.3],[2.3,41.3],[2.3,41.5],[2.0,41.5],[2.0,41.3]]]]`, []string{"a", "b", "c", "d"}},
		{"clause4.10/contains-point", "contains", "Point", `[-3.705,40.415]`, []string{"c"}},
		{"clause4.10/intersects-linestring", "intersects", "LineString", `[[-3.72,40.418],[-3.68,40.418]]`, []string{"c", "d"}},
		{"clause4.10/intersects-point-multipolygon", "intersects", "Point", `[2.55,48.87]`, []string{"e"}},
		{"clause4.10/equals-point", "equals", "Point", `[2.17,41.39]`, []string{"b"}},
		{"clause4.10/disjoint", "disjoint", "Polygon", madrid, []string{"b", "e"}},
		{"clause4.10/overlaps", "overlaps", "Polygon", `[[[-3.70,40.40],[-3.60,40.40],[-3.60,40.44],[-3.70,40.44],[-3.70,40.40]]]`, []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "/ngsi-ld/v1/entities?georel=" + url.QueryEscape(tt.georel) + "&geometry=" + tt.geometry +
				"&coordinates=" + url.QueryEscape(tt.coords)
			rec := n.do("GET", target, nil)
			wantStatus(t, rec, http.StatusOK)
			if got := short(ids(t, rec)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s %s %s found %v, want %v", tt.georel, tt.geometry, tt.coords, got, tt.want)
			}
		})
	}
}

// TestQuerySelectors covers type, id, idPattern, attrs and combinations
// (clause 6.4.3.2).
func TestQuerySelectors(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	tests := []struct {
		name, query string
		want        []string
	}{
		{"type", "type=Sensor", []string{"a", "b", "e"}},
		{"type-list", "type=Room,Road", []string{"c", "d"}},
		{"type-or", "type=Room|District", []string{"c", "e"}},
		{"id-list", "id=urn:ngsi-ld:Sensor:a,urn:ngsi-ld:Road:d", []string{"a", "d"}},
		{"id-and-type", "id=urn:ngsi-ld:Sensor:a,urn:ngsi-ld:Road:d&type=Road", []string{"d"}},
		{"idPattern", "idPattern=" + url.QueryEscape("^urn:ngsi-ld:(Room|Road):"), []string{"c", "d"}},
		{"attrs-selects", "attrs=status", []string{"a", "b"}},
		{"q-unescaped-semicolon", `q=status=="ok";temperature>20`, []string{"a"}},
		{"type-and-q-and-geo", "type=Sensor&q=" + url.QueryEscape("temperature>10") + "&georel=" + url.QueryEscape("near;maxDistance==1000") +
			"&geometry=Point&coordinates=" + url.QueryEscape("[-3.70,40.42]"), []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := n.do("GET", "/ngsi-ld/v1/entities?"+tt.query, nil)
			wantStatus(t, rec, http.StatusOK)
			if got := short(ids(t, rec)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s found %v, want %v", tt.query, got, tt.want)
			}
		})
	}
}

// TestPagination checks limit, offset, count and NGSILD-Results-Count
// (clause 5.5.9 and 6.3.13).
func TestPagination(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	var all []string
	for off := 0; off < 6; off += 2 {
		rec := n.do("GET", "/ngsi-ld/v1/entities?q=name&limit=2&count=true&offset="+strconv.Itoa(off), nil)
		wantStatus(t, rec, http.StatusOK)
		if c := rec.Header().Get("NGSILD-Results-Count"); c != "5" {
			t.Errorf("offset %d: NGSILD-Results-Count %q, want 5", off, c)
		}
		page := ids(t, rec)
		if want := min(2, 5-off); len(page) != want {
			t.Errorf("offset %d: %d entities, want %d", off, len(page), want)
		}
		all = append(all, page...)
	}
	if !sort.StringsAreSorted(all) || len(all) != 5 {
		t.Errorf("pages %v are not the 5 entities in id order", all)
	}
	rec := n.do("GET", "/ngsi-ld/v1/entities?type=Sensor&limit=0&count=true", nil)
	wantStatus(t, rec, http.StatusOK)
	if c := rec.Header().Get("NGSILD-Results-Count"); c != "3" || len(ids(t, rec)) != 0 {
		t.Errorf("limit=0&count=true: count %q, body %s; want 3 and []", c, rec.Body.String())
	}
	rec = n.do("GET", "/ngsi-ld/v1/entities?type=Sensor", nil)
	if c := rec.Header().Get("NGSILD-Results-Count"); c != "" {
		t.Errorf("count header %q without count=true", c)
	}
}

// TestPageLinks checks the Link headers of a page of GET /entities
// results: rel="next" while results follow, rel="prev" after the first
// page, both repeating the query's other parameters, beside the @context
// link; following next from the first page visits every match once.
func TestPageLinks(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	target := "/ngsi-ld/v1/entities?q=name&limit=2"
	var all []string
	for pages := 0; target != ""; pages++ {
		if pages > 5 {
			t.Fatal("next links never end")
		}
		rec := n.do("GET", target, nil)
		wantStatus(t, rec, http.StatusOK)
		if !strings.Contains(strings.Join(rec.Header().Values("Link"), "\n"), jsonldContextRel) {
			t.Errorf("%s: the @context link is gone: %v", target, rec.Header().Values("Link"))
		}
		if prev := pageLink(rec, "prev"); (pages == 0) != (prev == "") || prev != "" && !strings.Contains(prev, "q=name") {
			t.Errorf("page %d: prev link %q", pages, prev)
		}
		all = append(all, ids(t, rec)...)
		target = pageLink(rec, "next")
		if target != "" && !strings.Contains(target, "q=name") {
			t.Errorf("next link %q lost the query", target)
		}
	}
	if len(all) != 5 || !sort.StringsAreSorted(all) {
		t.Errorf("pages through next: %v, want the 5 matches once each", all)
	}
	// A page that holds every match has no next link.
	if rec := n.do("GET", "/ngsi-ld/v1/entities?q=name&limit=5", nil); pageLink(rec, "next") != "" {
		t.Errorf("next link on the only page: %v", rec.Header().Values("Link"))
	}
}

// pageLink returns the target of rec's Link header with relation rel, ""
// when there is none.
func pageLink(rec *httptest.ResponseRecorder, rel string) string {
	for _, l := range rec.Header().Values("Link") {
		if strings.HasSuffix(l, `rel="`+rel+`"`) {
			return l[strings.IndexByte(l, '<')+1 : strings.IndexByte(l, '>')]
		}
	}
	return ""
}

// TestPageLinksOfSubscriptionsAndTemporal checks the next and prev links
// of GET /subscriptions and GET /temporal/entities, as of GET /entities.
func TestPageLinksOfSubscriptionsAndTemporal(t *testing.T) {
	n := newTestNode(t, nil)
	for i := range 3 {
		subscribe(t, n, map[string]any{"type": "Subscription", "entities": []any{map[string]any{"type": "Sensor"}},
			"notification": map[string]any{"endpoint": map[string]any{"uri": fmt.Sprintf("http://127.0.0.1:9/n%d", i)}}})
		rec := n.do("POST", "/ngsi-ld/v1/temporal/entities", map[string]any{"id": fmt.Sprintf("urn:ngsi-ld:Sensor:p%d", i), "type": "Sensor",
			"t": []any{map[string]any{"type": "Property", "value": i, "observedAt": "2026-01-01T00:00:00Z"}}})
		wantStatus(t, rec, http.StatusCreated)
	}
	for _, first := range []string{"/ngsi-ld/v1/subscriptions?limit=2", "/ngsi-ld/v1/temporal/entities?type=Sensor&limit=2"} {
		rec := n.do("GET", first, nil)
		wantStatus(t, rec, http.StatusOK)
		next := pageLink(rec, "next")
		if next == "" || pageLink(rec, "prev") != "" {
			t.Errorf("%s: links %v, want next and no prev", first, rec.Header().Values("Link"))
			continue
		}
		rec = n.do("GET", next, nil)
		wantStatus(t, rec, http.StatusOK)
		var page []any
		json.Unmarshal(rec.Body.Bytes(), &page)
		if len(page) != 1 || pageLink(rec, "next") != "" || pageLink(rec, "prev") == "" {
			t.Errorf("%s: second page has %d items, links %v; want 1, prev and no next", next, len(page), rec.Header().Values("Link"))
		}
	}
}

// TestLocalListsEverything checks that local=true alone asks for every
// entity, in pages in id order with their count, as a dashboard lists a
// broker's content; a local that is neither true nor false is refused.
func TestLocalListsEverything(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	var all []string
	for off := 0; off < len(fixture); off += 3 {
		rec := n.do("GET", "/ngsi-ld/v1/entities?local=true&limit=3&count=true&offset="+strconv.Itoa(off), nil)
		wantStatus(t, rec, http.StatusOK)
		if c := rec.Header().Get("NGSILD-Results-Count"); c != strconv.Itoa(len(fixture)) {
			t.Errorf("offset %d: NGSILD-Results-Count %q, want %d", off, c, len(fixture))
		}
		all = append(all, ids(t, rec)...)
	}
	var want []string
	for _, e := range fixture {
		want = append(want, e["id"].(string))
	}
	sort.Strings(want)
	if !slices.Equal(all, want) {
		t.Errorf("local=true pages %v, want every entity %v", all, want)
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities?local=yes", nil), BadRequestData)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities?local=false", nil), BadRequestData)
}

// TestIndexesAvoidFullScan checks the planner answers from an index: the
// candidate set for a selective query is far smaller than the store.
func TestIndexesAvoidFullScan(t *testing.T) {
	n := newTestNode(t, func(o *Options) { o.SkipValidation = true })
	bodies := batchBodies(t, 2000, 500, 5)
	for _, b := range bodies {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", b, link(envContext)...), http.StatusCreated)
	}
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tests := []struct {
		name, query string
		max         int
	}{
		{"value-equal", "type=AirQualityObserved&q=" + url.QueryEscape(`stationCode=="S0000042"`), 1},
		{"value-range", "q=" + url.QueryEscape("no2>=10;no2<=11"), 60},
		{"relationship", "q=" + url.QueryEscape("refPointOfInterest==urn:ngsi-ld:PointOfInterest:7"), 2},
		{"spatial", "georel=" + url.QueryEscape("near;maxDistance==200") + "&geometry=Point&coordinates=" + url.QueryEscape("[-3.7,40.45]"), 60},
		{"type", "type=Nothing", 0},
		{"intersection", "type=AirQualityObserved&q=" + url.QueryEscape(`no2==5;airQualityLevel=="moderate"`), 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first query on an attribute starts its value index.
			wantStatus(t, n.do("GET", "/ngsi-ld/v1/entities?limit=1000&"+tt.query, nil, link(envContext)...), http.StatusOK)
			if err := n.svc.waitIndexes(ctx); err != nil {
				t.Fatal(err)
			}
			q, _ := url.ParseQuery(tt.query)
			eq, err := n.svc.parseEntityQuery(q, tc)
			if err != nil {
				t.Fatal(err)
			}
			var cands []string
			err = n.db.View(func(tx *storeTxn) error {
				var err error
				cands, err = n.svc.candidates(tx, eq, n.svc.vidx.isReady)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if cands == nil || len(cands) > tt.max {
				t.Errorf("%s: %d candidates (nil = full scan), want at most %d of 2000", tt.query, len(cands), tt.max)
			}
			rec := n.do("GET", "/ngsi-ld/v1/entities?limit=1000&"+tt.query, nil, link(envContext)...)
			wantStatus(t, rec, http.StatusOK)
			got := len(ids(t, rec))
			if got > len(cands) {
				t.Errorf("%d results from %d candidates", got, len(cands))
			}
			if tt.name == "intersection" && got != len(cands) {
				t.Errorf("equality terms and type should be intersected in the index: %d candidates for %d results", len(cands), got)
			}
		})
	}
}

// TestPostQuery checks POST /entityOperations/query (clause 6.23) answers
// like the equivalent GET.
func TestPostQuery(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	tests := []struct {
		name, body string
		want       []string
	}{
		{"type-and-q", `{"type": "Query", "entities": [{"type": "Sensor"}], "q": "temperature>20"}`, []string{"a"}},
		{"ids", `{"type": "Query", "entities": [{"id": "urn:ngsi-ld:Sensor:a"}, {"id": "urn:ngsi-ld:Road:d"}]}`, []string{"a", "d"}},
		{"geoQ", `{"type": "Query", "geoQ": {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [-3.70, 40.42]}}`, []string{"a", "c", "d"}},
		{"geoQ-text-coordinates", `{"type": "Query", "entities": [{"type": "Sensor"}], "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": "[[[-3.8,40.3],[-3.6,40.3],[-3.6,40.5],[-3.8,40.5],[-3.8,40.3]]]"}}`, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := n.do("POST", "/ngsi-ld/v1/entityOperations/query", tt.body)
			wantStatus(t, rec, http.StatusOK)
			if got := short(ids(t, rec)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/entityOperations/query", `{"type": "Subscription"}`), BadRequestData)
}

// TestValueIndexLifecycle checks a value index appears when a query first
// filters on an attribute, answers correctly before and after, follows
// writes, and survives a restart.
func TestValueIndexLifecycle(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNodeOn(t, db, nil)
	for i := 0; i < 1200; i++ {
		body := fmt.Sprintf(`{"id": "urn:x:%d", "type": "T", "p": %d}`, i, i%100)
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body), http.StatusCreated)
	}
	const p = "https://uri.etsi.org/ngsi-ld/default-context/p"
	query := func(n *testNode) []string {
		rec := n.do("GET", "/ngsi-ld/v1/entities?limit=100&q=p==7", nil)
		wantStatus(t, rec, http.StatusOK)
		return ids(t, rec)
	}
	if got := query(n); len(got) != 12 {
		t.Fatalf("before the index: %d matches, want 12", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.svc.waitIndexes(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.svc.vidx.isReady(p) {
		t.Fatal("no value index after the first query on p")
	}
	wantStatus(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:x:8/attrs", `{"p": 7}`), http.StatusNoContent)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:x:7", nil), http.StatusNoContent)
	if got := query(n); len(got) != 12 || !contains(got, "urn:x:8") || contains(got, "urn:x:7") {
		t.Errorf("after writes: %v", got)
	}
	n.svc.Close()
	db.Close()

	db, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n = newTestNodeOn(t, db, nil)
	if !n.svc.vidx.isReady(p) {
		t.Fatal("value index not ready after restart")
	}
	if got := query(n); len(got) != 12 {
		t.Errorf("after restart: %d matches, want 12", len(got))
	}
}
