package query

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
