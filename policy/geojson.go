package policy

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/paulmach/orb"
)

// A GeoJSON geometry codec for rightOperand areas (RFC 7946 geometry objects
// other than GeometryCollection). orb/geojson would do, but it pulls in the
// MongoDB BSON module for one feature we do not use.

func decodeGeometry(obj map[string]any) (orb.Geometry, error) {
	typ, _ := obj["type"].(string)
	coords, ok := obj["coordinates"]
	if !ok {
		return nil, fmt.Errorf("GeoJSON %s has no coordinates", typ)
	}
	for k := range obj {
		switch k {
		case "type", "coordinates", "bbox", "crs":
		default:
			return nil, fmt.Errorf("GeoJSON geometry has unexpected member %q", k)
		}
	}
	switch typ {
	case "Point":
		return position(coords)
	case "MultiPoint":
		ps, err := positions(coords)
		return orb.MultiPoint(ps), err
	case "LineString":
		ps, err := positions(coords)
		if err == nil && len(ps) < 2 {
			err = fmt.Errorf("a LineString needs at least 2 positions")
		}
		return orb.LineString(ps), err
	case "MultiLineString":
		var ml orb.MultiLineString
		l, ok := coords.([]any)
		if !ok {
			return nil, fmt.Errorf("MultiLineString coordinates must be an array")
		}
		for _, x := range l {
			ps, err := positions(x)
			if err != nil {
				return nil, err
			}
			ml = append(ml, orb.LineString(ps))
		}
		return ml, nil
	case "Polygon":
		return polygon(coords)
	case "MultiPolygon":
		var mp orb.MultiPolygon
		l, ok := coords.([]any)
		if !ok {
			return nil, fmt.Errorf("MultiPolygon coordinates must be an array")
		}
		for _, x := range l {
			p, err := polygon(x)
			if err != nil {
				return nil, err
			}
			mp = append(mp, p)
		}
		return mp, nil
	}
	return nil, fmt.Errorf("GeoJSON type %q is not supported here", typ)
}

func position(v any) (orb.Point, error) {
	l, ok := v.([]any)
	if !ok || len(l) < 2 || len(l) > 3 {
		return orb.Point{}, fmt.Errorf("a position must be [longitude, latitude]")
	}
	var p orb.Point
	for i := 0; i < 2; i++ {
		n, ok := l[i].(json.Number)
		if !ok {
			return orb.Point{}, fmt.Errorf("a position must hold numbers")
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return orb.Point{}, fmt.Errorf("position coordinate %s is out of range", n)
		}
		p[i] = f
	}
	return p, nil
}

func positions(v any) ([]orb.Point, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("positions must be an array")
	}
	out := make([]orb.Point, 0, len(l))
	for _, x := range l {
		p, err := position(x)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func polygon(v any) (orb.Polygon, error) {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return nil, fmt.Errorf("polygon coordinates must be a non-empty array of rings")
	}
	var p orb.Polygon
	for _, x := range l {
		ps, err := positions(x)
		if err != nil {
			return nil, err
		}
		if len(ps) < 4 || ps[0] != ps[len(ps)-1] {
			return nil, fmt.Errorf("a polygon ring needs at least 4 positions and must end where it starts")
		}
		p = append(p, orb.Ring(ps))
	}
	return p, nil
}

// encodeGeometry is the inverse of decodeGeometry.
func encodeGeometry(g orb.Geometry) (any, error) {
	var coords any
	switch t := g.(type) {
	case orb.Point:
		coords = pt(t)
	case orb.MultiPoint:
		coords = pts(t)
	case orb.LineString:
		coords = pts(t)
	case orb.MultiLineString:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = pts(x)
		}
		coords = l
	case orb.Polygon:
		coords = poly(t)
	case orb.MultiPolygon:
		l := make([]any, len(t))
		for i, x := range t {
			l[i] = poly(x)
		}
		coords = l
	default:
		return nil, fmt.Errorf("%w: geometry %s cannot be written as a rightOperand", ErrSyntax, geomName(g))
	}
	return map[string]any{"type": g.GeoJSONType(), "coordinates": coords}, nil
}

func pt(p orb.Point) []float64 { return []float64{p[0], p[1]} }

func pts(ps []orb.Point) []any {
	l := make([]any, len(ps))
	for i, p := range ps {
		l[i] = pt(p)
	}
	return l
}

func poly(p orb.Polygon) []any {
	l := make([]any, len(p))
	for i, r := range p {
		l[i] = pts(r)
	}
	return l
}
