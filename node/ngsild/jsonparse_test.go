package ngsild

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseJSON(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"object", `{"a": [1, 2.5e3, -0.1], "b": {"c": null, "d": true, "e": false}}`, true},
		{"escapes", `"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"`, true},
		{"lone-surrogate", `"\ud800x"`, true},
		{"bad-pair", `"\ud800\u0041"`, true},
		{"invalid-utf8", "\"\xff\xfe\"", true},
		{"duplicate-key", `{"a": 1, "a": 2}`, true},
		{"empty", ``, false},
		{"trailing", `{} x`, false},
		{"leading-zero", `01`, false},
		{"bare-minus", `-`, false},
		{"dot-no-digits", `1.`, false},
		{"exp-no-digits", `1e+`, false},
		{"huge-number", `1e400`, false},
		{"control-char", "\"a\x01\"", false},
		{"bad-escape", `"\x"`, false},
		{"unterminated", `{"a": [1, 2`, false},
		{"missing-colon", `{"a" 1}`, false},
		{"trailing-comma", `[1,]`, false},
		{"html-and-separators", `"<a href=\"x\">&amp;\u2028\u2029</a>"`, true},
		{"numbers", `[0, -0, 1e21, 1e20, 1e-7, 0.000001, 123456789012345678901234567890]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJSON([]byte(tt.in))
			var want any
			werr := json.Unmarshal([]byte(tt.in), &want)
			if (err == nil) != tt.ok || (werr == nil) != tt.ok {
				t.Fatalf("parseJSON(%q) err = %v, encoding/json err = %v, want ok=%v", tt.in, err, werr, tt.ok)
			}
			if tt.ok && !reflect.DeepEqual(got, want) {
				t.Errorf("parseJSON(%q) = %#v, encoding/json gives %#v", tt.in, got, want)
			}
			if tt.ok {
				enc, _ := json.Marshal(want)
				if mine := appendValue(nil, got); string(mine) != string(enc) {
					t.Errorf("appendValue = %s, encoding/json = %s", mine, enc)
				}
			}
		})
	}
}

// FuzzParseJSON checks parseJSON accepts exactly what encoding/json accepts
// and decodes it to the same values.
func FuzzParseJSON(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "smart-data-models", "*", "*.jsonld"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`"\ud83d\ude00\u00e9\\"`))
	f.Add([]byte(`[1e10, -0, 0.5E-3, true, null]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseJSON(b)
		var want any
		werr := json.Unmarshal(b, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("parseJSON err = %v, encoding/json err = %v for %q", err, werr, b)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseJSON = %#v, encoding/json = %#v for %q", got, want, b)
		}
		// The encoder used for stored entities writes what encoding/json
		// writes.
		enc, _ := json.Marshal(want)
		if mine := appendValue(nil, got); string(mine) != string(enc) {
			t.Fatalf("appendValue = %s, encoding/json = %s", mine, enc)
		}
	})
}
