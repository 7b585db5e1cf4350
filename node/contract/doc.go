// Package contract is the node's contract-negotiation driver (MIM3): it
// runs the pure Dataspace Protocol state machine of protocol/negotiation
// over libp2p streams (/mim/negotiation/1.0.0), in both roles, decides as
// provider from the offer's ODRL policy, signs agreements with the node's
// key, and keeps every negotiation durable in badger and every step in the
// node's hash-chained audit log.
//
// # Using it
//
// node.New builds one Service and mounts its routes; a consumer starts a
// negotiation and waits for it:
//
//	id, err := svc.Request(ctx, contract.RequestOptions{
//		Provider: providerPeer, Dataset: "urn:ngsi-ld:Dataset:noise",
//		Offer: offerAsAdvertised, Purpose: "research"})
//	info, err := svc.Wait(ctx, id)      // FINALIZED or TERMINATED
//	if info.State == negotiation.Finalized {
//		file, _ := svc.Agreement(info.AgreementID) // what `mimnode agreement verify` reads
//	} else {
//		fmt.Println(info.Code, info.Reasons)        // e.g. MIM-601 and each failed constraint
//	}
//
// The provider side needs nothing but its offers (the Offers interface):
// requests arrive on the stream handler, which the federation service's
// Guard admits only from federation members.
//
// # The provider's decision
//
// The provider evaluates its own copy of the offer the request names
// (Offers.Offer by target and @id; a request whose terms differ from it is
// refused) with policy.Evaluate in the negotiation scope, for the
// consumer's peer ID, its role (agency if it is an agency in any shared
// federation, else researcher), the shared federations and the purpose the
// consumer stated. A deny terminates the negotiation with MIM-601 and one
// reason per failed constraint, which the consumer shows. A permit makes
// and signs the agreement (policy.NewAgreement, Sign), unless the offer
// carries "mim:manualApproval": true: then the request is queued, listed
// by Pending, and a person calls Approve (the policy is evaluated again at
// that moment) or Reject (MIM-602 with the person's reason).
//
// # Agreements
//
// The agreement travels as the DSP agreement object (the ODRL Agreement)
// with the signed agreement file under "mim:signedAgreement". The consumer
// checks parties, dataset, terms and the provider's signature, countersigns
// and sends it back in its ContractAgreementVerificationMessage; the
// provider checks that the consumer countersigned exactly the terms it
// signed before FINALIZED. Both store the doubly signed file when their
// side reaches FINALIZED, under the agreement's id. Counter-offers from a
// provider are not accepted automatically: the consumer terminates with
// MIM-603.
//
// # Durability and the driver's order
//
// Per negotiation, under its own lock: Step the input; take the automatic
// local steps it calls for (decision, verification, finalization), so that
// a message and the decision it triggers cost one synced write; store the
// negotiation with the audit entries of its transitions, the decision and
// signatures, and any agreement file, in one transaction (audit.Log.Update
// with audit.AppendAllTx); only then write the answer and send the messages,
// stepping the peer's answers back in. With peers that speak
// /mim/negotiation/1.1.0 the messages a step produces go on the stream the
// message came on, or on one new stream that then carries the whole
// exchange that follows (converse, docs/protocol.md 6.8): a negotiation
// with no person in it is one stream, and the side that opened it keeps
// it for its next messages to that peer (keepIdle). Older peers get one stream per
// message (/mim/negotiation/1.0.0). Changes that only record an answer to
// our own message are stored with the next write of that negotiation, or,
// once it is finished, with the next write of any negotiation (settle.go,
// at the latest 100 ms later or at Close): lost in a crash, they only
// cause a resend the peer answers the same way. The audit log commits
// concurrent writers together (audit.Log.Update), so negotiations running
// at once share their synced writes.
// A timer per negotiation steps ticks at NextTick, which resends
// unanswered messages with backoff and, after RetryPolicy.Timeout,
// terminates with MIM-408 and a reason. Start reloads every negotiation
// with work left and carries on.
//
// # Keys
//
// Everything lives under store.PrefixNegotiation: g/n/<role>/<pid> (the
// negotiation), g/r/<consumer>/<consumer pid> (finds the negotiation a
// resent first request belongs to), g/a/<agreement id> (agreement files,
// packed like records: store.Pack; files stored plain JSON by older
// versions are read as they are) and g/o/<dataset>/<offer id> (Registry,
// the interim offers store behind POST /api/v1/offers until the catalogue
// provides offers).
//
// A negotiation's record is written at every persisted step, so it holds
// nothing twice: the state machine stores an offer or agreement once when
// its unanswered message carries it; the provider keeps a SHA-256 of the
// terms it signed, not the terms; and the doubly signed agreement file is
// kept in memory until FINALIZED stores it under g/a (after a restart it
// is made again from the negotiation's agreement); from then on the
// record keeps neither the offer nor the agreement
// (negotiation.ForgetTerms). Records written before
// still read: their terms and file are used as they are.
//
// # HTTP
//
// Register mounts POST/GET /api/v1/negotiations, GET
// /api/v1/negotiations/pending, GET /api/v1/negotiations/{id}, POST
// /api/v1/negotiations/{id}/approve and /reject, GET /api/v1/agreements
// and GET /api/v1/agreements/{id} (the file, byte for byte).
package contract
