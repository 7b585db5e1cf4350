package policy

import (
	"testing"
	"time"
)

// TestUnconditional: a consumer that decides once whether it may pass
// received data on takes only a permit that holds for any purpose and
// time; one that depends on what later requests say is not enough.
func TestUnconditional(t *testing.T) {
	const head = `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Agreement", "uid": "urn:uuid:p",
		"target": "urn:mim:dataset:x", "assigner": "prov", "assignee": "cons", `
	cases := []struct {
		name, rules string
		want        bool
	}{
		{"use, unconstrained", `"permission": [{"action": "use"}]`, true},
		{"distribute, unconstrained", `"permission": [{"action": "read"}, {"action": "distribute"}]`, true},
		{"read only", `"permission": [{"action": "read"}]`, false},
		{"use for research only", `"permission": [{"action": "use", "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}]`, false},
		{"use for research, distribute outright", `"permission": [{"action": "use", "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}, {"action": "distribute"}]`, true},
		{"embargo on distribute", `"permission": [{"action": "use"}], "prohibition": [{"action": "distribute", "constraint": [{"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}}]}]`, false},
		{"use for 30 days", `"permission": [{"action": "use", "constraint": [{"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}}]}]`, false},
		{"distribute until a date", `"permission": [{"action": "read"}, {"action": "distribute", "constraint": [{"leftOperand": "dateTime", "operator": "lteq", "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]}]`, false},
		{"distribute prohibited from a date", `"permission": [{"action": "use"}], "prohibition": [{"action": "distribute", "constraint": [{"leftOperand": "dateTime", "operator": "gteq", "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]}]`, false},
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range cases {
		p, err := Parse([]byte(head + c.rules + "}"))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		d := Evaluate(p, Request{Now: start, Action: ActionDistribute, PeerID: "cons"}, ScopeCatalog)
		if got := d.Unconditional(); got != c.want {
			t.Errorf("%s: Unconditional() = %v, want %v (%s)", c.name, got, c.want, d)
		}
	}
	tl, err := LookupTemplate("time-limited")
	if err != nil {
		t.Fatal(err)
	}
	p, err := tl.New(Params{Days: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := Evaluate(p, Request{Now: start, Action: ActionDistribute, PeerID: "cons"}, ScopeCatalog); d.Unconditional() {
		t.Errorf("time-limited template: Unconditional() = true, want false (%s)", d)
	}
}
