// Package transfer moves a dataset's data straight from the node that holds
// it to the node that agreed to use it (DESIGN.md, Transfer; issue 9). It is
// the driver of the pure DSP transfer-process state machine in
// protocol/transfer: it persists every transition, logs it in the
// hash-chained audit log, and carries the messages, manifests, blocks and
// live changes over /mim/transfer/1.0.0.
//
// # Wiring
//
// The node builds one Service from its parts and mounts its routes:
//
//	svc, err := transfer.New(transfer.Options{
//		Host: n.Host(), Store: n.Store(), NGSILD: n.NGSILD(),
//		Agreements: n.Contracts(),      // canonical, doubly signed agreement files by id
//		Audit: n.Audit(), Members: n.Federations(),
//		Datasets: transfer.CatalogDatasets{Catalog: own}, // the publisher's catalogue
//		Signer: n.Signer(), Verifier: node.PeerIDVerifier{},
//	})
//	svc.Start(ctx)          // registers the stream handler behind federation.Guard
//	api.Mount(svc.Register) // /api/v1/transfers...
//	defer svc.Close()
//
// # Consumer: a snapshot pull
//
//	in, err := svc.Fetch(ctx, agreementID, transfer.FetchOptions{Progress: show})
//	var re *transfer.RefusedError // errors.As: the provider's code and reasons
//
// Fetch opens a stream to the provider named in the agreement and sends a
// TransferRequestMessage. The provider answers it and, on the same stream
// (a researcher accepts no streams), sends its TransferStartMessage, whose
// data address names the version (manifest CID), or a termination with the
// reasons. The consumer then fetches the manifest, verifies it against the
// version id, and fetches the blocks it does not hold yet over Streams
// parallel streams, in few long requests (a busy stream's flow-control
// window grows). Blocks travel S2-compressed unless Options.PlainBlocks
// (an NGSI-LD block to about a seventeenth), and a changed block as the
// lines that changed, compressed against the block the consumer holds
// (compress.go). Every block is checked against its CID as it arrives; one
// that does not match is fetched again (Usage.Refetched). Verified blocks
// are stored by one storer in groups of BatchBlocks blocks (at most 16
// MiB), each block in a file of its own named by its CID, synced in the
// background every few groups while the streams keep reading (blocks.go),
// and count as held once a sync covers them, so a fetch cut off by either
// side resumes, under the same transfer, without fetching a stored block
// twice; a later version fetches
// only the blocks that changed (Usage.Skipped counts the ones already
// held). The entities are then landed through ngsild.Service.Land (land.go),
// each with its Provenance (provider, dataset, agreement, version, whether
// the policy permits distribute), and are served by the consumer's NGSI-LD
// API like local data; a later version writes only the entities that
// changed and deletes those that left the dataset. Finally the
// consumer asks for a delivery receipt signed by the provider, counter-signs
// it as its acknowledgement, logs both (the provider does too) and
// completes the transfer.
//
// # Provider: checked on every request
//
// A new request is decided at once: the agreement's two signatures (read
// again from the store on every use), that this node is its provider and
// the caller its consumer, and the policy in the transfer scope now, with
// the count of transfers granted so far (kept durably; counted when
// granted). Every later data request (manifest, blocks, receipt, live feed)
// is checked again — the process must be the caller's and STARTED, the
// agreement must still verify and allow the transfer — so an agreement that
// expires mid-transfer stops the next batch. Refusals carry the protocol
// code (MIM-604 invalid agreement, MIM-605 not valid now) and one reason per
// failed constraint, and are logged on both sides. Blocks are only served
// from the version the transfer started with.
//
// A version of a dataset that is an NGSI-LD view is built from the node's
// current entities of the view's types (ngsild.Service.EachOfType, straight
// from the store), filtered by the view's q, cut into blocks by
// content.NewEntityBuilder over the entities' canonical JSON (stored form,
// keys sorted) in id order; Build keeps it until the change feed moves,
// and builds the next from it when few entities changed: only the blocks
// around the changes are cut, encoded and hashed again (rebuild.go). The
// node's version loop builds after changes, so a request finds the version
// built.
//
// # Live feed
//
//	err := svc.Live(ctx, agreementID, transfer.LiveOptions{OnChange: f})
//
// Live pulls the snapshot under a "mimnode-live" transfer, then asks for the
// changes after the feed position the version was built at. The provider
// pushes each change to the dataset's entities as it is committed
// (ngsild.Service.Follow), deletions included; the consumer lands it and stores the next
// sequence number in the same transaction, so a reconnect — after a broken
// stream or a restart of either side — resumes without gaps or duplicates.
// The provider ends the feed, saying why, when the agreement stops allowing
// it or the transfer is suspended or terminated (re-checked twice a second).
//
// # Control
//
// Suspend, Resume and Terminate step the local input into either role's
// process, persist it, and tell the peer; List, Get and Count report.
// Register mounts POST /api/v1/transfers (NDJSON Events: progress, live
// changes, then the outcome), GET /api/v1/transfers[/{id}] and POST
// /api/v1/transfers/{id}/suspend|resume|terminate.
//
// # Wire
//
// The first frame of a stream is a DSP transfer message (package protocol)
// or a data request (DataRequest, "@type" "mim:..."). Answers to data
// requests are frames whose first byte says data (0) or refusal (1,
// {code, reason}); see DecodeAnswer. Keys live under store.PrefixTransfer
// (records.go lists them).
//
// # Block files
//
// Blocks live in the store's blob directory (store.Blobs; a node keeps it
// in DATA/blocks), appended to segment files
// (seg/<n>.blk) and named in each segment's index (seg/<n>.idx); blocks
// that earlier nodes wrote as files of their own (<shard>/<cid>) are still
// read. A block is kept S2-compressed (the blob s2<cid>) when that saves
// an eighth or more, which an NGSI-LD block does by about seventeen
// times; a block that came compressed is kept as it came, and served so
// to consumers that take it compressed. Blocks kept plain (the blob
// <cid>), as earlier nodes kept them, are read as before. Durability rule: a fetched block is reported held only once a
// sync of the blob segments that started after its write has finished
// (fdatasync of the segments and indexes written since the last sync, for
// many blocks at once), and a version's or file's blocks are synced
// before its manifest is stored; a block whose bytes do not match its CID
// when read is dropped and fetched again. Fetched blocks leave the page
// cache once synced (store.Blobs.Uncache). Blocks that earlier nodes kept
// in the database (t/b/<cid>) are still read, served and counted as held;
// new blocks are not written there, except by an in-memory store, which
// has no blob directory (blockfiles.go).
package transfer
