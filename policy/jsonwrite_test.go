package policy

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/paulmach/orb"
)

// directMatches checks the direct writers against the trees they stand in
// for: for p in both styles, and for an agreement with p as its policy,
// the same bytes as json.Marshal and jcs give, or declined. It reports how
// many of the three were written directly.
func directMatches(t *testing.T, p Policy, a Agreement) (written int) {
	t.Helper()
	m, merr := policyJSON(p)
	if got, ok := appendPolicyDirect(nil, p, plainStyle); ok {
		written++
		if merr != nil {
			t.Fatalf("appendPolicyDirect(plain) wrote %s; policyJSON failed: %v", got, merr)
		}
		if want, err := json.Marshal(m); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendPolicyDirect(plain) = %s\njson.Marshal(policyJSON) = %s, %v", got, want, err)
		}
	}
	if got, ok := appendPolicyDirect(nil, p, canonicalStyle); ok {
		written++
		if merr != nil {
			t.Fatalf("appendPolicyDirect(canonical) wrote %s; policyJSON failed: %v", got, merr)
		}
		if want, err := canonicalSlow(m); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendPolicyDirect(canonical) = %s\njcs(policyJSON) = %s, %v", got, want, err)
		}
	}
	a.Policy = p
	if got, ok := appendTermsDirect(nil, a); ok {
		written++
		tm, err := a.termsJSON()
		if err != nil {
			t.Fatalf("appendTermsDirect wrote %s; termsJSON failed: %v", got, err)
		}
		if want, err := canonicalSlow(tm); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendTermsDirect = %s\njcs(termsJSON) = %s, %v", got, want, err)
		}
	}
	return written
}

func TestDirectWritersMatchTrees(t *testing.T) {
	strs := []string{"", "plain", "urn:uuid:1", "mim:role", "quote\"", "back\\slash", "ctl\x00\n", "<&>", "\u2028",
		"é ü 中文", "emoji 😀", "bad \xff utf8", "del \x7f", "/slash", "research", "P30D"}
	nums := []string{"0", "-0", "1", "1.0", "0.1", "1e2", "1E-7", "-1.5e+300", "123456789012345678901234567890",
		"1e400", "", "01", "+1", "0x10", ".5", "1.", "NaN"}
	types := []string{"", "", "", "@id", "number", "boolean", "xsd:dateTime", "xsd:duration", "<t>", "\xff"}
	bools := []string{"true", "false", "1", "T", "yes", ""}
	lefts := []LeftOperand{LeftPurpose, LeftRole, LeftFederation, LeftCount, LeftSpatial, "odrl:role", "x\"y", "é"}
	logics := []Logic{LogicAnd, LogicOr, LogicXone, LogicAndSequence, "AND", "@x"}
	rng := rand.New(rand.NewSource(8))
	s := func() string {
		if rng.Intn(3) > 0 {
			return strs[rng.Intn(6)]
		}
		return strs[rng.Intn(len(strs))]
	}
	opt := func() string {
		if rng.Intn(2) == 0 {
			return ""
		}
		return s()
	}
	extra := func() map[string]json.RawMessage {
		if rng.Intn(12) != 0 {
			return nil
		}
		return map[string]json.RawMessage{"remedy": json.RawMessage(`{"a":1}`)}
	}
	var constraints func(depth int) []Constraint
	constraints = func(depth int) []Constraint {
		cs := make([]Constraint, rng.Intn(3))
		for i := range cs {
			c := Constraint{ID: opt(), Extra: extra()}
			if depth < 2 && rng.Intn(4) == 0 {
				c.Logic = logics[rng.Intn(len(logics))]
				c.Constraints = constraints(depth + 1)
			} else {
				c.LeftOperand = lefts[rng.Intn(len(lefts))]
				c.Operator = Operator(s())
				c.Unit, c.DataType = opt(), opt()
				if rng.Intn(10) == 0 {
					c.RightOperand.Geometry = amsterdam
					if rng.Intn(2) == 0 {
						c.RightOperand.Geometry = orb.Point{4.9, 52.37}
					}
				}
				for range rng.Intn(4) {
					l := Literal{Type: types[rng.Intn(len(types))], Value: s()}
					switch l.Type {
					case "number":
						l.Value = nums[rng.Intn(len(nums))]
					case "boolean":
						l.Value = bools[rng.Intn(len(bools))]
					}
					c.RightOperand.Values = append(c.RightOperand.Values, l)
				}
			}
			cs[i] = c
		}
		return cs
	}
	var rules func(depth int) []Rule
	rules = func(depth int) []Rule {
		rs := make([]Rule, rng.Intn(3))
		for i := range rs {
			rs[i] = Rule{ID: opt(), Action: Action(s()), Target: opt(), Assigner: opt(), Assignee: opt(), Extra: extra()}
			if rng.Intn(2) == 0 {
				rs[i].Constraints = constraints(0)
			}
			if rng.Intn(6) == 0 {
				rs[i].Refinement = constraints(1)
			}
			if depth == 0 && rng.Intn(3) == 0 {
				rs[i].Duties = rules(1)
			}
		}
		return rs
	}
	var cases []Policy
	for _, data := range fuzzSeeds(t) {
		if p, err := Parse(data); err == nil {
			cases = append(cases, p)
		}
	}
	files, _ := filepath.Glob("testdata/policies/*.jsonld")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := Parse(data); err == nil {
			cases = append(cases, p)
		}
	}
	shipped := len(cases)
	for range 20000 {
		p := Policy{ID: opt(), Type: PolicyType(opt()), Target: opt(), Assigner: opt(), Assignee: opt(), Licence: opt(),
			Permissions: rules(0), Prohibitions: rules(0), Obligations: rules(1)}
		if rng.Intn(4) == 0 {
			p.Profile = []string{s(), s()}
		}
		if rng.Intn(12) == 0 {
			p.Extra = map[string]json.RawMessage{"timestamp": json.RawMessage(`"2026-01-01T00:00:00Z"`)}
		}
		cases = append(cases, p)
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	written := 0
	for i, p := range cases {
		a := Agreement{ID: s(), Dataset: s(), Version: opt(), Provider: s(), Consumer: s(),
			Created: base.Add(time.Duration(rng.Intn(1e6)) * time.Millisecond), NotBefore: base}
		if rng.Intn(2) == 0 {
			a.NotAfter = base.AddDate(0, 1, 0)
		}
		if i < shipped {
			a.ID, a.Dataset, a.Provider, a.Consumer = "urn:uuid:a", "urn:ds", "12D3KooWProvider", "12D3KooWConsumer"
			if n := directMatches(t, p, a); n != 3 && !hasExtra(p) {
				t.Errorf("shipped policy %d (%s): written directly %d times of 3", i, p.ID, n)
			}
			continue
		}
		written += directMatches(t, p, a)
	}
	t.Logf("direct writers wrote %d of %d generated cases", written, 3*(len(cases)-shipped))
	if n := 3 * (len(cases) - shipped); written < n/10 {
		t.Errorf("direct writers wrote %d of %d generated cases", written, n)
	}
}

// hasExtra reports whether any member of p is outside the model, which the
// direct writers leave to the trees.
func hasExtra(p Policy) bool {
	var cs func([]Constraint) bool
	cs = func(l []Constraint) bool {
		for _, c := range l {
			if len(c.Extra) > 0 || cs(c.Constraints) {
				return true
			}
		}
		return false
	}
	var rs func([]Rule) bool
	rs = func(l []Rule) bool {
		for _, r := range l {
			if len(r.Extra) > 0 || cs(r.Constraints) || cs(r.Refinement) || rs(r.Duties) {
				return true
			}
		}
		return false
	}
	return len(p.Extra) > 0 || rs(p.Permissions) || rs(p.Prohibitions) || rs(p.Obligations)
}

// FuzzDirectWriters: for any policy Parse reads, the direct writers write
// what the trees give or decline.
func FuzzDirectWriters(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	a := Agreement{ID: "urn:uuid:a", Dataset: "urn:ds <&>", Provider: "p", Consumer: "c", Created: t0, NotBefore: t0}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		directMatches(t, p, a)
	})
}
