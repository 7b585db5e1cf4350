// Package policy implements mimnode's usage policies (a subset of ODRL 2.2),
// their evaluator, and agreements signed by both parties (MIM3, MIM4).
//
// The point of the package is that data goes only where an agreement allows.
// Two habits of dataspace connectors are ruled out by design: a constraint
// the engine does not understand is never ignored (the policy denies, and
// says why), and an agreement is only valid with both parties' signatures.
//
// The package is pure: no I/O, no clock, no goroutines. Time comes in with
// the request.
//
// # Policies
//
// A Policy is an ODRL Set, Offer or Agreement with permissions, prohibitions
// and obligations; permissions may carry duties. Read one from ODRL JSON-LD
// (compact form, ODRL or Dataspace Protocol context) and write it back:
//
//	p, err := policy.Parse(data)      // ErrSyntax if it is not a policy at all
//	if err := policy.Validate(p); err != nil {
//		// ErrNotUnderstood: unknown leftOperand/operator/action, bad operand, ...
//		// The policy was still read; Evaluate will deny it.
//	}
//	fmt.Print(policy.Describe(p))     // the policy in words
//	out, err := policy.Marshal(p)     // ODRL JSON-LD again
//
// FindPolicies pulls every policy out of a DSP message, dataset or catalogue.
//
// Policies can also be built in code, from Atomic and Logical constraints,
// or picked by name from Templates (open-data, research-only,
// agency-internal, time-limited, personal-data, aggregate-only):
//
//	tpl, _ := policy.LookupTemplate("agency-internal")
//	offer, err := tpl.New(policy.Params{Federation: "amsterdam-region", Target: datasetID, Assigner: myPeerID})
//
// Parse, Compile and the templates precompile a policy; treat it as
// immutable afterwards (edit a Clone and Compile it).
//
// # Evaluating
//
// Evaluate decides a Request in one of three scopes:
//
//	d := policy.Evaluate(offer, policy.Request{
//		Now: now, Action: policy.ActionRead, PeerID: peer, Role: policy.RoleAgency,
//		Federations: feds, Purpose: "research",
//	}, policy.ScopeNegotiation)
//	if !d.Permit {
//		for _, r := range d.Why() { log.Print(r) } // "permission[0].constraint[1]: ... [not-satisfied]"
//	}
//
// ScopeCatalog asks whether a peer may see an offer, ScopeNegotiation whether
// it may get an agreement, ScopeTransfer whether a transfer may happen now
// given the usage so far. Each left operand is decided in the scopes that can
// know it (purpose from negotiation on, count and elapsedTime at transfer
// only, consent at transfer only); elsewhere it is deferred and does not deny
// yet. Every rule and constraint leaves a Reason with a stable Code and a
// Text; Decision.Why selects the ones that caused a deny.
//
// The semantics, in short: use includes read, distribute, aggregate, derive
// and delete; a prohibition that applies wins over any permission (ODRL
// conflict strategy "prohibit"); a permission is granted when its constraints
// hold and its duties are satisfiable; every obligation must be satisfiable;
// a value the request lacks never matches. Evaluate is cheap (under a
// microsecond for ten constraints) and allocates nothing unless the policy
// has more than 14 rules and constraints together: the Decision holds a copy
// of the request and the reasons, and makes the reasons' texts when asked.
//
// Operators compare the request's value(s) L with the right operand R:
//
//	purpose, recipient, role, federation (L is one value, or the peer's federations):
//	  eq r, isA r      r is in L             neq r       r is not in L
//	  hasPart R        all of R are in L     isAllOf R   all of R are in L
//	  isPartOf R       L is non-empty and all of L is in R
//	  isAnyOf R        some of L is in R     isNoneOf R  none of L is in R
//	spatial with named places (L = every named place containing the location):
//	  eq r, neq r as above; isPartOf R and isAnyOf R: some of L is in R;
//	  isAllOf R: all of R are in L; isNoneOf R: none of L is in R
//	spatial with a GeoJSON (Multi)Polygon: isPartOf only; boundary counts as inside
//	dateTime, elapsedTime, count, payAmount: eq, neq, lt, lteq, gt, gteq
//	  count compares Usage.Count+1 (the transfer being asked for counts);
//	  elapsedTime runs from Usage.AgreementStart, months and years by the calendar;
//	  payAmount must be in the constraint's unit when it has one.
//
// Anything else (another operator for an operand, a dateTime without a time
// zone, a fractional count, a role other than agency or researcher) is not
// understood and denies.
//
// # Agreements
//
// An Agreement names dataset, version, provider, consumer, the agreed
// policy and its validity. Its Canonical form (RFC 8785 JSON
// Canonicalization Scheme) is what both parties sign with their libp2p keys,
// through two small interfaces the node implements:
//
//	a, err := policy.NewAgreement(policy.Agreement{ID: id, Dataset: ds, Version: cid,
//		Provider: providerID, Consumer: consumerID, Policy: offer, Created: now})
//	err = a.Sign(providerSigner)   // Signer: PeerID() + Sign(msg)
//	err = a.Sign(consumerSigner)
//	file, err := a.MarshalJSON()   // canonical bytes; write them to a file
//
//	b, err := policy.ParseAgreement(file) // refuses any non-canonical byte
//	err = b.Verify(verifier)              // Verifier: checks a peer ID's signature
//	d := b.Evaluate(req)                  // consumer, validity window, transfer scope
//
// Verify needs both signatures, each by the peer named for its role, over the
// same canonical bytes; it works offline. ParseAgreement accepts only files
// exactly as MarshalJSON writes them (canonical form, the signatures member
// always present, in role order) whose terms the model keeps byte for
// byte, so no byte of a signed file can change without being noticed.
package policy
