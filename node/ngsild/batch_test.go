package ngsild

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func batchResult(t testing.TB, body []byte) BatchOperationResult {
	t.Helper()
	var res BatchOperationResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("not a BatchOperationResult: %v: %s", err, body)
	}
	return res
}

func entityJSON(id, typ string, attrs string) string {
	return `{"id": "` + id + `", "type": "` + typ + `"` + attrs + `}`
}

// TestBatchOperations checks the status codes and per-entity results of the
// four batch endpoints (clause 6.14 to 6.17).
func TestBatchOperations(t *testing.T) {
	n := newTestNode(t, nil)
	a := entityJSON("urn:x:a", "T", `, "p": {"type": "Property", "value": 1}, "q": {"type": "Property", "value": "x"}`)
	b := entityJSON("urn:x:b", "T", `, "p": {"type": "Property", "value": 2}`)
	c := entityJSON("urn:x:c", "T", `, "p": {"type": "Property", "value": 3}`)

	t.Run("clause6.14/create-all", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/create", "["+a+","+b+"]")
		wantStatus(t, rec, http.StatusCreated)
		var got []string
		_ = json.Unmarshal(rec.Body.Bytes(), &got)
		if !reflect.DeepEqual(got, []string{"urn:x:a", "urn:x:b"}) {
			t.Errorf("created %v", got)
		}
	})
	t.Run("clause6.14/create-partial", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/create", "["+a+","+c+`,{"id": "urn:x:bad"}]`)
		wantStatus(t, rec, http.StatusMultiStatus)
		res := batchResult(t, rec.Body.Bytes())
		if !reflect.DeepEqual(res.Success, []string{"urn:x:c"}) || len(res.Errors) != 2 {
			t.Fatalf("result %+v", res)
		}
		for _, e := range res.Errors {
			want := map[string]string{"urn:x:a": "AlreadyExists", "urn:x:bad": "BadRequestData"}[e.EntityID]
			if e.Error.Type != ErrorTypeBase+want {
				t.Errorf("%s: error %s, want %s", e.EntityID, e.Error.Type, want)
			}
		}
	})
	t.Run("clause6.15/upsert-replace", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", "["+entityJSON("urn:x:a", "T", `, "r": 5`)+","+entityJSON("urn:x:d", "T", "")+"]")
		wantStatus(t, rec, http.StatusCreated)
		var got []string
		_ = json.Unmarshal(rec.Body.Bytes(), &got)
		if !reflect.DeepEqual(got, []string{"urn:x:d"}) {
			t.Errorf("created %v, want only urn:x:d", got)
		}
		if e := fetch(t, n, "urn:x:a", "?options=keyValues"); !reflect.DeepEqual(e, map[string]any{"id": "urn:x:a", "type": "T", "r": 5.0}) {
			t.Errorf("after replace upsert: %v", e)
		}
	})
	t.Run("clause6.15/upsert-update", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert?options=update", "["+entityJSON("urn:x:a", "T", `, "s": 6`)+"]")
		wantStatus(t, rec, http.StatusNoContent)
		if e := fetch(t, n, "urn:x:a", "?options=keyValues"); e["r"] != 5.0 || e["s"] != 6.0 {
			t.Errorf("after update upsert: %v", e)
		}
	})
	t.Run("clause6.16/update", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/update", "["+entityJSON("urn:x:b", "T", `, "p": 20`)+"]")
		wantStatus(t, rec, http.StatusNoContent)
		rec = n.do("POST", "/ngsi-ld/v1/entityOperations/update?options=noOverwrite",
			"["+entityJSON("urn:x:b", "T", `, "p": 99, "z": 1`)+","+entityJSON("urn:x:nothere", "T", `, "p": 1`)+"]")
		wantStatus(t, rec, http.StatusMultiStatus)
		res := batchResult(t, rec.Body.Bytes())
		if !reflect.DeepEqual(res.Success, []string{"urn:x:b"}) || len(res.Errors) != 1 || res.Errors[0].Error.Type != ErrorTypeBase+"ResourceNotFound" {
			t.Errorf("result %+v", res)
		}
		if e := fetch(t, n, "urn:x:b", "?options=keyValues"); e["p"] != 20.0 || e["z"] != 1.0 {
			t.Errorf("after noOverwrite update: %v", e)
		}
	})
	t.Run("merge", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/merge",
			"["+entityJSON("urn:x:b", "T", `, "p": 21, "z": "urn:ngsi-ld:null", "m": 3`)+","+entityJSON("urn:x:nothere", "T", `, "p": 1`)+"]")
		wantStatus(t, rec, http.StatusMultiStatus)
		res := batchResult(t, rec.Body.Bytes())
		if !reflect.DeepEqual(res.Success, []string{"urn:x:b"}) || len(res.Errors) != 1 || res.Errors[0].Error.Type != ErrorTypeBase+"ResourceNotFound" {
			t.Errorf("result %+v", res)
		}
		if e := fetch(t, n, "urn:x:b", "?options=keyValues"); e["p"] != 21.0 || e["m"] != 3.0 || e["z"] != nil {
			t.Errorf("after merge: %v, want p 21, m 3 and z deleted", e)
		}
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/merge", "["+entityJSON("urn:x:b", "T", `, "p": 22`)+"]"), http.StatusNoContent)
		wantProblem(t, n.do("POST", "/ngsi-ld/v1/entityOperations/merge?options=noOverwrite", "["+entityJSON("urn:x:b", "T", "")+"]"), BadRequestData)
	})
	t.Run("clause6.17/delete", func(t *testing.T) {
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/delete", `["urn:x:c"]`), http.StatusNoContent)
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/delete", `["urn:x:d", "urn:x:c", 7, "not a uri"]`)
		wantStatus(t, rec, http.StatusMultiStatus)
		res := batchResult(t, rec.Body.Bytes())
		if !reflect.DeepEqual(res.Success, []string{"urn:x:d"}) || len(res.Errors) != 3 {
			t.Errorf("result %+v", res)
		}
		// Each error names the id it is about, so that the client can
		// match it to its array; a non-string id has none to give.
		var named []string
		for _, e := range res.Errors {
			named = append(named, e.EntityID)
		}
		slices.Sort(named)
		if !reflect.DeepEqual(named, []string{"", "not a uri", "urn:x:c"}) {
			t.Errorf("errors name %q, want \"\", \"not a uri\" and urn:x:c", named)
		}
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:d", nil), ResourceNotFound)
	})
	t.Run("unknown-attribute-type", func(t *testing.T) {
		// An attribute type that is none of NGSI-LD's fails its entity
		// alone, and nothing of it is written.
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert",
			"["+entityJSON("urn:x:f1", "T", `, "fp": 1`)+","+entityJSON("urn:x:f2", "T", `, "fp": {"type": "Foo", "value": 1}`)+"]")
		wantStatus(t, rec, http.StatusMultiStatus)
		res := batchResult(t, rec.Body.Bytes())
		if !reflect.DeepEqual(res.Success, []string{"urn:x:f1"}) || len(res.Errors) != 1 || res.Errors[0].EntityID != "urn:x:f2" {
			t.Errorf("result %+v, want urn:x:f1 written and urn:x:f2 refused", res)
		}
		wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:f2", nil), ResourceNotFound)
	})
	t.Run("same-id-twice", func(t *testing.T) {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert?options=update",
			"["+entityJSON("urn:x:e", "T", `, "p": 1`)+","+entityJSON("urn:x:e", "T", `, "q": 2`)+"]")
		wantStatus(t, rec, http.StatusCreated)
		if e := fetch(t, n, "urn:x:e", "?options=keyValues"); e["p"] != 1.0 || e["q"] != 2.0 {
			t.Errorf("second write did not see the first: %v", e)
		}
		if got := ids(t, n.do("GET", "/ngsi-ld/v1/entities?q=p==1", nil)); !reflect.DeepEqual(got, []string{"urn:x:e"}) {
			t.Errorf("index after two writes in one batch: %v", got)
		}
	})
}

// TestBatchTooLargeEntityFailsAlone: an entity whose write is more than
// one transaction of the store holds (tens of thousands of attributes,
// each with its counters and history record) fails alone in a batch
// upsert, with BadRequestData, as does a later change of the same entity
// in the batch; the entities around them are written, before and after,
// and the failed one is not there at all.
func TestBatchTooLargeEntityFailsAlone(t *testing.T) {
	n := newTestNode(t, nil)
	var huge strings.Builder
	for i := range 20_000 {
		fmt.Fprintf(&huge, `, "a%d": {"type": "Property", "value": %d}`, i, i)
	}
	big := entityJSON("urn:x:huge", "T", huge.String())
	small := func(id string) string { return entityJSON(id, "T", `, "p": {"type": "Property", "value": 1}`) }
	body := "[" + small("urn:x:before") + "," + big + "," + small("urn:x:after") + "," + small("urn:x:huge") + "]"
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", body)
	wantStatus(t, rec, http.StatusMultiStatus)
	res := batchResult(t, rec.Body.Bytes())
	if !reflect.DeepEqual(res.Success, []string{"urn:x:before", "urn:x:after"}) || len(res.Errors) != 2 {
		t.Fatalf("result %+v", res)
	}
	for _, e := range res.Errors {
		if e.EntityID != "urn:x:huge" || e.Error.Type != ErrorTypeBase+"BadRequestData" {
			t.Errorf("error for %s: %s %s, want BadRequestData for urn:x:huge", e.EntityID, e.Error.Type, e.Error.Detail)
		}
	}
	for _, id := range []string{"urn:x:before", "urn:x:after"} {
		wantStatus(t, n.do("GET", "/ngsi-ld/v1/entities/"+id, nil), http.StatusOK)
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:huge", nil), ResourceNotFound)

	// Alone, it answers the same error, not a 500.
	wantProblem(t, n.do("POST", "/ngsi-ld/v1/entities", big), BadRequestData)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/entities/urn:x:huge", nil), ResourceNotFound)
	// The types and attributes it would have counted are not counted.
	m := decode(t, n.do("GET", "/ngsi-ld/v1/types/T", nil)).(map[string]any)
	if got := m["entityCount"]; got != float64(2) {
		t.Errorf("entityCount of T = %v, want 2", got)
	}
}
