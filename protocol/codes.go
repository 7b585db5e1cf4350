package protocol

import "fmt"

// Code is a protocol error code. It is what the node puts in the "code"
// property of every ContractNegotiationError, ContractNegotiationTermination
// Message, TransferError, TransferSuspensionMessage and
// TransferTerminationMessage it sends. All codes come from the one table
// below (codeTable) so that both sides, the docs and the CLI agree on them.
type Code string

// The codes. The numeric part follows HTTP status classes so that the DSP
// HTTPS binding could reuse them as status codes: 4xx is the peer's fault,
// 5xx ours, 6xx a decision (not a fault at all).
const (
	// CodeMalformedMessage: the frame body is not JSON, or not a DSP
	// message this protocol carries, or a required property is missing.
	CodeMalformedMessage Code = "MIM-400"
	// CodeFrameTooLarge: the announced frame length exceeds the cap.
	CodeFrameTooLarge Code = "MIM-413"
	// CodeWrongParty: the sender is not the counter-party of this
	// negotiation or process, or sent a message only the other role sends.
	CodeWrongParty Code = "MIM-403"
	// CodeUnknownNegotiation: no negotiation with that pid exists here, or
	// the other pid in the message does not match it.
	CodeUnknownNegotiation Code = "MIM-404"
	// CodeUnknownTransfer: no transfer process with that pid exists here.
	CodeUnknownTransfer Code = "MIM-405"
	// CodeInvalidTransition: the message is valid but not allowed in the
	// current state (DSP state machine).
	CodeInvalidTransition Code = "MIM-409"
	// CodeConflictingResend: a message reuses a pid or an earlier message's
	// slot with different content.
	CodeConflictingResend Code = "MIM-410"
	// CodeTimeout: the peer did not answer within the configured timeout
	// after retries; used as the reason of a local termination.
	CodeTimeout Code = "MIM-408"
	// CodeBusy: the node cannot take the message now; retry later.
	CodeBusy Code = "MIM-429"
	// CodeInternal: the node failed to process the message (e.g. storage
	// error); retry later.
	CodeInternal Code = "MIM-500"
	// CodeRefused: the provider's policy evaluation denied the request; the
	// reasons list each failed constraint.
	CodeRefused Code = "MIM-601"
	// CodeRejected: a person rejected the request (manual approval).
	CodeRejected Code = "MIM-602"
	// CodeCancelled: a party ended the negotiation or transfer of its own
	// will (user request, shutdown of the dataset).
	CodeCancelled Code = "MIM-603"
	// CodeInvalidAgreement: an agreement's signature, parties or contents
	// did not verify.
	CodeInvalidAgreement Code = "MIM-604"
	// CodeAgreementNotValid: the agreement does not allow this transfer now
	// (expired, count exceeded, wrong consumer).
	CodeAgreementNotValid Code = "MIM-605"
	// CodePeerRejected: the peer answered one of our messages with a
	// non-retryable error; used as the reason of the resulting local
	// termination.
	CodePeerRejected Code = "MIM-606"
	// CodeAgreementRevoked: the provider revoked the agreement; it allows
	// no transfer any more. Only the agreement's provider sends it, and
	// its consumer records the revocation.
	CodeAgreementRevoked Code = "MIM-607"
)

// CodeInfo describes one code.
type CodeInfo struct {
	Code Code
	// Name is a short snake_case name for logs and JSON output.
	Name string
	// Description says what the code means, for docs and CLI output.
	Description string
	// Retryable codes mean "not now": the sender should resend the same
	// message later. Every other code is final for that message.
	Retryable bool
}

// codeTable is the one table of protocol error codes. docs/protocol.md
// lists the same rows; TestCodeTableMatchesDocs keeps them in step.
var codeTable = []CodeInfo{
	{CodeMalformedMessage, "malformed_message", "the body is not a valid DSP message of this protocol", false},
	{CodeWrongParty, "wrong_party", "the sender is not the counter-party, or sent a message only the other role sends", false},
	{CodeUnknownNegotiation, "unknown_negotiation", "no negotiation with this pid, or the other pid does not match", false},
	{CodeUnknownTransfer, "unknown_transfer", "no transfer process with this pid, or the other pid does not match", false},
	{CodeTimeout, "timeout", "the peer did not answer in time after retries", false},
	{CodeInvalidTransition, "invalid_transition", "the message is not allowed in the current state", false},
	{CodeConflictingResend, "conflicting_resend", "a pid or message was reused with different content", false},
	{CodeFrameTooLarge, "frame_too_large", "the frame exceeds the size cap of the protocol", false},
	{CodeBusy, "busy", "the node cannot take the message now; resend later", true},
	{CodeInternal, "internal", "the node failed to process the message; resend later", true},
	{CodeRefused, "refused", "the provider's policy denied the request; reasons name each failed constraint", false},
	{CodeRejected, "rejected", "a person rejected the request", false},
	{CodeCancelled, "cancelled", "a party ended the process of its own will", false},
	{CodeInvalidAgreement, "invalid_agreement", "the agreement's signatures, parties or contents did not verify", false},
	{CodeAgreementNotValid, "agreement_not_valid", "the agreement does not allow this now (expired, count exceeded, wrong consumer)", false},
	{CodePeerRejected, "peer_rejected", "the peer refused one of our messages with a final error", false},
	{CodeAgreementRevoked, "agreement_revoked", "the provider revoked the agreement: it allows no transfer any more", false},
}

// Codes returns a copy of the code table, in documentation order.
func Codes() []CodeInfo {
	return append([]CodeInfo(nil), codeTable...)
}

// Lookup returns the table row for c. Codes not in the table (sent by a
// different implementation) are reported as not found; callers treat them
// as final, not retryable.
func Lookup(c Code) (CodeInfo, bool) {
	for _, info := range codeTable {
		if info.Code == c {
			return info, true
		}
	}
	return CodeInfo{}, false
}

// Retryable reports whether a peer answering with c means "send the same
// message again later".
func (c Code) Retryable() bool {
	info, ok := Lookup(c)
	return ok && info.Retryable
}

// String returns the code and its name, e.g. "MIM-409 invalid_transition".
func (c Code) String() string {
	if info, ok := Lookup(c); ok {
		return string(c) + " " + info.Name
	}
	return string(c)
}

// Error is a protocol error: a code from the table and human-readable
// reasons. State machines return it for a bad peer message; the driver
// turns it into the protocol's error message (ContractNegotiationError,
// TransferError) with the same code and reasons.
type Error struct {
	Code    Code
	Reasons []string
	// Err is the sentinel the error wraps (e.g. negotiation's
	// ErrInvalidTransition), for errors.Is.
	Err error
}

func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	for _, r := range e.Reasons {
		msg += ": " + r
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with one reason.
func Errorf(code Code, sentinel error, format string, args ...any) *Error {
	return &Error{Code: code, Err: sentinel, Reasons: []string{fmt.Sprintf(format, args...)}}
}
