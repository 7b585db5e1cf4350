package ngsild

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
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
		ts, err := parseTypeSelection(t, tc)
		if err != nil {
			return nil, err
		}
		eq.types = ts.Any()
		if !ts.IsList() {
			eq.typeSel = ts
		}
	}
	if sq := get("scopeQ"); sq != "" {
		parsed, err := query.ParseScopeQuery(plusLevels(sq))
		if err != nil {
			return nil, &Error{Type: BadRequestData, Title: "invalid scopeQ", Detail: err.Error(), Err: err}
		}
		eq.scopeQ = parsed
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
	// local=true (NGSI-LD 1.6 and later) restricts a query to this node's own
	// entities, which are all it has: it asks for every entity, in pages,
	// where a query without it must name something to select.
	var local bool
	switch l := get("local"); l {
	case "", "false":
	case "true":
		local = true
	default:
		return nil, newError(BadRequestData, "invalid local", "local must be true or false, not %q", l)
	}
	if !local && eq.ids == nil && eq.idPattern == nil && eq.types == nil && eq.attrs == nil && eq.q == nil && eq.geo == nil && eq.scopeQ == nil {
		return nil, newError(BadRequestData, "query too broad", "give at least one of type, id, idPattern, attrs, q, scopeQ or a geo-query, or local=true for every entity")
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
	return s.answerQuery(w, queryParams(r), tc, acc, r.URL)
}

// answerQuery runs a query given as GET /entities parameters and writes the
// result. With self (the request's URL, for GET), a page that has results
// after it carries a Link to the next page and one not at the start a
// Link to the previous (rel "next" and "prev").
func (s *Service) answerQuery(w http.ResponseWriter, params url.Values, tc *termContext, acc accepted, self *url.URL) error {
	ro, err := parseRenderOpts(params, tc)
	if err != nil {
		return err
	}
	eq, err := s.parseEntityQuery(params, tc)
	if err != nil {
		return err
	}
	page, err := s.runPage(w.Header(), eq, self)
	if err != nil {
		return err
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

// queryBody is the Query data type of POST /entityOperations/query (clause
// 5.2.23).
type queryBody struct {
	Type     string `json:"type"`
	Entities []struct {
		ID        string `json:"id"`
		IDPattern string `json:"idPattern"`
		Type      string `json:"type"`
	} `json:"entities"`
	Attrs  []string `json:"attrs"`
	Q      string   `json:"q"`
	ScopeQ string   `json:"scopeQ"`
	GeoQ   *struct {
		Geometry    string          `json:"geometry"`
		Coordinates json.RawMessage `json:"coordinates"`
		Georel      string          `json:"georel"`
		Geoproperty string          `json:"geoproperty"`
	} `json:"geoQ"`
	// TemporalQ is POST /temporal/entityOperations/query's (clause 5.2.21).
	TemporalQ *struct {
		Timerel      string `json:"timerel"`
		TimeAt       string `json:"timeAt"`
		EndTimeAt    string `json:"endTimeAt"`
		Timeproperty string `json:"timeproperty"`
	} `json:"temporalQ"`
}

// postQuery is POST /entityOperations/query (clause 6.23.3.1): the same
// query as GET /entities, with the restrictions in the body (for queries
// too long for a URL); limit, offset, count and options stay in the URL.
func (s *Service) postQuery(w http.ResponseWriter, r *http.Request) error {
	acc, err := negotiate(r, true)
	if err != nil {
		return err
	}
	params, _, tc, err := s.queryBodyParams(r)
	if err == nil {
		tc, err = s.linkable(tc, acc)
	}
	if err != nil {
		return err
	}
	return s.answerQuery(w, params, tc, acc, nil)
}

// queryBodyParams reads a Query body (POST /entityOperations/query and
// its temporal twin) into GET /entities parameters, over the URL's own
// (limit, offset, count, options), with the body's @context.
func (s *Service) queryBodyParams(r *http.Request) (url.Values, *queryBody, *termContext, error) {
	body, ldJSON, err := readBody(r)
	if err != nil {
		return nil, nil, nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, nil, nil, newError(InvalidRequest, "invalid query", "the body must be a JSON object")
	}
	tc, err := s.bodyContext(r, raw, ldJSON)
	if err != nil {
		return nil, nil, nil, err
	}
	var qb queryBody
	if err := json.Unmarshal(body, &qb); err != nil {
		return nil, nil, nil, newError(BadRequestData, "invalid query", "%v", err)
	}
	if qb.Type != "Query" {
		return nil, nil, nil, newError(BadRequestData, "invalid query", `the body's type must be "Query"`)
	}
	params := queryParams(r)
	for _, k := range []string{"id", "idPattern", "type", "attrs", "q", "scopeQ", "georel", "geometry", "coordinates", "geoproperty"} {
		delete(params, k)
	}
	var ids, types []string
	for _, sel := range qb.Entities {
		switch {
		case sel.ID != "":
			ids = append(ids, sel.ID)
		case sel.IDPattern != "":
			if params.Get("idPattern") != "" {
				return nil, nil, nil, newError(OperationNotSupported, "query not supported", "at most one entity selector may use idPattern")
			}
			params.Set("idPattern", sel.IDPattern)
		}
		if sel.Type != "" && !contains(types, sel.Type) {
			types = append(types, sel.Type)
		}
	}
	if len(ids) > 0 {
		params.Set("id", strings.Join(ids, ","))
	}
	if len(types) > 0 {
		for i, t := range types {
			if strings.ContainsAny(t, ";|,()") {
				types[i] = "(" + t + ")" // a selector's own type selection
			}
		}
		params.Set("type", strings.Join(types, ","))
	}
	if qb.ScopeQ != "" {
		params.Set("scopeQ", qb.ScopeQ)
	}
	if len(qb.Attrs) > 0 {
		params.Set("attrs", strings.Join(qb.Attrs, ","))
	}
	if qb.Q != "" {
		params.Set("q", qb.Q)
	}
	if g := qb.GeoQ; g != nil {
		coords := string(g.Coordinates)
		var asString string
		if json.Unmarshal(g.Coordinates, &asString) == nil {
			coords = asString // coordinates may be given as the URL form's text
		}
		params.Set("georel", g.Georel)
		params.Set("geometry", g.Geometry)
		params.Set("coordinates", coords)
		if g.Geoproperty != "" {
			params.Set("geoproperty", g.Geoproperty)
		}
	}
	return params, &qb, tc, nil
}

// plusLevels restores the '+' wildcard levels of a scopeQ that form
// decoding turned into spaces (a client that did not write %2B): a scope
// level is never white space, so a level that is one space was a '+'.
func plusLevels(sq string) string {
	b := []byte(sq)
	for i, c := range b {
		if c != ' ' || i == 0 || b[i-1] != '/' {
			continue
		}
		if i+1 == len(b) || strings.IndexByte("/;,|)", b[i+1]) >= 0 {
			b[i] = '+'
		}
	}
	return string(b)
}

// runPage runs eq for one page of an answer and sets its headers: the
// count (with count=true) and, with self (a GET's URL), the next and prev
// page links, for which it runs one match past the page.
func (s *Service) runPage(h http.Header, eq *entityQuery, self *url.URL) ([]*Entity, error) {
	limit := eq.limit
	if self != nil && limit > 0 {
		eq.limit++
	}
	page, total, err := s.run(eq)
	if err != nil {
		return nil, err
	}
	more := len(page) > limit
	if more {
		page = page[:limit]
	}
	if eq.count {
		h.Set("NGSILD-Results-Count", strconv.Itoa(total))
	}
	if self != nil && limit > 0 {
		pageLinks(h, self, eq.offset, limit, more)
	}
	return page, nil
}

// parseTypeSelection reads a type parameter (a type, a list, or an
// expression with ; | and parentheses) with names expanded by tc.
func parseTypeSelection(t string, tc *termContext) (*query.TypeSelection, error) {
	ts, err := query.ParseTypes(t, tc.expand)
	if err != nil {
		return nil, &Error{Type: BadRequestData, Title: "invalid type selection", Detail: err.Error(), Err: err}
	}
	return ts, nil
}

// pageLinks adds the Link headers of a page of results at offset: the
// next page when more follow, the previous when it is not the first. They
// repeat the request's other parameters as it sent them, but for
// characters a URI may not hold, which a client may send unencoded
// (q=temperature>12) and which would break the Link header: those are
// percent-encoded (uriSafe).
func pageLinks(h http.Header, self *url.URL, offset, limit int, more bool) {
	var keep []string
	for _, p := range strings.Split(self.RawQuery, "&") {
		if p == "" || strings.HasPrefix(p, "offset=") || strings.HasPrefix(p, "limit=") {
			continue
		}
		keep = append(keep, uriSafe(p))
	}
	link := func(off int, rel string) {
		q := append(slices.Clone(keep), "offset="+strconv.Itoa(off), "limit="+strconv.Itoa(limit))
		h.Add("Link", "<"+self.EscapedPath()+"?"+strings.Join(q, "&")+`>; rel="`+rel+`"`)
	}
	if offset > 0 {
		link(max(0, offset-limit), "prev")
	}
	if more {
		link(offset+limit, "next")
	}
}

// uriSafe percent-encodes the bytes of a query parameter that RFC 3986
// allows nowhere in a URI (space, <, >, ", {, }, |, \, ^, `, controls and
// non-ASCII), leaving the rest, escapes included, as they are.
func uriSafe(p string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`<>"{}|\^`+"`", c) >= 0 {
			if b.Len() == 0 {
				b.WriteString(p[:i])
			}
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return p
	}
	return b.String()
}
