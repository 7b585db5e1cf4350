package protocol

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSONCases are documents at the edges of the JSON grammar, for the
// test and as the fuzz target's seeds.
var validJSONCases = []string{
	``, ` `, `{}`, ` { } `, `[]`, `[ ]`, `{"a":1}`, `{"a" : 1 , "b":[true,false,null]}`,
	`{"a":1,}`, `{,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `[1,]`, `[,1]`, `[1 2]`,
	`"x"`, `"`, `"\"`, `"\\"`, `"\/\b\f\n\r\t"`, `"\u00e9\uD83D\uDE00"`, `"\u00g0"`, `"\u00"`, `"\x"`,
	"\"a\x00b\"", "\"a\x1fb\"", "\"a\x7fb\"", "\"\xff\xfe\"", "\"é\"", "\"\t\"",
	`0`, `-0`, `01`, `-01`, `1.5`, `1.`, `.5`, `-`, `-a`, `1e5`, `1E+5`, `1e-05`, `1e`, `1e+`, `1.5e3`, `12345678901234567890123`,
	`true`, `false`, `null`, `tru`, `truex`, `nul`, `True`, `[true]`, `[truex]`, `[nulll]`,
	`{} {}`, `1 2`, "\n\t\r {} \n", "\v{}", "{}\x00", `{"a":{"b":{"c":[1,{"d":"e"}]}}}`, `[[[[]]]]`, `[[[[]]]`,
	`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractNegotiation","state":"AGREED"}`,
}

func TestValidJSONIsValid(t *testing.T) {
	for _, doc := range validJSONCases {
		if got, want := validJSON([]byte(doc)), json.Valid([]byte(doc)); got != want {
			t.Errorf("validJSON(%q) = %v, json.Valid says %v", doc, got, want)
		}
	}
}

// TestValidJSONDepth checks encoding/json's nesting limit: 10,000 arrays
// or objects inside one another are valid, one more is not.
func TestValidJSONDepth(t *testing.T) {
	for _, n := range []int{maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{`[`, `{"a":`} {
			close := `]`
			if open != `[` {
				close = `}`
			}
			doc := []byte(strings.Repeat(open, n) + `1` + strings.Repeat(close, n))
			if got, want := validJSON(doc), json.Valid(doc); got != want {
				t.Errorf("validJSON(%d x %s) = %v, json.Valid says %v", n, open, got, want)
			}
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, doc := range validJSONCases {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if got, want := validJSON(doc), json.Valid(doc); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", doc, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	doc := agreementMessageBody(b)
	b.Run("validJSON", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !validJSON(doc) {
				b.Fatal("not valid")
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !json.Valid(doc) {
				b.Fatal("not valid")
			}
		}
	})
}
