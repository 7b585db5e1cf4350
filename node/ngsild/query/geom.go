package query

import (
	"errors"
	"fmt"
	"math"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"
)

var errGeometryType = errors.New("unknown geometry type (want Point, MultiPoint, LineString, MultiLineString, Polygon or MultiPolygon)")

// Geometry converts a GeoJSON geometry decoded from JSON (what Entity.Values
// returns for a GeoProperty) to an orb.Geometry, checking its shape: positions
// of two or three numbers within longitude/latitude range, at least two positions
// per line, closed rings of at least four positions.
func Geometry(v any) (orb.Geometry, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("GeoJSON geometry: want an object, found %s", jsonKind(v))
	}
	typ, _ := m["type"].(string)
	if typ == "GeometryCollection" {
		list, ok := m["geometries"].([]any)
		if !ok {
			return nil, errors.New("GeometryCollection: geometries is not an array")
		}
		var c orb.Collection
		for i, el := range list {
			g, err := Geometry(el)
			if err != nil {
				return nil, fmt.Errorf("GeometryCollection geometry %d: %w", i, err)
			}
			c = append(c, g)
		}
		return c, nil
	}
	g, err := buildGeometry(typ, m["coordinates"])
	if err != nil {
		return nil, fmt.Errorf("GeoJSON %s: %w", typ, err)
	}
	return g, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case float64:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func buildGeometry(typ string, coords any) (orb.Geometry, error) {
	switch typ {
	case "Point":
		return position(coords)
	case "MultiPoint":
		ps, err := positions(coords, 1, "MultiPoint")
		return orb.MultiPoint(ps), err
	case "LineString":
		return lineString(coords)
	case "MultiLineString":
		list, ok := coords.([]any)
		if !ok {
			return nil, fmt.Errorf("want an array of lines, found %s", jsonKind(coords))
		}
		out := make(orb.MultiLineString, 0, len(list))
		for i, el := range list {
			ls, err := lineString(el)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i, err)
			}
			out = append(out, ls)
		}
		return out, nil
	case "Polygon":
		return polygon(coords)
	case "MultiPolygon":
		list, ok := coords.([]any)
		if !ok {
			return nil, fmt.Errorf("want an array of polygons, found %s", jsonKind(coords))
		}
		out := make(orb.MultiPolygon, 0, len(list))
		for i, el := range list {
			p, err := polygon(el)
			if err != nil {
				return nil, fmt.Errorf("polygon %d: %w", i, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	return nil, errGeometryType
}

func position(v any) (orb.Point, error) {
	a, ok := v.([]any)
	if !ok {
		return orb.Point{}, fmt.Errorf("want a position [longitude, latitude], found %s", jsonKind(v))
	}
	if len(a) < 2 || len(a) > 3 {
		return orb.Point{}, fmt.Errorf("a position has 2 or 3 numbers, found %d", len(a))
	}
	var p orb.Point
	for i := range 2 {
		f, ok := a[i].(float64)
		if !ok {
			return p, fmt.Errorf("position member %d is %s, want a number", i, jsonKind(a[i]))
		}
		p[i] = f
	}
	if len(a) == 3 {
		if _, ok := a[2].(float64); !ok {
			return p, fmt.Errorf("altitude is %s, want a number", jsonKind(a[2]))
		}
	}
	if p[0] < -180 || p[0] > 180 {
		return p, fmt.Errorf("longitude %v out of range [-180, 180]", p[0])
	}
	if p[1] < -90 || p[1] > 90 {
		return p, fmt.Errorf("latitude %v out of range [-90, 90]", p[1])
	}
	return p, nil
}

func positions(v any, min int, what string) ([]orb.Point, error) {
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want an array of positions, found %s", jsonKind(v))
	}
	if len(a) < min {
		return nil, fmt.Errorf("%s needs at least %d positions, found %d", what, min, len(a))
	}
	out := make([]orb.Point, len(a))
	for i, el := range a {
		p, err := position(el)
		if err != nil {
			return nil, fmt.Errorf("position %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

func lineString(v any) (orb.LineString, error) {
	ps, err := positions(v, 2, "a LineString")
	return orb.LineString(ps), err
}

func polygon(v any) (orb.Polygon, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want an array of rings, found %s", jsonKind(v))
	}
	if len(list) == 0 {
		return nil, errors.New("a Polygon needs an exterior ring")
	}
	out := make(orb.Polygon, 0, len(list))
	for i, el := range list {
		ps, err := positions(el, 4, "a ring")
		if err != nil {
			return nil, fmt.Errorf("ring %d: %w", i, err)
		}
		if ps[0] != ps[len(ps)-1] {
			return nil, fmt.Errorf("ring %d is not closed (first and last positions differ)", i)
		}
		out = append(out, orb.Ring(ps))
	}
	return out, nil
}

// shape is a geometry taken apart into what the predicates work on.
type shape struct {
	points []orb.Point
	lines  []orb.LineString // open lines
	polys  []orb.Polygon
	bound  orb.Bound
}

func decompose(g orb.Geometry) shape {
	var s shape
	s.add(g)
	first := true
	grow := func(p orb.Point) {
		if first {
			s.bound = orb.Bound{Min: p, Max: p}
			first = false
			return
		}
		s.bound = s.bound.Extend(p)
	}
	s.eachVertex(func(p orb.Point) bool { grow(p); return false })
	return s
}

func (s *shape) add(g orb.Geometry) {
	switch g := g.(type) {
	case orb.Point:
		s.points = append(s.points, g)
	case orb.MultiPoint:
		s.points = append(s.points, g...)
	case orb.LineString:
		if len(g) > 0 {
			s.lines = append(s.lines, g)
		}
	case orb.MultiLineString:
		for _, l := range g {
			s.add(l)
		}
	case orb.Ring:
		if len(g) > 0 {
			s.polys = append(s.polys, orb.Polygon{g})
		}
	case orb.Polygon:
		if len(g) > 0 && len(g[0]) > 0 {
			s.polys = append(s.polys, g)
		}
	case orb.MultiPolygon:
		for _, p := range g {
			s.add(p)
		}
	case orb.Collection:
		for _, el := range g {
			s.add(el)
		}
	case orb.Bound:
		s.add(g.ToPolygon())
	}
}

func (s shape) empty() bool { return len(s.points) == 0 && len(s.lines) == 0 && len(s.polys) == 0 }

func (s shape) dim() int {
	switch {
	case len(s.polys) > 0:
		return 2
	case len(s.lines) > 0:
		return 1
	}
	return 0
}

// eachVertex calls f on every vertex until f returns true; it reports whether f did.
func (s shape) eachVertex(f func(orb.Point) bool) bool {
	for _, p := range s.points {
		if f(p) {
			return true
		}
	}
	for _, l := range s.lines {
		for _, p := range l {
			if f(p) {
				return true
			}
		}
	}
	for _, poly := range s.polys {
		for _, r := range poly {
			for _, p := range r {
				if f(p) {
					return true
				}
			}
		}
	}
	return false
}

// eachSegment calls f on every line segment and ring edge until f returns true.
func (s shape) eachSegment(f func(a, b orb.Point) bool) bool {
	for _, l := range s.lines {
		for i := 1; i < len(l); i++ {
			if f(l[i-1], l[i]) {
				return true
			}
		}
	}
	for _, poly := range s.polys {
		for _, r := range poly {
			for i := 1; i < len(r); i++ {
				if f(r[i-1], r[i]) {
					return true
				}
			}
		}
	}
	return false
}

func orient(a, b, c orb.Point) float64 {
	return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
}

// collinearTolerance is how far (in degrees, about 0.1 mm) a point may be from a
// line and still count as on it. Decimal coordinates such as 40.425 are not exact
// in binary, so an exact test would put the midpoint of a segment off the segment.
const collinearTolerance = 1e-9

// side is the sign of orient(a, b, c): which side of the line ab c lies on, 0 when
// it lies on the line within collinearTolerance.
func side(a, b, c orb.Point) int {
	o := orient(a, b, c)
	if math.Abs(o) <= collinearTolerance*math.Hypot(b[0]-a[0], b[1]-a[1]) {
		return 0
	}
	if o > 0 {
		return 1
	}
	return -1
}

// onSegment reports whether p lies on the closed segment ab.
func onSegment(a, b, p orb.Point) bool {
	const t = collinearTolerance
	return side(a, b, p) == 0 &&
		math.Min(a[0], b[0])-t <= p[0] && p[0] <= math.Max(a[0], b[0])+t &&
		math.Min(a[1], b[1])-t <= p[1] && p[1] <= math.Max(a[1], b[1])+t
}

func segmentsIntersect(a, b, c, d orb.Point) bool {
	o1, o2 := side(a, b, c), side(a, b, d)
	o3, o4 := side(c, d, a), side(c, d, b)
	if o1 != o2 && o3 != o4 {
		return true
	}
	return onSegment(a, b, c) || onSegment(a, b, d) || onSegment(c, d, a) || onSegment(c, d, b)
}

// properlyCross reports whether ab and cd cross at a single point interior to both.
func properlyCross(a, b, c, d orb.Point) bool {
	o1, o2 := side(a, b, c), side(a, b, d)
	o3, o4 := side(c, d, a), side(c, d, b)
	return o1*o2 < 0 && o3*o4 < 0
}

// collinearOverlap reports whether ab and cd are collinear and share more than a point.
func collinearOverlap(a, b, c, d orb.Point) bool {
	if side(a, b, c) != 0 || side(a, b, d) != 0 {
		return false
	}
	axis := 0
	if math.Abs(b[0]-a[0]) < math.Abs(b[1]-a[1]) {
		axis = 1
	}
	lo1, hi1 := math.Min(a[axis], b[axis]), math.Max(a[axis], b[axis])
	lo2, hi2 := math.Min(c[axis], d[axis]), math.Max(c[axis], d[axis])
	return math.Min(hi1, hi2) > math.Max(lo1, lo2)
}

// coveredBy reports whether p is in s (boundaries included).
func coveredBy(p orb.Point, s shape) bool {
	if !s.bound.Pad(collinearTolerance).Contains(p) {
		return false
	}
	for _, q := range s.points {
		if q == p {
			return true
		}
	}
	for _, l := range s.lines {
		for i := 1; i < len(l); i++ {
			if onSegment(l[i-1], l[i], p) {
				return true
			}
		}
	}
	for _, poly := range s.polys {
		if planar.PolygonContains(poly, p) {
			return true
		}
	}
	return false
}

// strictlyInside reports whether p is in the interior of one of s's polygons.
func strictlyInside(p orb.Point, s shape) bool {
	for _, poly := range s.polys {
		if !planar.PolygonContains(poly, p) {
			continue
		}
		onEdge := false
		for _, r := range poly {
			for i := 1; i < len(r) && !onEdge; i++ {
				onEdge = onSegment(r[i-1], r[i], p)
			}
		}
		if !onEdge {
			return true
		}
	}
	return false
}

func intersects(a, b shape) bool {
	if !a.bound.Pad(collinearTolerance).Intersects(b.bound) {
		return false
	}
	if a.eachSegment(func(p, q orb.Point) bool {
		return b.eachSegment(func(r, s orb.Point) bool { return segmentsIntersect(p, q, r, s) })
	}) {
		return true
	}
	// No edges meet: the parts are apart or one lies wholly inside the other.
	return a.eachVertex(func(p orb.Point) bool { return coveredBy(p, b) }) ||
		b.eachVertex(func(p orb.Point) bool { return coveredBy(p, a) })
}

// covers reports whether every point of inner lies in outer. It checks vertices,
// edge midpoints and edge crossings, which is exact for the simple shapes
// geo-queries use and may accept an edge that leaves and re-enters outer between
// two checked points only when outer has an edge shorter than inner's.
func covers(outer, inner shape) bool {
	if inner.dim() > outer.dim() {
		return false
	}
	ob := outer.bound.Pad(collinearTolerance)
	if !ob.Contains(inner.bound.Min) || !ob.Contains(inner.bound.Max) {
		return false
	}
	if inner.eachVertex(func(p orb.Point) bool { return !coveredBy(p, outer) }) {
		return false
	}
	if inner.eachSegment(func(p, q orb.Point) bool {
		mid := orb.Point{(p[0] + q[0]) / 2, (p[1] + q[1]) / 2}
		if !coveredBy(mid, outer) {
			return true
		}
		return outer.eachSegment(func(r, s orb.Point) bool { return properlyCross(p, q, r, s) })
	}) {
		return false
	}
	// outer's boundary (a hole, say) must not pass through inner's interior.
	if len(inner.polys) > 0 && outer.eachVertex(func(p orb.Point) bool { return strictlyInside(p, inner) }) {
		return false
	}
	return true
}

// overlaps is the OGC relation: same dimension, interiors meet, neither covers the other.
func overlaps(a, b shape) bool {
	if a.dim() != b.dim() || !intersects(a, b) || covers(a, b) || covers(b, a) {
		return false
	}
	switch a.dim() {
	case 0:
		return true // they share a point and each has one the other lacks
	case 1:
		return a.eachSegment(func(p, q orb.Point) bool {
			return b.eachSegment(func(r, s orb.Point) bool { return collinearOverlap(p, q, r, s) })
		})
	}
	if a.eachSegment(func(p, q orb.Point) bool {
		return b.eachSegment(func(r, s orb.Point) bool { return properlyCross(p, q, r, s) })
	}) {
		return true
	}
	inside := func(x, y shape) bool {
		return x.eachVertex(func(p orb.Point) bool { return strictlyInside(p, y) }) ||
			x.eachSegment(func(p, q orb.Point) bool {
				return strictlyInside(orb.Point{(p[0] + q[0]) / 2, (p[1] + q[1]) / 2}, y)
			})
	}
	return inside(a, b) || inside(b, a)
}

// distanceMetres is the distance from p to the nearest point of s: 0 inside a
// polygon, haversine to points, and to the nearest point of each edge.
func distanceMetres(p orb.Point, s shape) float64 {
	for _, poly := range s.polys {
		if planar.PolygonContains(poly, p) {
			return 0
		}
	}
	best := math.Inf(1)
	for _, q := range s.points {
		best = math.Min(best, geo.DistanceHaversine(p, q))
	}
	coslat := math.Cos(p[1] * math.Pi / 180)
	// Project around p: x east, y north, both in degrees of latitude.
	proj := func(q orb.Point) orb.Point {
		dlon := q[0] - p[0]
		if dlon > 180 {
			dlon -= 360
		} else if dlon < -180 {
			dlon += 360
		}
		return orb.Point{dlon * coslat, q[1] - p[1]}
	}
	s.eachSegment(func(a, b orb.Point) bool {
		pa, pb := proj(a), proj(b)
		dx, dy := pb[0]-pa[0], pb[1]-pa[1]
		t := 0.0
		if l2 := dx*dx + dy*dy; l2 > 0 {
			t = math.Max(0, math.Min(1, -(pa[0]*dx+pa[1]*dy)/l2))
		}
		// Interpolating in lon/lat between a and b lands on the projected nearest
		// point, since the projection is linear in each coordinate.
		near := orb.Point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
		if math.Abs(b[0]-a[0]) > 180 { // edge crosses the antimeridian
			near = orb.Point{p[0] + (pa[0]+t*dx)/math.Max(coslat, 1e-12), p[1] + pa[1] + t*dy}
		}
		best = math.Min(best, geo.DistanceHaversine(p, near))
		return false
	})
	return best
}
