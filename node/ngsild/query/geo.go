package query

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

type relation int

const (
	relNear relation = iota
	relWithin
	relContains
	relIntersects
	relEquals
	relDisjoint
	relOverlaps
)

var relations = map[string]relation{
	"near": relNear, "within": relWithin, "contains": relContains,
	"intersects": relIntersects, "equals": relEquals, "disjoint": relDisjoint,
	"overlaps": relOverlaps,
}

// Geo is a parsed geo-query. It is immutable and safe for concurrent use.
//
// Distances (near) are metres on a sphere of radius orb.EarthRadius: haversine
// from the reference point to points, and to the nearest point of a line or
// polygon edge found in a local equirectangular projection around the reference
// point, which is accurate to well under 1% within a few hundred kilometres. The
// topological relations (within, contains, intersects, equals, disjoint, overlaps)
// treat longitude/latitude as planar coordinates, as GeoJSON (RFC 7946 section
// 3.1.1) and most brokers do; edges are straight lines in lon/lat, not great
// circles. Points on a boundary count as inside.
type Geo struct {
	rel            relation
	maxDist        float64 // metres; valid when hasMax
	minDist        float64 // metres; valid when hasMin
	hasMax, hasMin bool
	ref            orb.Geometry
	refShape       shape
	prop           string
}

// ParseGeo parses an NGSI-LD geo-query (clause 4.10): georel (near;maxDistance==N,
// near;minDistance==N, within, contains, intersects, equals, disjoint, overlaps),
// geometry (Point, LineString, Polygon, MultiPolygon, ...) and coordinates as in the
// URL query string (JSON array text); geoproperty default "location".
//
// near takes a Point and one or both of maxDistance and minDistance (metres).
// Coordinates are longitude, latitude (optionally altitude, ignored); polygon rings
// must be closed.
func ParseGeo(georel, geometry, coordinates, geoproperty string) (*Geo, error) {
	g := &Geo{prop: geoproperty}
	if g.prop == "" {
		g.prop = "location"
	}
	if err := g.parseRel(georel); err != nil {
		return nil, err
	}
	if geometry == "" {
		return nil, &SyntaxError{Param: "geometry", Offset: -1, Msg: "missing (want Point, MultiPoint, LineString, MultiLineString, Polygon or MultiPolygon)"}
	}
	text := strings.TrimSpace(coordinates)
	if text == "" {
		return nil, &SyntaxError{Param: "coordinates", Offset: -1, Msg: "missing"}
	}
	var raw any
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		off := -1
		if se, ok := err.(*json.SyntaxError); ok {
			off = int(se.Offset)
		}
		return nil, &SyntaxError{Param: "coordinates", Offset: off, Msg: "not a JSON array: " + err.Error()}
	}
	ref, err := buildGeometry(geometry, raw)
	if err != nil {
		param := "coordinates"
		if err == errGeometryType {
			param = "geometry"
		}
		return nil, &SyntaxError{Param: param, Offset: -1, Msg: fmt.Sprintf("%s: %v", geometry, err)}
	}
	if g.rel == relNear {
		if _, ok := ref.(orb.Point); !ok {
			return nil, &SyntaxError{Param: "geometry", Offset: -1, Msg: "near needs a Point, not " + geometry}
		}
	}
	g.ref = ref
	g.refShape = decompose(ref)
	return g, nil
}

func (g *Geo) parseRel(georel string) error {
	parts := strings.Split(georel, ";")
	rel, ok := relations[parts[0]]
	if !ok {
		if georel == "" {
			return &SyntaxError{Param: "georel", Offset: -1, Msg: "missing"}
		}
		return &SyntaxError{Param: "georel", Offset: 0, Msg: fmt.Sprintf("unknown relation %q (want near, within, contains, intersects, equals, disjoint or overlaps)", parts[0])}
	}
	g.rel = rel
	off := len(parts[0]) + 1
	for _, mod := range parts[1:] {
		if rel != relNear {
			return &SyntaxError{Param: "georel", Offset: off, Msg: fmt.Sprintf("%s takes no modifier, found %q", parts[0], mod)}
		}
		name, val, ok := strings.Cut(mod, "==")
		if !ok || (name != "maxDistance" && name != "minDistance") {
			return &SyntaxError{Param: "georel", Offset: off, Msg: fmt.Sprintf("want maxDistance==N or minDistance==N, found %q", mod)}
		}
		d, err := strconv.ParseFloat(val, 64)
		if err != nil || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
			return &SyntaxError{Param: "georel", Offset: off + len(name) + 2, Msg: fmt.Sprintf("%s must be a non-negative number of metres, found %q", name, val)}
		}
		if name == "maxDistance" {
			g.maxDist, g.hasMax = d, true
		} else {
			g.minDist, g.hasMin = d, true
		}
		off += len(mod) + 1
	}
	if rel == relNear && !g.hasMax && !g.hasMin {
		return &SyntaxError{Param: "georel", Offset: len(georel), Msg: "near needs ;maxDistance==N or ;minDistance==N"}
	}
	return nil
}

// Property returns the geoproperty the query is about, as given ("location" when
// it was empty). The caller expands it like an attribute name.
func (g *Geo) Property() string { return g.prop }

// Match reports whether an entity whose geoproperty has the geometry geom is
// selected by the query. A nil geometry never matches.
func (g *Geo) Match(geom orb.Geometry) bool {
	if geom == nil {
		return false
	}
	s := decompose(geom)
	if s.empty() {
		return false
	}
	switch g.rel {
	case relNear:
		d := distanceMetres(g.ref.(orb.Point), s)
		return (!g.hasMax || d <= g.maxDist) && (!g.hasMin || d >= g.minDist)
	case relWithin:
		return covers(g.refShape, s)
	case relContains:
		return covers(s, g.refShape)
	case relIntersects:
		return intersects(s, g.refShape)
	case relEquals:
		return covers(s, g.refShape) && covers(g.refShape, s)
	case relDisjoint:
		return !intersects(s, g.refShape)
	case relOverlaps:
		return overlaps(s, g.refShape)
	}
	return false
}

// Bound is the area every matching geometry must touch, for a spatial index lookup;
// ok is false when no such bound exists (disjoint, minDistance).
func (g *Geo) Bound() (b orb.Bound, ok bool) {
	switch g.rel {
	case relDisjoint:
		return orb.Bound{}, false
	case relNear:
		if !g.hasMax {
			return orb.Bound{}, false
		}
		return boundAround(g.ref.(orb.Point), g.maxDist), true
	}
	return g.ref.Bound(), true
}

// boundAround is geo.NewBoundAroundPoint made safe near the poles and the
// antimeridian, where it can return NaN or a bound with Min > Max; there the whole
// longitude range is used, which is a correct (if loose) bound.
func boundAround(p orb.Point, metres float64) orb.Bound {
	if metres >= math.Pi*orb.EarthRadius/2 {
		return orb.Bound{Min: orb.Point{-180, -90}, Max: orb.Point{180, 90}}
	}
	b := geo.NewBoundAroundPoint(p, metres)
	if math.IsNaN(b.Min[0]) || math.IsNaN(b.Max[0]) || b.Min[0] > b.Max[0] ||
		b.Min[0] < -180 || b.Max[0] > 180 {
		b.Min[0], b.Max[0] = -180, 180
	}
	// Degree/radian round trips lose the last bit; pad by about a centimetre so the
	// centre itself is always inside.
	b = b.Extend(p).Pad(1e-7)
	b.Min[0], b.Max[0] = math.Max(b.Min[0], -180), math.Min(b.Max[0], 180)
	b.Min[1], b.Max[1] = math.Max(b.Min[1], -90), math.Min(b.Max[1], 90)
	return b
}
