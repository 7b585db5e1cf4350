// Package transfer is the Dataspace Protocol (DSP 2025-1) transfer-process
// state machine, for both roles, pure like package negotiation: a Process
// value with Step, Ready and Advance, no network, clock, goroutine or
// database. The data itself (manifests, blocks, live updates) moves outside
// it; the state machine only keeps both sides agreed on whether it may.
//
// # States
//
// REQUESTED (the consumer asked, under an agreement), STARTED (the provider
// allowed it), SUSPENDED (either side paused it; either side may resume
// with a start message), COMPLETED, TERMINATED. Termination is possible from
// every non-terminal state, by either side. A provider that refuses a
// request terminates it with the refusal's code (protocol.CodeAgreementNot
// Valid, CodeInvalidAgreement) and reasons.
//
// # Use
//
// The consumer driver calls NewConsumer and steps MsgRequest with the
// agreement id and format; the provider driver, on a TransferRequestMessage
// (see Route), calls NewProvider and steps it in, then acts on TodoDecide:
// it checks the agreement's signatures, that the peer is the agreement's
// consumer and the policy in the transfer scope at that moment, and steps
// MsgStart or MsgTerminate. While STARTED (TodoTransfer) the drivers move
// the data and step MsgComplete, MsgSuspend or MsgTerminate. The driver's
// loop is the one described in package negotiation: after each Step,
// persist if Ready().MustPersist, append Transitions to the audit log,
// write Reply, send Messages, Advance, act on Todo, tick at NextTick.
//
// Unanswered messages are resent with backoff (RetryPolicy) and given up
// after its Timeout, which terminates a live process with CodeTimeout; the
// completion message is the exception and is resent until answered. A
// resent peer message gets the answer it got first; protocol.Seq tells
// resends from new messages with the same content (a second start after a
// suspension).
package transfer
