package query

import (
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Clause 4.17: the entity type selection language.
func TestClause4_17TypeSelection(t *testing.T) {
	expand := func(s string) string { return "https://example.org/" + s }
	building := []string{expand("Building")}
	vehicleBuilding := []string{expand("Vehicle"), expand("Building")}
	device := []string{expand("Device")}
	cases := []struct {
		name, sel string
		types     []string
		want      bool
	}{
		{"single name", "Building", building, true},
		{"single name, other type", "Building", device, false},
		{"comma list", "Vehicle,Building", building, true},
		{"bar list", "Vehicle|Device", device, true},
		{"and needs both", "Building;Vehicle", building, false},
		{"and with both", "Building;Vehicle", vehicleBuilding, true},
		{"parenthesised and, or", "(Building;Vehicle)|Device", vehicleBuilding, true},
		{"parenthesised and, or: right side", "(Building;Vehicle)|Device", device, true},
		{"parenthesised and, or: neither", "(Building;Vehicle)|Device", building, false},
		{"and binds tighter", "Device|Building;Vehicle", building, false},
		{"and of ors", "(Building|Device);(Vehicle|Device)", vehicleBuilding, true},
		{"and of ors, one side only", "(Building|Device);(Vehicle|Device)", building, false},
		{"no types", "Building", nil, false},
	}
	for _, c := range cases {
		ts, err := ParseTypes(c.sel, expand)
		if err != nil {
			t.Fatalf("%s: ParseTypes(%q): %v", c.name, c.sel, err)
		}
		if got := ts.Match(c.types); got != c.want {
			t.Errorf("%s: ParseTypes(%q).Match(%v) = %v, want %v", c.name, c.sel, c.types, got, c.want)
		}
	}
}

func TestTypeSelectionAnyCoversEveryMatch(t *testing.T) {
	cases := []struct {
		sel    string
		any    []string
		isList bool
	}{
		{"A", []string{"A"}, true},
		{"A,B|C", []string{"A", "B", "C"}, true},
		{"A;B", []string{"A"}, false},
		{"(A;B)|C", []string{"A", "C"}, false},
		{"(A|B|C);D", []string{"D"}, false},
	}
	for _, c := range cases {
		ts, err := ParseTypes(c.sel, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := ts.Any(); !reflect.DeepEqual(got, c.any) {
			t.Errorf("ParseTypes(%q).Any() = %v, want %v", c.sel, got, c.any)
		}
		if got := ts.IsList(); got != c.isList {
			t.Errorf("ParseTypes(%q).IsList() = %v, want %v", c.sel, got, c.isList)
		}
	}
}

func TestTypeSelectionErrors(t *testing.T) {
	for _, sel := range []string{"", "(A;B", "A;;B", "A|", "(A)B", "A B", `A"`, "A)", "()", ",A"} {
		_, err := ParseTypes(sel, nil)
		var se *SyntaxError
		if !errors.As(err, &se) || !errors.Is(err, ErrSyntax) || se.Param != "type" {
			t.Errorf("ParseTypes(%q) = %v, want a type SyntaxError", sel, err)
		}
	}
}

// Clause 4.19: the scope query language, over clause 4.18 scopes.
func TestClause4_19ScopeQuery(t *testing.T) {
	norte := []string{"/Madrid/Gardens/ParqueNorte"}
	both := []string{"/Madrid/Gardens/ParqueNorte", "/CompanyA/OrgUnitB/Madrid"}
	cases := []struct {
		q      string
		scopes []string
		want   bool
	}{
		{"/Madrid/Gardens/ParqueNorte", norte, true},
		{"/Madrid/Gardens", norte, false},
		{"/Madrid/Gardens/ParqueNorte/Parterre1", norte, false},
		{"/Madrid/+/ParqueNorte", norte, true},
		{"/+/ParqueNorte", norte, false},
		{"/Madrid/#", norte, true},
		{"/Madrid/Gardens/ParqueNorte/#", norte, true},
		{"/Madrid/Districts/#", norte, false},
		{"/#", norte, true},
		{"/#", nil, false},
		{"/CompanyA/+/Madrid;/Madrid/#", both, true},
		{"/CompanyA/+/Madrid;/Madrid/#", norte, false},
		{"/CompanyA/#,/Madrid/Gardens/ParqueNorte", norte, true},
		{"/Sevilla|/Madrid/+/+", norte, true},
		{"(/Sevilla|/Madrid/#);/CompanyA/#", both, true},
	}
	for _, c := range cases {
		sq, err := ParseScopeQuery(c.q)
		if err != nil {
			t.Fatalf("ParseScopeQuery(%q): %v", c.q, err)
		}
		if got := sq.Match(c.scopes); got != c.want {
			t.Errorf("ParseScopeQuery(%q).Match(%v) = %v, want %v", c.q, c.scopes, got, c.want)
		}
	}
}

func TestScopeErrors(t *testing.T) {
	for _, q := range []string{"", "Madrid", "/Madrid//Gardens", "/Madrid/#/Gardens", "/Ma+drid", "/", "(/A", "/A;", "/A B"} {
		_, err := ParseScopeQuery(q)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Param != "scopeQ" {
			t.Errorf("ParseScopeQuery(%q) = %v, want a scopeQ SyntaxError", q, err)
		}
	}
	for _, s := range []string{"/Madrid/+", "/Madrid/#", "Madrid", "/", "/a//b", "/a b"} {
		if err := CheckScope(s); err == nil {
			t.Errorf("CheckScope(%q) = nil, want an error", s)
		}
	}
	for _, s := range []string{"/Madrid", "/Madrid/Gardens/ParqueNorte", "/CompanyA/OrgUnit-B/x_1"} {
		if err := CheckScope(s); err != nil {
			t.Errorf("CheckScope(%q) = %v, want nil", s, err)
		}
	}
}

func FuzzParseTypes(f *testing.F) {
	for _, s := range []string{"Building", "Vehicle,Building", "(Building;Vehicle)|Device", "((A|B);C)|D;E", "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseTypes(s, nil)
		if err != nil {
			return
		}
		canon := ts.String()
		again, err := ParseTypes(canon, nil)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, again.String())
		}
		// Every selected entity has one of Any's types.
		anyTypes := ts.Any()
		for _, probe := range [][]string{anyTypes, anyTypes[:1], {"x"}} {
			if ts.Match(probe) && !again.Match(probe) {
				t.Fatalf("%q and its canonical form %q disagree on %v", s, canon, probe)
			}
		}
	})
}

func FuzzParseScopeQuery(f *testing.F) {
	for _, s := range []string{"/Madrid/Gardens/ParqueNorte", "/Madrid/+/ParqueNorte", "/Madrid/#", "/#", "(/A|/B/#);/C/+", "/A,/B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sq, err := ParseScopeQuery(s)
		if err != nil {
			return
		}
		canon := sq.String()
		again, err := ParseScopeQuery(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		for _, scopes := range [][]string{{"/A"}, {"/A/B"}, {"/Madrid/Gardens/ParqueNorte"}, nil} {
			if sq.Match(scopes) != again.Match(scopes) {
				t.Fatalf("%q and %q disagree on %v", s, canon, scopes)
			}
		}
	})
}

// splitScopeMatch is the plain reading of clause 4.19, to check scopeMatch
// against.
func splitScopeMatch(pattern, scope string) bool {
	p := strings.Split(pattern[1:], "/")
	s := strings.Split(scope[1:], "/")
	for i, seg := range p {
		if seg == "#" {
			return true
		}
		if i >= len(s) || (seg != "+" && seg != s[i]) {
			return false
		}
	}
	return len(s) == len(p)
}

func FuzzScopeMatch(f *testing.F) {
	f.Add("/Madrid/+/ParqueNorte", "/Madrid/Gardens/ParqueNorte")
	f.Add("/Madrid/Gardens/ParqueNorte/#", "/Madrid/Gardens/ParqueNorte")
	f.Add("/#", "/a")
	f.Add("/a/+", "/a")
	f.Fuzz(func(t *testing.T, pattern, scope string) {
		if checkScope(pattern, true) != nil || CheckScope(scope) != nil {
			return
		}
		if got, want := scopeMatch(pattern, scope), splitScopeMatch(pattern, scope); got != want {
			t.Fatalf("scopeMatch(%q, %q) = %v, want %v", pattern, scope, got, want)
		}
	})
}

// FuzzScopeSkip checks that seeking to ScopeSkip never passes a scope the
// term matches: over a sorted set of scopes, the skipping scan finds what
// filtering every scope finds.
func FuzzScopeSkip(f *testing.F) {
	f.Add("/Madrid/+/Station007", "D00,D07,D21", "Station000,Station007,Station010")
	f.Add("/a/+/b/#", "x,b", "b,a,c")
	f.Add("/+", "a,b", "c")
	f.Fuzz(func(t *testing.T, term, level1, level2 string) {
		if checkScope(term, true) != nil {
			return
		}
		var scopes []string
		for _, a := range strings.Split(level1, ",") {
			if CheckScope("/"+a) != nil {
				continue
			}
			scopes = append(scopes, "/"+a)
			for _, b := range strings.Split(level2, ",") {
				if CheckScope("/"+a+"/"+b) == nil {
					scopes = append(scopes, "/"+a+"/"+b, "/"+a+"/"+b+"/z")
				}
			}
		}
		sort.Strings(scopes)
		var want, got []string
		for _, s := range scopes {
			if scopeMatch(term, s) {
				want = append(want, s)
			}
		}
		for i := 0; i < len(scopes); {
			s := scopes[i]
			if scopeMatch(term, s) {
				got = append(got, s)
				i++
				continue
			}
			next := ScopeSkip(term, s)
			if next <= s {
				t.Fatalf("ScopeSkip(%q, %q) = %q does not move forward", term, s, next)
			}
			i = sort.SearchStrings(scopes, next)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("term %q over %v: skipping scan found %v, want %v", term, scopes, got, want)
		}
	})
}
