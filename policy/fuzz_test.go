package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// fuzzSeeds are real policies: the DSP examples' policies and every template.
func fuzzSeeds(f testing.TB) [][]byte {
	var seeds [][]byte
	paths, _ := filepath.Glob("testdata/dsp/*/*.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		ps, err := FindPolicies(data)
		if err != nil {
			f.Fatal(err)
		}
		for _, pol := range ps {
			b, _ := Marshal(pol)
			seeds = append(seeds, b)
		}
		seeds = append(seeds, data) // whole messages are not policies: Parse must say so calmly
	}
	for _, tpl := range Templates() {
		pol, err := tpl.New(Params{Federation: "fed-nl", Days: 30, Purposes: []string{"research"}, Licence: "https://creativecommons.org/licenses/by/4.0/"})
		if err != nil {
			f.Fatal(err)
		}
		b, _ := Marshal(pol)
		seeds = append(seeds, b)
	}
	area := onePermission(Atomic(LeftSpatial, OpIsPartOf, Area(amsterdam)), Logical(LogicXone, Atomic(LeftCount, OpLt, Num(3)), Atomic(LeftPayAmount, OpGteq, Num(1))))
	b, _ := Marshal(area)
	return append(seeds, b)
}

// FuzzParse: the JSON-LD policy decoder never panics, and whatever it
// accepts writes back to something it reads as the same policy.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		_ = Describe(p)
		valid := Validate(p) == nil
		b, err := Marshal(p)
		if err != nil {
			// Only hand-built literals can fail to marshal; parsed ones cannot.
			t.Fatalf("Marshal of a parsed policy: %v", err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal(p)): %v\n%s", err, b)
		}
		b2, _ := Marshal(q)
		if !bytes.Equal(b, b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
		for s := ScopeCatalog; s <= ScopeTransfer; s++ {
			d := Evaluate(p, baseReq(), s)
			if d.Permit && !valid {
				t.Fatalf("permit under a policy that does not validate")
			}
			for _, r := range d.Reasons() {
				_ = r.String()
			}
		}
	})
}

// FuzzEvaluate: for any parsed policy and any request, Evaluate does not
// panic, is deterministic, never permits what Validate rejects, and gives
// every deny a reason. The clock is an input.
func FuzzEvaluate(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, "research", "peer-A", "agency", "fed-nl", "EU", int64(0), int64(240), 2, 10.0, 4.9, 52.37, uint8(2), "use")
	}
	f.Fuzz(func(t *testing.T, data []byte, purpose, peer, role, fed, place string, nowOffset, startHoursAgo int64, count int, pay, lon, lat float64, scope uint8, action string) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		now := t0.Add(time.Duration(nowOffset%1e6) * time.Second)
		req := Request{
			Now: now, Action: Action(action), PeerID: peer, Role: role, Purpose: purpose,
			Federations: []string{fed}, Places: []string{place}, Location: orb.Point{lon, lat},
			PayAmount: pay, Currency: "EUR",
			Usage:    Usage{Count: count, AgreementStart: now.Add(-time.Duration(startHoursAgo%1e5) * time.Hour)},
			Consents: []Consent{{ID: "c", Purposes: []string{purpose}, Given: now.Add(-time.Hour)}},
		}
		s := Scope(scope % 5)
		d := Evaluate(p, req, s)
		again := Evaluate(p, req, s)
		if d.Permit != again.Permit || len(d.Reasons()) != len(again.Reasons()) {
			t.Fatalf("not deterministic")
		}
		if d.Permit && Validate(p) != nil {
			t.Fatalf("permit under a policy that does not validate")
		}
		if !d.Permit && len(d.Why()) == 0 {
			t.Fatalf("deny without a reason:\n%s", d)
		}
		for _, r := range d.Reasons() {
			if r.Text() == "" {
				t.Fatalf("empty reason text for %s", r.Code)
			}
		}
	})
}

// FuzzParseAgreement: the agreement file decoder never panics, and any file
// it accepts is exactly what MarshalJSON writes for what it read.
func FuzzParseAgreement(f *testing.F) {
	t := &testing.T{}
	a := testAgreement(t)
	_ = a.Sign(provider)
	_ = a.Sign(consumer)
	file, err := a.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file)
	one := a
	one.Signatures = one.Signatures[:1]
	b, _ := one.MarshalJSON()
	f.Add(b)
	one.Signatures = nil
	b, _ = one.MarshalJSON()
	f.Add(b)
	f.Add([]byte(`{"agreement":{},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAgreement(data)
		if err != nil {
			return
		}
		_ = a.Verify(testVerifier{})
		_ = a.Describe()
		out, err := a.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a parsed agreement: %v", err)
		}
		if !bytes.Equal(out, bytes.TrimSuffix(data, []byte("\n"))) {
			t.Fatalf("accepted bytes differ from what they mean:\n%s\n%s", data, out)
		}
		c, err := a.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if tree, err := a.appendFileTree(nil, c); err != nil || !bytes.Equal(tree, out) {
			t.Fatalf("file written directly:\n%s\nby the tree:\n%s (%v)", out, tree, err)
		}
	})
}
