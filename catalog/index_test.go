package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// rec builds an index record directly (the index neither signs nor
// verifies; the node does that before Put).
func rec(pub, name, id string, seq uint64, f func(d *Dataset)) Record {
	d := Dataset{
		ID: "urn:mim:dataset:" + id, Title: id, License: "CC-BY-4.0",
		Publisher: Publisher{PeerID: pub, Name: name}, Dissemination: Federation,
		Modified: t0.Add(time.Duration(seq) * time.Minute),
	}
	if f != nil {
		f(&d)
	}
	return Record{Dataset: d, Publisher: pub, Seq: seq}
}

func box(minLon, minLat, maxLon, maxLat float64) orb.Polygon {
	return orb.Polygon{orb.Ring{{minLon, minLat}, {maxLon, minLat}, {maxLon, maxLat}, {minLon, maxLat}, {minLon, minLat}}}
}

func testIndex() *Index {
	x := NewIndex()
	x.Put(rec("peerA", "Aarhus Kommune", "aarhus:air-quality", 1, func(d *Dataset) {
		d.Title = "Air quality observations, Aarhus"
		d.Description = "Hourly NO2, PM10 and PM2.5 readings from the city's monitoring stations."
		d.Keywords = []string{"air quality", "NO2", "PM10"}
		d.Themes = []string{"ENVI"}
		d.EntityTypes = []string{"https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"}
		d.Spatial = box(10.0, 56.0, 10.4, 56.3)
	}))
	x.Put(rec("peerA", "Aarhus Kommune", "aarhus:parking", 2, func(d *Dataset) {
		d.Title = "Parking occupancy, Aarhus"
		d.Description = "Free spaces in off-street car parks; air quality is not measured here."
		d.Keywords = []string{"parking"}
		d.Themes = []string{"TRAN"}
		d.EntityTypes = []string{"https://smartdatamodels.org/dataModel.Parking/OffStreetParking"}
		d.Spatial = orb.Point{10.2, 56.15}
		d.License = "ODbL-1.0"
	}))
	x.Put(rec("peerB", "Ville de Lyon", "lyon:air", 1, func(d *Dataset) {
		d.Title = "Qualité de l'air, Lyon"
		d.Description = "NO2 and ozone at twelve stations."
		d.Keywords = []string{"air"}
		d.Themes = []string{"ENVI", "HEAL"}
		d.EntityTypes = []string{"AirQualityObserved"}
		d.Spatial = box(4.7, 45.7, 4.9, 45.8)
	}))
	x.Put(rec("peerB", "Ville de Lyon", "lyon:noise", 2, func(d *Dataset) {
		d.Title = "Noise levels, Lyon"
		d.Description = "Sound pressure from street sensors."
		d.Themes = []string{"ENVI"}
		d.EntityTypes = []string{"https://smartdatamodels.org/dataModel.Environment/NoiseLevelObserved"}
	}))
	return x
}

func ids(r Result) string {
	var s []string
	for _, h := range r.Hits {
		s = append(s, strings.TrimPrefix(h.Record.Dataset.ID, "urn:mim:dataset:"))
	}
	return strings.Join(s, " ")
}

func TestSearch(t *testing.T) {
	x := testIndex()
	aarhus := box(10.1, 56.1, 10.2, 56.2).Bound()
	far := box(-10, -10, -9, -9).Bound()
	cases := []struct {
		name string
		q    Query
		want string
	}{
		{"everything, newest first", Query{}, "aarhus:parking lyon:noise aarhus:air-quality lyon:air"},
		{"text ranks title and keyword matches first", Query{Text: "air quality"}, "aarhus:air-quality lyon:air aarhus:parking"},
		{"plural folded", Query{Text: "observation"}, "aarhus:air-quality"},
		{"entity type words searchable", Query{Text: "noise"}, "lyon:noise"},
		{"theme label searchable", Query{Text: "health"}, "lyon:air"},
		{"no match", Query{Text: "bicycles"}, ""},
		{"stop words only", Query{Text: "the of"}, ""},
		{"type by IRI", Query{Type: "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"}, "aarhus:air-quality"},
		{"type by short name", Query{Type: "AirQualityObserved"}, "aarhus:air-quality lyon:air"},
		{"theme code", Query{Theme: "TRAN"}, "aarhus:parking"},
		{"theme IRI", Query{Theme: ThemeIRI + "HEAL"}, "lyon:air"},
		{"publisher by peer ID", Query{Publisher: "peerB"}, "lyon:noise lyon:air"},
		{"publisher by name", Query{Publisher: "aarhus kommune"}, "aarhus:parking aarhus:air-quality"},
		{"licence SPDX id", Query{License: "ODbL-1.0"}, "aarhus:parking"},
		{"licence IRI", Query{License: "https://spdx.org/licenses/ODbL-1.0"}, "aarhus:parking"},
		{"licence SPDX id in another case", Query{License: "odbl-1.0"}, "aarhus:parking"},
		{"type in another case", Query{Type: "airqualityobserved"}, "aarhus:air-quality lyon:air"},
		{"bbox intersects polygon and point", Query{BBox: &aarhus}, "aarhus:parking aarhus:air-quality"},
		{"bbox far away", Query{BBox: &far}, ""},
		{"text and filters together", Query{Text: "air", Publisher: "peerA", Theme: "ENVI"}, "aarhus:air-quality"},
		{"limit", Query{Limit: 2}, "aarhus:parking lyon:noise"},
		{"offset", Query{Limit: 2, Offset: 2}, "aarhus:air-quality lyon:air"},
		{"offset past the end", Query{Offset: 10}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := x.Search(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(r); got != tc.want {
				t.Errorf("Search(%+v) = %q, want %q", tc.q, got, tc.want)
			}
		})
	}
	r, _ := x.Search(Query{Limit: 1})
	if r.Total != 4 || len(r.Hits) != 1 {
		t.Errorf("Search(limit 1) total %d with %d hits, want 4 with 1", r.Total, len(r.Hits))
	}
}

func TestSearchRejectsBadQueries(t *testing.T) {
	x := testIndex()
	flipped := orb.Bound{Min: orb.Point{10, 57}, Max: orb.Point{11, 56}}
	outside := orb.Bound{Min: orb.Point{170, 0}, Max: orb.Point{190, 1}}
	for _, q := range []Query{{Limit: -1}, {Limit: MaxLimit + 1}, {Offset: -1}, {BBox: &flipped}, {BBox: &outside}} {
		if _, err := x.Search(q); err == nil {
			t.Errorf("Search(%+v) accepted it", q)
		}
	}
	for _, s := range []string{"", "1,2,3", "a,b,c,d", "10,56,9,57", "0,0,0,91"} {
		if _, err := ParseBBox(s); err == nil {
			t.Errorf("ParseBBox(%q) accepted it", s)
		}
	}
	b, err := ParseBBox("10.0, 56.0,10.4,56.3")
	if err != nil || b != (orb.Bound{Min: orb.Point{10, 56}, Max: orb.Point{10.4, 56.3}}) {
		t.Errorf("ParseBBox = %v, %v", b, err)
	}
}

func TestIndexUpdatesAndRetirements(t *testing.T) {
	x := testIndex()
	newer := rec("peerA", "Aarhus Kommune", "aarhus:parking", 5, func(d *Dataset) { d.Title = "Bicycle parking, Aarhus" })
	if !x.Put(newer) {
		t.Fatal("Put(newer) = false")
	}
	if r, _ := x.Search(Query{Text: "occupancy"}); r.Total != 0 {
		t.Errorf("old title still found after an update: %s", ids(r))
	}
	if r, _ := x.Search(Query{Text: "bicycle"}); ids(r) != "aarhus:parking" {
		t.Errorf("new title not found: %q", ids(r))
	}
	older := rec("peerA", "Aarhus Kommune", "aarhus:parking", 3, func(d *Dataset) { d.Title = "Stale" })
	if x.Put(older) {
		t.Error("Put(older seq) changed the index")
	}
	retire := rec("peerA", "Aarhus Kommune", "aarhus:parking", 6, nil)
	retire.Retired = true
	if !x.Put(retire) || x.Len() != 3 {
		t.Fatalf("after retirement Len = %d, want 3", x.Len())
	}
	if r, _ := x.Search(Query{Text: "bicycle"}); r.Total != 0 {
		t.Errorf("retired dataset still found")
	}
	if x.Put(newer) {
		t.Error("a record older than the retirement brought the dataset back")
	}
	if seq, ok := x.Seq(retire.Key()); !ok || seq != 6 {
		t.Errorf("Seq(retired) = %d, %v; want 6", seq, ok)
	}
	// Same dataset id from another publisher is another dataset.
	x.Put(rec("peerB", "Ville de Lyon", "aarhus:air-quality", 1, nil))
	if x.Len() != 4 {
		t.Errorf("Len = %d, want 4", x.Len())
	}
	if !x.Remove(Key{"peerB", "urn:mim:dataset:lyon:noise"}) || x.Len() != 3 {
		t.Errorf("Remove failed, Len = %d", x.Len())
	}
	if r, _ := x.Search(Query{Text: "noise"}); r.Total != 0 {
		t.Errorf("removed dataset still found")
	}
}

// TestIndexByID: a dataset id names the datasets of every publisher that
// uses it, follows updates and removals, and forgets retired datasets.
func TestIndexByID(t *testing.T) {
	x := testIndex()
	pubs := func(id string) string {
		var out []string
		for _, r := range x.ByID(id) {
			out = append(out, r.Publisher+"@"+strconv.FormatUint(r.Seq, 10))
		}
		return strings.Join(out, ",")
	}
	id := "urn:mim:dataset:aarhus:air-quality"
	if got := pubs(id); got != "peerA@1" {
		t.Fatalf("ByID(%q) = %s, want peerA@1", id, got)
	}
	x.Put(rec("peerB", "Ville de Lyon", "aarhus:air-quality", 1, nil))
	x.Put(rec("peerA", "Aarhus Kommune", "aarhus:air-quality", 2, nil))
	if got := pubs(id); got != "peerA@2,peerB@1" {
		t.Errorf("ByID after an update and a second publisher = %s, want peerA@2,peerB@1", got)
	}
	gone := rec("peerA", "Aarhus Kommune", "aarhus:air-quality", 3, nil)
	gone.Retired = true
	x.Put(gone)
	if removed := x.Replace("peerB", nil); len(removed) != 3 {
		t.Errorf("Replace(peerB, none) removed %v, want its 3 datasets", removed)
	}
	if got := pubs(id); got != "" {
		t.Errorf("ByID after retirement and removal = %s, want none", got)
	}
	if got := x.ByID("urn:mim:dataset:nowhere"); len(got) != 0 {
		t.Errorf("ByID(unknown) = %d records", len(got))
	}
}

// TestSearchMatchesNaive compares the index with a plain scan over many
// random datasets, updates and queries.
func TestSearchMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"air", "noise", "parking", "traffic", "water", "waste", "bike", "bus", "light", "energy"}
	types := []string{"AirQualityObserved", "NoiseLevelObserved", "ParkingSpot", "TrafficFlowObserved"}
	x := NewIndex()
	all := map[Key]Record{}
	for i := 0; i < 3000; i++ {
		pub := fmt.Sprintf("peer%d", rng.IntN(3)) // at most 900 datasets: one page
		id := fmt.Sprintf("ds%d", rng.IntN(300))
		seq := uint64(i + 1)
		r := rec(pub, "", id, seq, func(d *Dataset) {
			d.Title = words[rng.IntN(len(words))] + " " + words[rng.IntN(len(words))]
			d.Themes = []string{[]string{"ENVI", "TRAN"}[rng.IntN(2)]}
			d.EntityTypes = []string{types[rng.IntN(len(types))]}
			if rng.IntN(2) == 0 {
				lon, lat := rng.Float64()*10, rng.Float64()*10
				d.Spatial = box(lon, lat, lon+0.5, lat+0.5)
			}
		})
		r.Retired = rng.IntN(10) == 0
		x.Put(r)
		if r.Retired {
			delete(all, r.Key())
		} else {
			all[r.Key()] = r
		}
	}
	if x.Len() != len(all) {
		t.Fatalf("Len = %d, want %d", x.Len(), len(all))
	}
	for i := 0; i < 200; i++ {
		q := Query{Limit: MaxLimit}
		if rng.IntN(2) == 0 {
			q.Text = words[rng.IntN(len(words))]
		}
		if rng.IntN(3) == 0 {
			q.Type = types[rng.IntN(len(types))]
		}
		if rng.IntN(3) == 0 {
			q.Publisher = fmt.Sprintf("peer%d", rng.IntN(3))
		}
		if rng.IntN(3) == 0 {
			lon, lat := rng.Float64()*10, rng.Float64()*10
			b := orb.Bound{Min: orb.Point{lon, lat}, Max: orb.Point{lon + 1, lat + 1}}
			q.BBox = &b
		}
		var want []string
		for _, r := range all {
			d := r.Dataset
			// Title words and the entity type's words are searchable.
			text := strings.Fields(d.Title + " " + strings.ToLower(splitCamel(d.EntityTypes[0])))
			if q.Text != "" && !slices.Contains(text, q.Text) {
				continue
			}
			if q.Type != "" && d.EntityTypes[0] != q.Type {
				continue
			}
			if q.Publisher != "" && r.Publisher != q.Publisher {
				continue
			}
			if q.BBox != nil && (d.Spatial == nil || !d.Spatial.Bound().Intersects(*q.BBox)) {
				continue
			}
			want = append(want, r.Publisher+" "+d.ID)
		}
		res, err := x.Search(q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range res.Hits {
			got = append(got, h.Record.Publisher+" "+h.Record.Dataset.ID)
		}
		slices.Sort(want)
		slices.Sort(got)
		if res.Total != len(want) || !slices.Equal(got, want) {
			t.Fatalf("Search(%+v): %d hits (total %d), naive scan finds %d", q, len(got), res.Total, len(want))
		}
	}
}
