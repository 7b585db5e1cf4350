package catalog

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/paulmach/orb"
)

// A small GeoJSON geometry codec (RFC 7946 geometry objects other than
// GeometryCollection). orb/geojson would do, but it pulls in the MongoDB
// BSON module for a feature we do not use. Positions may carry an altitude;
// it is dropped, since catalogue coverage is two-dimensional.

type geometryJSONObj struct {
	Type        string          `json:"type"`
	Coordinates json.RawMessage `json:"coordinates"`
	BBox        []float64       `json:"bbox,omitempty"`
}

func decodeGeometry(field string, raw json.RawMessage) (orb.Geometry, error) {
	var g geometryJSONObj
	if err := strictUnmarshal(raw, &g); err != nil {
		if fe := jsonFieldErr(field, err); fe != nil {
			if f, ok := fe.(*FieldError); ok && f.Msg == "unknown field" {
				f.Msg = "unknown GeoJSON geometry member (a Feature is not accepted; give its geometry)"
				return nil, f
			}
		}
		return nil, fieldErr(field, "must be a GeoJSON geometry object ({\"type\": ..., \"coordinates\": ...})")
	}
	if len(g.Coordinates) == 0 {
		return nil, fieldErr(field+".coordinates", "is required")
	}
	c := field + ".coordinates"
	var (
		geom orb.Geometry
		err  error
	)
	switch g.Type {
	case "Point":
		var p []float64
		if err = json.Unmarshal(g.Coordinates, &p); err == nil {
			geom, err = pos(c, p)
		}
	case "MultiPoint", "LineString":
		var ps [][]float64
		if err = json.Unmarshal(g.Coordinates, &ps); err == nil {
			var pts []orb.Point
			if pts, err = poss(c, ps); err == nil {
				if g.Type == "MultiPoint" {
					geom = orb.MultiPoint(pts)
				} else {
					geom = orb.LineString(pts)
				}
			}
		}
	case "MultiLineString":
		var ls [][][]float64
		if err = json.Unmarshal(g.Coordinates, &ls); err == nil {
			var ml orb.MultiLineString
			for i, l := range ls {
				var pts []orb.Point
				if pts, err = poss(fmt.Sprintf("%s[%d]", c, i), l); err != nil {
					break
				}
				ml = append(ml, orb.LineString(pts))
			}
			geom = ml
		}
	case "Polygon":
		var rs [][][]float64
		if err = json.Unmarshal(g.Coordinates, &rs); err == nil {
			geom, err = poly(c, rs)
		}
	case "MultiPolygon":
		var ps [][][][]float64
		if err = json.Unmarshal(g.Coordinates, &ps); err == nil {
			var mp orb.MultiPolygon
			for i, rs := range ps {
				var p orb.Polygon
				if p, err = poly(fmt.Sprintf("%s[%d]", c, i), rs); err != nil {
					break
				}
				mp = append(mp, p)
			}
			geom = mp
		}
	case "":
		return nil, fieldErr(field+".type", "is required (Point, Polygon, MultiPolygon, ...)")
	default:
		return nil, fieldErr(field+".type", "%q is not a GeoJSON geometry type this catalogue reads (Point, MultiPoint, LineString, MultiLineString, Polygon, MultiPolygon)", g.Type)
	}
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			return nil, fe
		}
		return nil, fieldErr(c, "do not fit a %s: %v", g.Type, err)
	}
	if err := checkGeometry(field, geom); err != nil {
		return nil, err
	}
	return geom, nil
}

func pos(field string, p []float64) (orb.Point, error) {
	if len(p) != 2 && len(p) != 3 {
		return orb.Point{}, fieldErr(field, "a position has 2 numbers (longitude, latitude), optionally an altitude; got %d", len(p))
	}
	return orb.Point{p[0], p[1]}, nil
}

func poss(field string, ps [][]float64) ([]orb.Point, error) {
	out := make([]orb.Point, len(ps))
	for i, p := range ps {
		q, err := pos(fmt.Sprintf("%s[%d]", field, i), p)
		if err != nil {
			return nil, err
		}
		out[i] = q
	}
	return out, nil
}

func poly(field string, rs [][][]float64) (orb.Polygon, error) {
	out := make(orb.Polygon, len(rs))
	for i, r := range rs {
		pts, err := poss(fmt.Sprintf("%s[%d]", field, i), r)
		if err != nil {
			return nil, err
		}
		out[i] = orb.Ring(pts)
	}
	return out, nil
}

// geometryJSON writes g as a GeoJSON geometry object; nil stays nil.
func geometryJSON(g orb.Geometry) (json.RawMessage, error) {
	if g == nil {
		return nil, nil
	}
	for _, v := range coordsOf(g) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("geometry has a non-finite coordinate")
		}
	}
	return json.Marshal(struct {
		Type        string       `json:"type"`
		Coordinates orb.Geometry `json:"coordinates"`
	}{g.GeoJSONType(), g})
}

// coordsOf lists every coordinate of g, for the finiteness check.
func coordsOf(g orb.Geometry) []float64 {
	var out []float64
	var walk func(orb.Geometry)
	walk = func(g orb.Geometry) {
		switch t := g.(type) {
		case orb.Point:
			out = append(out, t[0], t[1])
		case orb.MultiPoint:
			for _, p := range t {
				walk(p)
			}
		case orb.LineString:
			walk(orb.MultiPoint(t))
		case orb.Ring:
			walk(orb.MultiPoint(t))
		case orb.MultiLineString:
			for _, l := range t {
				walk(l)
			}
		case orb.Polygon:
			for _, r := range t {
				walk(r)
			}
		case orb.MultiPolygon:
			for _, p := range t {
				walk(p)
			}
		}
	}
	walk(g)
	return out
}
