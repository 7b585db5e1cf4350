package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/piprate/json-gold/ld"
)

var dspFiles = []struct {
	path     string
	policies int
}{
	{"negotiation/contract-agreement-message.json", 1},
	{"negotiation/contract-agreement-message-full.json", 1},
	{"negotiation/contract-offer-message.json", 1},
	{"negotiation/contract-offer-message_initial.json", 1},
	{"negotiation/contract-request-message.json", 1},
	{"negotiation/contract-request-message_initial.json", 1},
	{"catalog/dataset.json", 1},
	{"catalog/catalog.json", 1},
}

func readDSP(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/dsp", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// normalizedRDF expands a JSON-LD document with the DSP contexts and returns
// its canonical N-Quads (URDNA2015): equal strings mean the same graph.
func normalizedRDF(t *testing.T, doc any) string {
	t.Helper()
	opts := ld.NewJsonLdOptions("https://doc.test/") // a base keeps undefined terms like "partner" in the graph
	opts.DocumentLoader = offlineLoader{}
	opts.Format = "application/n-quads"
	opts.Algorithm = "URDNA2015"
	out, err := ld.NewJsonLdProcessor().Normalize(jsonCompat(doc), opts)
	if err != nil {
		t.Fatalf("JSON-LD normalisation: %v", err)
	}
	return out.(string)
}

// rewritePolicies replaces every policy object in a document by
// Marshal(Parse(it)), without its @context (the message's context applies).
func rewritePolicies(t *testing.T, v any) any {
	t.Helper()
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rewritePolicies(t, e)
		}
		return out
	case map[string]any:
		if isPolicyObject(x) {
			p, err := parsePolicy(x)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			b, err := Marshal(p)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			w, err := decodeJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			m := w.(map[string]any)
			delete(m, "@context")
			return m
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = rewritePolicies(t, e)
		}
		return out
	}
	return v
}

// TestDSPExamplesKeepMeaning: reading then writing the ODRL policies in the
// DSP examples gives the same RDF graph, checked by an independent JSON-LD
// processor.
func TestDSPExamplesKeepMeaning(t *testing.T) {
	for _, f := range dspFiles {
		t.Run(f.path, func(t *testing.T) {
			data := readDSP(t, f.path)
			ps, err := FindPolicies(data)
			if err != nil {
				t.Fatalf("FindPolicies: %v", err)
			}
			if len(ps) != f.policies {
				t.Fatalf("found %d policies, want %d", len(ps), f.policies)
			}
			orig, err := decodeJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			want := normalizedRDF(t, orig)
			if !strings.Contains(want, "http://www.w3.org/ns/odrl/2/permission") {
				t.Fatalf("original graph has no permission; the comparison would prove nothing:\n%s", want)
			}
			got := normalizedRDF(t, rewritePolicies(t, orig))
			if got != want {
				t.Errorf("graph changed by Parse+Marshal\n--- original\n%s\n--- rewritten\n%s", want, got)
			}
			// And a second round changes nothing in the model.
			for _, p := range ps {
				b, err := Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				q, err := Parse(b)
				if err != nil {
					t.Fatalf("Parse(Marshal): %v\n%s", err, b)
				}
				if !samePolicy(p, q) {
					t.Errorf("model changed by a round trip:\n%#v\n%#v", p, q)
				}
			}
		})
	}
}

func samePolicy(a, b Policy) bool {
	a.prog, b.prog = nil, nil
	return reflect.DeepEqual(a, b)
}

func TestDSPAgreementContent(t *testing.T) {
	ps, err := FindPolicies(readDSP(t, "negotiation/contract-agreement-message.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	want := Policy{
		ID: "urn:uuid:e8dc8655-44c2-46ef-b701-4cffdc2faa44", Type: TypeAgreement,
		Target:   "urn:uuid:3dd1add4-4d2d-569e-d634-8394a8836d23",
		Assigner: "http://example.com/Provider", Assignee: "http://example.com/Consumer",
		Permissions: []Rule{{Action: ActionUse, Constraints: []Constraint{Atomic(LeftDateTime, OpLteq, Lit("2023-12-31T06:00Z"))}}},
		Extra:       p.Extra,
	}
	if !samePolicy(p, want) {
		t.Fatalf("parsed\n%#v\nwant\n%#v", p, want)
	}
	if string(p.Extra["timestamp"]) != `"2023-01-01T01:00:00Z"` {
		t.Errorf("timestamp not kept: %s", p.Extra["timestamp"])
	}
	if err := Validate(p); err != nil {
		t.Errorf("Validate: %v", err)
	}
	req := Request{Now: time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), Action: ActionRead, PeerID: "http://example.com/Consumer"}
	if d := Evaluate(p, req, ScopeTransfer); !d.Permit {
		t.Errorf("consumer denied before the end date:\n%s", d)
	}
	req.Now = time.Date(2023, 12, 31, 6, 0, 1, 0, time.UTC)
	d := Evaluate(p, req, ScopeTransfer)
	if d.Permit {
		t.Fatalf("permitted after the end date")
	}
	if r := reasonAt(t, d, "permission[0].constraint[0]"); r.Code != CodeNotSatisfied || !strings.Contains(r.Text(), "2023-12-31T06:00Z") {
		t.Errorf("reason = %v", r)
	}
	req.Now, req.PeerID = time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), "http://example.com/Other"
	if d := Evaluate(p, req, ScopeTransfer); d.Permit {
		t.Errorf("non-assignee permitted")
	}
}

// The full DSP agreement uses leftOperands ("partner", "constraint1") that
// mean nothing to us: it is read, described and written back, but denies.
func TestDSPFullAgreementNotUnderstood(t *testing.T) {
	ps, err := FindPolicies(readDSP(t, "negotiation/contract-agreement-message-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	if len(p.Permissions) != 7 || p.Profile[0] != "https://test.com/profile" {
		t.Fatalf("parsed %d permissions, profile %v", len(p.Permissions), p.Profile)
	}
	err = Validate(p)
	if !errors.Is(err, ErrNotUnderstood) || !strings.Contains(err.Error(), `leftOperand "partner"`) || !strings.Contains(err.Error(), `leftOperand "constraint1"`) {
		t.Errorf("Validate = %v", err)
	}
	req := Request{Now: time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), Action: ActionUse, PeerID: "http://example.com/Consumer"}
	d := Evaluate(p, req, ScopeTransfer)
	if d.Permit {
		t.Fatalf("permit under a policy with unknown constraints")
	}
	n := 0
	for _, r := range d.Why() {
		if r.Code == CodeUnknownLeftOperand {
			n++
		}
	}
	if n != 12 {
		t.Errorf("%d unknown-left-operand reasons, want 12 (one per partner/constraintN constraint)", n)
	}
	desc := Describe(p)
	for _, want := range []string{"Permission 7: may use", "at least one of (all of (unknown leftOperand \"constraint1\" is value1", "exactly one of", "NOT UNDERSTOOD"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
}

func TestDSPDatasetOffer(t *testing.T) {
	ps, err := FindPolicies(readDSP(t, "catalog/dataset.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	if p.Type != TypeOffer || p.Permissions[0].Constraints[0].LeftOperand != LeftSpatial {
		t.Fatalf("parsed %#v", p)
	}
	req := Request{Now: t0, Action: ActionUse, PeerID: "p", Places: []string{"_:EU"}}
	if d := Evaluate(p, req, ScopeNegotiation); !d.Permit {
		t.Errorf("request in EU denied:\n%s", d)
	}
	if d := Evaluate(p, Request{Now: t0, Action: ActionUse, PeerID: "p"}, ScopeCatalog); !d.Permit {
		t.Errorf("catalog scope must defer spatial:\n%s", d)
	}
	req.Places = []string{"_:US"}
	if d := Evaluate(p, req, ScopeNegotiation); d.Permit {
		t.Errorf("request outside EU permitted")
	}
}

// TestJSONLDSpellings: the same policy written in every form the parser
// accepts reads to the same model.
func TestJSONLDSpellings(t *testing.T) {
	plain := `{"@type":"Offer","@id":"urn:p","target":"urn:d","assigner":"peer-P",
	  "permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"isAnyOf","rightOperand":["research","education"]},
	    {"leftOperand":"mim:role","operator":"eq","rightOperand":"agency"}],"duty":[{"action":"attribute"}]}],
	  "prohibition":[{"action":"distribute"}]}`
	want, err := Parse([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	variants := map[string]string{
		"prefixed terms and uid": `{"@context":"http://www.w3.org/ns/odrl.jsonld","type":"odrl:Offer","uid":"urn:p","odrl:target":"urn:d","odrl:assigner":"peer-P",
		  "odrl:permission":[{"odrl:action":"odrl:use","odrl:constraint":[{"odrl:leftOperand":"odrl:purpose","odrl:operator":"odrl:isAnyOf","odrl:rightOperand":["research","education"]},
		    {"odrl:leftOperand":"https://w3id.org/mimnode/policy/role","odrl:operator":"odrl:eq","odrl:rightOperand":"agency"}],"odrl:duty":[{"odrl:action":"odrl:attribute"}]}],
		  "odrl:prohibition":[{"odrl:action":"odrl:distribute"}]}`,
		"object terms and single objects": `{"@type":["Offer"],"@id":"urn:p","target":{"@id":"urn:d"},"assigner":{"@id":"peer-P","@type":"Party"},
		  "permission":{"action":{"@id":"odrl:use"},"constraint":[{"leftOperand":{"@id":"odrl:purpose"},"operator":{"@id":"odrl:isAnyOf"},"rightOperand":{"@list":["research","education"]}},
		    {"@type":"Constraint","leftOperand":{"@id":"mim:role"},"operator":{"@id":"http://www.w3.org/ns/odrl/2/eq"},"rightOperand":"agency"}],"duty":{"action":"attribute"}},
		  "prohibition":{"action":{"rdf:value":{"@id":"odrl:distribute"}}}}`,
		"plain role": strings.Replace(plain, "mim:role", "role", 1),
	}
	for name, doc := range variants {
		t.Run(name, func(t *testing.T) {
			got, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !samePolicy(got, want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, want)
			}
		})
	}
	if _, err := FindPolicies([]byte(`{"@context":{"offer":"dspace:offer","permission":"odrl:prohibition"},"offer":{"@type":"Offer","permission":[{"action":"use"}]}}`)); !errors.Is(err, ErrSyntax) {
		t.Errorf("FindPolicies with a message context that redefines permission: %v", err)
	}
	// Inline contexts that keep the usual meaning are fine (the DSP and ODRL
	// contexts inlined, for instance).
	odrlCtx, err := os.ReadFile("testdata/dsp/context/odrl.jsonld")
	if err != nil {
		t.Fatal(err)
	}
	var ctxDoc map[string]any
	if err := json.Unmarshal(odrlCtx, &ctxDoc); err != nil {
		t.Fatal(err)
	}
	inline, _ := json.Marshal(map[string]any{"@context": []any{ctxDoc["@context"], map[string]any{"mim": MimNS, "role": "mim:role"}}, "permission": []any{map[string]any{"action": "use"}}})
	if _, err := Parse(inline); err != nil {
		t.Errorf("Parse with the DSP ODRL context inlined: %v", err)
	}
	out, _ := Marshal(want)
	for _, frag := range []string{`"leftOperand":"mim:role"`, `"http://www.w3.org/ns/odrl.jsonld"`, `"mim":"https://w3id.org/mimnode/policy/"`, `"@type":"Offer"`} {
		if !strings.Contains(string(out), frag) {
			t.Errorf("Marshal output lacks %s:\n%s", frag, out)
		}
	}
	// odrl:role is not a term anyone defined: it must stay unknown, not become ours.
	p, err := Parse([]byte(strings.Replace(plain, "mim:role", "odrl:role", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(p); err == nil || !strings.Contains(err.Error(), "odrl:role") {
		t.Errorf("odrl:role accepted: %v", err)
	}
}

func TestJSONLDTypedValuesAndAreas(t *testing.T) {
	doc := `{"@type":"Set","permission":[{"action":"read","constraint":[
	  {"leftOperand":"dateTime","operator":"lt","rightOperand":{"@value":"2027-01-01T00:00:00Z","@type":"xsd:dateTime"}},
	  {"leftOperand":"elapsedTime","operator":"lteq","rightOperand":{"@value":"P30D","@type":"xsd:duration"}},
	  {"leftOperand":"count","operator":"lteq","rightOperand":{"@value":"5","@type":"xsd:integer"}},
	  {"leftOperand":"payAmount","operator":"gteq","rightOperand":12.50,"unit":"EUR"},
	  {"leftOperand":"spatial","operator":"isPartOf","rightOperand":{"type":"Polygon","coordinates":[[[4.7,52.3],[5.1,52.3],[5.1,52.45],[4.7,52.45],[4.7,52.3]]]}},
	  {"leftOperand":"recipient","operator":"isAnyOf","rightOperand":[{"@id":"peer-A"},{"@id":"peer-B"}]}]}]}`
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(p); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	req := baseReq()
	req.Action = ActionRead
	req.PayAmount = 12.5
	if d := Evaluate(p, req, ScopeTransfer); !d.Permit {
		t.Fatalf("denied:\n%s", d)
	}
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	if !samePolicy(p, q) {
		t.Errorf("round trip changed the model:\n%s", b)
	}
	for _, frag := range []string{`"@type":"xsd:duration"`, `"rightOperand":12.50`, `"type":"Polygon"`, `{"@id":"peer-A"}`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("output lacks %s:\n%s", frag, b)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc, want string
	}{
		{"not JSON", `{"permission":`, "invalid JSON"},
		{"array", `[{"@type":"Set"}]`, "must be a JSON object"},
		{"trailing data", `{"@type":"Set"} {}`, "after the top-level value"},
		{"duplicate key", `{"@type":"Set","prohibition":[{"action":"read"}],"prohibition":[]}`, `"prohibition" given twice`},
		{"same property two spellings", `{"@type":"Set","permission":[],"odrl:permission":[]}`, `given twice`},
		{"unknown policy type", `{"@type":"Ticket"}`, "not Set, Offer, Agreement or Policy"},
		{"two policy types", `{"@type":["Offer","Agreement"]}`, "typed both"},
		{"rule without action", `{"permission":[{"constraint":[]}]}`, "permission[0] has no action"},
		{"two actions", `{"permission":[{"action":["use","read"]}]}`, "exactly one action"},
		{"rule not object", `{"permission":["use"]}`, "permission[0] must be an object"},
		{"constraint without operator", `{"permission":[{"action":"use","constraint":[{"leftOperand":"purpose","rightOperand":"x"}]}]}`, "needs leftOperand, operator and rightOperand"},
		{"logical mixed with atomic", `{"permission":[{"action":"use","constraint":[{"and":[{"leftOperand":"purpose","operator":"eq","rightOperand":"x"}],"leftOperand":"purpose"}]}]}`, "mixes a logical"},
		{"two logical operators", `{"permission":[{"action":"use","constraint":[{"and":[{"leftOperand":"purpose","operator":"eq","rightOperand":"x"}],"or":[{"leftOperand":"purpose","operator":"eq","rightOperand":"y"}]}]}]}`, "has both"},
		{"empty logical", `{"permission":[{"action":"use","constraint":[{"or":[]}]}]}`, "has no constraints"},
		{"empty rightOperand list", `{"permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"isAnyOf","rightOperand":[]}]}]}`, "empty list"},
		{"value object with both", `{"permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":{"@value":"x","@id":"y"}}]}]}`, "exactly one of @value and @id"},
		{"nested array operand", `{"permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":[["x"]]}]}]}`, "must be a string, number"},
		{"GeoJSON ring not closed", `{"permission":[{"action":"use","constraint":[{"leftOperand":"spatial","operator":"isPartOf","rightOperand":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1]]]}}]}]}`, "must end where it starts"},
		{"GeoJSON bad position", `{"permission":[{"action":"use","constraint":[{"leftOperand":"spatial","operator":"isPartOf","rightOperand":{"type":"Point","coordinates":["a","b"]}}]}]}`, "numbers"},
		{"target is a number", `{"target":5}`, "target must be an IRI"},
		{"context redefines a term", `{"@context":{"permission":"odrl:prohibition"},"permission":[{"action":"use"}]}`, `redefines "permission"`},
		{"context redefines an operator", `{"@context":[{"eq":{"@id":"http://example.com/neq"}}],"permission":[{"action":"use"}]}`, `redefines "eq"`},
		{"context rebinds odrl prefix", `{"@context":{"odrl":"http://example.com/"},"permission":[{"action":"use"}]}`, "binds the odrl prefix"},
		{"deep nesting", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "nesting deeper"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse error = %v, want ErrSyntax", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse error = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// Properties the evaluator does not implement are kept, and make the policy
// not understood rather than silently ignored.
func TestUnsupportedPropertiesKeptAndDenied(t *testing.T) {
	cases := map[string]string{
		"remedy on prohibition":     `{"permission":[{"action":"use"}],"prohibition":[{"action":"distribute","remedy":[{"action":"delete"}]}]}`,
		"rightOperandReference":     `{"permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperandReference":"http://x"}]}]}`,
		"conflict perm":             `{"conflict":"perm","permission":[{"action":"use"}]}`,
		"inheritFrom":               `{"inheritFrom":"urn:parent","permission":[{"action":"use"}]}`,
		"refinement":                `{"permission":[{"action":{"rdf:value":{"@id":"odrl:use"},"refinement":[{"leftOperand":"count","operator":"lt","rightOperand":3}]}}]}`,
		"duty on a duty":            `{"permission":[{"action":"use","duty":[{"action":"compensate","duty":[{"action":"inform"}]}]}]}`,
		"rule about another target": `{"target":"urn:a","permission":[{"action":"use","target":"urn:b"}]}`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := Parse([]byte(doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := Validate(p); !errors.Is(err, ErrNotUnderstood) {
				t.Errorf("Validate = %v, want ErrNotUnderstood", err)
			}
			if d := Evaluate(p, baseReq(), ScopeTransfer); d.Permit {
				t.Errorf("permitted")
			}
			b, err := Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			q, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if !samePolicy(p, q) {
				t.Errorf("not kept by a round trip:\n%s", b)
			}
		})
	}
	// conflict "prohibit" is what the evaluator does anyway.
	p, err := Parse([]byte(`{"conflict":{"@id":"odrl:prohibit"},"permission":[{"action":"use"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(p); err != nil {
		t.Errorf("conflict prohibit rejected: %v", err)
	}
}

// TestExpandedFormReadsBack: connectors often exchange expanded JSON-LD (full
// IRIs, every value in an array, @list wrappers). Expanding what Marshal
// writes with an independent JSON-LD processor and parsing the result gives
// the same policy. (The official ODRL context is not available offline; the
// DSP ODRL profile context plus @vocab defines the same terms.)
func TestExpandedFormReadsBack(t *testing.T) {
	var policies []Policy
	for _, tpl := range Templates() {
		p, err := tpl.New(Params{ID: "urn:p", Target: "urn:d", Assigner: "peer-P", Federation: "fed-nl", Days: 30, Purposes: []string{"research", "health"}, Licence: "https://creativecommons.org/licenses/by/4.0/"})
		if err != nil {
			t.Fatal(err)
		}
		policies = append(policies, p)
	}
	logical := onePermission(Logical(LogicOr,
		Logical(LogicAnd, Atomic(LeftRole, OpEq, Lit(RoleAgency)), Atomic(LeftFederation, OpIsAnyOf, Lit("fed-nl", "fed-eu"))),
		Atomic(LeftPayAmount, OpGteq, Num(25)), Atomic(LeftDateTime, OpLt, DateTimeOp(t0))))
	policies = append(policies, logical)
	for i, p := range policies {
		b, err := Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		doc["@context"] = []any{"https://w3id.org/dspace/2025/1/odrl-profile.jsonld",
			map[string]any{"@vocab": odrlNS, "mim": MimNS, "dct": dctNS,
				// ODRL's own context makes logical operands ordered lists.
				"or":  map[string]any{"@id": "odrl:or", "@container": "@list"},
				"and": map[string]any{"@id": "odrl:and", "@container": "@list"}}}
		opts := ld.NewJsonLdOptions("")
		opts.DocumentLoader = offlineLoader{}
		expanded, err := ld.NewJsonLdProcessor().Expand(doc, opts)
		if err != nil {
			t.Fatalf("policy %d: expand: %v", i, err)
		}
		if len(expanded) != 1 {
			t.Fatalf("policy %d: expanded to %d nodes", i, len(expanded))
		}
		eb, _ := json.Marshal(expanded[0])
		if !strings.Contains(string(eb), odrlNS+"permission") {
			t.Fatalf("policy %d: not expanded: %s", i, eb)
		}
		if i == len(policies)-1 && !strings.Contains(string(eb), `"@list"`) {
			t.Fatalf("logical constraints not expanded as lists: %s", eb)
		}
		q, err := Parse(eb)
		if err != nil {
			t.Fatalf("policy %d: Parse(expanded): %v\n%s", i, err, eb)
		}
		if !samePolicy(p, q) {
			t.Errorf("policy %d: expanded form reads differently\n%s\n%#v\n%#v", i, eb, p, q)
		}
	}
}
