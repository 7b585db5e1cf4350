package ngsild

import (
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/mimnode/mimnode/node/store"
)

// typeStats is what the counters say about one entity type.
type typeStats struct {
	count int64
	attrs map[string]map[string]int64 // attrIRI -> attribute type -> entities
}

// metaStats is what the counters say: per entity type, and the number
// of instances of each attribute (attrIRI -> attribute type -> instances).
type metaStats struct {
	types     map[string]*typeStats
	instances map[string]map[string]int64
}

// stats reads the type and attribute counters (n/k/ and n/K/).
func (s *Service) stats() (*metaStats, error) {
	out := &metaStats{types: map[string]*typeStats{}, instances: map[string]map[string]int64{}}
	err := s.db.View(func(tx *store.Txn) error {
		err := tx.Iterate(store.IterOptions{Prefix: []byte(keyCount)}, func(k, v []byte) error {
			if len(v) != 8 {
				return nil
			}
			n := int64(binary.BigEndian.Uint64(v))
			typ, attr, at := splitCountKey(k)
			ts := out.types[typ]
			if ts == nil {
				ts = &typeStats{attrs: map[string]map[string]int64{}}
				out.types[typ] = ts
			}
			if attr == "" {
				ts.count = n
				return nil
			}
			addCount(ts.attrs, attr, at, n)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyInstCount)}, func(k, v []byte) error {
			attr, at, ok := strings.Cut(string(k[len(keyInstCount):]), "\x00")
			if len(v) != 8 || !ok {
				return nil
			}
			addCount(out.instances, attr, at, int64(binary.BigEndian.Uint64(v)))
			return nil
		})
	})
	return out, err
}

// addCount sets m[attr][at] to n.
func addCount(m map[string]map[string]int64, attr, at string, n int64) {
	if m[attr] == nil {
		m[attr] = map[string]int64{}
	}
	m[attr][at] = n
}

func sortedKeys[V any](m map[string]V) []string {
	return appendSortedKeys(make([]string, 0, len(m)), m)
}

// appendSortedKeys appends m's keys, sorted, to keys (empty): with keys
// on a caller's stack array, the usual map's names need no allocation.
func appendSortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// /types and /attributes (clauses 6.25 to 6.28) are two views of the same
// counters, each with a list (names, or details=true entries) and a
// document per name; metaView says what differs and one pair of handlers
// serves both.
type metaView struct {
	list      string // the list's type: EntityTypeList or AttributeList
	member    string // the list's member holding the names
	pathValue string // the {name} path value of the per-name route
	what      string // "type" or "attribute", for errors
	// describe gives, per expanded name with entities, the details=true
	// entry and the per-name document.
	describe func(st *metaStats, tc *termContext) map[string]metaDoc
}

type metaDoc struct{ detail, info map[string]any }

var typesView = metaView{list: "EntityTypeList", member: "typeList", pathValue: "type", what: "type",
	describe: func(st *metaStats, tc *termContext) map[string]metaDoc {
		out := map[string]metaDoc{}
		for t, ts := range st.types {
			if ts.count == 0 {
				continue
			}
			names, details := []string{}, []map[string]any{}
			for _, a := range sortedKeys(ts.attrs) {
				names = append(names, tc.compact(a))
				details = append(details, map[string]any{
					"id": a, "type": "Attribute", "attributeName": tc.compact(a), "attributeTypes": sortedKeys(ts.attrs[a]),
				})
			}
			out[t] = metaDoc{
				detail: map[string]any{"id": t, "type": "EntityType", "typeName": tc.compact(t), "attributeNames": names},
				info:   map[string]any{"id": t, "type": "EntityTypeInfo", "typeName": tc.compact(t), "entityCount": ts.count, "attributeDetails": details},
			}
		}
		return out
	}}

var attributesView = metaView{list: "AttributeList", member: "attributeList", pathValue: "attr", what: "attribute",
	describe: func(st *metaStats, tc *termContext) map[string]metaDoc {
		out := map[string]metaDoc{}
		for a, as := range foldAttrs(st) {
			if as.count == 0 {
				continue
			}
			doc := as.render(a, tc)
			out[a] = metaDoc{detail: doc, info: doc}
		}
		return out
	}}

// StoredTypes returns the expanded type IRIs of the entities the store
// holds, sorted.
func (s *Service) StoredTypes() ([]string, error) {
	counts, err := s.EntityCounts()
	if err != nil {
		return nil, err
	}
	out := slices.Sorted(maps.Keys(counts))
	return out, nil
}

// EntityCounts returns how many entities of each type (expanded IRI) the
// store holds; an entity of several types counts in each.
func (s *Service) EntityCounts() (map[string]int64, error) {
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(st.types))
	for t, ts := range st.types {
		if ts.count > 0 {
			out[t] = ts.count
		}
	}
	return out, nil
}

// listTypes is GET /types (clause 6.25.3.1).
func (s *Service) listTypes(w http.ResponseWriter, r *http.Request) error {
	return s.listMeta(w, r, typesView)
}

// typeInfo is GET /types/{type} (clause 6.26.3.1).
func (s *Service) typeInfo(w http.ResponseWriter, r *http.Request) error {
	return s.metaInfo(w, r, typesView)
}

// listAttributes is GET /attributes (clause 6.27.3.1).
func (s *Service) listAttributes(w http.ResponseWriter, r *http.Request) error {
	return s.listMeta(w, r, attributesView)
}

// attributeInfo is GET /attributes/{attr} (clause 6.28.3.1).
func (s *Service) attributeInfo(w http.ResponseWriter, r *http.Request) error {
	return s.metaInfo(w, r, attributesView)
}

// metaDocs reads the counters and describes them for the request's context.
func (s *Service) metaDocs(r *http.Request, v metaView) (map[string]metaDoc, *termContext, accepted, error) {
	acc, err := negotiate(r, false)
	if err != nil {
		return nil, nil, acc, err
	}
	tc, err := s.queryContext(r)
	if err != nil {
		return nil, nil, acc, err
	}
	st, err := s.stats()
	if err != nil {
		return nil, nil, acc, err
	}
	return v.describe(st, tc), tc, acc, nil
}

func (s *Service) listMeta(w http.ResponseWriter, r *http.Request, v metaView) error {
	docs, tc, acc, err := s.metaDocs(r, v)
	if err != nil {
		return err
	}
	if queryParams(r).Get("details") == "true" {
		out := []map[string]any{}
		for _, k := range sortedKeys(docs) {
			out = append(out, docs[k].detail)
		}
		writeJSON(w, http.StatusOK, out, acc, tc)
		return nil
	}
	names := []string{}
	for _, k := range sortedKeys(docs) {
		names = append(names, tc.compact(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "urn:ngsi-ld:" + v.list + ":" + uuid.NewString(), "type": v.list, v.member: names,
	}, acc, tc)
	return nil
}

func (s *Service) metaInfo(w http.ResponseWriter, r *http.Request, v metaView) error {
	name := r.PathValue(v.pathValue)
	if err := checkName(name); err != nil {
		return err
	}
	docs, tc, acc, err := s.metaDocs(r, v)
	if err != nil {
		return err
	}
	doc, ok := docs[tc.expand(name)]
	if !ok {
		return newError(ResourceNotFound, v.what+" not found", "no entity has %s %q", v.what, name)
	}
	writeJSON(w, http.StatusOK, doc.info, acc, tc)
	return nil
}

// attrStats is what the counters say about one attribute: how many
// instances it has, of which attribute types, in entities of which types.
type attrStats struct {
	count int64
	types map[string]bool
	kinds map[string]bool
}

// foldAttrs folds the per-type counters into per-attribute ones and adds
// the instance counts: attributeCount is the number of the attribute's
// instances (the NGSI-LD Attribute data type), which an entity with two instances (two
// datasetIds) adds two to and an entity of two types adds one to.
func foldAttrs(st *metaStats) map[string]*attrStats {
	out := map[string]*attrStats{}
	for t, ts := range st.types {
		for a, kinds := range ts.attrs {
			as := out[a]
			if as == nil {
				as = &attrStats{types: map[string]bool{}, kinds: map[string]bool{}}
				out[a] = as
			}
			for k, n := range kinds {
				if n == 0 {
					continue
				}
				as.types[t] = true
				as.kinds[k] = true
			}
		}
	}
	for a, as := range out {
		for _, n := range st.instances[a] {
			as.count += n
		}
	}
	return out
}

func (as *attrStats) render(iri string, tc *termContext) map[string]any {
	types := []string{}
	for _, t := range sortedKeys(as.types) {
		types = append(types, tc.compact(t))
	}
	return map[string]any{
		"id": iri, "type": "Attribute", "attributeName": tc.compact(iri), "attributeCount": as.count,
		"attributeTypes": sortedKeys(as.kinds), "typeNames": types,
	}
}

// ---- @context store (clause 6.30) ----

const hostedContextPath = "/ngsi-ld/v1/jsonldContexts/"

// contextURL maps a {id} path value to the URL the document is stored
// under: a full URL (percent-encoded in the path) or the id of a context
// this node hosts.
func (s *Service) contextURL(id string) string {
	if strings.Contains(id, "://") {
		return id
	}
	return s.hostedPrefix() + id
}

// listContexts is GET /jsonldContexts (clause 5.13.3): the URLs in the
// context store, or with details=true what it keeps about each
// (contextDetails); kind=Cached|Hosted|ImplicitlyCreated lists those of
// one kind.
func (s *Service) listContexts(w http.ResponseWriter, r *http.Request) error {
	q := queryParams(r)
	details, err := boolParam(q, "details")
	if err != nil {
		return err
	}
	kind := q.Get("kind")
	switch kind {
	case "", contextCached, contextHosted, contextImplicit:
	default:
		return newError(BadRequestData, "invalid kind", "kind must be Cached, Hosted or ImplicitlyCreated, got %q", kind)
	}
	if !details && kind == "" {
		urls, err := s.ctx.list()
		if urls == nil {
			urls = []string{}
		}
		if err == nil {
			writeBatchResult(w, http.StatusOK, urls)
		}
		return err
	}
	metas, err := s.ctx.metas(s.hostedPrefix())
	if err != nil {
		return err
	}
	out := []any{}
	for _, u := range slices.Sorted(maps.Keys(metas)) {
		m := metas[u]
		if kind != "" && m.Kind != kind {
			continue
		}
		if details {
			out = append(out, s.contextDetails(u, m))
		} else {
			out = append(out, u)
		}
	}
	writeBatchResult(w, http.StatusOK, out)
	return nil
}

// hostedPrefix is what the URLs of the contexts this node hosts start
// with.
func (s *Service) hostedPrefix() string { return s.opts.BaseURL + hostedContextPath }

// boolParam reads the query parameter name, true or false (absent:
// false).
func boolParam(q url.Values, name string) (bool, error) {
	switch v := q.Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, newError(BadRequestData, "invalid "+name, "%s must be true or false, got %q", name, v)
	}
}

// contextNotFound is the error for a URL the context store does not hold.
func contextNotFound(u string) error {
	return newError(ResourceNotFound, "context not found", "the context store has no %q", u)
}

// contextDetails is the description of a stored @context (clause
// 5.13.3.5): its URL, the id this API names it by, its kind and when it
// was stored.
func (s *Service) contextDetails(u string, m contextMeta) map[string]any {
	id, hosted := strings.CutPrefix(u, s.hostedPrefix())
	if !hosted {
		id = url.PathEscape(u)
	}
	d := map[string]any{"URL": u, "localId": id, "kind": m.Kind}
	if !m.Timestamp.IsZero() {
		d["timestamp"] = m.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return d
}

// addContext is POST /jsonldContexts. The body is a context document
// ({"@context": ...}). With ?url=U it is stored as the document of U, so
// entities naming U work offline (mimnode context add URL FILE); without,
// the node hosts it under a new id. 201 with Location either way.
func (s *Service) addContext(w http.ResponseWriter, r *http.Request) error {
	switch mediaType(r) {
	case "application/json", "application/ld+json":
	default:
		return newError(UnsupportedMediaType, "unsupported media type", "send the context as application/ld+json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxContextBytes+1))
	if err != nil {
		return newError(InvalidRequest, "cannot read body", "%v", err)
	}
	if len(body) > maxContextBytes {
		return newError(BadRequestData, "context too large", "a context document may have at most %d bytes", maxContextBytes)
	}
	u := queryParams(r).Get("url")
	// The Location names the context by its id: a hosted one's own
	// (/jsonldContexts/<uuid>), a cached one's URL.
	localID := ""
	if u == "" {
		localID = uuid.NewString()
		u = s.opts.BaseURL + hostedContextPath + localID
	} else if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || strings.ContainsAny(u, " \t\n") {
		return newError(BadRequestData, "invalid url", "the context URL must be an http(s) URL with a host, got %q", u)
	}
	if isCoreContext(u) {
		return newError(OperationNotSupported, "core context is fixed", "the NGSI-LD core context cannot be replaced")
	}
	kind := contextCached
	if localID != "" {
		kind = contextHosted
	}
	if err := s.ctx.put(u, body, kind); err != nil {
		return err
	}
	if localID == "" {
		localID = url.PathEscape(u)
	}
	w.Header().Set("Location", hostedContextPath+localID)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// serveContext is GET /jsonldContexts/{id}: the document, or with
// details=true what the store keeps about it (contextDetails).
func (s *Service) serveContext(w http.ResponseWriter, r *http.Request) error {
	details, err := boolParam(queryParams(r), "details")
	if err != nil {
		return err
	}
	u := s.contextURL(r.PathValue("id"))
	if details {
		m, err := s.ctx.meta(u, s.hostedPrefix())
		if errors.Is(err, store.ErrNotFound) {
			return contextNotFound(u)
		}
		if err != nil {
			return err
		}
		writeBatchResult(w, http.StatusOK, s.contextDetails(u, m))
		return nil
	}
	doc, err := s.ctx.get(u)
	if errors.Is(err, store.ErrNotFound) {
		return contextNotFound(u)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/ld+json")
	_, _ = w.Write(doc)
	return nil
}

// deleteContext is DELETE /jsonldContexts/{id} (clause 5.13.5). With
// reload=true a cached context is fetched again from its URL and
// replaces the stored copy; when the fetch fails the copy stays and the
// answer is 504 (503 when the URL answers with something that is not a
// context).
func (s *Service) deleteContext(w http.ResponseWriter, r *http.Request) error {
	u := s.contextURL(r.PathValue("id"))
	if isCoreContext(u) {
		return newError(OperationNotSupported, "core context is fixed", "the NGSI-LD core context cannot be deleted")
	}
	reload, err := boolParam(queryParams(r), "reload")
	if err != nil {
		return err
	}
	if reload {
		return s.reloadContext(w, u)
	}
	err = s.ctx.remove(u)
	if errors.Is(err, store.ErrNotFound) {
		return contextNotFound(u)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reloadContext is DELETE /jsonldContexts/{id}?reload=true.
func (s *Service) reloadContext(w http.ResponseWriter, u string) error {
	m, err := s.ctx.meta(u, s.hostedPrefix())
	if errors.Is(err, store.ErrNotFound) {
		// Reload is a request about a cached context; for an id that
		// names none the request itself is wrong (clause 5.13.5.4; the
		// ETSI conformance suite's 051_04_01), as for a hosted one.
		return newError(BadRequestData, "no cached context", "only a cached context can be reloaded from its URL, and this node holds no context %q", u)
	}
	if err != nil {
		return err
	}
	if m.Kind != contextCached {
		return newError(BadRequestData, "not a cached context", "only a cached context can be reloaded from its URL; %q is %s", u, m.Kind)
	}
	doc, err := s.ctx.fetch(u)
	if err != nil {
		e := newError(LdContextNotAvailable, "reload failed", "fetching %s again failed, the stored copy is kept: %v", u, err)
		e.HTTPStatus = http.StatusGatewayTimeout
		return e
	}
	if _, err := parseContextDoc(doc); err != nil {
		return newError(LdContextNotAvailable, "reload failed", "%s now serves no JSON-LD context, the stored copy is kept: %v", u, err)
	}
	if err := s.ctx.put(u, doc, contextCached); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
