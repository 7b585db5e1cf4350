// Package negotiation is the Dataspace Protocol (DSP 2025-1) contract
// negotiation state machine, for both roles, with no network, clock,
// goroutine or database: a pure value the node's driver feeds and drains,
// in the style of etcd's raft (Step, Ready, Advance).
//
// # States
//
// A negotiation goes REQUESTED, then OFFERED/REQUESTED (counter-offers
// either way) or straight to AGREED, then ACCEPTED (if the consumer
// accepted an offer), AGREED, VERIFIED, FINALIZED; either side may go to
// TERMINATED from any of those. INITIAL is this package's name for "nothing
// sent or received yet". docs/protocol.md has the full tables.
//
// # Inputs
//
// Everything that happens is a Msg given to Step: a DSP message from the
// peer (MsgReceive), a tick of the driver's clock (MsgTick), or a local
// decision the state machine cannot make itself because it evaluates no
// policy and signs nothing:
//
//   - consumer: MsgRequest to start, MsgAccept or MsgCounter on an offer,
//     MsgVerify once the driver checked and countersigned the agreement;
//   - provider: MsgDecide with the policy's verdict (Agree with the signed
//     agreement, CounterOffer, Refuse with reasons, or Queue for manual
//     approval), MsgFinalize once the consumer's countersignature checked;
//   - both: MsgTerminate.
//
// Offers and agreements are opaque json.RawMessage (ODRL from package
// policy). A bad message from the peer (wrong state, wrong party, wrong
// pids) is answered with a ContractNegotiationError whose code comes from
// protocol's table, and changes nothing. A message the peer resends gets
// the answer it got the first time.
//
// # The driver's duties, in order
//
// For a new negotiation the consumer driver calls NewConsumer and steps
// MsgRequest; the provider driver, on a first ContractRequestMessage (see
// Route), calls NewProvider and steps the message in. Then, after every
// Step:
//
//  1. rd := n.Ready();
//  2. if rd.MustPersist, store n.Marshal() durably, with rd.Transitions
//     appended to the audit log, before anything below leaves the node;
//  3. write rd.Reply on the stream the received message came on;
//  4. send each of rd.Messages to the peer on a new stream; step the
//     peer's answer back in as a MsgReceive from the peer (an answer is
//     never answered);
//  5. n.Advance();
//  6. act on rd.Todo (evaluate the policy, ask a person, verify and sign),
//     stepping the outcome in as the matching Msg;
//  7. step a MsgTick at n.NextTick(), with the current time.
//
// After a restart, Unmarshal every stored negotiation, act on its Todo and
// tick it: an unanswered message is resent at its NextTick, and answers
// already given are given again to resends.
//
// # Retries and timeouts
//
// An outgoing message is resent with exponential backoff until the peer
// answers it (RetryPolicy). If it stays unanswered for RetryPolicy.Timeout
// the negotiation terminates with CodeTimeout and says why; an optional
// Idle timeout also ends negotiations whose peer stops moving. The messages
// that settle the outcome (verification, FINALIZED, termination) are
// resent for the much longer FinalTimeout, because giving up on them early
// could leave one side FINALIZED and the other TERMINATED. A final error
// answer to any message terminates the negotiation (CodePeerRejected).
// Each protocol message carries a sequence number (protocol.Seq), so that a
// resend is told from a new message with the same content. TestPairConverges
// checks, over hundreds of seeded runs with heavy message loss and
// restarts, that both sides always end in the same state.
package negotiation
