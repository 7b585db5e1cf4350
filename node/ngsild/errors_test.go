package ngsild

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/mimnode/mimnode/node/store"
	"net/http/httptest"
	"testing"
)

// TestErrorTypes provokes every NGSI-LD error type (clause 5.5.2) through
// the API and checks the problem details.
func TestErrorTypes(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	tests := []struct {
		name string
		typ  ErrorType
		do   func() *httptest.ResponseRecorder
	}{
		{"InvalidRequest/malformed-json", InvalidRequest, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": `)
		}},
		{"InvalidRequest/batch-not-array", InvalidRequest, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entityOperations/create", `{"id": "urn:x:1"}`)
		}},
		{"BadRequestData/path-id-not-uri", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities/notauri", nil)
		}},
		{"BadRequestData/bad-type-selection", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a?type=%28Sensor", nil)
		}},
		{"ResourceNotFound/entity-of-other-type", ResourceNotFound, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a?type=Road", nil)
		}},
		{"ResourceNotFound/delete-of-other-type", ResourceNotFound, func() *httptest.ResponseRecorder {
			return n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a?type=Road,District", nil)
		}},
		{"BadRequestData/no-type", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "p": 1}`)
		}},
		{"BadRequestData/id-not-uri", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "not a uri", "type": "T"}`)
		}},
		{"BadRequestData/bad-geometry", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": "T", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}}`)
		}},
		{"BadRequestData/relationship-without-object", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": "T", "r": {"type": "Relationship"}}`)
		}},
		{"BadRequestData/context-in-json-body", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": "T", "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"}`)
		}},
		{"BadRequestData/ld-json-without-context", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": "T"}`, ldJSON()...)
		}},
		{"BadRequestData/bad-q", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities?q=%28temperature%3D%3D1", nil)
		}},
		{"BadRequestData/bad-georel", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities?georel=nearby&geometry=Point&coordinates=%5B1,2%5D", nil)
		}},
		{"BadRequestData/no-restriction", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities", nil)
		}},
		{"BadRequestData/schema", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:aqo", "type": "AirQualityObserved", "windDirection": 400}`, link(envContext)...)
		}},
		{"AlreadyExists", AlreadyExists, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", fixture[0])
		}},
		{"OperationNotSupported", OperationNotSupported, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+CoreContextURL, `{"@context": {}}`)
		}},
		{"ResourceNotFound/entity", ResourceNotFound, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:zzz", nil)
		}},
		{"ResourceNotFound/attribute", ResourceNotFound, func() *httptest.ResponseRecorder {
			return n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a/attrs/nothing", nil)
		}},
		{"ResourceNotFound/type", ResourceNotFound, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/types/Nothing", nil)
		}},
		{"TooManyResults", TooManyResults, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities?type=Sensor&limit=5000", nil)
		}},
		{"LdContextNotAvailable/link", LdContextNotAvailable, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities?type=Sensor", nil, link("https://example.org/missing-context.jsonld")...)
		}},
		{"LdContextNotAvailable/body", LdContextNotAvailable, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:1", "type": "T", "@context": ["https://example.org/missing-context.jsonld"]}`, ldJSON()...)
		}},
		{"NotAcceptable", NotAcceptable, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a", nil, "Accept", "text/html")
		}},
		{"BadRequestData/unknown-attribute-type", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:foo", "type": "T", "a": {"type": "Foo", "value": 1}}`)
		}},
		{"BadRequestData/unknown-attribute-type-temporal", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/temporal/entities", `{"id": "urn:x:foo", "type": "T", "a": [{"type": "Foo", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}]}`)
		}},
		{"BadRequestData/link-without-rel", BadRequestData, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities?type=Sensor", nil, "Link", "<https://example.org/context.jsonld>")
		}},
		{"UnsupportedMediaType", UnsupportedMediaType, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{}`, "Content-Type", "text/plain")
		}},
		{"UnsupportedMediaType/merge-patch-to-create", UnsupportedMediaType, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:mp", "type": "T"}`, "Content-Type", "application/merge-patch+json")
		}},
		{"NoMultiTenantSupport/write", NoMultiTenantSupport, func() *httptest.ResponseRecorder {
			return n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:x:tenant", "type": "T"}`, "NGSILD-Tenant", "openiot")
		}},
		{"NoMultiTenantSupport/read", NoMultiTenantSupport, func() *httptest.ResponseRecorder {
			return n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a", nil, "NGSILD-Tenant", "openiot")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, tt.do(), tt.typ)
		})
	}
	// The write naming a tenant wrote nothing, in any tenant.
	wantStatus(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:tenant", nil), http.StatusNotFound)
	// The delete naming another type deleted nothing; one naming the
	// entity's type (in a list) deletes it.
	wantStatus(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a?type=Sensor", nil), http.StatusOK)
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a?type=Road,Sensor", nil), http.StatusNoContent)
	wantStatus(t, n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a", nil), http.StatusNotFound)
}

// TestInternalError checks a storage failure becomes InternalError without
// leaking the cause to the client.
func TestInternalError(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}
	rec := n.do("GET", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:a", nil)
	wantProblem(t, rec, InternalError)
	rec = n.do("POST", "/ngsi-ld/v1/entities", map[string]any{"id": "urn:x:new", "type": "T"})
	wantProblem(t, rec, InternalError)
}

// TestBindModel checks MIM2 for a type an admin binds: writes are checked
// against the schema, the error names the attribute, and the binding
// survives a restart.
func TestBindModel(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := newTestNodeOn(t, db, nil)
	const ctxURL = "https://city.example/bench-context.jsonld"
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/jsonldContexts?url="+url.QueryEscape(ctxURL),
		`{"@context": {"Bench": "https://city.example/Bench", "seats": "https://city.example/seats"}}`, "Content-Type", "application/ld+json"), http.StatusCreated)
	schema := `{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
		"properties": {"seats": {"type": "integer", "minimum": 1}}, "required": ["seats"]}`
	if err := n.svc.BindModel("https://city.example/Bench", ctxURL, []byte(schema)); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.BindModel("https://city.example/Bad", "", []byte(`{"type": 5}`)); err == nil {
		t.Error("an unusable schema was bound")
	}
	check := func(n *testNode) {
		t.Helper()
		rec := n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:bench:x", "type": "Bench", "seats": 2.5}`, link(ctxURL)...)
		wantProblem(t, rec, BadRequestData)
		if !strings.Contains(rec.Body.String(), `\"seats\"`) {
			t.Errorf("error does not name seats: %s", rec.Body.String())
		}
		wantProblem(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:bench:x", "type": "Bench"}`, link(ctxURL)...), BadRequestData)
	}
	check(n)
	wantStatus(t, n.do("POST", "/ngsi-ld/v1/entities", `{"id": "urn:bench:1", "type": "Bench", "seats": 4}`, link(ctxURL)...), http.StatusCreated)
	wantProblem(t, n.do("PATCH", "/ngsi-ld/v1/entities/urn:bench:1/attrs", `{"seats": 0}`, link(ctxURL)...), BadRequestData)

	n2 := newTestNodeOn(t, db, nil)
	check(n2)
	found := false
	for _, m := range n2.svc.Models() {
		found = found || m.TypeIRI == "https://city.example/Bench"
	}
	if !found {
		t.Error("Models does not list the bound type after restart")
	}
}
