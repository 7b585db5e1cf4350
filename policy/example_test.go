package policy

import (
	"fmt"
	"time"
)

func ExampleParse() {
	p, err := Parse([]byte(`{
	  "@context": "http://www.w3.org/ns/odrl.jsonld",
	  "@type": "Offer", "uid": "urn:offer:1", "target": "urn:dataset:noise",
	  "permission": [{"action": "use", "constraint": [
	    {"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": ["research", "education"]},
	    {"leftOperand": "elapsedTime", "operator": "lteq", "rightOperand": {"@value": "P30D", "@type": "xsd:duration"}}]}],
	  "prohibition": [{"action": "distribute"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(Describe(p))
	// Output:
	// Offer urn:offer:1
	//   about: urn:dataset:noise
	//   granted to: any peer that satisfies the constraints
	// Permission 1: may use
	//   if all of these hold:
	//     - the purpose is one of research, education
	//     - the time since the agreement started is at most 30 days (P30D)
	// Prohibition 1: must not distribute
	// A prohibition that applies overrides every permission.
}

func ExampleEvaluate() {
	tpl, _ := LookupTemplate("agency-internal")
	offer, _ := tpl.New(Params{Federation: "amsterdam-region"})
	req := Request{
		Now:    time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC),
		Action: ActionRead, PeerID: "12D3KooWResearchLab", Role: RoleResearcher,
		Federations: []string{"amsterdam-region"},
	}
	d := Evaluate(offer, req, ScopeCatalog)
	fmt.Println("permit:", d.Permit)
	for _, r := range d.Why() {
		fmt.Println(r)
	}
	// Output:
	// permit: false
	// permission[0].constraint[0]: the recipient's role is agency: not satisfied (role: researcher) [not-satisfied]
	// permission[0]: permission to use not granted: its constraints do not hold [constraints-not-satisfied]
	// request: no permission grants read [no-permission]
}

func ExampleAgreement() {
	provider, consumer := newTestKey(1), newTestKey(2) // the node uses libp2p keys
	tpl, _ := LookupTemplate("time-limited")
	offer, _ := tpl.New(Params{Days: 7})
	a, err := NewAgreement(Agreement{
		ID: "urn:agreement:1", Dataset: "urn:dataset:noise",
		Provider: provider.PeerID(), Consumer: consumer.PeerID(),
		Policy: offer, Created: time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = a.Sign(provider)
	_ = a.Sign(consumer)
	file, _ := a.MarshalJSON()

	b, err := ParseAgreement(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verify:", b.Verify(testVerifier{}))
	day8 := Request{Now: time.Date(2026, 5, 12, 10, 0, 0, 0, time.UTC), Action: ActionRead, PeerID: consumer.PeerID()}
	fmt.Println("transfer on day 8:", b.Evaluate(day8).Permit)
	// Output:
	// verify: <nil>
	// transfer on day 8: false
}
