package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

// quickAgrees checks quickPolicyObject against slowPolicyObject: when the
// quick path accepts, encoding/json accepts too.
func quickAgrees(t *testing.T, raw []byte, wantType string, required []string) (quick bool) {
	t.Helper()
	if !quickPolicyObject(raw, wantType, required) {
		return false
	}
	if err := slowPolicyObject("policy", raw, wantType, required...); err != nil {
		t.Fatalf("quickPolicyObject accepts %s as %s %v; encoding/json refuses it: %v", raw, wantType, required, err)
	}
	return true
}

func TestQuickPolicyObject(t *testing.T) {
	const rule = `{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":"research"}]}`
	agreement := []string{"target", "assigner", "assignee"}
	tests := []struct {
		name     string
		raw      string
		wantType string
		required []string
		quick    bool // read by the quick path, and accepted
	}{
		{"offer", `{"@id":"urn:o","@type":"Offer","permission":[` + rule + `]}`, "Offer", nil, true},
		{"offer with space", " {\n \"@id\" : \"urn:o\" ,\t\"@type\":\"Offer\", \"permission\" : [ " + rule + " , {} ] } ", "Offer", nil, true},
		{"agreement", `{"@context":["http://www.w3.org/ns/odrl.jsonld",{"dct":"http://purl.org/dc/terms/"}],"@id":"urn:a","@type":"Agreement","assignee":"c","assigner":"p","permission":[` + rule + `],"prohibition":[{"action":"distribute"}],"target":"urn:d"}`, "Agreement", agreement, true},
		{"prohibition only", `{"@id":"urn:o","@type":"Offer","prohibition":[{}]}`, "Offer", nil, true},
		{"obligation only", `{"@id":"urn:o","@type":"Offer","obligation":[{}]}`, "Offer", nil, false},
		{"no rules", `{"@id":"urn:o","@type":"Offer"}`, "Offer", nil, false},
		{"empty rules", `{"@id":"urn:o","@type":"Offer","permission":[]}`, "Offer", nil, false},
		{"rule not an object", `{"@id":"urn:o","@type":"Offer","permission":["use"]}`, "Offer", nil, false},
		{"null rule", `{"@id":"urn:o","@type":"Offer","permission":[null]}`, "Offer", nil, false},
		{"rules null", `{"@id":"urn:o","@type":"Offer","permission":null,"prohibition":[{}]}`, "Offer", nil, false},
		{"wrong type", `{"@id":"urn:o","@type":"Agreement","permission":[{}]}`, "Offer", nil, false},
		{"type escaped", `{"@id":"urn:o","@type":"Of\u0066er","permission":[{}]}`, "Offer", nil, false},
		{"key escaped", `{"@id":"urn:o","\u0040type":"Offer","permission":[{}]}`, "Offer", nil, false},
		{"type folded", `{"@id":"urn:o","@Type":"Offer","permission":[{}]}`, "Offer", nil, false},
		{"duplicate type", `{"@id":"urn:o","@type":"Offer","@type":"Set","permission":[{}]}`, "Offer", nil, false},
		{"empty id", `{"@id":"","@type":"Offer","permission":[{}]}`, "Offer", nil, false},
		{"id not a string", `{"@id":7,"@type":"Offer","permission":[{}]}`, "Offer", nil, false},
		{"missing target", `{"@id":"urn:o","@type":"Offer","permission":[{}]}`, "Offer", []string{"target"}, false},
		{"not an object", `[{"@id":"urn:o","@type":"Offer","permission":[{}]}]`, "Offer", nil, false},
		{"null", `null`, "Offer", nil, false},
		{"empty object", `{}`, "Offer", nil, false},
		{"not JSON", `{"@id":"urn:o","@type":"Offer","permission":[{}]`, "Offer", nil, false},
		{"trailing", `{"@id":"urn:o","@type":"Offer","permission":[{}]} x`, "Offer", nil, false},
		{"values around", `{"a":{"@type":"X","b":[1,{"c":"]}"}]},"@id":"urn:o","s":"q\"}","@type":"Offer","n":-1.5e3,"z":null,"permission":[{"x":"}"}],"t":true}`, "Offer", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := quickAgrees(t, []byte(tc.raw), tc.wantType, tc.required); got != tc.quick {
				t.Errorf("quickPolicyObject(%s) = %v, want %v", tc.raw, got, tc.quick)
			}
		})
	}
}

// FuzzQuickPolicyObject: whatever quickPolicyObject accepts, encoding/json
// accepts.
func FuzzQuickPolicyObject(f *testing.F) {
	f.Add([]byte(`{"@id":"urn:o","@type":"Offer","permission":[{"action":"use"}],"target":"urn:d","assigner":"p","assignee":"c"}`), uint8(0))
	f.Add([]byte(`{"a":{"@type":"X","b":[1,{"c":"]}"}]},"@id":"urn:o","s":"q\"}","@type":"Agreement","obligation":[{}],"prohibition":[{"x":"}"}],"target":"t","assigner":"p","assignee":"c"}`), uint8(3))
	kinds := []*policyKind{offerKind, targetedOfferKind, agreementKind, {wantType: "Offer", required: []string{"permission", "@id"}}}
	f.Fuzz(func(t *testing.T, raw []byte, kind uint8) {
		k := kinds[int(kind)%len(kinds)]
		quickAgrees(t, raw, k.wantType, k.required)
	})
}

func BenchmarkCheckPolicyObject(b *testing.B) {
	rule := `{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":"research"},{"leftOperand":"mim:role","operator":"isAnyOf","rightOperand":["researcher","agency"]}]}`
	raw := []byte(`{"@context":["http://www.w3.org/ns/odrl.jsonld",{"dct":"http://purl.org/dc/terms/","mim":"https://w3id.org/mimnode/policy/"}],"@id":"urn:uuid:03fd9cf5","@type":"Agreement","assignee":"12D3KooWS2x9fFmV8YHU1A4xqhLe1Bk57x9kNJuHCsrhuYKs4MaM","assigner":"12D3KooWLqMFH2rpDsMeZNGa9cdmPt8P5Q6MkQNLaVRdWfXyU8Gs","permission":[` +
		strings.Repeat(rule+",", 3) + rule + `],"prohibition":[{"action":"distribute"}],"target":"urn:ngsi-ld:Dataset:noise-levels-2025"}`)
	if !json.Valid(raw) {
		b.Fatal("bad benchmark policy")
	}
	for _, bc := range []struct {
		name  string
		check func(string, json.RawMessage, string, ...string) error
	}{{"checkPolicyObject", checkPolicyObject}, {"slowPolicyObject", slowPolicyObject}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.check("agreement", raw, "Agreement", agreementKind.required...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// objectMembersAgree checks ObjectMembers against encoding/json: when it
// reads raw, every named member has the bytes encoding/json gives it, and
// an absent one none.
func objectMembersAgree(t *testing.T, raw []byte, names []string) (read bool) {
	t.Helper()
	vals := make([][]byte, len(names))
	if !ObjectMembers(raw, names, vals) {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		t.Fatalf("ObjectMembers reads %s; encoding/json: %v", raw, err)
	}
	for i, name := range names {
		want, ok := m[name]
		if !ok && vals[i] != nil || ok && string(vals[i]) != string(want) {
			t.Fatalf("ObjectMembers(%s)[%q] = %q; encoding/json gives %q, %v", raw, name, vals[i], want, ok)
		}
	}
	return true
}

func TestObjectMembers(t *testing.T) {
	names := []string{"@id", "target", "file", "n"}
	tests := []struct {
		raw  string
		read bool
	}{
		{`{}`, true},
		{` { } `, true},
		{`{"@id":"urn:a","target":"t","file":{"agreement":{"a":[1,2]},"signatures":[]},"other":[{"x":"}"}],"n":-1.5e3}`, true},
		{"{\n\t\"@id\" : \"urn:a\" ,\r\n\"file\" :null }", true},
		{`{"target":"t\"x"}`, true},
		{`{"@id":"a","@id":"b"}`, false},
		{`{"x":1,"x":2}`, true},
		{`{"\u0040id":"a"}`, false},
		{`{"é":"a"}`, false},
		{`[]`, false},
		{`null`, false},
		{`{"@id":"a"`, false},
		{`{"@id":"a"} {}`, false},
	}
	for _, tc := range tests {
		if got := objectMembersAgree(t, []byte(tc.raw), names); got != tc.read {
			t.Errorf("ObjectMembers(%s) read = %v, want %v", tc.raw, got, tc.read)
		}
	}
	for _, tc := range []struct {
		v    string
		want string
		ok   bool
	}{{`"abc"`, "abc", true}, {`""`, "", true}, {`"a\"b"`, "", false}, {`"é"`, "", false}, {`1`, "", false}, {`"a" `, "", false}, {``, "", false}} {
		if got, ok := PlainString([]byte(tc.v)); got != tc.want || ok != tc.ok {
			t.Errorf("PlainString(%s) = %q, %v; want %q, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzObjectMembers: whatever ObjectMembers reads, it reads as
// encoding/json does.
func FuzzObjectMembers(f *testing.F) {
	f.Add([]byte(`{"@id":"urn:a","target":"t","file":{"agreement":{"a":[1,2]},"signatures":[]},"other":[{"x":"}"}],"n":-1.5e3}`))
	f.Add([]byte(`{"a":{"@type":"X","b":[1,{"c":"]}"}]},"@id":"urn:o","s":"q\"}","n":-1.5e3,"z":null,"t":true}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		objectMembersAgree(t, raw, []string{"@id", "target", "file", "n", "z"})
	})
}
