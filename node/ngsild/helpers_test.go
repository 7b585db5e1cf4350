package ngsild

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// noNetwork is an HTTP client that fails every request, as on the isolated
// networks nodes run in; a test that needs a context the store lacks sees
// exactly what a node would.
var noNetwork = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
	return nil, &netError{r.URL.String()}
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type netError struct{ url string }

func (e *netError) Error() string { return "no network to reach " + e.url }

type testNode struct {
	t   testing.TB
	db  *store.DB
	svc *Service
	mux *http.ServeMux
}

// newTestNode starts a service over an in-memory store with the Smart Data
// Models contexts preloaded and no network.
func newTestNode(t testing.TB, mod func(*Options)) *testNode {
	t.Helper()
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newTestNodeOn(t, db, mod)
}

func newTestNodeOn(t testing.TB, db *store.DB, mod func(*Options)) *testNode {
	t.Helper()
	opts := Options{HTTPClient: noNetwork, BaseURL: "http://node.test"}
	if mod != nil {
		mod(&opts)
	}
	svc, err := New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	mux := http.NewServeMux()
	svc.Register(mux)
	return &testNode{t: t, db: db, svc: svc, mux: mux}
}

// do sends a request; headers are name, value pairs.
func (n *testNode) do(method, target string, body any, headers ...string) *httptest.ResponseRecorder {
	n.t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	n.mux.ServeHTTP(rec, req)
	return rec
}

func ldJSON() []string { return []string{"Content-Type", "application/ld+json"} }

func link(url string) []string {
	return []string{"Link", "<" + url + `>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`}
}

func hdr(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// decode parses a JSON response body.
func decode(t testing.TB, rec *httptest.ResponseRecorder) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("response %d is not JSON: %v: %s", rec.Code, err, rec.Body.String())
	}
	return v
}

// wantStatus fails the test unless rec has the status code.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, code int) {
	t.Helper()
	if rec.Code != code {
		t.Fatalf("status %d, want %d; body: %s", rec.Code, code, rec.Body.String())
	}
}

// wantProblem checks an error response's status and NGSI-LD error type.
func wantProblem(t testing.TB, rec *httptest.ResponseRecorder, typ ErrorType) {
	t.Helper()
	if want := errorStatus[typ]; rec.Code != want {
		t.Fatalf("status %d, want %d (%s); body: %s", rec.Code, want, typ, rec.Body.String())
	}
	var p ProblemDetails
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("error body is not problem details: %v: %s", err, rec.Body.String())
	}
	if p.Type != ErrorTypeBase+string(typ) {
		t.Fatalf("problem type %q, want %q (%s)", p.Type, ErrorTypeBase+string(typ), p.Detail)
	}
	if p.Title == "" {
		t.Fatalf("problem has no title: %s", rec.Body.String())
	}
}

func ids(t testing.TB, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	list, ok := decode(t, rec).([]any)
	if !ok {
		t.Fatalf("response is not an array: %s", rec.Body.String())
	}
	var out []string
	for _, x := range list {
		m, _ := x.(map[string]any)
		id, _ := m["id"].(string)
		out = append(out, id)
	}
	return out
}

// fixedClock returns a clock that starts at a fixed instant and advances a
// second per reading, so createdAt/modifiedAt are predictable.
func fixedClock() func() time.Time {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := 0
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n) * time.Second)
	}
}

func esc(s string) string { return strings.ReplaceAll(s, "#", "%23") }

type storeTxn = store.Txn

func decodeBytes(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// landAll lands ents on n and fails the test unless every one is written.
func landAll(t *testing.T, n *testNode, ents []*Entity) {
	t.Helper()
	errs, err := n.svc.Land(context.Background(), ents)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Land entity %d: %v", i, err)
		}
	}
}
