package protocol

import (
	"encoding/json"
	"testing"
)

// slowHeader is what Decode's encoding/json pass makes of body's header:
// the @type and whether @context includes Context, ok false on any error.
func slowHeader(body []byte) (typ string, ok bool) {
	var h struct {
		Context json.RawMessage `json:"@context"`
		Type    json.RawMessage `json:"@type"`
	}
	if json.Unmarshal(body, &h) != nil || len(h.Context) == 0 {
		return "", false
	}
	var ctx []string
	if json.Unmarshal(h.Context, &ctx) != nil {
		return "", false
	}
	found := false
	for _, c := range ctx {
		found = found || c == Context
	}
	if !found || json.Unmarshal(h.Type, &typ) != nil || typ == "" {
		return "", false
	}
	return typ, true
}

func TestQuickHeader(t *testing.T) {
	ctx := `"@context":["` + Context + `"]`
	tests := []struct {
		name string
		body string
		want string // "" when declined
	}{
		{"plain", `{` + ctx + `,"@type":"ContractNegotiation","state":"AGREED"}`, "ContractNegotiation"},
		{"type first", `{"@type":"ContractNegotiation",` + ctx + `}`, "ContractNegotiation"},
		{"white space", " {\n " + ctx + " , \"@type\" : \"T\" , \"n\" : 12 , \"b\" : true }\n", "T"},
		{"scalar last", `{` + ctx + `,"@type":"T","n":12}`, "T"},
		{"nested values", `{"a":{"@type":"X","b":[1,{"c":"]}"}]},` + ctx + `,"s":"q\"}","@type":"T"}`, "T"},
		{"two contexts", `{"@context":["x","` + Context + `"],"@type":"T"}`, "T"},
		{"no context", `{"@type":"T"}`, ""},
		{"foreign context", `{"@context":["x"],"@type":"T"}`, ""},
		{"empty context", `{"@context":[],"@type":"T"}`, ""},
		{"context string", `{"@context":"` + Context + `","@type":"T"}`, ""},
		{"no type", `{` + ctx + `}`, ""},
		{"empty type", `{` + ctx + `,"@type":""}`, ""},
		{"type twice", `{` + ctx + `,"@type":"T","@type":"U"}`, ""},
		{"context twice", `{` + ctx + `,"@context":["x"],"@type":"T"}`, ""},
		{"type in other case", `{` + ctx + `,"@type":"T","@TYPE":"U"}`, ""},
		{"escaped key", `{` + ctx + `,"@typ\u0065":"T"}`, ""},
		{"escaped type", `{` + ctx + `,"@type":"\u0054"}`, ""},
		{"null in context", `{"@context":["` + Context + `",null],"@type":"T"}`, ""},
		{"array", `[` + ctx + `]`, ""},
		{"empty object", `{}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := quickHeader([]byte(tc.body))
			if !ok {
				got = ""
			}
			if got != tc.want {
				t.Fatalf("quickHeader(%s) = %q, %v; want %q", tc.body, got, ok, tc.want)
			}
			if ok {
				if slow, sok := slowHeader([]byte(tc.body)); !sok || slow != got {
					t.Fatalf("encoding/json reads %s as %q, %v; quickHeader as %q", tc.body, slow, sok, got)
				}
			}
		})
	}
}

// FuzzQuickHeader: for well-formed JSON, quickHeader either declines or
// finds what encoding/json finds.
func FuzzQuickHeader(f *testing.F) {
	ctx := `"@context":["` + Context + `"]`
	f.Add([]byte(`{` + ctx + `,"@type":"ContractNegotiation","state":"AGREED"}`))
	f.Add([]byte(`{"a":{"@type":"X","b":[1,{"c":"]}"}]},` + ctx + `,"s":"q\"}","@type":"T","n":-1.5e3,"z":null}`))
	f.Add([]byte(`{"@Context":["` + Context + `"],"@type":"T"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, ok := quickHeader(body)
		if !ok || !json.Valid(body) {
			return
		}
		if slow, sok := slowHeader(body); !sok || slow != typ {
			t.Fatalf("encoding/json reads %q as %q, %v; quickHeader as %q", body, slow, sok, typ)
		}
	})
}

// The agreement message of BenchmarkEncodeAgreementMessage read back:
// Decode, and the two encoding/json passes it takes otherwise.
func BenchmarkDecodeAgreementMessage(b *testing.B) {
	rule := `{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":"research"},{"leftOperand":"mim:role","operator":"isAnyOf","rightOperand":["researcher","agency"]}]}`
	agreement := `{"@context":["http://www.w3.org/ns/odrl.jsonld",{"dct":"http://purl.org/dc/terms/","mim":"https://w3id.org/mimnode/policy/"}],"@id":"urn:uuid:03fd9cf5","@type":"Agreement","assignee":"12D3KooWS2x9fFmV8YHU1A4xqhLe1Bk57x9kNJuHCsrhuYKs4MaM","assigner":"12D3KooWLqMFH2rpDsMeZNGa9cdmPt8P5Q6MkQNLaVRdWfXyU8Gs","permission":[` +
		rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `,` + rule + `],"target":"urn:ngsi-ld:Dataset:noise-levels-2025"}`
	body, err := Encode(&ContractAgreementMessage{Pids: Pids{ProviderPid: "urn:uuid:a72bba25-5d82-4392-9c76-d3e276b0b065", ConsumerPid: "urn:uuid:a71f494d-734a-45dd-8a9e-1ea6152a7537"},
		Seq: Seq{N: 1}, Agreement: json.RawMessage(agreement)})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func([]byte) (Message, error)
	}{{"Decode", Decode}, {"decodeSlow", decodeSlow}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
