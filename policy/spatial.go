package policy

import (
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// within reports whether the location lies inside the area (boundary
// counts as inside). For a point that is a point-in-polygon test. For lines
// and polygons it checks that every vertex is inside, that no edge crosses the
// area's boundary, and that no part of the area's boundary lies strictly
// inside a location polygon (which would mean the location covers a hole or
// spills over the edge between vertices).
func within(loc orb.Geometry, area orb.MultiPolygon, b orb.Bound) bool {
	var g geomParts
	if !g.collect(loc, 0) || len(g.points) == 0 {
		return false
	}
	for _, p := range g.points {
		if !b.Contains(p) || !planar.MultiPolygonContains(area, p) {
			return false
		}
	}
	if len(g.segs) == 0 {
		return true
	}
	for _, poly := range area {
		for _, ring := range poly {
			for i := 0; i+1 < len(ring); i++ {
				for _, s := range g.segs {
					if properlyCross(s[0], s[1], ring[i], ring[i+1]) {
						return false
					}
				}
				for _, lp := range g.polys {
					if planar.PolygonContains(lp, ring[i]) && !onBoundary(lp, ring[i]) {
						return false
					}
				}
			}
		}
	}
	return true
}

// pointWithin is within for a point, without allocating and without
// recomputing ring bounds (planar.RingContains does, and it dominated the
// evaluation benchmark). Same rule: the boundary is inside, a hole's
// boundary is outside.
func pointWithin(p orb.Point, area orb.MultiPolygon, b orb.Bound) bool {
	if !b.Contains(p) {
		return false
	}
	for _, poly := range area {
		if !ringContains(poly[0], p) {
			continue
		}
		inHole := false
		for _, hole := range poly[1:] {
			if ringContains(hole, p) {
				inHole = true
				break
			}
		}
		if !inHole {
			return true
		}
	}
	return false
}

// ringContains: crossing-number test; a point on an edge is inside.
func ringContains(r orb.Ring, p orb.Point) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		a, c := r[j], r[i]
		if p[1] < min(a[1], c[1]) || p[1] > max(a[1], c[1]) {
			continue // neither on the edge nor crossing it: skip the arithmetic
		}
		if orient(a, c, p) == 0 &&
			min(a[0], c[0]) <= p[0] && p[0] <= max(a[0], c[0]) &&
			min(a[1], c[1]) <= p[1] && p[1] <= max(a[1], c[1]) {
			return true
		}
		if (a[1] > p[1]) != (c[1] > p[1]) && p[0] < (c[0]-a[0])*(p[1]-a[1])/(c[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}

type geomParts struct {
	points []orb.Point
	segs   [][2]orb.Point
	polys  []orb.Polygon
}

// collect flattens a geometry; false for kinds that have no place meaning
// (or nesting deep enough to be hostile).
func (g *geomParts) collect(geom orb.Geometry, depth int) bool {
	if depth > 8 {
		return false
	}
	switch t := geom.(type) {
	case orb.Point:
		g.points = append(g.points, t)
	case orb.MultiPoint:
		g.points = append(g.points, t...)
	case orb.LineString:
		g.line(t)
	case orb.MultiLineString:
		for _, l := range t {
			g.line(l)
		}
	case orb.Ring:
		return g.collect(orb.Polygon{t}, depth+1)
	case orb.Polygon:
		for _, r := range t {
			g.line(orb.LineString(r))
		}
		if len(t) > 0 && len(t[0]) >= 4 {
			g.polys = append(g.polys, t)
		}
	case orb.MultiPolygon:
		for _, p := range t {
			if !g.collect(p, depth+1) {
				return false
			}
		}
	case orb.Bound:
		return g.collect(t.ToPolygon(), depth+1)
	case orb.Collection:
		for _, x := range t {
			if !g.collect(x, depth+1) {
				return false
			}
		}
	default:
		return false
	}
	return true
}

func (g *geomParts) line(l orb.LineString) {
	g.points = append(g.points, l...)
	for i := 0; i+1 < len(l); i++ {
		g.segs = append(g.segs, [2]orb.Point{l[i], l[i+1]})
	}
}

func orient(a, b, c orb.Point) float64 {
	return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
}

// properlyCross: the segments cross at a single point interior to both.
// Touching and collinear overlap do not count: they keep the location on the
// boundary, which is inside.
func properlyCross(a, b, c, d orb.Point) bool {
	o1, o2 := orient(a, b, c), orient(a, b, d)
	o3, o4 := orient(c, d, a), orient(c, d, b)
	return ((o1 > 0 && o2 < 0) || (o1 < 0 && o2 > 0)) && ((o3 > 0 && o4 < 0) || (o3 < 0 && o4 > 0))
}

func onBoundary(p orb.Polygon, pt orb.Point) bool {
	for _, r := range p {
		for i := 0; i+1 < len(r); i++ {
			a, b := r[i], r[i+1]
			if orient(a, b, pt) == 0 &&
				min(a[0], b[0]) <= pt[0] && pt[0] <= max(a[0], b[0]) &&
				min(a[1], b[1]) <= pt[1] && pt[1] <= max(a[1], b[1]) {
				return true
			}
		}
	}
	return false
}
