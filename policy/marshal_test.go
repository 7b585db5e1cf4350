package policy

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/gowebpki/jcs"
)

// plainMatches checks appendPlainJSON against json.Marshal: the same bytes
// or declined.
func plainMatches(t *testing.T, v any) (written bool) {
	t.Helper()
	got, ok := appendPlainJSON(nil, v)
	if !ok {
		return false
	}
	want, err := json.Marshal(v)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("appendPlainJSON(%#v) = %s; json.Marshal gives %s, %v", v, got, want, err)
	}
	return true
}

func TestAppendPlainJSONIsJSONMarshal(t *testing.T) {
	strs := []string{"", "plain", "urn:uuid:1", "mim:role", "quote\"", "back\\slash", "ctl\x00\n", "<", ">", "&", "\u2028",
		"é", "\xff", "del \x7f", "/slash", "~ }{ ]["}
	nums := []json.Number{"0", "-0", "1", "1.0", "0.1", "1e2", "1E-7", "-1.5e+300", "123456789012345678901234567890",
		"", "01", "+1", "0x10", ".5", "1.", "1e", "-", "1 ", "NaN"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 4.897070, 52.377956, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789e15,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.NaN(), 1e-10, -2.5e-300}
	rng := rand.New(rand.NewSource(8))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.Intn(10); {
		case k == 0:
			return nil
		case k == 8:
			switch rng.Intn(3) {
			case 0:
				return floats[rng.Intn(len(floats))]
			case 1:
				return rng.NormFloat64() * math.Pow(10, float64(rng.Intn(60)-30))
			}
			return []float64{floats[rng.Intn(len(floats))], floats[rng.Intn(len(floats))]}
		case k == 1:
			return rng.Intn(2) == 0
		case k == 2:
			return nums[rng.Intn(len(nums))]
		case k <= 4 || depth > 3:
			return strs[rng.Intn(len(strs))]
		case k == 5:
			l := make([]string, rng.Intn(3))
			for i := range l {
				l[i] = strs[rng.Intn(len(strs))]
			}
			return l
		case k == 6:
			l := make([]any, rng.Intn(4))
			for i := range l {
				l[i] = gen(depth + 1)
			}
			return l
		default:
			m := map[string]any{}
			for range rng.Intn(20) {
				m[strs[rng.Intn(len(strs))]+strs[rng.Intn(len(strs))]] = gen(depth + 1)
			}
			return m
		}
	}
	cases := []any{[]any(nil), []string(nil), map[string]any(nil), 3.25, json.RawMessage(`{}`), map[string]any{"b": 1.5}}
	for range 20000 {
		cases = append(cases, gen(0))
	}
	written := 0
	for _, v := range cases {
		if plainMatches(t, v) {
			written++
		}
	}
	if written < len(cases)/4 {
		t.Errorf("appendPlainJSON wrote %d of %d trees itself", written, len(cases))
	}
}

// The shipped policies are written without json.Marshal, as it would.
func TestMarshalShippedPoliciesPlain(t *testing.T) {
	files, _ := filepath.Glob("testdata/policies/*.jsonld")
	if len(files) == 0 {
		t.Fatal("no policies")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(data)
		if err != nil {
			continue
		}
		m, err := policyJSON(p)
		if err != nil {
			t.Fatal(err)
		}
		if !plainMatches(t, m) {
			t.Errorf("%s: appendPlainJSON declined", f)
		}
	}
}

// FuzzAppendPlainJSON: for any tree decodeJSON reads, appendPlainJSON
// writes what json.Marshal writes or declines.
func FuzzAppendPlainJSON(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"b":"<x>","a":[1.0,-0,1e21,null,true],"c":{"d":"e"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := decodeJSON(data)
		if err != nil {
			return
		}
		plainMatches(t, v)
	})
}

// sortedJSONMatches checks Decision.SortedJSON: the members MarshalJSON
// writes, the canonical form itself when nothing needed escaping.
func sortedJSONMatches(t *testing.T, d Decision) (canonical bool) {
	t.Helper()
	plain, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sorted, err := d.SortedJSON()
	if err != nil {
		t.Fatal(err)
	}
	want, err := jcs.Transform(plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := jcs.Transform(sorted)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("SortedJSON = %s (canonical %s, %v); MarshalJSON = %s (canonical %s)", sorted, got, err, plain, want)
	}
	return bytes.Equal(sorted, want)
}

// testDecisions are the decisions of the fuzz seeds' policies in every
// scope, and a few with texts that need escapes.
func testDecisions(t *testing.T) []Decision {
	var decisions []Decision
	for _, s := range fuzzSeeds(t) {
		p, err := Parse(s)
		if err != nil {
			continue
		}
		for sc := ScopeCatalog; sc <= ScopeTransfer; sc++ {
			decisions = append(decisions, Evaluate(p, baseReq(), sc))
		}
	}
	req := baseReq()
	req.Role = RoleResearcher
	decisions = append(decisions,
		Evaluate(onePermission(Atomic(LeftRole, OpEq, Lit(RoleAgency))), req, ScopeCatalog),
		Evaluate(onePermission(Atomic(LeftRole, OpEq, Lit("a<b & \"c\" é"))), req, ScopeNegotiation),
		Decision{Permit: true, Scope: ScopeTransfer, Action: ActionUse})
	return decisions
}

func TestDecisionSortedJSON(t *testing.T) {
	decisions := testDecisions(t)
	canonical := 0
	for _, d := range decisions {
		if sortedJSONMatches(t, d) {
			canonical++
		}
	}
	if canonical < len(decisions)/2 {
		t.Errorf("SortedJSON wrote %d of %d decisions in canonical form", canonical, len(decisions))
	}
}

// TestDecisionJSONForms: JSONForms returns MarshalJSON's and SortedJSON's
// bytes, for decisions with plain texts and others.
func TestDecisionJSONForms(t *testing.T) {
	decisions := append(testDecisions(t), Decision{Scope: ScopeCatalog, Action: Action("<x>")})
	for _, d := range decisions {
		api, sorted, err := d.JSONForms()
		wantAPI, err1 := d.MarshalJSON()
		wantSorted, err2 := d.SortedJSON()
		if err != nil || err1 != nil || err2 != nil {
			t.Fatalf("JSONForms: %v; MarshalJSON: %v; SortedJSON: %v", err, err1, err2)
		}
		if !bytes.Equal(api, wantAPI) || !bytes.Equal(sorted, wantSorted) {
			t.Fatalf("JSONForms =\n%s\n%s\nwant\n%s\n%s", api, sorted, wantAPI, wantSorted)
		}
		// Appending to one form leaves the other as it is.
		before := string(sorted)
		_ = append(api, "xxxxxxxx"...)
		if string(sorted) != before {
			t.Fatalf("appending to the API form changed the sorted form: %s", sorted)
		}
	}
}
