package ngsild

import (
	"net/http"
	"reflect"
	"testing"
)

// Clauses 6.25 to 6.28: the details=true lists and the per-name documents of
// /types and /attributes agree, and both forget a name once no entity has it.
func TestClause6_25To6_28Details(t *testing.T) {
	n := newTestNode(t, nil)
	loadFixture(t, n)
	details := decode(t, n.do("GET", "/ngsi-ld/v1/types?details=true", nil)).([]any)
	var sensor map[string]any
	for _, d := range details {
		if dm := d.(map[string]any); dm["typeName"] == "Sensor" {
			sensor = dm
		}
		if dm := d.(map[string]any); dm["type"] != "EntityType" {
			t.Errorf("types?details=true entry %v is not an EntityType", dm)
		}
	}
	if sensor == nil || !contains(toStrings(sensor["attributeNames"].([]any)), "temperature") {
		t.Fatalf("types?details=true has no Sensor with temperature: %v", details)
	}
	attrDetails := decode(t, n.do("GET", "/ngsi-ld/v1/attributes?details=true", nil)).([]any)
	byName := map[string]any{}
	for _, d := range attrDetails {
		dm := d.(map[string]any)
		byName[dm["attributeName"].(string)] = dm
	}
	one := decode(t, n.do("GET", "/ngsi-ld/v1/attributes/controlledBy", nil))
	if !reflect.DeepEqual(byName["controlledBy"], one) {
		t.Errorf("attributes?details=true entry %v differs from /attributes/controlledBy %v", byName["controlledBy"], one)
	}
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/attributes/nothing", nil), ResourceNotFound)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/types/Nothing", nil), ResourceNotFound)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/attributes/bad%20name", nil), BadRequestData)

	// Deleting every Road forgets the type and its attributes no other type has.
	wantStatus(t, n.do("DELETE", "/ngsi-ld/v1/entities/urn:ngsi-ld:Road:d", nil), http.StatusNoContent)
	wantProblem(t, n.do("GET", "/ngsi-ld/v1/types/Road", nil), ResourceNotFound)
	for _, d := range decode(t, n.do("GET", "/ngsi-ld/v1/types?details=true", nil)).([]any) {
		if d.(map[string]any)["typeName"] == "Road" {
			t.Errorf("types?details=true still lists Road after its last entity was deleted")
		}
	}
}
