package ngsild

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

// storedCounts reads every counter (n/k/ and n/K/) of n's store.
func storedCounts(t *testing.T, n *testNode) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for _, prefix := range []string{keyCount, keyInstCount} {
		err := n.svc.db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: []byte(prefix)}, func(k, v []byte) error {
				if len(v) != 8 {
					t.Errorf("counter %q holds %d bytes", k, len(v))
					return nil
				}
				got[string(k)] = int64(binary.BigEndian.Uint64(v))
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// recount counts the stored entities from scratch, as the counters should.
func recount(t *testing.T, n *testNode) map[string]int64 {
	t.Helper()
	deltas := map[countKey]int64{}
	err := n.svc.EachOfType(context.Background(), nil, func(e *Entity) error {
		indexKeys(e, n.svc.codes.codeOf, deltas, +1, func(string) bool { return false })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for k, d := range deltas {
		if d != 0 {
			want[k.key()] = d
		}
	}
	return want
}

// TestCountersThroughReplaces checks the type and attribute counters
// (GET /types, /attributes) after replaces that keep the attributes and
// their types (the write skips the counters then) and after ones that
// change them.
func TestCountersThroughReplaces(t *testing.T) {
	n := newTestNode(t, nil)
	steps := []struct {
		name, path, body string
	}{
		{"create", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1},"r":{"type":"Relationship","object":"urn:y:1"}},
			  {"id":"urn:x:2","type":"T","p":{"type":"Property","value":2}}]`},
		{"same attributes, new values", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:1","type":"T","p":{"type":"Property","value":5},"r":{"type":"Relationship","object":"urn:y:2"}}]`},
		{"an attribute changes type", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:1","type":"T","p":{"type":"Property","value":5},"r":{"type":"Property","value":"urn:y:2"}}]`},
		{"an attribute gains an instance", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:2","type":"T","p":[{"type":"Property","value":2},{"type":"Relationship","object":"urn:y:3","datasetId":"urn:d:1"}]}]`},
		{"same instances again", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:2","type":"T","p":[{"type":"Property","value":3},{"type":"Relationship","object":"urn:y:4","datasetId":"urn:d:1"}]}]`},
		{"instances in another order", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:2","type":"T","p":[{"type":"Relationship","object":"urn:y:4","datasetId":"urn:d:1"},{"type":"Property","value":3}]}]`},
		{"another type", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:2","type":["T","U"],"p":{"type":"Property","value":3}}]`},
		{"an attribute goes", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:1","type":"T","p":{"type":"Property","value":6}}]`},
		{"twice in one batch", "/ngsi-ld/v1/entityOperations/upsert",
			`[{"id":"urn:x:1","type":"T","p":{"type":"Property","value":7}},{"id":"urn:x:1","type":"T","q":{"type":"Property","value":7}}]`},
		{"delete", "/ngsi-ld/v1/entityOperations/delete", `["urn:x:2"]`},
	}
	for _, st := range steps {
		rec := n.do("POST", st.path, st.body)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
			t.Fatalf("%s: %d %s", st.name, rec.Code, rec.Body.String())
		}
		if got, want := storedCounts(t, n), recount(t, n); !maps.Equal(got, want) {
			t.Errorf("%s: counters %v, want %v", st.name, got, want)
		}
	}
}

// TestCountersOfMixedCreates checks the counters after batches of creates
// whose counters repeat in runs and change between them (a create
// counts as an earlier one with the same counters, prepared.countAs, and
// writeTxn adds each such one's counters once): the same attributes,
// an attribute of another type, the types in another order, an attribute
// more or less, two instances, and an entity created and replaced in the
// same batch.
func TestCountersOfMixedCreates(t *testing.T) {
	n := newTestNode(t, nil)
	batches := []struct {
		name, body string
	}{
		{"runs", `[
			{"id":"urn:x:1","type":"T","p":{"type":"Property","value":1}},
			{"id":"urn:x:2","type":"T","p":{"type":"Property","value":2}},
			{"id":"urn:x:3","type":"T","p":{"type":"Relationship","object":"urn:y:1"}},
			{"id":"urn:x:4","type":"T","p":{"type":"Property","value":4}},
			{"id":"urn:x:5","type":["T","U"],"p":{"type":"Property","value":5}},
			{"id":"urn:x:6","type":["U","T"],"p":{"type":"Property","value":6}},
			{"id":"urn:x:7","type":["U","T"],"p":{"type":"Property","value":7}},
			{"id":"urn:x:8","type":"T","p":{"type":"Property","value":8},"q":{"type":"Property","value":8}},
			{"id":"urn:x:9","type":"T","q":{"type":"Property","value":9}},
			{"id":"urn:x:10","type":"T","p":[{"type":"Property","value":1},{"type":"Relationship","object":"urn:y:1","datasetId":"urn:d:1"}]},
			{"id":"urn:x:11","type":"T","p":[{"type":"Property","value":1},{"type":"Property","value":2,"datasetId":"urn:d:1"}]},
			{"id":"urn:x:12","type":"T","p":{"type":"Property","value":12}},
			{"id":"urn:x:12","type":"T","q":{"type":"Property","value":12}},
			{"id":"urn:x:13","type":"T","p":{"type":"Property","value":13}}]`},
		{"after replaces and a run of one", `[
			{"id":"urn:x:1","type":"T","q":{"type":"Property","value":1}},
			{"id":"urn:x:20","type":"V","p":{"type":"Property","value":1}},
			{"id":"urn:x:21","type":"T","p":{"type":"Property","value":1}}]`},
	}
	// A batch prepared by more than one worker (commitNoSync), shapes
	// cycling.
	var many []string
	for i := range 100 {
		attr := []string{`"p":{"type":"Property","value":1}`, `"p":{"type":"Relationship","object":"urn:y:1"}`, `"q":{"type":"Property","value":1}`}[i%3]
		many = append(many, fmt.Sprintf(`{"id":"urn:x:m%d","type":"T",%s}`, i, attr))
	}
	batches = append(batches, struct{ name, body string }{"100, shapes cycling", "[" + strings.Join(many, ",") + "]"})
	for _, b := range batches {
		rec := n.do("POST", "/ngsi-ld/v1/entityOperations/upsert", b.body)
		if rec.Code != http.StatusCreated && rec.Code != http.StatusNoContent {
			t.Fatalf("%s: %d %s", b.name, rec.Code, rec.Body.String())
		}
		if got, want := storedCounts(t, n), recount(t, n); !maps.Equal(got, want) {
			t.Errorf("%s: counters %v, want %v", b.name, got, want)
		}
	}
	// Land writes in the same transactions.
	var ents []*Entity
	for i, typ := range []string{"T", "T", "V", "T", "T"} {
		e := &Entity{ID: fmt.Sprintf("urn:x:l%d", i), Types: []string{expandTestType(typ)}, Attrs: map[string][]*Attribute{
			"https://example.org/p": {{Type: Property, Value: float64(i)}},
		}}
		ents = append(ents, e)
	}
	landAll(t, n, ents)
	if got, want := storedCounts(t, n), recount(t, n); !maps.Equal(got, want) {
		t.Errorf("after Land: counters %v, want %v", got, want)
	}
}

// expandTestType is a type name of the tests' default context as stored.
func expandTestType(typ string) string {
	return "https://uri.etsi.org/ngsi-ld/default-context/" + typ
}

// TestCountersOfManyAttributeTypes checks that an attribute whose
// instances have five different attribute types, some more than once,
// counts the entity once per type (the type's counter of each is 1) and
// each instance once (the instance counters add up to 8), and that every
// counter is 0 once the entity is deleted.
func TestCountersOfManyAttributeTypes(t *testing.T) {
	n := newTestNode(t, nil)
	body := `{"id":"urn:x:1","type":"T","p":[
		{"type":"Property","value":1},
		{"type":"Relationship","object":"urn:y:1","datasetId":"urn:d:1"},
		{"type":"LanguageProperty","languageMap":{"en":"one"},"datasetId":"urn:d:2"},
		{"type":"VocabProperty","vocab":"monument","datasetId":"urn:d:3"},
		{"type":"ListProperty","valueList":[1,2],"datasetId":"urn:d:4"},
		{"type":"VocabProperty","vocab":"park","datasetId":"urn:d:5"},
		{"type":"Property","value":2,"datasetId":"urn:d:6"},
		{"type":"ListProperty","valueList":[3],"datasetId":"urn:d:7"}]}`
	if rec := n.do("POST", "/ngsi-ld/v1/entities", body); rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body.String())
	}
	typ, attr := expandTestType("T"), "https://uri.etsi.org/ngsi-ld/default-context/p"
	want := map[string]int64{countKey{typ: typ}.key(): 1}
	for _, at := range []AttrType{Property, Relationship, LanguageProperty, VocabProperty, ListProperty} {
		want[countKey{typ: typ, attr: attr, at: at}.key()] = 1
	}
	for at, n := range map[AttrType]int64{Property: 2, Relationship: 1, LanguageProperty: 1, VocabProperty: 2, ListProperty: 2} {
		want[countKey{attr: attr, at: at}.key()] = n
	}
	if got := storedCounts(t, n); !maps.Equal(got, want) {
		t.Errorf("counters %v, want %v", got, want)
	}
	if rec := n.do("DELETE", "/ngsi-ld/v1/entities/urn:x:1", ""); rec.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body.String())
	}
	for k, v := range storedCounts(t, n) {
		if v != 0 {
			t.Errorf("after delete, counter %q = %d", k, v)
		}
	}
}

// TestAttributeCountCountsInstances checks GET /attributes/{attr}'s
// attributeCount: the number of the attribute's instances, so an entity
// with two datasetIds of it adds two and an entity of two types adds one,
// through appends, deletes of one instance and of a whole entity; with
// no instance left the attribute is not found.
func TestAttributeCountCountsInstances(t *testing.T) {
	n := newTestNode(t, nil)
	count := func(attr string) any {
		t.Helper()
		rec := n.do("GET", "/ngsi-ld/v1/attributes/"+attr, nil)
		if rec.Code == http.StatusNotFound {
			return nil
		}
		wantStatus(t, rec, http.StatusOK)
		return decode(t, rec).(map[string]any)["attributeCount"]
	}
	step := func(name, method, path, body string, want any) {
		t.Helper()
		if rec := n.do(method, path, body); rec.Code >= 300 {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body.String())
		}
		if got := count("speed"); got != want {
			t.Errorf("%s: attributeCount %v, want %v", name, got, want)
		}
	}
	step("two entities, one of two types", "POST", "/ngsi-ld/v1/entityOperations/create", `[
		{"id":"urn:x:1","type":"Road","speed":{"type":"Property","value":50}},
		{"id":"urn:x:2","type":["Road","Street"],"speed":{"type":"Property","value":30}}]`, 2.0)
	step("a second instance", "POST", "/ngsi-ld/v1/entities/urn:x:1/attrs",
		`{"speed":{"type":"Property","value":80,"datasetId":"urn:ngsi-ld:Dataset:limit"}}`, 3.0)
	step("one instance deleted", "DELETE", "/ngsi-ld/v1/entities/urn:x:1/attrs/speed?datasetId=urn:ngsi-ld:Dataset:limit", "", 2.0)
	step("an entity deleted", "DELETE", "/ngsi-ld/v1/entities/urn:x:2", "", 1.0)
	details := decode(t, n.do("GET", "/ngsi-ld/v1/attributes?details=true", nil)).([]any)
	if len(details) != 1 || details[0].(map[string]any)["attributeCount"] != 1.0 {
		t.Errorf("details=true: %v", details)
	}
	step("the last deleted", "DELETE", "/ngsi-ld/v1/entities/urn:x:1", "", nil)
}

// TestInstanceCountsMigrate checks that a store written before instances
// were counted (no n/K/ counters, no n/Kr mark) gets them at the next
// start, counted from its entities, and that a start after that leaves
// them alone.
func TestInstanceCountsMigrate(t *testing.T) {
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n := newTestNodeOn(t, db, nil)
	rec := n.do("POST", "/ngsi-ld/v1/entityOperations/create", `[
		{"id":"urn:x:1","type":"Road","speed":[{"type":"Property","value":50},{"type":"Property","value":80,"datasetId":"urn:d:1"}]},
		{"id":"urn:x:2","type":"Road","speed":{"type":"Property","value":30},"name":{"type":"Property","value":"B"}}]`)
	wantStatus(t, rec, http.StatusCreated)
	want := storedCounts(t, n)
	if len(want) == 0 {
		t.Fatal("no counters")
	}
	n.svc.Close()

	// What an older node left: no instance counters and no mark.
	if err := db.Update(func(tx *store.Txn) error {
		var keys [][]byte
		err := tx.Iterate(store.IterOptions{Prefix: []byte(keyInstCount), KeysOnly: true}, func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		for _, k := range append(keys, []byte(keyInstReady)) {
			if err == nil {
				err = tx.Delete(k)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	n = newTestNodeOn(t, db, nil)
	if got := storedCounts(t, n); !maps.Equal(got, want) {
		t.Errorf("after the migration: counters %v, want %v", got, want)
	}
	if got := decode(t, n.do("GET", "/ngsi-ld/v1/attributes/speed", nil)).(map[string]any)["attributeCount"]; got != 3.0 {
		t.Errorf("attributeCount of speed after the migration: %v, want 3", got)
	}
	n.svc.Close()
	newTestNodeOn(t, db, nil) // the mark is there: nothing is counted twice
	if got := storedCounts(t, n); !maps.Equal(got, want) {
		t.Errorf("after another start: counters %v, want %v", got, want)
	}
}
