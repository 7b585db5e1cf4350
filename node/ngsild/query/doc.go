// Package query parses and evaluates the NGSI-LD query language (ETSI GS CIM 009
// clause 4.9, the q parameter), geo-queries (clause 4.10), the entity type
// selection language (clause 4.17, the type parameter) and the scope query
// language (clause 4.19, scopeQ). It is pure: no
// storage, no HTTP, no clock; a store supplies entities through the Entity
// interface.
//
// A store answers GET /entities?q=... in three steps:
//
//	q, err := query.Parse(r.URL.Query().Get("q"), ctx.Expand)
//	if err != nil {
//		// errors.Is(err, query.ErrSyntax); the *SyntaxError names the offset.
//		return badRequest(err)
//	}
//	for _, t := range q.IndexTerms() {
//		// narrow the candidates with an attribute-value index, if one exists
//	}
//	for _, e := range candidates {
//		if q.Match(e) { ... }
//	}
//
// Attribute names are expanded while parsing, by the caller's expand function
// (the request's @context), so Path.Attrs hold the IRIs the store keys on. The
// metadata members observedAt, createdAt, modifiedAt, unitCode and datasetId at
// the end of a path are kept as written.
//
// Geo-queries work the same way on the geoproperty's geometry:
//
//	g, err := query.ParseGeo(v.Get("georel"), v.Get("geometry"), v.Get("coordinates"), v.Get("geoproperty"))
//	if b, ok := g.Bound(); ok {
//		// candidates = spatial index cells touching b
//	}
//	geom, err := query.Geometry(e.Values(query.Path{Attrs: []string{expand(g.Property())}})[0])
//	if g.Match(geom) { ... }
//
// Distances are metres on a sphere; the topological relations are computed in
// planar longitude/latitude (see Geo for the approximation).
//
// Type selections and scope queries share one boolean shell (';' AND, '|' or
// ',' OR, parentheses) and are matched against an entity's types and scopes:
//
//	ts, err := query.ParseTypes("(Building;Vehicle)|Device", ctx.Expand)
//	for _, t := range ts.Any() { /* candidates = type index entries of t */ }
//	if ts.Match(entityTypes) { ... }
//	sq, err := query.ParseScopeQuery("/Madrid/#")
//	if sq.Match(entityScopes) { ... }
//
// MapEntity implements Entity over an entity in normalized form decoded from JSON;
// a store with its own representation implements Values itself, and can use
// LookupKeys for the a[k1.k2] part of a path.
package query
