package query

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

// Plaza de España, Madrid: the AirQualityObserved example's location.
var madrid = orb.Point{-3.712247222222222, 40.423852777777775}

// A square around it, 0.02° by 0.01°.
const square = `[[[-3.72,40.42],[-3.70,40.42],[-3.70,40.43],[-3.72,40.43],[-3.72,40.42]]]`

// metresPerDegree is one degree of latitude on orb's sphere.
var metresPerDegree = orb.EarthRadius * math.Pi / 180

func geom(t *testing.T, typ, coords string) orb.Geometry {
	t.Helper()
	var raw any
	if err := json.Unmarshal([]byte(coords), &raw); err != nil {
		t.Fatalf("coordinates %s: %v", coords, err)
	}
	g, err := buildGeometry(typ, raw)
	if err != nil {
		t.Fatalf("%s %s: %v", typ, coords, err)
	}
	return g
}

// TestClause4_10_GeoRelations has cases per relation and per geometry type.
func TestClause4_10_GeoRelations(t *testing.T) {
	north := func(m float64) string { // a point m metres north of madrid
		b, _ := json.Marshal([]float64{madrid[0], madrid[1] + m/metresPerDegree})
		return string(b)
	}
	mp, _ := json.Marshal([]float64{madrid[0], madrid[1]})
	madridJSON := string(mp)
	const (
		innerSquare   = `[[[-3.715,40.422],[-3.705,40.422],[-3.705,40.428],[-3.715,40.428],[-3.715,40.422]]]`
		shiftedSquare = `[[[-3.71,40.425],[-3.69,40.425],[-3.69,40.435],[-3.71,40.435],[-3.71,40.425]]]`
		farSquare     = `[[[2.0,41.0],[2.1,41.0],[2.1,41.1],[2.0,41.1],[2.0,41.0]]]`
		touchSquare   = `[[[-3.70,40.42],[-3.68,40.42],[-3.68,40.43],[-3.70,40.43],[-3.70,40.42]]]`
		bigSquare     = `[[[-3.8,40.3],[-3.6,40.3],[-3.6,40.5],[-3.8,40.5],[-3.8,40.3]]]`
		squareRotated = `[[[-3.70,40.42],[-3.70,40.43],[-3.72,40.43],[-3.72,40.42],[-3.70,40.42]]]`
		// bigSquare with a hole around madrid
		holed = `[[[-3.8,40.3],[-3.6,40.3],[-3.6,40.5],[-3.8,40.5],[-3.8,40.3]],[[-3.72,40.42],[-3.70,40.42],[-3.70,40.43],[-3.72,40.43],[-3.72,40.42]]]`
	)
	tests := []struct {
		name                       string
		georel, refType, refCoords string
		entityType, entityCoords   string
		match                      bool
	}{
		// near
		{"near maxDistance point inside", "near;maxDistance==1200", "Point", madridJSON, "Point", north(1100), true},
		{"near maxDistance point outside", "near;maxDistance==1000", "Point", madridJSON, "Point", north(1100), false},
		{"near maxDistance same point", "near;maxDistance==0", "Point", madridJSON, "Point", madridJSON, true},
		{"near minDistance far point", "near;minDistance==1000", "Point", madridJSON, "Point", north(1100), true},
		{"near minDistance close point", "near;minDistance==1200", "Point", madridJSON, "Point", north(1100), false},
		{"near min and max band", "near;minDistance==1000;maxDistance==1200", "Point", madridJSON, "Point", north(1100), true},
		{"near LineString by its nearest edge", "near;maxDistance==1120", "Point", madridJSON, "LineString",
			`[[-3.73,` + f(madrid[1]+0.01) + `],[-3.69,` + f(madrid[1]+0.01) + `]]`, true},
		{"near LineString too far", "near;maxDistance==1100", "Point", madridJSON, "LineString",
			`[[-3.73,` + f(madrid[1]+0.01) + `],[-3.69,` + f(madrid[1]+0.01) + `]]`, false},
		{"near Polygon containing the point is at 0", "near;maxDistance==0", "Point", madridJSON, "Polygon", square, true},
		{"near minDistance Polygon containing the point", "near;minDistance==1", "Point", madridJSON, "Polygon", square, false},
		{"near MultiPoint nearest member", "near;maxDistance==1200", "Point", madridJSON, "MultiPoint", `[[2,41],` + north(1100) + `]`, true},
		// within
		{"within Polygon point inside", "within", "Polygon", square, "Point", madridJSON, true},
		{"within Polygon point outside", "within", "Polygon", square, "Point", `[-3.73,40.425]`, false},
		{"within Polygon point on boundary", "within", "Polygon", square, "Point", `[-3.72,40.425]`, true},
		{"within Polygon point in hole", "within", "Polygon", holed, "Point", madridJSON, false},
		{"within Polygon point outside hole", "within", "Polygon", holed, "Point", `[-3.75,40.35]`, true},
		{"within Polygon LineString inside", "within", "Polygon", square, "LineString", `[[-3.715,40.425],[-3.705,40.426]]`, true},
		{"within Polygon LineString leaving", "within", "Polygon", square, "LineString", `[[-3.715,40.425],[-3.69,40.426]]`, false},
		{"within Polygon Polygon inside", "within", "Polygon", square, "Polygon", innerSquare, true},
		{"within Polygon Polygon partly outside", "within", "Polygon", square, "Polygon", shiftedSquare, false},
		{"within Polygon Polygon over a hole", "within", "Polygon", holed, "Polygon", bigSquare, false},
		{"within MultiPolygon second member", "within", "MultiPolygon", `[` + farSquare + `,` + square + `]`, "Point", madridJSON, true},
		{"within MultiPolygon none", "within", "MultiPolygon", `[` + farSquare + `]`, "Point", madridJSON, false},
		{"within Polygon MultiPoint all inside", "within", "Polygon", square, "MultiPoint", `[[-3.71,40.421],[-3.705,40.429]]`, true},
		{"within Polygon MultiPoint one outside", "within", "Polygon", square, "MultiPoint", `[[-3.71,40.421],[-3.5,40.429]]`, false},
		// contains
		{"contains Point: polygon holds it", "contains", "Point", madridJSON, "Polygon", square, true},
		{"contains Point: polygon misses it", "contains", "Point", madridJSON, "Polygon", farSquare, false},
		{"contains Point: hole holds it", "contains", "Point", madridJSON, "Polygon", holed, false},
		{"contains Point: equal point", "contains", "Point", madridJSON, "Point", madridJSON, true},
		{"contains Point: on LineString", "contains", "Point", `[-3.71,40.425]`, "LineString", `[[-3.72,40.425],[-3.70,40.425]]`, true},
		{"contains Polygon: bigger polygon", "contains", "Polygon", square, "Polygon", bigSquare, true},
		{"contains Polygon: smaller polygon", "contains", "Polygon", square, "Polygon", innerSquare, false},
		{"contains LineString: polygon", "contains", "LineString", `[[-3.715,40.425],[-3.705,40.426]]`, "Polygon", square, true},
		// intersects
		{"intersects Polygon: point inside", "intersects", "Polygon", square, "Point", madridJSON, true},
		{"intersects Polygon: point outside", "intersects", "Polygon", square, "Point", `[2,41]`, false},
		{"intersects Polygon: line crossing", "intersects", "Polygon", square, "LineString", `[[-3.73,40.425],[-3.69,40.425]]`, true},
		{"intersects Polygon: line apart", "intersects", "Polygon", square, "LineString", `[[-3.73,40.44],[-3.69,40.44]]`, false},
		{"intersects Polygon: overlapping polygon", "intersects", "Polygon", square, "Polygon", shiftedSquare, true},
		{"intersects Polygon: touching polygon", "intersects", "Polygon", square, "Polygon", touchSquare, true},
		{"intersects Polygon: enclosing polygon", "intersects", "Polygon", square, "Polygon", bigSquare, true},
		{"intersects Polygon: polygon apart", "intersects", "Polygon", square, "Polygon", farSquare, false},
		{"intersects LineString: crossing line", "intersects", "LineString", `[[-3.72,40.42],[-3.70,40.43]]`, "LineString", `[[-3.72,40.43],[-3.70,40.42]]`, true},
		{"intersects LineString: parallel line", "intersects", "LineString", `[[-3.72,40.42],[-3.70,40.43]]`, "LineString", `[[-3.72,40.421],[-3.70,40.431]]`, false},
		{"intersects Point: on line", "intersects", "Point", `[-3.71,40.425]`, "LineString", `[[-3.72,40.42],[-3.70,40.43]]`, true},
		{"intersects MultiLineString member", "intersects", "Polygon", square, "MultiLineString", `[[[2,41],[2.1,41]],[[-3.73,40.425],[-3.69,40.425]]]`, true},
		// equals
		{"equals Point", "equals", "Point", madridJSON, "Point", madridJSON, true},
		{"equals Point differs", "equals", "Point", madridJSON, "Point", north(1), false},
		{"equals Polygon with rotated ring start", "equals", "Polygon", square, "Polygon", squareRotated, true},
		{"equals Polygon differs", "equals", "Polygon", square, "Polygon", innerSquare, false},
		{"equals LineString reversed", "equals", "LineString", `[[-3.72,40.42],[-3.70,40.43]]`, "LineString", `[[-3.70,40.43],[-3.72,40.42]]`, true},
		{"equals Point vs Polygon", "equals", "Polygon", square, "Point", madridJSON, false},
		// disjoint
		{"disjoint Polygon: apart", "disjoint", "Polygon", square, "Polygon", farSquare, true},
		{"disjoint Polygon: overlapping", "disjoint", "Polygon", square, "Polygon", shiftedSquare, false},
		{"disjoint Polygon: touching", "disjoint", "Polygon", square, "Polygon", touchSquare, false},
		{"disjoint Polygon: point outside", "disjoint", "Polygon", square, "Point", `[2,41]`, true},
		{"disjoint Polygon: point in hole", "disjoint", "Polygon", holed, "Point", madridJSON, true},
		// overlaps
		{"overlaps Polygon: partly overlapping", "overlaps", "Polygon", square, "Polygon", shiftedSquare, true},
		{"overlaps Polygon: nested is not overlap", "overlaps", "Polygon", square, "Polygon", innerSquare, false},
		{"overlaps Polygon: touching is not overlap", "overlaps", "Polygon", square, "Polygon", touchSquare, false},
		{"overlaps Polygon: apart", "overlaps", "Polygon", square, "Polygon", farSquare, false},
		{"overlaps Polygon: point has another dimension", "overlaps", "Polygon", square, "Point", madridJSON, false},
		{"overlaps LineString: shared stretch", "overlaps", "LineString", `[[0,0],[2,0]]`, "LineString", `[[1,0],[3,0]]`, true},
		{"overlaps LineString: crossing only", "overlaps", "LineString", `[[0,0],[2,0]]`, "LineString", `[[1,-1],[1,1]]`, false},
		{"overlaps MultiPoint: some shared", "overlaps", "MultiPoint", `[[0,0],[1,1]]`, "MultiPoint", `[[1,1],[2,2]]`, true},
		{"overlaps MultiPoint: subset", "overlaps", "MultiPoint", `[[0,0],[1,1]]`, "MultiPoint", `[[1,1]]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGeo(tt.georel, tt.refType, tt.refCoords, "")
			if err != nil {
				t.Fatalf("ParseGeo(%q, %q, %q): %v", tt.georel, tt.refType, tt.refCoords, err)
			}
			e := geom(t, tt.entityType, tt.entityCoords)
			if got := g.Match(e); got != tt.match {
				t.Errorf("ParseGeo(%q, %q, %s).Match(%s %s) = %v, want %v", tt.georel, tt.refType, tt.refCoords, tt.entityType, tt.entityCoords, got, tt.match)
			}
			// A match must touch the index bound, or the store would miss it.
			if b, ok := g.Bound(); ok && tt.match && !b.Intersects(e.Bound()) {
				t.Errorf("match %s lies outside Bound() %v", tt.entityCoords, b)
			}
		})
	}
}

func f(x float64) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// TestGeoNearExamples finds every shipped Smart Data Models example by a near
// query around its own location, and not by one 10 km away.
func TestGeoNearExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.normalized.jsonld"))
	if err != nil || len(files) != 9 {
		t.Fatalf("want the 9 examples, found %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			e := loadEntity(t, filepath.Base(file))
			vals := e.Values(Path{Attrs: []string{"location"}})
			if len(vals) != 1 {
				t.Fatalf("location values = %v", vals)
			}
			g, err := Geometry(vals[0])
			if err != nil {
				t.Fatal(err)
			}
			c := g.Bound().Center()
			here, err := ParseGeo("near;maxDistance==1000", "Point", "["+f(c[0])+","+f(c[1])+"]", "location")
			if err != nil {
				t.Fatal(err)
			}
			if !here.Match(g) {
				t.Errorf("near its own location: no match")
			}
			away := geo.PointAtBearingAndDistance(c, 90, 10000)
			there, err := ParseGeo("near;maxDistance==1000", "Point", "["+f(away[0])+","+f(away[1])+"]", "")
			if err != nil {
				t.Fatal(err)
			}
			if there.Match(g) {
				t.Errorf("near a point 10 km away: matched")
			}
			box, err := ParseGeo("within", "Polygon", boxAround(c, 0.5), "location")
			if err != nil {
				t.Fatal(err)
			}
			if !box.Match(g) {
				t.Errorf("within a box around it: no match")
			}
		})
	}
}

func boxAround(c orb.Point, d float64) string {
	ring := [][]float64{{c[0] - d, c[1] - d}, {c[0] + d, c[1] - d}, {c[0] + d, c[1] + d}, {c[0] - d, c[1] + d}, {c[0] - d, c[1] - d}}
	b, _ := json.Marshal([][][]float64{ring})
	return string(b)
}

func TestParseGeoErrors(t *testing.T) {
	tests := []struct {
		name                                  string
		georel, geometry, coords, param, want string
	}{
		{"missing georel", "", "Point", "[0,0]", "georel", "missing"},
		{"unknown relation", "touches", "Point", "[0,0]", "georel", "unknown relation"},
		{"near without distance", "near", "Point", "[0,0]", "georel", "near needs"},
		{"near unknown modifier", "near;distance==5", "Point", "[0,0]", "georel", "want maxDistance"},
		{"near bad distance", "near;maxDistance==ten", "Point", "[0,0]", "georel", "non-negative number"},
		{"near negative distance", "near;maxDistance==-1", "Point", "[0,0]", "georel", "non-negative number"},
		{"near with polygon", "near;maxDistance==5", "Polygon", square, "geometry", "near needs a Point"},
		{"modifier on within", "within;maxDistance==5", "Polygon", square, "georel", "takes no modifier"},
		{"missing geometry", "within", "", square, "geometry", "missing"},
		{"unknown geometry", "within", "Circle", "[0,0]", "geometry", "unknown geometry type"},
		{"missing coordinates", "within", "Polygon", " ", "coordinates", "missing"},
		{"coordinates not JSON", "intersects", "Point", "[1,", "coordinates", "not a JSON array"},
		{"point with one number", "intersects", "Point", "[1]", "coordinates", "2 or 3 numbers"},
		{"point with a string", "intersects", "Point", `[1,"a"]`, "coordinates", "want a number"},
		{"latitude out of range", "intersects", "Point", "[1,91]", "coordinates", "latitude 91 out of range"},
		{"longitude out of range", "intersects", "Point", "[181,1]", "coordinates", "longitude 181 out of range"},
		{"line with one position", "intersects", "LineString", "[[1,1]]", "coordinates", "at least 2 positions"},
		{"ring not closed", "within", "Polygon", "[[[0,0],[1,0],[1,1],[0,1]]]", "coordinates", "not closed"},
		{"ring too short", "within", "Polygon", "[[[0,0],[1,0],[0,0]]]", "coordinates", "at least 4 positions"},
		{"polygon without rings", "within", "Polygon", "[]", "coordinates", "exterior ring"},
		{"multipolygon member bad", "within", "MultiPolygon", "[[[[0,0],[1,0],[1,1],[0,1]]]]", "coordinates", "polygon 0: ring 0 is not closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGeo(tt.georel, tt.geometry, tt.coords, "")
			if err == nil {
				t.Fatalf("ParseGeo(%q, %q, %q) = %+v, want error", tt.georel, tt.geometry, tt.coords, g)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("error %v is not a *SyntaxError wrapping ErrSyntax", err)
			}
			if se.Param != tt.param || !strings.Contains(se.Msg, tt.want) {
				t.Errorf("ParseGeo(%q, %q, %q) = %v; want param %s and message containing %q", tt.georel, tt.geometry, tt.coords, err, tt.param, tt.want)
			}
		})
	}
}

func TestGeoBound(t *testing.T) {
	tests := []struct {
		name             string
		georel, geometry string
		coords           string
		ok               bool
		contains         []orb.Point
		excludes         []orb.Point
	}{
		{"near maxDistance is a box around the point", "near;maxDistance==1000", "Point", "[-3.7,40.4]", true,
			[]orb.Point{{-3.7, 40.4}, {-3.7, 40.4 + 990/metresPerDegree}}, []orb.Point{{-3.7, 40.42}}},
		{"near minDistance has none", "near;minDistance==1000", "Point", "[-3.7,40.4]", false, nil, nil},
		{"disjoint has none", "disjoint", "Polygon", square, false, nil, nil},
		{"within is the polygon's box", "within", "Polygon", square, true, []orb.Point{{-3.72, 40.42}, {-3.70, 40.43}}, []orb.Point{{-3.73, 40.42}}},
		{"contains is the point", "contains", "Point", "[1,2]", true, []orb.Point{{1, 2}}, []orb.Point{{1, 2.1}}},
		{"near the antimeridian spans all longitudes", "near;maxDistance==50000", "Point", "[179.9,0]", true,
			[]orb.Point{{-179.9, 0}, {179.9, 0.4}}, []orb.Point{{179.9, 1}}},
		{"near a pole", "near;maxDistance==50000", "Point", "[0,89.9]", true, []orb.Point{{180, 89.95}, {0, 90}}, []orb.Point{{0, 89}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGeo(tt.georel, tt.geometry, tt.coords, "")
			if err != nil {
				t.Fatal(err)
			}
			b, ok := g.Bound()
			if ok != tt.ok {
				t.Fatalf("Bound() ok = %v, want %v", ok, tt.ok)
			}
			for _, p := range tt.contains {
				if !b.Contains(p) {
					t.Errorf("Bound() %v does not contain %v", b, p)
				}
			}
			for _, p := range tt.excludes {
				if b.Contains(p) {
					t.Errorf("Bound() %v contains %v", b, p)
				}
			}
		})
	}
}

func TestGeoProperty(t *testing.T) {
	g, _ := ParseGeo("within", "Polygon", square, "")
	if g.Property() != "location" {
		t.Errorf("default Property() = %q, want location", g.Property())
	}
	g, _ = ParseGeo("within", "Polygon", square, "observationSpace")
	if g.Property() != "observationSpace" {
		t.Errorf("Property() = %q, want observationSpace", g.Property())
	}
	if g.Match(nil) {
		t.Error("Match(nil) = true")
	}
}

func TestGeometryFromJSON(t *testing.T) {
	tests := []struct {
		name, json string
		want       string // orb type name, or error text
		ok         bool
	}{
		{"point", `{"type":"Point","coordinates":[1,2]}`, "Point", true},
		{"point with altitude", `{"type":"Point","coordinates":[1,2,300]}`, "Point", true},
		{"collection", `{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[0,0],[1,1]]}]}`, "GeometryCollection", true},
		{"not an object", `[1,2]`, "want an object", false},
		{"unknown type", `{"type":"Circle","coordinates":[1,2]}`, "unknown geometry type", false},
		{"collection member bad", `{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1]}]}`, "geometry 0", false},
		{"no coordinates", `{"type":"Point"}`, "found null", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.json), &v); err != nil {
				t.Fatal(err)
			}
			g, err := Geometry(v)
			if tt.ok {
				if err != nil || g.GeoJSONType() != tt.want {
					t.Errorf("Geometry(%s) = %v, %v; want a %s", tt.json, g, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Geometry(%s) error = %v, want one containing %q", tt.json, err, tt.want)
			}
		})
	}
}

func cosDeg(d float64) float64 { return math.Cos(d * math.Pi / 180) }
func sinDeg(d float64) float64 { return math.Sin(d * math.Pi / 180) }
