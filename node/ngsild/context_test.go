package ngsild

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// TestContextCompaction checks clause 5.5.7: names are stored expanded and
// every client reads them back in the terms of its own @context.
func TestContextCompaction(t *testing.T) {
	n := newTestNode(t, nil)
	body, _ := readExample(t, "AirQualityObserved", "example.jsonld")
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", body, ldJSON()...), http.StatusCreated)
	id := url.PathEscape("urn:ngsi-ld:AirQualityObserved:Madrid-AmbientObserved-28079004-2016-03-15T11:00:00")

	short := fetch(t, n, id, "?options=keyValues", link(envContext)...)
	if short["type"] != "AirQualityObserved" || short["no2"] != 69.0 {
		t.Errorf("with the model's context: type %v, no2 %v", short["type"], short["no2"])
	}
	long := fetch(t, n, id, "?options=keyValues")
	if long["type"] != "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved" ||
		long["https://smartdatamodels.org/dataModel.Environment/no2"] != 69.0 {
		t.Errorf("with the core context only, names should be full IRIs: %v", long)
	}
	// typeOfLocation is in no context: it expands with the core @vocab and
	// compacts back to the short name under any context.
	if long["typeOfLocation"] != "outdoor" || short["typeOfLocation"] != "outdoor" {
		t.Errorf("typeOfLocation: %v / %v", long["typeOfLocation"], short["typeOfLocation"])
	}
	// The same type queried by its full IRI or by its short name.
	for _, q := range []struct {
		query string
		hdr   []string
	}{
		{"type=AirQualityObserved", link(envContext)},
		{"type=" + url.QueryEscape("https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"), nil},
	} {
		if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?"+q.query, nil, q.hdr...)); len(got) != 1 {
			t.Errorf("%s found %v", q.query, got)
		}
	}
	// Under the core context alone, AirQualityObserved is another type.
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=AirQualityObserved", nil)); len(got) != 0 {
		t.Errorf("type=AirQualityObserved without the model's context found %v", got)
	}
}

// TestRemoteContextFetchedOnce checks a context the store lacks is fetched
// once, kept in badger, and used offline afterwards, even after a restart.
func TestRemoteContextFetchedOnce(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/ld+json")
		_, _ = w.Write([]byte(`{"@context": {"speed": "https://example.org/vocab/speed", "Car": "https://example.org/vocab/Car"}}`))
	}))
	defer srv.Close()
	ctxURL := srv.URL + "/context.jsonld"

	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNodeOn(t, db, func(o *Options) { o.HTTPClient = srv.Client() })
	for _, id := range []string{"urn:car:1", "urn:car:2"} {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON(id, "Car", `, "speed": 50`), link(ctxURL)...), http.StatusCreated)
	}
	if h := hits.Load(); h != 1 {
		t.Errorf("context fetched %d times, want once", h)
	}
	if e := fetch(t, n, "urn:car:1", "?options=keyValues"); e["https://example.org/vocab/speed"] != 50.0 {
		t.Errorf("speed was not expanded with the fetched context: %v", e)
	}

	// A restarted node without network still has it.
	n2 := newTestNodeOn(t, db, nil)
	if e := fetch(t, n2, "urn:car:2", "?options=keyValues", link(ctxURL)...); e["speed"] != 50.0 || e["type"] != "Car" {
		t.Errorf("after restart without network: %v", e)
	}
	if h := hits.Load(); h != 1 {
		t.Errorf("context fetched %d times after restart, want once", h)
	}
}

// TestContextNotAvailableSaysWhatToDo checks the detail of an
// LdContextNotAvailable answer: one sentence naming the URL and why it could
// not be loaded (it used to repeat the failure three times, in json-gold's
// words and ours), and how to give the context to an isolated node.
func TestContextNotAvailableSaysWhatToDo(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		url    string
		client *http.Client
		cause  string
	}{
		{"no network", "https://city.example/contexts/parking.jsonld", noNetwork, "no network to reach https://city.example/contexts/parking.jsonld"},
		{"not found", srv.URL + "/context.jsonld", srv.Client(), "GET returned 404 Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t, func(o *Options) { o.HTTPClient = tc.client })
			rec := n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:g:1", "Garage", ""), link(tc.url)...)
			wantProblem(t, rec, LdContextNotAvailable)
			var p ProblemDetails
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			want := "the @context " + tc.url + " could not be loaded (" + tc.cause + "); on a node without internet, add it with 'mimnode context add " + tc.url + " FILE'"
			if !strings.HasPrefix(p.Detail, want) {
				t.Errorf("detail %q, want it to start %q", p.Detail, want)
			}
			if strings.Contains(p.Detail, ErrContextNotAvailable.Error()) || strings.Contains(p.Detail, "loading remote context failed") {
				t.Errorf("detail %q repeats the failure", p.Detail)
			}
		})
	}
}

// TestContextStoreEndpoints covers GET/POST/DELETE /jsonldContexts (clause
// 6.30), the endpoint behind `mimnode context add URL FILE`.
func TestContextStoreEndpoints(t *testing.T) {
	n := newTestNode(t, nil)
	const u = "https://city.example/contexts/parking.jsonld"
	doc := `{"@context": {"Garage": "https://city.example/Garage", "spaces": "https://city.example/spaces"}}`

	wantProblem(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:g:1", "Garage", ""), link(u)...), LdContextNotAvailable)
	rec := n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(u), doc, "Content-Type", "application/ld+json")
	wantStatus(t, rec, http.StatusCreated)
	if loc := rec.Header().Get("Location"); loc != "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(u) {
		t.Errorf("Location %q", loc)
	}
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:g:1", "Garage", `, "spaces": 120`), link(u)...), http.StatusCreated)
	if e := fetch(t, n, "urn:g:1", "?options=keyValues"); e["type"] != "https://city.example/Garage" {
		t.Errorf("type not expanded with the added context: %v", e)
	}

	var list []string
	for _, x := range decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts", nil)).([]any) {
		list = append(list, x.(string))
	}
	for _, want := range []string{u, CoreContextURL, CoreContextV19URL, envContext} {
		if !contains(list, want) {
			t.Errorf("context list lacks %s", want)
		}
	}
	rec = n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(u), nil)
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != doc {
		t.Errorf("served %s, want the document as added", rec.Body.String())
	}

	rec = n.do("POST", "/ngsi-ld/v1/jsonldContexts", doc, "Content-Type", "application/ld+json")
	wantStatus(t, rec, http.StatusCreated)
	hosted := rec.Header().Get("Location")
	// A hosted context is named by its own id, not by its full URL.
	if id, ok := strings.CutPrefix(hosted, "/ngsi-ld/v1/jsonldContexts/"); !ok || strings.Contains(id, "%") || strings.Contains(id, "/") {
		t.Errorf("Location of a hosted context %q, want /ngsi-ld/v1/jsonldContexts/<id>", hosted)
	}
	wantStatus(t, n.do("GET", hosted, nil), http.StatusOK)

	// A payload that is no context document is an InvalidRequest (clause
	// 5.13.2.4; the ETSI conformance suite's 050_02_01 and 050_02_02),
	// hosted or cached, and stores nothing.
	for _, bad := range []string{`{"no": "context"}`, `{"@context": `, `["@context"]`} {
		wantProblem(t, n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(u), bad, "Content-Type", "application/ld+json"), InvalidRequest)
		wantProblem(t, n.do("POST", "/ngsi-ld/v1/jsonldContexts", bad, "Content-Type", "application/ld+json"), InvalidRequest)
	}
	if got := decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(u), nil)); !reflect.DeepEqual(got, decodeBytes(t, []byte(doc))) {
		t.Errorf("after refused payloads %s serves %v, want the document stored before", u, got)
	}
	for _, bad := range []string{"https://", "http:// bad host/x", "ftp://example.org/c.jsonld", "example.org/c.jsonld"} {
		rec := n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(bad), doc, "Content-Type", "application/ld+json")
		wantProblem(t, rec, BadRequestData)
	}
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(u), nil), http.StatusNoContent)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(u), nil), ResourceNotFound)
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(CoreContextURL), nil), OperationNotSupported)
	if got := decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(CoreContextURL), nil)); !reflect.DeepEqual(got, decodeBytes(t, coreContextDoc)) {
		t.Error("the core context is not served as embedded")
	}
}

// TestCompactIRIs checks JSON-LD IRI compaction with a prefix term: an
// IRI no term names comes back as prefix:suffix when the client's context
// defines the prefix (as JSON-LD compaction gives), and reads back the same.
func TestCompactIRIs(t *testing.T) {
	n := newTestNode(t, nil)
	rec := n.do("POST", "/ngsi-ld/v1/jsonldContexts", `{"@context": {"ex": "https://example.org/"}}`, "Content-Type", "application/ld+json")
	wantStatus(t, rec, http.StatusCreated)
	ctxURL := "http://node.test" + rec.Header().Get("Location")
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:room1", "type": "https://example.org/Room",
		"https://example.org/temperature": {"type": "Property", "value": 21}}`), http.StatusCreated)
	e := decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:room1?options=keyValues", nil, link(ctxURL)...)).(map[string]any)
	if e["type"] != "ex:Room" || e["ex:temperature"] != 21.0 {
		t.Errorf("entity under a context with prefix ex: %v, want type ex:Room and ex:temperature", e)
	}
	if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?type=ex:Room&attrs=ex:temperature", nil, link(ctxURL)...)); len(got) != 1 {
		t.Errorf("query in compact IRIs found %v", got)
	}
	// Without the prefix in the context, the full IRI.
	e = decode(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:room1?options=keyValues", nil)).(map[string]any)
	if e["type"] != "https://example.org/Room" {
		t.Errorf("entity under the core context: %v, want the full IRI", e)
	}
}

// contextDetailsOf lists the context store with details=true (and query
// extra), by URL.
func contextDetailsOf(t *testing.T, n *testNode, extra string) map[string]map[string]any {
	t.Helper()
	rec := n.do("GET", "/ngsi-ld/v1/jsonldContexts?details=true"+extra, nil)
	wantStatus(t, rec, http.StatusOK)
	out := map[string]map[string]any{}
	for _, x := range decode(t, rec).([]any) {
		d := x.(map[string]any)
		out[d["URL"].(string)] = d
	}
	return out
}

// TestContextStoreDetails covers the metadata of the context store
// (clauses 5.13.3 and 5.13.4): details=true describes each stored @context
// by URL, local id, kind and time stored; kind= filters; a context's own
// details are served; bad values of details and kind are refused.
func TestContextStoreDetails(t *testing.T) {
	n := newTestNode(t, nil)
	const u = "https://city.example/contexts/parking.jsonld"
	doc := `{"@context": {"Garage": "https://city.example/Garage"}}`
	before := time.Now().Add(-time.Second)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(u), doc, "Content-Type", "application/ld+json"), http.StatusCreated)
	rec := n.do("POST", "/ngsi-ld/v1/jsonldContexts", doc, "Content-Type", "application/ld+json")
	wantStatus(t, rec, http.StatusCreated)
	hostedID := strings.TrimPrefix(rec.Header().Get("Location"), "/ngsi-ld/v1/jsonldContexts/")
	hostedURL := "http://node.test/ngsi-ld/v1/jsonldContexts/" + hostedID

	all := contextDetailsOf(t, n, "")
	for _, want := range []struct{ url, localID, kind string }{
		{u, url.PathEscape(u), "Cached"},
		{hostedURL, hostedID, "Hosted"},
		{CoreContextURL, url.PathEscape(CoreContextURL), "Cached"},
		{envContext, url.PathEscape(envContext), "Cached"},
	} {
		d, ok := all[want.url]
		if !ok {
			t.Errorf("details list lacks %s", want.url)
			continue
		}
		if d["localId"] != want.localID || d["kind"] != want.kind {
			t.Errorf("%s: localId %v kind %v, want %s %s", want.url, d["localId"], d["kind"], want.localID, want.kind)
		}
		if ts, err := time.Parse(time.RFC3339Nano, d["timestamp"].(string)); err != nil || ts.Before(before) || ts.After(time.Now()) {
			t.Errorf("%s: timestamp %v (%v), want the time it was stored", want.url, d["timestamp"], err)
		}
	}
	// Every local id names the context in the other operations.
	for _, d := range all {
		wantStatus(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+d["localId"].(string), nil), http.StatusOK)
	}

	if hosted := contextDetailsOf(t, n, "&kind=Hosted"); len(hosted) != 1 || hosted[hostedURL] == nil {
		t.Errorf("kind=Hosted lists %v, want the one hosted context", hosted)
	}
	if cached := contextDetailsOf(t, n, "&kind=Cached"); cached[hostedURL] != nil || cached[u] == nil {
		t.Errorf("kind=Cached lists %d contexts, the hosted one among them or without %s", len(cached), u)
	}
	rec = n.do("GET", "/ngsi-ld/v1/jsonldContexts?kind=ImplicitlyCreated", nil)
	if got := decode(t, rec).([]any); len(got) != 0 {
		t.Errorf("kind=ImplicitlyCreated lists %v; the node creates none", got)
	}
	rec = n.do("GET", "/ngsi-ld/v1/jsonldContexts?kind=Hosted", nil)
	if got := decode(t, rec).([]any); len(got) != 1 || got[0] != hostedURL {
		t.Errorf("kind=Hosted without details lists %v, want [%s]", got, hostedURL)
	}

	d := decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+hostedID+"?details=true", nil)).(map[string]any)
	if d["URL"] != hostedURL || d["kind"] != "Hosted" || d["localId"] != hostedID {
		t.Errorf("details of the hosted context: %v", d)
	}

	for _, bad := range []string{"?details=yes", "?kind=cached", "?kind=Remote"} {
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts"+bad, nil), BadRequestData)
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+hostedID+"?details=1", nil), BadRequestData)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/no-such-id?details=true", nil), ResourceNotFound)

	// A deleted context is gone from the details too.
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/"+hostedID, nil), http.StatusNoContent)
	if got := contextDetailsOf(t, n, ""); got[hostedURL] != nil {
		t.Errorf("deleted context still listed: %v", got[hostedURL])
	}
}

// TestContextReload covers DELETE /jsonldContexts/{id}?reload=true
// (clause 5.13.5): a cached context is fetched again from its URL and
// replaces the stored copy; a failed fetch keeps the copy and answers 504;
// hosted contexts cannot be reloaded.
func TestContextReload(t *testing.T) {
	var body atomic.Value
	body.Store(`{"@context": {"speed": "https://example.org/v1/speed"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := body.Load().(string)
		if b == "" {
			http.Error(w, "gone", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ld+json")
		_, _ = w.Write([]byte(b))
	}))
	defer srv.Close()
	ctxURL := srv.URL + "/context.jsonld"
	n := newTestNode(t, func(o *Options) { o.HTTPClient = srv.Client() })
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:car:1", "Car", `, "speed": 50`), link(ctxURL)...), http.StatusCreated)
	id := "/ngsi-ld/v1/jsonldContexts/" + url.PathEscape(ctxURL)
	if d := contextDetailsOf(t, n, "&kind=Cached")[ctxURL]; d == nil {
		t.Fatal("the fetched context is not listed as cached")
	}

	v2 := `{"@context": {"speed": "https://example.org/v2/speed"}}`
	body.Store(v2)
	wantStatus(t, n.do("DELETE", id+"?reload=true", nil), http.StatusNoContent)
	if rec := n.do("GET", id, nil); rec.Body.String() != v2 {
		t.Errorf("after reload the store serves %s, want %s", rec.Body.String(), v2)
	}
	// The new copy is the one used from now on.
	if e := fetch(t, n, "urn:car:1", "?options=keyValues", link(ctxURL)...); e["speed"] != nil || e["https://example.org/v1/speed"] != 50.0 {
		t.Errorf("after reload, speed (v1) read under the new context: %v", e)
	}

	body.Store("")
	rec := n.do("DELETE", id+"?reload=true", nil)
	if p, _ := decode(t, rec).(map[string]any); rec.Code != http.StatusGatewayTimeout || p["type"] != ErrorTypeBase+string(LdContextNotAvailable) {
		t.Errorf("failed reload answered %d %s, want 504 LdContextNotAvailable", rec.Code, rec.Body.String())
	}
	if rec := n.do("GET", id, nil); rec.Body.String() != v2 {
		t.Errorf("a failed reload left %s, want the stored copy %s", rec.Body.String(), v2)
	}

	body.Store(`{"not": "a context"}`)
	wantProblem(t, n.do("DELETE", id+"?reload=true", nil), LdContextNotAvailable)
	if rec := n.do("GET", id, nil); rec.Body.String() != v2 {
		t.Errorf("a reload that fetched no context left %s, want the stored copy %s", rec.Body.String(), v2)
	}

	rec = n.do("POST", "/ngsi-ld/v1/jsonldContexts", v2, "Content-Type", "application/ld+json")
	wantStatus(t, rec, http.StatusCreated)
	wantProblem(t, n.do("DELETE", rec.Header().Get("Location")+"?reload=true", nil), BadRequestData)
	// An id that names no context: deleting it is ResourceNotFound, asking
	// to reload it a bad request, as for a hosted one (clause 5.13.5.4;
	// the ETSI conformance suite's 051_04_01 and 051_04_02).
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/no-such-id?reload=true", nil), BadRequestData)
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/no-such-id", nil), ResourceNotFound)
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/no-such-id?reload=false", nil), ResourceNotFound)
	wantProblem(t, n.do("DELETE", id+"?reload=please", nil), BadRequestData)
	wantProblem(t, n.do("DELETE", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(CoreContextURL)+"?reload=true", nil), OperationNotSupported)
}

// TestContextDetailsOfEarlierStore: documents stored by nodes before the
// store kept their kind and time get both when a node starts on it.
func TestContextDetailsOfEarlierStore(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const cached = "https://city.example/old.jsonld"
	hosted := "http://node.test" + hostedContextPath + "0b5a3c1e-old"
	doc := []byte(`{"@context": {"Garage": "https://city.example/Garage"}}`)
	// A node before this kept no metadata; one of them deleted a
	// document and left the metadata a later version had written.
	const orphan = "https://city.example/gone.jsonld"
	if err := db.Update(func(tx *store.Txn) error {
		if err := tx.Set(contextKey(cached), doc); err != nil {
			return err
		}
		if err := tx.Set(contextMetaKey(orphan), []byte(`{"kind":"Cached","timestamp":"2026-01-01T00:00:00Z"}`)); err != nil {
			return err
		}
		return tx.Set(contextKey(hosted), doc)
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	n := newTestNodeOn(t, db, nil)
	all := contextDetailsOf(t, n, "")
	if d := all[cached]; d == nil || d["kind"] != "Cached" {
		t.Errorf("earlier cached context: %v", d)
	}
	if d := all[hosted]; d == nil || d["kind"] != "Hosted" || d["localId"] != "0b5a3c1e-old" {
		t.Errorf("earlier hosted context: %v", d)
	}
	for _, u := range []string{cached, hosted} {
		if d := all[u]; d != nil {
			if ts, err := time.Parse(time.RFC3339Nano, d["timestamp"].(string)); err != nil || ts.Before(start) {
				t.Errorf("%s: timestamp %v, want the node's start", u, d["timestamp"])
			}
		}
	}
	if err := db.View(func(tx *store.Txn) error {
		if ok, err := tx.Has(contextMetaKey(orphan)); err != nil || ok {
			t.Errorf("metadata without its document kept: %v, %v", ok, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if all[orphan] != nil {
		t.Errorf("a context whose document is gone is listed: %v", all[orphan])
	}

	// A document that has no metadata is still listed, by its kind,
	// without a time.
	const bare = "https://city.example/bare.jsonld"
	if err := db.Update(func(tx *store.Txn) error { return tx.Set(contextKey(bare), doc) }); err != nil {
		t.Fatal(err)
	}
	if d := contextDetailsOf(t, n, "&kind=Cached")[bare]; d == nil || d["timestamp"] != nil {
		t.Errorf("document without metadata: %v", d)
	}
	if d := decode(t, n.do("GET", "/ngsi-ld/v1/jsonldContexts/"+url.PathEscape(bare)+"?details=true", nil)).(map[string]any); d["kind"] != "Cached" {
		t.Errorf("details of a document without metadata: %v", d)
	}
}

// TestResolvedKeysDistinct: the processed-context cache never gives one
// @context value the entry of another (a lone URL is keyed by itself, the
// rest by their JSON text).
func TestResolvedKeysDistinct(t *testing.T) {
	values := []any{nil, "null", "true", "1", `"https://a.example/c"`, "https://a.example/c",
		"urn:x:y", []any{"https://a.example/c"}, map[string]any{"a": "https://a.example/a"}, "", "{}"}
	seen := map[string]any{}
	for _, v := range values {
		k, err := resolvedKey(v)
		if err != nil {
			t.Fatalf("resolvedKey(%#v): %v", v, err)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%#v and %#v share the cache key %q", v, other, k)
		}
		seen[k] = v
	}
	// The store still tells a URL named "null" from no @context.
	n := newTestNode(t, nil)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:car:1", "Car", "")), http.StatusCreated)
	if rr := n.do("POST", "/ngsi-ld/v1/entities", entityJSON("urn:car:2", "Car", ""), link("null")...); rr.Code == http.StatusCreated {
		t.Errorf("a Link to the relative URL null was taken as no @context: %d %s", rr.Code, rr.Body)
	}
}
