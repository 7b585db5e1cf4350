package policy

import "errors"

// Sentinel errors. Functions wrap them with %w and say what they were doing, so
// callers test with errors.Is and show the whole message to people.
var (
	// ErrSyntax means the input is not a well-formed ODRL policy document: not
	// JSON, a property given twice, a value of the wrong JSON type, a rule without
	// an action. Parse returns it; the message names the property.
	ErrSyntax = errors.New("policy: malformed ODRL document")

	// ErrNotUnderstood means the policy uses a term or feature the evaluator does
	// not implement (an unknown leftOperand, operator or action, an unparseable
	// rightOperand, a refinement). Validate returns it. Such a policy still
	// parses (so it can be shown and explained) but Evaluate always denies it.
	ErrNotUnderstood = errors.New("policy: not understood by this evaluator")

	// ErrUnknownTemplate means no template has the requested name.
	ErrUnknownTemplate = errors.New("policy: unknown template")

	// ErrTemplateParams means a template was given missing or invalid parameters.
	ErrTemplateParams = errors.New("policy: invalid template parameters")

	// ErrAgreement means an agreement is incomplete or inconsistent (missing
	// party, end before start, a policy that does not validate).
	ErrAgreement = errors.New("policy: invalid agreement")

	// ErrNotAParty means a signer's peer ID is neither the provider nor the
	// consumer named in the agreement.
	ErrNotAParty = errors.New("policy: signer is not a party to the agreement")

	// ErrMissingSignature means a signed agreement lacks the provider's or the
	// consumer's signature.
	ErrMissingSignature = errors.New("policy: agreement signature missing")

	// ErrBadSignature means a signature does not verify, or was made by a peer
	// other than the party it claims to be from.
	ErrBadSignature = errors.New("policy: agreement signature invalid")

	// ErrNotCanonical means a signed agreement file is not byte-for-byte in the
	// canonical form (RFC 8785), or contains content the policy model would not
	// keep. Accepting such files would let bytes that were never signed, or
	// that the evaluator would read differently, pass as signed.
	ErrNotCanonical = errors.New("policy: signed agreement is not in canonical form")
)
