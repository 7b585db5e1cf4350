package policy

import (
	"reflect"
	"testing"
)

// quickTree either declines or gives what decodeJSON gives.
func checkQuickTree(t *testing.T, data []byte) {
	t.Helper()
	got, ok := quickTree(data)
	if !ok {
		return
	}
	want, err := decodeJSON(data)
	if err != nil {
		t.Fatalf("quickTree(%q) = %#v, but decodeJSON fails: %v", data, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("quickTree(%q) = %#v, want %#v", data, got, want)
	}
}

func TestQuickTree(t *testing.T) {
	_, file := signedFile(t)
	for _, tc := range []struct {
		name string
		data string
		ok   bool
	}{
		{"agreement file", string(file), true},
		{"white space and every kind of value", " {\"a\" : [1, -0.5e+3, 2E-2, true, false, null, {}, []], \"b\":\"x\\u00e9y\"}\n", false},
		{"the same without the escape", " {\"a\" : [1, -0.5e+3, 2E-2, true, false, null, {}, []], \"b\":\"xéy\"}\n", true},
		{"duplicate key", `{"a":1,"a":2}`, false},
		{"trailing data", `{} {}`, false},
		{"leading zero", `[01]`, false},
		{"bare fraction", `[1.]`, false},
		{"invalid UTF-8", "[\"\xff\"]", false},
		{"control character", "[\"\t\"]", false},
		{"too deep", deep(maxDepth + 1), false},
		{"deep enough", deep(maxDepth), true},
		{"empty", ``, false},
		{"truncated", `{"a":`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := quickTree([]byte(tc.data)); ok != tc.ok {
				t.Errorf("quickTree(%q) ok = %v, want %v", tc.data, ok, tc.ok)
			}
			checkQuickTree(t, []byte(tc.data))
		})
	}
}

func deep(n int) string {
	s := "1"
	for range n {
		s = "[" + s + "]"
	}
	return s
}

func FuzzQuickTree(f *testing.F) {
	_, file := signedFile(&testing.T{})
	for _, s := range []string{string(file), `{"a":[1,2.5e3,"x",true,null,{}]}`, `[-0]`, `{"a":1,"a":1}`, "[\"\u2028\"]", ` 1 `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkQuickTree(t, data) })
}

// What each side of a negotiation does with the other's agreement file
// (embedded in a DSP message, so read with UnmarshalJSON).
func BenchmarkAgreementUnmarshal(b *testing.B) {
	_, file := signedFile(&testing.T{})
	for b.Loop() {
		var a Agreement
		if err := a.UnmarshalJSON(file); err != nil {
			b.Fatal(err)
		}
	}
}
