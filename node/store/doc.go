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
// Writes are durable when Update (or Batch.Flush) returns: what the API
// acknowledges survives a crash of the process or the machine. An Update
// whose function wrote nothing returns without a sync. Badger
// itself writes without syncing; DB syncs for it (sync.go), and a write
// returns once a sync that started after its commit has finished, so
// writers committing at the same time share one sync (group commit).
//
// A sync writes to disk, with fdatasync (or msync, which on Linux does the
// same for a shared mapping): the newest memtable log (badger's
// write-ahead log, which holds every key and every value under 32 KiB);
// each older memtable log once after it stopped being written (until
// badger flushed it into a table, which badger syncs itself); the current
// value-log file, only when a value of 32 KiB or more was committed since
// the value log was last synced (badger syncs a full value-log file
// before it starts the next one); and the directory when a log file
// appeared. Together these hold every committed write that is not yet in
// a synced table, so a write that returned survives a crash of the machine.
//
// Batch.FlushNoSync commits without waiting for the disk, for bulk
// writers that establish durability themselves with DB.Sync (transfer
// blocks): the writes are visible at once and survive a crash of the
// process, but a crash of the machine before the next sync may lose them,
// or part of them. Badger's logs reach the disk in no fixed order without
// a sync, so a key may survive while its value in the value log (values
// of 32 KiB and more) did not: it then reads as an error (badger checks
// the value's checksum) or, once later writes reused the place, as another
// value with a valid checksum. The same holds for the write of an Update
// or Flush that had not returned when the machine crashed. A caller that
// writes without a sync therefore checks such values when it reads them
// (transfer blocks are checked against their CIDs) or reports them only
// after a Sync.
//
// Large values written once and read whole (transfer blocks) can live
// outside badger, in DB.Blobs (blobs.go): appended to segment files
// <dir>.blobs/seg/<n>.blk and named in <n>.idx, written without a sync and
// made durable by Blobs.Sync, an fdatasync of the segments written since
// the last (files <dir>.blobs/<shard>/<name> of earlier nodes are still
// read). An in-memory store has none.
//
// Update retries a transaction that lost a write conflict, so callers write
// their transaction as a pure function of what it reads. Large imports use
// Batch, which splits the work into as many transactions as badger needs.
package store
