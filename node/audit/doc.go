// Package audit is the node's hash-chained transaction log (MIM3): every
// negotiation step, agreement, refusal and (later) transfer is appended as
// an Entry, and each entry's hash covers the hash of the one before, so
// that changing, removing or inserting any stored entry is noticed by
// Verify.
//
// # Appending with the change it records
//
// An entry must be stored if and only if the state change it records is.
// The contract driver therefore appends inside the same store transaction
// as the negotiation it persists, through Log.Update (which commits
// concurrent appenders together in one synced transaction, so that they
// neither conflict on the chain's head nor wait for one fsync each):
//
//	log := audit.Open(db)
//	err := log.Update(func(tx *store.Txn) error {
//		if err := tx.Set(key, negotiationBytes); err != nil {
//			return err
//		}
//		_, err := audit.AppendTx(tx, audit.Entry{Time: now,
//			Kind: audit.KindNegotiationTransition, Subject: pid, Peer: peer, Data: data})
//		return err
//	})
//
// A step that appends several entries (a transition, a decision, a
// signature) appends them with AppendAllTx, which reads and writes the
// head once for all of them. A change that needs no state of its own uses
// Append.
//
// # Hashing
//
// An entry's hash is SHA-256 over the previous entry's hash (32 bytes,
// nothing for the first entry) followed by the RFC 8785 (JCS) canonical
// JSON of the entry without its hash field. Anyone holding the entries can
// recompute the chain; docs of the format are the Entry type.
//
// # Reading and checking
//
//	entries, err := log.List(1, 100)
//	rep, err := log.Verify()   // *BrokenError names the first bad entry
//
// The API serves both at GET /api/v1/audit?from=&limit=&verify=true and
// `mimnode audit [--verify]` prints them.
package audit
