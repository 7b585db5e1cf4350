package audit

import (
	"bytes"
	"testing"

	"github.com/gowebpki/jcs"
)

var canonicalCases = []struct {
	in   string
	fast bool // isCanonical takes it as it is
}{
	{`{}`, true},
	{`[]`, true},
	{`null`, true},
	{`{"a":1,"b":[true,false,null],"c":{"x":"y"}}`, true},
	{`{"cause":"provider agreed","from":"REQUESTED","pids":{"consumerPid":"urn:uuid:c","providerPid":"urn:uuid:p"},"role":"provider","to":"AGREED"}`, true},
	{`{"n":-12,"z":0,"m":123456789012345}`, false}, // keys out of order
	{`{"m":123456789012345,"n":-12,"z":0}`, true},
	{`{"m":1234567890123456}`, false}, // 16 digits
	{`{"m":-0}`, false},
	{`{"m":01}`, false},
	{`{"m":1.0}`, false},
	{`{"m":1e3}`, false},
	{`{"b":1,"a":2}`, false},
	{`{"a":1,"a":2}`, false},
	{`{ "a":1}`, false},
	{`{"a":"<\u0026>"}`, false},
	{`{"a":"é"}`, false},
	{`{"a":"tab	"}`, false},
	{`{"Z":1,"a":2}`, true},
	{`[1,]`, false},
	{`{"a":1,}`, false},
	{`truex`, false},
	{`"abc"`, true},
	{`[[[[]]]]`, true},
	{``, false},
}

// TestIsCanonical: what isCanonical takes is exactly what jcs.Transform
// leaves unchanged.
func TestIsCanonical(t *testing.T) {
	for _, tc := range canonicalCases {
		got := isCanonical([]byte(tc.in))
		if got != tc.fast {
			t.Errorf("isCanonical(%q) = %v, want %v", tc.in, got, tc.fast)
		}
		if got {
			if canon, err := jcs.Transform([]byte(tc.in)); err != nil || !bytes.Equal(canon, []byte(tc.in)) {
				t.Errorf("isCanonical(%q) but jcs.Transform gives %q, %v", tc.in, canon, err)
			}
		}
	}
}

// FuzzIsCanonical: a document isCanonical takes must be its own JCS form.
func FuzzIsCanonical(f *testing.F) {
	for _, tc := range canonicalCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isCanonical(b) {
			return
		}
		canon, err := jcs.Transform(b)
		if err != nil || !bytes.Equal(canon, b) {
			t.Fatalf("isCanonical(%q) but jcs.Transform gives %q, %v", b, canon, err)
		}
	})
}
