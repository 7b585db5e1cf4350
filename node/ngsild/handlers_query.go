package ngsild

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/mimnode/mimnode/node/ngsild/query"
)

// parseEntityQuery reads the query parameters of GET /entities (clause
// 6.4.3.2) into an entityQuery with names expanded by tc.
func (s *Service) parseEntityQuery(q map[string][]string, tc *termContext) (*entityQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	eq := &entityQuery{limit: s.opts.DefaultLimit}
	if ids := splitList(get("id")); len(ids) > 0 {
		eq.ids = map[string]bool{}
		for _, id := range ids {
			if !isURI(id) {
				return nil, newError(BadRequestData, "invalid id", "%q is not a URI", id)
			}
			eq.ids[id] = true
		}
	}
	if p := get("idPattern"); p != "" {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, newError(BadRequestData, "invalid idPattern", "%v", err)
		}
		eq.idPattern = re
	}
	if t := get("type"); t != "" {
		for _, name := range strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == '|' }) {
			name = strings.TrimSpace(name)
			if err := checkName(name); err != nil {
				return nil, err
			}
			eq.types = append(eq.types, tc.expand(name))
		}
	}
	if a := get("attrs"); a != "" {
		eq.attrs = map[string]bool{}
		for _, name := range splitList(a) {
			if err := checkName(name); err != nil {
				return nil, err
			}
			eq.attrs[tc.expand(name)] = true
		}
	}
	if qs := get("q"); qs != "" {
		parsed, err := query.Parse(qs, tc.expand)
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid q", Detail: err.Error(), Err: err}
		}
		eq.q = parsed
	}
	if georel := get("georel"); georel != "" || get("geometry") != "" || get("coordinates") != "" {
		g, err := query.ParseGeo(georel, get("geometry"), get("coordinates"), get("geoproperty"))
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid geo-query", Detail: err.Error(), Err: err}
		}
		eq.geo = g
		eq.geoIRI = tc.expand(g.Property())
	}
	if eq.ids == nil && eq.idPattern == nil && eq.types == nil && eq.attrs == nil && eq.q == nil && eq.geo == nil {
		return nil, newError(BadRequestData, "query too broad", "give at least one of type, id, idPattern, attrs, q or a geo-query")
	}
	if l := get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, newError(BadRequestData, "invalid limit", "limit must be a non-negative integer, got %q", l)
		}
		if n > s.opts.MaxLimit {
			return nil, newError(TooManyResults, "too many results", "limit %d is above this node's maximum of %d", n, s.opts.MaxLimit)
		}
		eq.limit = n
	}
	if o := get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return nil, newError(BadRequestData, "invalid offset", "offset must be a non-negative integer, got %q", o)
		}
		eq.offset = n
	}
	switch get("count") {
	case "", "false":
	case "true":
		eq.count = true
	default:
		return nil, newError(BadRequestData, "invalid count", "count must be true or false")
	}
	for _, o := range splitList(get("options")) {
		if o == "count" {
			eq.count = true
		}
	}
	if eq.limit == 0 && !eq.count {
		return nil, newError(BadRequestData, "invalid limit", "limit=0 is only allowed with count=true")
	}
	return eq, nil
}

// queryEntities is GET /entities (clause 6.4.3.2).
func (s *Service) queryEntities(w http.ResponseWriter, r *http.Request) error {
	acc, err := negotiate(r, true)
	if err != nil {
		return err
	}
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	params := queryParams(r)
	ro, err := parseRenderOpts(params, tc)
	if err != nil {
		return err
	}
	eq, err := s.parseEntityQuery(params, tc)
	if err != nil {
		return err
	}
	page, total, err := s.run(eq)
	if err != nil {
		return err
	}
	if eq.count {
		w.Header().Set("NGSILD-Results-Count", strconv.Itoa(total))
	}
	if acc == acceptGeo {
		geoIRI := tc.expand(geometryProperty(params))
		features := make([]any, len(page))
		for i, e := range page {
			features[i] = e.renderFeature(tc, ro, geoIRI)
		}
		writeJSON(w, http.StatusOK, map[string]any{"type": "FeatureCollection", "features": features}, acc, tc)
		return nil
	}
	out := make([]map[string]any, len(page))
	for i, e := range page {
		out[i] = e.render(tc, ro)
	}
	writeJSON(w, http.StatusOK, out, acc, tc)
	return nil
}
