// Package catalogsvc runs the catalogue on a node: it persists the node's own
// signed records and the federated index in badger, announces changes on each
// federation's GossipSub topic, answers /mim/catalog/1.0.0 and pulls what
// changed from publishers (by sequence number, so a node that was offline
// catches up), and serves search and dataset management over the local API.
// A publisher announces its sequence number again whenever members start
// following a topic, for the change announced while GossipSub did not yet
// know of them (after the pull they made on connecting). A pull from a
// peer that is not an agency is skipped, and made once a membership change
// makes it one.
// The catalogue logic itself (records, visibility, index, search) is in the
// pure package catalog.
//
// # Resync
//
// A changes pull only brings records the publisher still shows this node,
// so a dataset the publisher later restricts to others would stay in this
// node's index. A full resync (every page of ChangesRequest{Since: 0}, then
// catalog.Index.Replace) withdraws it: on the first connection to a
// publisher after start, on every reconnection after a disconnection, and
// every Options.ResyncInterval (default 10 min, jittered by ±25%). One pull
// or resync per publisher runs at a time.
//
// # Files
//
// A dataset's data may include files (mimnode dataset add-file). The
// service takes them over the API (POST /api/v1/datasets/{id}/files,
// streamed bytes; GET .../files; DELETE .../files/{name}) and hands the
// bytes to a Files store (node/transfer keeps them as blocks and builds the
// version), then republishes the dataset with the file listed in
// Source.Files and a new version. A description published again without
// files keeps the files added before; rm-file removes one.
package catalogsvc
