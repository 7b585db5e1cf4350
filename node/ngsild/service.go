package ngsild

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/model"
	"github.com/mimnode/mimnode/node/store"
)

// Options configures a Service. The zero value works.
type Options struct {
	// Logger receives errors the API hides from clients; nil discards.
	Logger *slog.Logger
	// HTTPClient fetches remote @context documents the context store does
	// not hold (default: a client with ContextTimeout).
	HTTPClient *http.Client
	// ContextTimeout bounds one remote context fetch (default 5s).
	ContextTimeout time.Duration
	// DefaultLimit is the page size when a query gives no limit (default 20).
	DefaultLimit int
	// MaxLimit is the largest limit a query may ask for; more gives
	// TooManyResults (default 1000).
	MaxLimit int
	// BaseURL is the node's API address as clients reach it (for example
	// http://127.0.0.1:7070); contexts uploaded without a URL are served
	// under BaseURL/ngsi-ld/v1/jsonldContexts/{id}. Default http://localhost.
	BaseURL string
	// Now is the clock for createdAt/modifiedAt (default time.Now).
	Now func() time.Time
	// Contexts are extra documents to preload into the context store, by
	// URL, on top of the NGSI-LD core context and the Smart Data Models
	// contexts (model.Contexts), which are always preloaded.
	Contexts map[string][]byte
	// Models is the MIM2 schema registry (default model.NewRegistry(): the
	// shipped Smart Data Models).
	Models *model.Registry
	// SkipValidation turns MIM2 validation off, for importing data that
	// predates its model (some upstream examples break their own schema).
	SkipValidation bool
	// Tenants are NGSILD-Tenant names answered as the node's own data
	// (node.NGSILDConfig.Tenants); a request naming another is refused.
	Tenants []string
	// IndexedAttributes are attribute IRIs to keep a value index on from
	// the start; others get one when a query first filters on them (see
	// valueIndexes).
	IndexedAttributes []string
	// Retention is how long attribute history is kept, by entity type IRI
	// (default, and for types not listed: forever). Start trims it every
	// RetentionInterval (default 1h); TrimHistory does it on demand.
	Retention         map[string]time.Duration
	RetentionInterval time.Duration
	// Notify configures subscription notification delivery (notify.go).
	Notify NotifyOptions
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ContextTimeout <= 0 {
		o.ContextTimeout = 5 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.ContextTimeout}
	}
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 20
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 1000
	}
	if o.BaseURL == "" {
		o.BaseURL = "http://localhost"
	}
	o.BaseURL = strings.TrimRight(o.BaseURL, "/")
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service is a node's NGSI-LD context broker: the entity store in badger and
// the HTTP API over it. It is safe for concurrent use.
type Service struct {
	db   *store.DB
	opts Options
	log  *slog.Logger
	ctx  *contextStore
	val  *validator

	// wmu serializes entity writes so that change sequence numbers commit
	// in order (see commit).
	wmu sync.Mutex
	seq atomic.Uint64 // last committed sequence number
	// written lists the ids the latest commits wrote (ahead.go); guarded
	// by wmu.
	written writtenLog

	subsMu sync.Mutex
	subs   map[chan struct{}]struct{} // guarded by subsMu

	notif  *notifier     // subscriptions (notify.go)
	recent recentChanges // the newest changes, for the dispatcher (notify.go)
	codes  *attrCodes    // attribute numbers in history keys (history.go)
	vidx   valueIndexes
	bg     sync.WaitGroup // background index builds
	closed atomic.Bool
}

// New opens the NGSI-LD service over db: it preloads the core context (and
// opts.Contexts) into the context store and reads the change sequence.
func New(db *store.DB, opts Options) (*Service, error) {
	opts.setDefaults()
	cs, err := newContextStore(db, opts.HTTPClient, opts.ContextTimeout)
	if err != nil {
		return nil, err
	}
	s := &Service{db: db, opts: opts, log: opts.Logger, ctx: cs, subs: map[chan struct{}]struct{}{}}
	for _, u := range []string{CoreContextURL, CoreContextV19URL} {
		if err := cs.preload(u, coreContextDoc); err != nil {
			return nil, fmt.Errorf("preload core context: %w", err)
		}
	}
	preload := model.Contexts()
	for u, doc := range opts.Contexts {
		preload[u] = doc
	}
	for u, doc := range preload {
		if _, err := parseContextDoc(doc); err != nil {
			return nil, fmt.Errorf("preload context %s: %w", u, err)
		}
		if err := cs.preload(u, doc); err != nil {
			return nil, fmt.Errorf("preload context %s: %w", u, err)
		}
	}
	if err := cs.backfill(s.hostedPrefix()); err != nil {
		return nil, fmt.Errorf("context store: %w", err)
	}
	if s.val, err = newValidator(s, opts.Models); err != nil {
		return nil, err
	}
	seq, err := lastSeq(db)
	if err != nil {
		return nil, err
	}
	s.seq.Store(seq)
	// Value index builds resume in loadValueIndexes: they write keys
	// naming codes, after the migration of the older keys.
	if s.codes, err = loadAttrCodes(db); err != nil {
		return nil, err
	}
	if err := s.migrateIndexKeys(); err != nil {
		return nil, err
	}
	if err := s.migrateInstanceCounts(); err != nil {
		return nil, err
	}
	if err := s.loadValueIndexes(); err != nil {
		return nil, err
	}
	if s.notif, err = newNotifier(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Close releases the service. It does not close the store, which the node
// owns; every acknowledged write is already durable.
func (s *Service) Close() error {
	// An unfinished index build resumes at the next start.
	s.closed.Store(true)
	s.notif.close()
	s.bg.Wait()
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for ch := range s.subs {
		delete(s.subs, ch)
	}
	return nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

// route is one entry of the route table.
type route struct {
	pattern string
	handler func(*Service, http.ResponseWriter, *http.Request) error
}

// routes is the whole NGSI-LD API (ETSI GS CIM 009 clause 6), in one table.
var routes = []route{
	{"POST /ngsi-ld/v1/entities", (*Service).createEntity},
	{"GET /ngsi-ld/v1/entities", (*Service).queryEntities},
	{"GET /ngsi-ld/v1/entities/{id}", (*Service).retrieveEntity},
	{"DELETE /ngsi-ld/v1/entities/{id}", (*Service).deleteEntity},
	{"PUT /ngsi-ld/v1/entities/{id}", (*Service).replaceEntity},
	{"PATCH /ngsi-ld/v1/entities/{id}", (*Service).mergeEntity},
	{"POST /ngsi-ld/v1/entities/{id}/attrs", (*Service).appendAttrs},
	{"PATCH /ngsi-ld/v1/entities/{id}/attrs", (*Service).updateAttrs},
	{"PATCH /ngsi-ld/v1/entities/{id}/attrs/{attr}", (*Service).partialAttrUpdate},
	{"PUT /ngsi-ld/v1/entities/{id}/attrs/{attr}", (*Service).replaceAttr},
	{"DELETE /ngsi-ld/v1/entities/{id}/attrs/{attr}", (*Service).deleteAttr},
	{"POST /ngsi-ld/v1/entityOperations/create", (*Service).batchCreate},
	{"POST /ngsi-ld/v1/entityOperations/upsert", (*Service).batchUpsert},
	{"POST /ngsi-ld/v1/entityOperations/update", (*Service).batchUpdate},
	{"POST /ngsi-ld/v1/entityOperations/delete", (*Service).batchDelete},
	{"POST /ngsi-ld/v1/entityOperations/merge", (*Service).batchMerge},
	{"POST /ngsi-ld/v1/entityOperations/query", (*Service).postQuery},
	{"GET /ngsi-ld/v1/types", (*Service).listTypes},
	{"GET /ngsi-ld/v1/types/{type}", (*Service).typeInfo},
	{"GET /ngsi-ld/v1/attributes", (*Service).listAttributes},
	{"GET /ngsi-ld/v1/attributes/{attr}", (*Service).attributeInfo},
	{"POST /ngsi-ld/v1/temporal/entities", (*Service).createTemporal},
	{"GET /ngsi-ld/v1/temporal/entities", (*Service).queryTemporal},
	{"GET /ngsi-ld/v1/temporal/entities/{id}", (*Service).retrieveTemporal},
	{"DELETE /ngsi-ld/v1/temporal/entities/{id}", (*Service).deleteTemporal},
	{"POST /ngsi-ld/v1/temporal/entities/{id}/attrs", (*Service).appendTemporalAttrs},
	{"POST /ngsi-ld/v1/temporal/entityOperations/query", (*Service).postTemporalQuery},
	{"DELETE /ngsi-ld/v1/temporal/entities/{id}/attrs/{attr}", (*Service).deleteTemporalAttr},
	{"DELETE /ngsi-ld/v1/temporal/entities/{id}/attrs/{attr}/{instanceId}", (*Service).deleteTemporalInstance},
	{"PATCH /ngsi-ld/v1/temporal/entities/{id}/attrs/{attr}/{instanceId}", (*Service).patchTemporalInstance},
	{"POST /ngsi-ld/v1/subscriptions", (*Service).createSubscription},
	{"GET /ngsi-ld/v1/subscriptions", (*Service).listSubscriptions},
	{"GET /ngsi-ld/v1/subscriptions/{id}", (*Service).retrieveSubscription},
	{"PATCH /ngsi-ld/v1/subscriptions/{id}", (*Service).updateSubscription},
	{"DELETE /ngsi-ld/v1/subscriptions/{id}", (*Service).deleteSubscription},
	{"GET /ngsi-ld/v1/jsonldContexts", (*Service).listContexts},
	{"POST /ngsi-ld/v1/jsonldContexts", (*Service).addContext},
	{"GET /ngsi-ld/v1/jsonldContexts/{id}", (*Service).serveContext},
	{"DELETE /ngsi-ld/v1/jsonldContexts/{id}", (*Service).deleteContext},
}

// Register mounts the NGSI-LD API on mux. Each path is also served with
// a trailing slash: the FIWARE IoT Agent posts every measurement to
// /entityOperations/upsert/, and other brokers take either form.
func (s *Service) Register(mux *http.ServeMux) {
	for _, rt := range routes {
		h, idKind := rt.handler, pathIDKind(rt.pattern)
		handle := func(w http.ResponseWriter, r *http.Request) {
			err := s.checkTenant(w, r)
			if err == nil && idKind != "" {
				err = checkPathID(r, idKind)
			}
			if err == nil {
				err = h(s, w, r)
			}
			if err != nil {
				s.writeError(w, r, err)
			}
		}
		mux.HandleFunc(rt.pattern, handle)
		mux.HandleFunc(rt.pattern+"/{$}", handle)
	}
}

// ---- request helpers ----

// pathIDKind says what the {id} of a route pattern names ("entity",
// "subscription"), "" when it has none that must be a URI.
func pathIDKind(pattern string) string {
	switch {
	case strings.Contains(pattern, "/entities/{id}"):
		return "entity"
	case strings.Contains(pattern, "/subscriptions/{id}"):
		return "subscription"
	}
	return ""
}

// checkPathID refuses an entity or subscription id (kind) in the path that
// is not a URI (BadRequestData, as for one in a body): nothing can have
// it, and a client that sent it has a bug that "not found" would hide.
func checkPathID(r *http.Request, kind string) error {
	if id := r.PathValue("id"); !isURI(id) {
		return newError(BadRequestData, "invalid "+kind+" id", "%q is not a URI", id)
	}
	return nil
}

// checkTenant refuses a request naming a tenant (the NGSILD-Tenant header,
// clause 4.14) that is not one of Options.Tenants: a node holds one
// agency's data, with no tenants, and answering in the default tenant
// would mix the data of the tenants a client keeps apart. A listed name
// is the node's own data, and the answer names it back (clause 6.3.14).
func (s *Service) checkTenant(w http.ResponseWriter, r *http.Request) error {
	t := r.Header.Get("NGSILD-Tenant")
	if t == "" {
		return nil
	}
	if slices.Contains(s.opts.Tenants, t) {
		w.Header().Set("NGSILD-Tenant", t)
		return nil
	}
	return newError(NoMultiTenantSupport, "no multi-tenancy",
		"this node has no tenants; send the request without the NGSILD-Tenant header (it names %q), or list the name in [ngsild] tenants in config.toml to answer it as this node's data", t)
}

const jsonldContextRel = "http://www.w3.org/ns/json-ld#context"

// linkContext returns the @context URL of a Link header (clause 6.3.5), ""
// when there is none.
func linkContext(r *http.Request) (string, error) {
	for _, h := range r.Header.Values("Link") {
		for _, part := range strings.Split(h, ",") {
			part = strings.TrimSpace(part)
			if !strings.Contains(part, jsonldContextRel) {
				// Links of other relations are not the node's business,
				// but a link without any is malformed (RFC 8288 section
				// 3.3), and usually an @context link missing its rel:
				// ignored, it would leave the request under the core
				// context and its short names matching nothing.
				if part != "" && !strings.Contains(strings.ToLower(part), "rel=") {
					return "", newError(BadRequestData, "invalid Link header",
						"the link %q has no rel; an @context is linked as <URL>; rel=\"%s\"; type=\"application/ld+json\"", part, jsonldContextRel)
				}
				continue
			}
			i, j := strings.IndexByte(part, '<'), strings.IndexByte(part, '>')
			if i < 0 || j < i {
				return "", newError(BadRequestData, "invalid Link header", "the JSON-LD context link has no <URL>")
			}
			u := part[i+1 : j]
			if !isURI(u) {
				return "", newError(BadRequestData, "invalid Link header", "%q is not a URL", u)
			}
			return u, nil
		}
	}
	return "", nil
}

// mediaType returns the request's Content-Type without parameters.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

// readBody reads a JSON request body under the size cap and checks its media
// type; ldJSON tells whether the @context is in the body.
func readBody(r *http.Request) (body []byte, ldJSON bool, err error) {
	switch mediaType(r) {
	case "application/ld+json":
		ldJSON = true
	case "application/json":
	case "application/merge-patch+json":
		// A merge patch is a PATCH body (RFC 7396); creating or
		// replacing with one is a client's mistake worth saying.
		if r.Method != http.MethodPatch {
			return nil, false, newError(UnsupportedMediaType, "unsupported media type",
				"application/merge-patch+json is for PATCH; send %s bodies as application/json or application/ld+json", r.Method)
		}
	default:
		return nil, false, newError(UnsupportedMediaType, "unsupported media type",
			"send application/json or application/ld+json, not %q", r.Header.Get("Content-Type"))
	}
	// A batch body is megabytes: read it into a buffer of the announced
	// size instead of growing one (io.ReadAll) and copying it a dozen times.
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBodyBytes+1)); err != nil {
		return nil, false, newError(InvalidRequest, "cannot read body", "%v", err)
	}
	body = buf.Bytes()
	if len(body) > maxBodyBytes {
		return nil, false, newError(BadRequestData, "body too large", "the body exceeds %d bytes", maxBodyBytes)
	}
	return body, ldJSON, nil
}

// bodyContext resolves the @context of one entity body: from the body for
// application/ld+json, from the Link header for application/json.
func (s *Service) bodyContext(r *http.Request, m map[string]any, ldJSON bool) (*termContext, error) {
	link, err := linkContext(r)
	if err != nil {
		return nil, err
	}
	ctxVal, hasCtx := m["@context"]
	if ldJSON {
		if link != "" {
			return nil, newError(BadRequestData, "ambiguous @context", "application/ld+json bodies carry their @context; do not send a Link header too")
		}
		if !hasCtx {
			return nil, newError(BadRequestData, "missing @context", "an application/ld+json body needs an @context member")
		}
		return s.ctx.resolve(ctxVal)
	}
	if hasCtx {
		return nil, newError(BadRequestData, "unexpected @context", "an application/json body must not have @context; send it in a Link header or use application/ld+json")
	}
	if link == "" {
		return s.ctx.resolve(nil)
	}
	return s.ctx.resolve(link)
}

// queryContext resolves the @context of a GET (or DELETE) from the Link
// header, defaulting to the core context.
func (s *Service) queryContext(r *http.Request) (*termContext, error) {
	link, err := linkContext(r)
	if err != nil {
		return nil, err
	}
	if link == "" {
		return s.ctx.resolve(nil)
	}
	return s.ctx.resolve(link)
}

// accepted is the response media type negotiated from Accept.
type accepted int

const (
	acceptJSON accepted = iota
	acceptLD
	acceptGeo
)

func negotiate(r *http.Request, geoOK bool) (accepted, error) {
	h := r.Header.Get("Accept")
	if h == "" {
		return acceptJSON, nil
	}
	best, bestQ := accepted(-1), -1.0
	for _, part := range strings.Split(h, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			if _, err := fmt.Sscanf(qs, "%g", &q); err != nil {
				q = 0
			}
		}
		if q <= 0 {
			// q=0 marks a type as not acceptable (RFC 9110 section 12.4.2).
			continue
		}
		var a accepted
		switch mt {
		case "application/json", "*/*", "application/*":
			a = acceptJSON
		case "application/ld+json":
			a = acceptLD
		case "application/geo+json":
			if !geoOK {
				continue
			}
			a = acceptGeo
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = a, q
		}
	}
	if best < 0 {
		if !geoOK {
			return 0, newError(NotAcceptable, "not acceptable", "this resource is available as application/json or application/ld+json")
		}
		return 0, newError(NotAcceptable, "not acceptable", "this resource is available as application/json, application/ld+json or application/geo+json")
	}
	return best, nil
}

// writeJSON sends v with the @context placed as the negotiated type asks:
// in the body for ld+json (objects and each array element), in a Link header
// for json, and both for geo+json (at the top of the Feature or
// FeatureCollection).
func writeJSON(w http.ResponseWriter, status int, v any, acc accepted, tc *termContext) {
	ctxVal := any(CoreContextURL)
	if tc != nil && tc.value != nil {
		ctxVal = tc.value
	}
	switch acc {
	case acceptLD:
		w.Header().Set("Content-Type", "application/ld+json")
		switch x := v.(type) {
		case map[string]any:
			x["@context"] = ctxVal
		case []map[string]any:
			for _, m := range x {
				if _, own := m["@context"]; !own { // a subscription keeps its own
					m["@context"] = ctxVal
				}
			}
		}
	case acceptGeo:
		// A Feature or FeatureCollection carries the @context as a
		// top-level member (clause 6.3.15; the ETSI conformance suite's
		// 019_05_01 expects it on the collection), and the Link header
		// as well, for clients that read it there.
		w.Header().Set("Content-Type", "application/geo+json")
		if x, ok := v.(map[string]any); ok {
			x["@context"] = ctxVal
		}
		setLink(w, tc)
	default:
		w.Header().Set("Content-Type", "application/json")
		setLink(w, tc)
	}
	// appendValue writes what encoding/json would (FuzzParseJSON checks),
	// several times faster, which matters for large query results.
	var b []byte
	if list, ok := v.([]map[string]any); ok {
		b = append(b, '[')
		for i, m := range list {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, m)
		}
		b = append(b, ']')
	} else {
		b = appendValue(nil, v)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func setLink(w http.ResponseWriter, tc *termContext) {
	link := CoreContextURL
	if tc != nil && tc.link != "" {
		link = tc.link
	}
	// Added, not set: a page of query results carries its next and prev
	// links beside it (pageLinks).
	w.Header().Add("Link", "<"+link+`>; rel="`+jsonldContextRel+`"; type="application/ld+json"`)
}

// errNotFound builds the ResourceNotFound error for an entity.
func errNotFound(id string) error {
	return newError(ResourceNotFound, "entity not found", "no entity with id %q", id)
}

// queryParams parses the query string splitting on '&' only. NGSI-LD
// clients commonly send q=a==1;b==2 without escaping the ';', which
// url.ParseQuery rejects (and r.URL.Query silently drops).
func queryParams(r *http.Request) url.Values {
	out := url.Values{}
	for _, part := range strings.Split(r.URL.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			key = k
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			val = v
		}
		out[key] = append(out[key], val)
	}
	return out
}
