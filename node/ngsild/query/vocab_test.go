package query

import "testing"

// An unquoted q value also matches its expansion as a vocabulary term: a
// VocabProperty holds the expanded IRI (clause 4.5.20). Quoted strings are
// compared as written.
func TestUnquotedValueMatchesExpandedTerm(t *testing.T) {
	expand := func(s string) string { return "https://example.org/vocab/" + s }
	e := MapEntity{
		expand("category"): map[string]any{"type": "VocabProperty", "vocab": "https://example.org/vocab/monument"},
		expand("name"):     map[string]any{"type": "Property", "value": "monument"},
	}
	cases := []struct {
		q    string
		want bool
	}{
		{"category==monument", true},
		{`category=="monument"`, false},
		{"category!=monument", false},
		{"category==park,monument", true},
		{"name==monument", true},
		{"category==https://example.org/vocab/monument", true},
	}
	for _, c := range cases {
		q, err := Parse(c.q, expand)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Match(e); got != c.want {
			t.Errorf("Parse(%q).Match = %v, want %v", c.q, got, c.want)
		}
	}
	q, _ := Parse("category==monument", expand)
	terms := q.IndexTerms()
	if len(terms) != 1 || len(terms[0].Values) != 2 || terms[0].Values[1] != "https://example.org/vocab/monument" {
		t.Errorf("IndexTerms = %+v, want the term and its expansion", terms)
	}
}
