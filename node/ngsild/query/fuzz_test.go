package query

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/paulmach/orb"
)

// qSeeds are real q expressions: from ETSI GS CIM 009 examples and written against
// the Smart Data Models examples in testdata.
var qSeeds = []string{
	`temperature>20`,
	`brandName!="Mercedes"`,
	`isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"`,
	`isMonitoredBy`,
	`((speed>50|rpm>3000);brandName=="Mercedes")`,
	`(temperature>=20;temperature<=25)|capacity<=10`,
	`observationDateTime>=2020-09-01T12:00:00Z`,
	`address[streetAddress]=="Main Street"`,
	`status.observedAt>=2018-09-21T12:00:00Z`,
	`category=="onStreet","offStreet"`,
	`no2==20..80;airQualityLevel=="moderate"`,
	`name~=(?i)park.*`,
	`!refDevice;dateObserved<2016-03-16`,
	`temperature.unitCode=="CEL"`,
	`status.parkingPermit=="yes"`,
	`https://smartdatamodels.org/dataModel.Environment/no2>=50`,
	`opensAt==08:00:00..18:00:00Z`,
	`a[b][c]!~="x\"y"`,
}

func FuzzParse(f *testing.F) {
	for _, s := range qSeeds {
		f.Add(s)
	}
	var entities []MapEntity
	files, _ := filepath.Glob(filepath.Join("testdata", "*.normalized.jsonld"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var m MapEntity
		if err := json.Unmarshal(b, &m); err != nil {
			f.Fatal(err)
		}
		entities = append(entities, m)
	}
	entities = append(entities, sensor(f))
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s, nil)
		if err != nil {
			return
		}
		canon := q.String()
		q2, err := Parse(canon, nil)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String() %q does not parse: %v", s, canon, err)
		}
		if again := q2.String(); again != canon {
			t.Fatalf("String() not stable: %q -> %q -> %q", s, canon, again)
		}
		for _, e := range entities {
			if q.Match(e) != q2.Match(e) {
				t.Fatalf("Parse(%q) and Parse(%q) disagree on %v", s, canon, e["id"])
			}
		}
		_ = q.IndexTerms()
	})
}

func FuzzParseGeo(f *testing.F) {
	f.Add("near;maxDistance==1000", "Point", "[-3.712247222222222,40.423852777777775]", "location")
	f.Add("near;minDistance==10;maxDistance==2000", "Point", "[-8.60961198807,41.150691773]", "")
	f.Add("within", "Polygon", "[[[-3.72,40.42],[-3.70,40.42],[-3.70,40.43],[-3.72,40.43],[-3.72,40.42]]]", "location")
	f.Add("intersects", "LineString", "[[-4.73735395519672,41.6538181849672],[-4.73414858659993,41.6600594193478]]", "location")
	f.Add("contains", "Point", "[-3.80356167695194,43.46296641666926]", "observationSpace")
	f.Add("overlaps", "MultiPolygon", "[[[[0,0],[1,0],[1,1],[0,1],[0,0]]],[[[2,2],[3,2],[3,3],[2,2]]]]", "")
	f.Add("equals", "MultiPoint", "[[1,2],[3,4]]", "")
	f.Add("disjoint", "MultiLineString", "[[[0,0],[1,1]],[[2,2],[3,3]]]", "")
	entities := []orb.Geometry{
		orb.Point{-3.712247222222222, 40.423852777777775},
		orb.LineString{{-4.73735395519672, 41.6538181849672}, {-4.73414858659993, 41.6600594193478}, {-4.73447575302641, 41.6595851950}},
		orb.Polygon{{{-3.72, 40.42}, {-3.70, 40.42}, {-3.70, 40.43}, {-3.72, 40.43}, {-3.72, 40.42}}},
		orb.MultiPoint{{0, 0}, {1, 1}},
	}
	f.Fuzz(func(t *testing.T, georel, geometry, coordinates, geoproperty string) {
		g, err := ParseGeo(georel, geometry, coordinates, geoproperty)
		if err != nil {
			return
		}
		b, hasBound := g.Bound()
		for _, e := range entities {
			if g.Match(e) && hasBound && !b.Pad(1e-9).Intersects(e.Bound()) {
				t.Fatalf("%s %s %s matches %v outside its Bound %v", georel, geometry, coordinates, e, b)
			}
		}
	})
}
