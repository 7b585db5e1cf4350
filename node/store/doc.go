// Package store is mimnode's durable storage: one badger/v4 database per node,
// kept under DATA/badger. It is the only package that imports badger.
//
// Every other package stores its records under its own key prefix (see the
// Prefix constants in keys.go, which are the whole key layout of a node) and
// talks to the database through *DB:
//
//	db, err := store.Open(dir, store.Options{})
//	defer db.Close()
//	err = db.Update(func(tx *store.Txn) error {
//		return tx.Set(store.Key(store.PrefixMeta, "name"), []byte("Aarhus"))
//	})
//
// Writes are durable when Update (or Batch.Flush) returns: the database is
// opened with synchronous writes, so what the API acknowledges survives a
// crash of the process or the machine.
//
// Update retries a transaction that lost a write conflict, so callers write
// their transaction as a pure function of what it reads. Large imports use
// Batch, which splits the work into as many transactions as badger needs.
package store
