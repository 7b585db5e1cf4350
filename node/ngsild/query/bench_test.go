package query

import (
	"testing"

	"github.com/paulmach/orb"
)

const benchQ = `(no2>=50;no2<=100|airQualityLevel=="moderate");dateObserved>=2016-03-15T00:00:00Z;address[addressLocality]=="Madrid";co.unitCode=="GP"`

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchQ, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch evaluates a query on the AirQualityObserved example; the query
// matches, so every term is evaluated.
func BenchmarkMatch(b *testing.B) {
	e := loadEntity(b, "AirQualityObserved.normalized.jsonld")
	q, err := Parse(benchQ, nil)
	if err != nil {
		b.Fatal(err)
	}
	if !q.Match(e) {
		b.Fatal("benchmark query does not match")
	}
	b.ReportAllocs()
	for b.Loop() {
		q.Match(e)
	}
}

func BenchmarkGeoNear(b *testing.B) {
	g, err := ParseGeo("near;maxDistance==2000", "Point", "[-3.70379,40.41678]", "location")
	if err != nil {
		b.Fatal(err)
	}
	p := orb.Point{-3.712247222222222, 40.423852777777775}
	if !g.Match(p) {
		b.Fatal("benchmark point is not near")
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Match(p)
	}
}

// BenchmarkGeoWithin tests a point against a 64-vertex polygon, a district-sized
// area a dashboard might draw.
func BenchmarkGeoWithin(b *testing.B) {
	ring := make(orb.Ring, 0, 65)
	for i := range 64 {
		ring = append(ring, orb.Point{-3.7 + 0.05*cosDeg(float64(i)*360/64), 40.42 + 0.04*sinDeg(float64(i)*360/64)})
	}
	ring = append(ring, ring[0])
	g := &Geo{rel: relWithin, ref: orb.Polygon{ring}, prop: "location"}
	g.refShape = decompose(g.ref)
	p := orb.Point{-3.712247222222222, 40.423852777777775}
	if !g.Match(p) {
		b.Fatal("benchmark point is not within")
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Match(p)
	}
}
