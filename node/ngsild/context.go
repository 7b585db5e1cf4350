package ngsild

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/piprate/json-gold/ld"
	"golang.org/x/sync/singleflight"

	"github.com/mimnode/mimnode/node/store"
)

// CoreContextURL is the unversioned NGSI-LD core context URL; CoreContextV19URL
// the versioned one. Both are served from the embedded copy.
const (
	CoreContextURL    = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
	CoreContextV19URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
)

//go:embed contexts/ngsi-ld-core-context-v1.9.jsonld
var coreContextDoc []byte

// coreContextPattern matches the URLs of every published version of the
// core context, which clients name as they were written (Smart Data
// Models examples and FIWARE tutorials use v1.3 to v1.8, some over http).
var coreContextPattern = regexp.MustCompile(`^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.[0-9]+)?\.jsonld$`)

// isCoreContext reports whether u names the NGSI-LD core context, in any
// version. Each is taken as the embedded one, with no fetch: the core
// context is always applied last (clause 5.5.7), so the terms a client
// uses mean what the embedded copy says, and a node without internet
// takes such payloads as one with it does.
func isCoreContext(u string) bool {
	return u == CoreContextURL || u == CoreContextV19URL || coreContextPattern.MatchString(u)
}

// ErrContextNotAvailable is wrapped by context loading failures: the URL is
// neither in the node's context store nor fetchable.
var ErrContextNotAvailable = errors.New("ngsild: JSON-LD context not available")

// maxContextBytes caps a fetched or uploaded context document.
const maxContextBytes = 4 << 20

// contextStore resolves @context values into term maps. Documents come from
// memory, then the badger context store (key n/c/<url>), then the network;
// a fetched document is written to badger so it is fetched only once, even
// across restarts, which matters on the isolated networks nodes run in.
type contextStore struct {
	db      *store.DB
	client  *http.Client
	timeout time.Duration

	mu   sync.Mutex
	docs map[string]any // parsed documents by URL; guarded by mu

	// fetches makes concurrent requests naming the same unknown URL share
	// one fetch, so a remote context is fetched once.
	fetches singleflight.Group

	// resolved caches processed contexts by the JSON text of the @context
	// value: running the JSON-LD context algorithm per request would cost
	// far more than the rest of a write.
	resolved *lru.Cache[string, *termContext]
}

func newContextStore(db *store.DB, client *http.Client, timeout time.Duration) (*contextStore, error) {
	c, err := lru.New[string, *termContext](256)
	if err != nil {
		return nil, fmt.Errorf("create context cache: %w", err)
	}
	return &contextStore{db: db, client: client, timeout: timeout, docs: map[string]any{}, resolved: c}, nil
}

func contextKey(url string) []byte     { return []byte(keyContext + url) }
func contextMetaKey(url string) []byte { return []byte(keyCtxMeta + url) }

// Kinds of stored @contexts (clause 5.13.1): a copy of the document at a
// URL (the core context, the preloaded ones, one an admin added for a
// URL, one fetched once), one the node hosts under its own URL (POST
// /jsonldContexts without a URL), or one it created to name a
// subscription's @context that is no single URL (notificationContext).
const (
	contextCached   = "Cached"
	contextHosted   = "Hosted"
	contextImplicit = "ImplicitlyCreated"
)

// contextMeta is what the store keeps about a document beside it: its
// kind and when it was stored. Documents stored before the metadata was
// kept get it when a node first starts with it (New: contextStore.backfill),
// timestamped then.
type contextMeta struct {
	Kind      string    `json:"kind"`
	Timestamp time.Time `json:"timestamp"`
}

// setMeta stores the metadata of the document under url, in tx.
func setMeta(tx *store.Txn, url, kind string, at time.Time) error {
	meta, err := json.Marshal(contextMeta{Kind: kind, Timestamp: at.UTC()})
	if err != nil {
		return err
	}
	return tx.Set(contextMetaKey(url), meta)
}

// decodeMeta reads the metadata of the document under url as stored.
func decodeMeta(url string, v []byte) (contextMeta, error) {
	var m contextMeta
	if err := json.Unmarshal(v, &m); err != nil {
		return m, fmt.Errorf("context metadata of %s: %w", url, err)
	}
	return m, nil
}

// setDoc stores doc under url with its metadata, in tx.
func setDoc(tx *store.Txn, url string, doc []byte, kind string, now time.Time) error {
	if err := tx.Set(contextKey(url), doc); err != nil {
		return err
	}
	return setMeta(tx, url, kind, now)
}

// preload stores doc under url unless the store already has a document there
// (an admin's replacement survives restarts).
func (cs *contextStore) preload(url string, doc []byte) error {
	return cs.db.Update(func(tx *store.Txn) error {
		ok, err := tx.Has(contextKey(url))
		if err != nil || ok {
			return err
		}
		return setDoc(tx, url, doc, contextCached, time.Now())
	})
}

// kindOf is the kind of a document stored without metadata, from its
// URL: hosted when it is under hostedPrefix (the node's hosted contexts).
func kindOf(url, hostedPrefix string) string {
	if strings.HasPrefix(url, hostedPrefix) {
		return contextHosted
	}
	return contextCached
}

// storedMetas reads, in tx, every stored document's metadata as stored,
// by URL (nil: the document has none), and the URLs of metadata whose
// document is gone.
func storedMetas(tx *store.Txn) (docs map[string][]byte, orphans []string, err error) {
	docs = map[string][]byte{}
	if err := tx.Iterate(store.IterOptions{Prefix: []byte(keyContext), KeysOnly: true}, func(k, _ []byte) error {
		docs[string(k[len(keyContext):])] = nil
		return nil
	}); err != nil {
		return nil, nil, err
	}
	err = tx.Iterate(store.IterOptions{Prefix: []byte(keyCtxMeta)}, func(k, v []byte) error {
		u := string(k[len(keyCtxMeta):])
		if _, ok := docs[u]; ok {
			docs[u] = bytes.Clone(v)
		} else {
			orphans = append(orphans, u)
		}
		return nil
	})
	return docs, orphans, err
}

// backfill gives every document stored without metadata (by nodes before
// it was kept) its kind (kindOf) and the time of this call, and drops
// metadata left without its document (a node before deletes the
// document alone).
func (cs *contextStore) backfill(hostedPrefix string) error {
	var docs map[string][]byte
	var orphans []string
	err := cs.db.View(func(tx *store.Txn) (err error) {
		docs, orphans, err = storedMetas(tx)
		return err
	})
	var missing []string
	for u, meta := range docs {
		if meta == nil {
			missing = append(missing, u)
		}
	}
	if err != nil || len(missing)+len(orphans) == 0 {
		return err
	}
	now := time.Now()
	return cs.db.Update(func(tx *store.Txn) error {
		for _, u := range missing {
			if err := setMeta(tx, u, kindOf(u, hostedPrefix), now); err != nil {
				return err
			}
		}
		for _, u := range orphans {
			if err := tx.Delete(contextMetaKey(u)); err != nil {
				return err
			}
		}
		return nil
	})
}

// metas returns the metadata of every stored document, by URL; a
// document without any (written meanwhile by nothing this node runs, but
// not to be hidden) gets its kindOf and no time.
func (cs *contextStore) metas(hostedPrefix string) (map[string]contextMeta, error) {
	var docs map[string][]byte
	err := cs.db.View(func(tx *store.Txn) (err error) {
		docs, _, err = storedMetas(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]contextMeta, len(docs))
	for u, meta := range docs {
		if meta == nil {
			out[u] = contextMeta{Kind: kindOf(u, hostedPrefix)}
			continue
		}
		if out[u], err = decodeMeta(u, meta); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// meta returns the metadata of the document stored under url
// (store.ErrNotFound when there is none), as metas does.
func (cs *contextStore) meta(url, hostedPrefix string) (contextMeta, error) {
	var m contextMeta
	err := cs.db.View(func(tx *store.Txn) error {
		if ok, err := tx.Has(contextKey(url)); err != nil || !ok {
			if err == nil {
				err = store.ErrNotFound
			}
			return err
		}
		v, err := tx.Get(contextMetaKey(url))
		if errors.Is(err, store.ErrNotFound) {
			m = contextMeta{Kind: kindOf(url, hostedPrefix)}
			return nil
		}
		if err == nil {
			m, err = decodeMeta(url, v)
		}
		return err
	})
	return m, err
}

// put validates and stores doc under url as kind, replacing what was
// there.
func (cs *contextStore) put(url string, doc []byte, kind string) error {
	parsed, err := parseContextDoc(doc)
	if err != nil {
		return err
	}
	if err := cs.db.Update(func(tx *store.Txn) error { return setDoc(tx, url, doc, kind, time.Now()) }); err != nil {
		return fmt.Errorf("store context %s: %w", url, err)
	}
	cs.mu.Lock()
	cs.docs[url] = parsed
	cs.mu.Unlock()
	cs.resolved.Purge()
	return nil
}

// get returns the raw document stored under url.
func (cs *contextStore) get(url string) ([]byte, error) {
	var b []byte
	err := cs.db.View(func(tx *store.Txn) error {
		v, err := tx.Get(contextKey(url))
		b = v
		return err
	})
	return b, err
}

// remove deletes the document stored under url.
func (cs *contextStore) remove(url string) error {
	err := cs.db.Update(func(tx *store.Txn) error {
		if _, err := tx.Get(contextKey(url)); err != nil {
			return err
		}
		if err := tx.Delete(contextMetaKey(url)); err != nil {
			return err
		}
		return tx.Delete(contextKey(url))
	})
	if err != nil {
		return err
	}
	cs.mu.Lock()
	delete(cs.docs, url)
	cs.mu.Unlock()
	cs.resolved.Purge()
	return nil
}

// list returns the URLs in the store, sorted.
func (cs *contextStore) list() ([]string, error) {
	var urls []string
	err := cs.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyContext), KeysOnly: true}, func(k, _ []byte) error {
			urls = append(urls, string(k[len(keyContext):]))
			return nil
		})
	})
	return urls, err
}

// parseContextDoc parses a context document: a JSON object with an
// @context member. A document that is not one is an InvalidRequest
// (clause 5.13.2.4: "if the payload is incorrect"); callers reading a
// document fetched from elsewhere report it as LdContextNotAvailable.
func parseContextDoc(doc []byte) (any, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, newError(InvalidRequest, "invalid JSON-LD context", "not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, newError(InvalidRequest, "invalid JSON-LD context", "a context document must be a JSON object")
	}
	if _, ok := m["@context"]; !ok {
		return nil, newError(InvalidRequest, "invalid JSON-LD context", "the document has no @context member")
	}
	return v, nil
}

// load returns the parsed document at url: memory, badger, then network.
func (cs *contextStore) load(url string) (any, error) {
	cs.mu.Lock()
	d, ok := cs.docs[url]
	cs.mu.Unlock()
	if ok {
		return d, nil
	}
	raw, err := cs.get(url)
	if errors.Is(err, store.ErrNotFound) {
		v, ferr, _ := cs.fetches.Do(url, func() (any, error) { return cs.fetchAndKeep(url) })
		if ferr != nil {
			return nil, ferr
		}
		raw, err = v.([]byte), nil
	} else if err != nil {
		return nil, fmt.Errorf("read context %s: %w", url, err)
	}
	d, err = parseContextDoc(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrContextNotAvailable, url, err)
	}
	cs.mu.Lock()
	cs.docs[url] = d
	cs.mu.Unlock()
	return d, nil
}

// fetchAndKeep fetches a context document and stores it in badger.
func (cs *contextStore) fetchAndKeep(url string) ([]byte, error) {
	if raw, err := cs.get(url); err == nil {
		return raw, nil // a concurrent fetch finished first
	}
	raw, err := cs.fetch(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrContextNotAvailable, url, err)
	}
	if _, perr := parseContextDoc(raw); perr != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrContextNotAvailable, url, perr)
	}
	if err := cs.db.Update(func(tx *store.Txn) error { return setDoc(tx, url, raw, contextCached, time.Now()) }); err != nil {
		return nil, fmt.Errorf("cache context %s: %w", url, err)
	}
	return raw, nil
}

func (cs *contextStore) fetch(url string) ([]byte, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return nil, errors.New("not an http(s) URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), cs.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/ld+json, application/json")
	resp, err := cs.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET returned %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxContextBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxContextBytes {
		return nil, errors.New("context document too large")
	}
	return b, nil
}

// LoadDocument lets json-gold load remote contexts through the store.
func (cs *contextStore) LoadDocument(u string) (*ld.RemoteDocument, error) {
	d, err := cs.load(u)
	if err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: d}, nil
}

// termContext is a processed @context: what expansion and compaction of
// attribute names and types need, read-only once built.
type termContext struct {
	terms map[string]string // term -> IRI
	rev   map[string]string // IRI -> preferred term
	// prefixes are the terms usable as prefixes of compact IRIs
	// (JSON-LD 1.1: a simple term whose IRI ends with a gen-delim
	// character), shortest term first.
	prefixes []prefixTerm
	vocab    string
	// value is the @context as the client gave it (nil: core only); it is
	// echoed in application/ld+json responses.
	value any
	// link is the URL for a Link header in application/json responses.
	link string
}

// resolvedKey is the key of an @context value in contextStore.resolved:
// the URL itself for a lone URL (asked for on every validated write, so
// not marshalled), the JSON text otherwise. A URL starts with a letter
// (its scheme) and has a colon; no JSON text does both (null, true and
// false have no colon).
func resolvedKey(value any) (string, error) {
	if s, ok := value.(string); ok && s != "" && ('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') && strings.IndexByte(s, ':') > 0 {
		return s, nil
	}
	b, err := json.Marshal(value)
	return string(b), err
}

// resolve processes an @context value (nil, a URL, an object or a list of
// them), always with the core context last so core terms cannot be
// redefined (clause 5.5.7).
func (cs *contextStore) resolve(value any) (*termContext, error) {
	key, err := resolvedKey(value)
	if err != nil {
		return nil, newError(BadRequestData, "invalid @context", "%v", err)
	}
	if tc, ok := cs.resolved.Get(key); ok {
		return tc, nil
	}
	var list []any
	switch v := value.(type) {
	case nil:
	case []any:
		list = append(list, v...)
	case string, map[string]any:
		list = append(list, v)
	default:
		return nil, newError(BadRequestData, "invalid @context", "@context must be a URL, an object or an array")
	}
	for _, item := range list {
		switch item.(type) {
		case string, map[string]any:
		default:
			return nil, newError(BadRequestData, "invalid @context", "@context entries must be URLs or objects")
		}
	}
	list = dedupeContexts(list)
	list = append(list, CoreContextURL)
	opts := ld.NewJsonLdOptions("")
	opts.DocumentLoader = cs
	opts.ProcessingMode = ld.JsonLd_1_1
	active, err := parseContextSafely(ld.NewContext(nil, opts), list)
	if err != nil {
		if errors.Is(err, ErrContextNotAvailable) || strings.Contains(err.Error(), ErrContextNotAvailable.Error()) {
			return nil, &Error{Type: LdContextNotAvailable, Title: "JSON-LD context not available", Detail: contextNotAvailableDetail(err), Err: err}
		}
		return nil, &Error{Type: BadRequestData, Title: "invalid @context", Detail: err.Error(), Err: err}
	}
	tc := buildTermContext(active)
	tc.value = value
	switch v := value.(type) {
	case nil:
		tc.link = CoreContextURL
	case string:
		tc.link = v
	case []any:
		if len(v) == 1 {
			if s, ok := v[0].(string); ok {
				tc.link = s
			}
		}
	}
	cs.resolved.Add(key, tc)
	return tc, nil
}

// contextNotAvailableDetail says which @context URL could not be loaded,
// why, and how to give it to a node that cannot fetch it. json-gold wraps
// the loader's error in its own words around the same URL, and the HTTP
// client's error names the URL again; the client needs it once. The text
// parsed is what load and fetchAndKeep write ("%w: URL: cause"); anything
// else is reported as it is.
func contextNotAvailableDetail(err error) string {
	msg := err.Error()
	i := strings.LastIndex(msg, ErrContextNotAvailable.Error()+": ")
	if i < 0 {
		return msg
	}
	u, cause, ok := strings.Cut(msg[i+len(ErrContextNotAvailable.Error())+2:], ": ")
	if !ok {
		return msg
	}
	cause = strings.TrimPrefix(cause, fmt.Sprintf("Get %q: ", u))
	return fmt.Sprintf("the @context %s could not be loaded (%s); on a node without internet, add it with 'mimnode context add %s FILE' or by POSTing the document to /ngsi-ld/v1/jsonldContexts?url=%s",
		u, cause, u, u)
}

// dedupeContexts drops the core context (it is always applied last) and
// repeats of a URL (the last one counts in JSON-LD), which json-gold would
// otherwise reject as a recursive inclusion.
func dedupeContexts(list []any) []any {
	last := map[string]int{}
	for i, item := range list {
		if u, ok := item.(string); ok {
			last[u] = i
		}
	}
	out := list[:0:0]
	for i, item := range list {
		if u, ok := item.(string); ok {
			if isCoreContext(u) || last[u] != i {
				continue
			}
		}
		out = append(out, item)
	}
	return out
}

// parseContextSafely runs json-gold's context processing, turning a panic on
// a malformed context into an error: the context comes from clients.
func parseContextSafely(c *ld.Context, list []any) (active *ld.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processing @context: %v", r)
		}
	}()
	return c.Parse(list)
}

func buildTermContext(c *ld.Context) *termContext {
	tc := &termContext{terms: make(map[string]string, len(c.TermDefinitions)), rev: map[string]string{}}
	if c.Values.Vocab != nil {
		tc.vocab = *c.Values.Vocab
	}
	names := make([]string, 0, len(c.TermDefinitions))
	for term, def := range c.TermDefinitions {
		if def == nil || def.ID == "" || strings.HasPrefix(def.ID, "@") || def.Reverse {
			continue
		}
		tc.terms[term] = def.ID
		names = append(names, term)
	}
	// The preferred compact form of an IRI is its shortest term (ties broken
	// alphabetically), so compaction is deterministic.
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	for _, t := range names {
		if strings.Contains(t, ":") {
			continue
		}
		iri := tc.terms[t]
		if _, ok := tc.rev[iri]; !ok {
			tc.rev[iri] = t
		}
		if strings.ContainsAny(iri[len(iri)-1:], "/#:?[]@") {
			tc.prefixes = append(tc.prefixes, prefixTerm{term: t, iri: iri})
		}
	}
	return tc
}

// prefixTerm is a term that can start a compact IRI (term:suffix).
type prefixTerm struct{ term, iri string }

// expand maps a term as written by the client to its IRI (JSON-LD IRI
// expansion with vocab=true).
func (tc *termContext) expand(term string) string {
	if iri, ok := tc.terms[term]; ok {
		return iri
	}
	if i := strings.IndexByte(term, ':'); i > 0 {
		prefix, suffix := term[:i], term[i+1:]
		if !strings.HasPrefix(suffix, "//") {
			if iri, ok := tc.terms[prefix]; ok {
				return iri + suffix
			}
		}
		return term // already an absolute IRI (http:, urn:, ...)
	}
	return tc.vocab + term
}

// compact maps an IRI back to the client's term.
func (tc *termContext) compact(iri string) string {
	if t, ok := tc.rev[iri]; ok {
		return t
	}
	if tc.vocab != "" && strings.HasPrefix(iri, tc.vocab) {
		rest := iri[len(tc.vocab):]
		if _, taken := tc.terms[rest]; !taken && rest != "" {
			return rest
		}
	}
	// A compact IRI (JSON-LD IRI compaction): the shortest term:suffix
	// that a prefix gives and that expands back to iri.
	best := ""
	for _, p := range tc.prefixes {
		if len(iri) <= len(p.iri) || !strings.HasPrefix(iri, p.iri) {
			continue
		}
		suffix := iri[len(p.iri):]
		if strings.HasPrefix(suffix, "//") {
			continue // would read as a URL of scheme p.term
		}
		c := p.term + ":" + suffix
		if t, taken := tc.terms[c]; taken && t != iri {
			continue
		}
		if best == "" || len(c) < len(best) || len(c) == len(best) && c < best {
			best = c
		}
	}
	if best != "" {
		return best
	}
	return iri
}
