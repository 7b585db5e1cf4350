package catalog

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/policy"
	"github.com/paulmach/orb"
)

// benchCorpus builds n datasets shaped like a real federation's: a few
// hundred publishers, Smart Data Models types, titles and descriptions
// drawn from a city-data vocabulary with a Zipf distribution (a few words
// are in most descriptions, most words in few), spatial coverage around
// European cities.
func benchCorpus(n int) *Index {
	rng := rand.New(rand.NewPCG(42, 6))
	topics := []string{"air quality", "noise", "traffic flow", "parking", "weather", "street lights",
		"water quality", "waste containers", "bicycle counts", "bus arrivals", "energy use", "footfall"}
	types := []string{"AirQualityObserved", "NoiseLevelObserved", "TrafficFlowObserved", "ParkingSpot",
		"OffStreetParking", "WeatherObserved", "Streetlight", "WaterQualityObserved", "WasteContainer"}
	cities := []struct {
		name     string
		lon, lat float64
	}{{"Aarhus", 10.2, 56.15}, {"Lyon", 4.85, 45.76}, {"Helsinki", 24.94, 60.17}, {"Porto", -8.61, 41.15},
		{"Gent", 3.72, 51.05}, {"Tallinn", 24.75, 59.44}, {"Bilbao", -2.93, 43.26}, {"Utrecht", 5.12, 52.09}}
	vocab := make([]string, 5000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	copy(vocab, []string{"hourly", "daily", "sensor", "station", "city", "observation", "measurement",
		"open", "real", "time", "historic", "district", "network", "average", "count", "level"})
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocab)-1))
	themes := []string{"ENVI", "TRAN", "REGI", "ENER", "HEAL"}
	x := NewIndex()
	for i := 0; i < n; i++ {
		c := cities[rng.IntN(len(cities))]
		topic := topics[rng.IntN(len(topics))]
		var desc strings.Builder
		for j := 0; j < 25; j++ {
			desc.WriteString(vocab[zipf.Uint64()])
			desc.WriteByte(' ')
		}
		lon, lat := c.lon+rng.NormFloat64()*0.1, c.lat+rng.NormFloat64()*0.1
		pub := fmt.Sprintf("12D3KooWpeer%03d", rng.IntN(300))
		r := rec(pub, c.name+" agency "+fmt.Sprint(rng.IntN(40)), fmt.Sprintf("bench:%d", i), uint64(i+1), func(d *Dataset) {
			d.Title = fmt.Sprintf("%s, %s (%d)", topic, c.name, i)
			d.Description = desc.String()
			d.Keywords = []string{topic, strings.ToLower(c.name)}
			d.Themes = []string{themes[rng.IntN(len(themes))]}
			d.EntityTypes = []string{"https://smartdatamodels.org/dataModel.X/" + types[rng.IntN(len(types))]}
			d.Spatial = box(lon-0.05, lat-0.05, lon+0.05, lat+0.05)
		})
		x.Put(r)
	}
	return x
}

// BenchmarkSearch100k measures search latency over 100,000 datasets for a
// mix of queries (text, filters, bbox, combined) and reports the p50 and
// p95 latencies in microseconds.
func BenchmarkSearch100k(b *testing.B) {
	x := benchCorpus(100_000)
	aarhus := orb.Bound{Min: orb.Point{10.0, 56.0}, Max: orb.Point{10.4, 56.3}}
	europe := orb.Bound{Min: orb.Point{-10, 35}, Max: orb.Point{30, 62}}
	queries := []Query{
		{Text: "air quality"},
		{Text: "parking aarhus"},
		{Text: "hourly sensor station"},
		{Text: "w17x w230x"},
		{Type: "AirQualityObserved"},
		{Theme: "TRAN", BBox: &aarhus},
		{Text: "noise", BBox: &europe},
		{Publisher: "12D3KooWpeer007"},
		{Text: "traffic flow", Theme: "TRAN", License: "CC-BY-4.0"},
		{BBox: &aarhus},
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := x.Search(queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.95), "p95-µs")
}

// BenchmarkIndexPut measures feeding one record into a 100,000-dataset index
// (an update replacing the older record).
func BenchmarkIndexPut(b *testing.B) {
	x := benchCorpus(100_000)
	seq := uint64(1 << 20)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		seq++
		x.Put(rec("12D3KooWpeer001", "Aarhus agency", fmt.Sprintf("bench:%d", i%100_000), seq, func(d *Dataset) {
			d.Title = "Air quality, Aarhus, updated"
			d.Description = "hourly sensor station readings"
			d.Themes = []string{"ENVI"}
		}))
	}
}

// BenchmarkPropagationHop measures the catalogue's CPU share of one
// propagation hop: the publisher answers a changes request holding one new
// record, the answer is encoded, decoded and verified, and the record
// enters a 100,000-dataset index. Network and storage come on top.
func BenchmarkPropagationHop(b *testing.B) {
	pub, peer := newTestKey(1), newTestKey(2)
	c, err := NewCatalog(pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	x := benchCorpus(100_000)
	v := Viewer{PeerID: peer.PeerID(), Role: policy.RoleAgency, Now: t0}
	d := exampleDataset(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		d.Description = fmt.Sprintf("Hourly readings, revision %d.", i)
		r, err := c.Put(d, t0)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		frame, err := EncodeMessage(c.Answer(&ChangesRequest{Since: r.Seq - 1}, v))
		if err != nil {
			b.Fatal(err)
		}
		msg, err := DecodeMessage(frame)
		if err != nil {
			b.Fatal(err)
		}
		resp := msg.(*CatalogResponse)
		if err := resp.Verify(testVerifier{}); err != nil {
			b.Fatal(err)
		}
		if len(resp.Records) != 1 || !x.Put(resp.Records[0]) {
			b.Fatalf("record did not reach the index: %d records, seq %d, since %d", len(resp.Records), resp.Seq, r.Seq-1)
		}
	}
}
