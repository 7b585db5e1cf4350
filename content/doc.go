// Package content makes content-addressed versions of datasets (DESIGN.md,
// Catalogue and Transfer). A version's data is cut into blocks, each named
// by its CID (CIDv1, raw codec, BLAKE3-256; blocks built before were named
// with SHA2-256 and still verify); a Manifest lists the blocks in order,
// and the manifest's own CID (CIDv1, dag-json codec, SHA2-256 of its
// canonical DAG-JSON bytes) is the version id. The same data always gives
// the same blocks and the same version id, so any party can check what it
// received and later prove which version an agreement or a KPI used.
//
// The package is pure: it reads from an io.Reader the caller provides and
// hands blocks to a callback; it stores nothing, reads no clock and starts
// no goroutines.
//
// # A version of an NGSI-LD view
//
// The node iterates the view's entities in id order (byte order) and
// passes each one's canonical JSON (compact, one line):
//
//	b := content.NewEntityBuilder(func(blk content.Block) error {
//		return store.PutBlock(blk.CID, blk.Data) // the node's badger
//	})
//	for each entity { if err := b.Add(id, json); err != nil { ... } } // ErrInput: out of order, too large, not one line
//	m, err := b.Finish()
//	enc, err := m.Encode()   // store the manifest bytes too
//	version, err := m.CID()  // Dataset.Version
//
// Block boundaries depend on the entities only (a hash of the id weighed
// by the entity's size), so changing one entity changes one block and
// inserting or deleting one changes a block or two: a consumer holding the
// previous version fetches only Diff(old, new). Blocks are about
// TargetBlockSize, never above MaxBlockSize.
//
// # A version of a file
//
//	m, err := content.ChunkFile(f, emit) // FastCDC content-defined chunks
//
// # A version of a dataset with files
//
// A dataset whose data includes files (mimnode dataset add-file) has one
// KindDataset manifest: the blocks of its view's entities, if it has a
// view, then the blocks of each file in name order, unchanged from their
// own ChunkFile manifests. Parts says which run of blocks is which, with
// each file's name, media type, size and SHA2-256:
//
//	m, err := content.NewDatasetManifest(&entities, []content.FilePart{{Name: "stations.csv", MediaType: "text/csv", SHA256: sum, File: fileManifest}})
//	for i, p := range m.Parts { blocks := m.PartBlocks(i); ... } // a file is its blocks' bytes in order
//
// # Receiving
//
// A consumer gets the manifest bytes for the version id it was promised,
// then the blocks, and checks each before using it:
//
//	m, err := content.VerifyManifest(versionCID, manifestBytes) // ErrBlockMismatch, ErrMalformedManifest
//	for _, ref := range content.Diff(have, m) {
//		data := fetch(ref.CID)
//		if err := content.VerifyBlock(ref.CID, data); err != nil { ... } // ErrBlockMismatch: refetch elsewhere
//	}
//
// In an entities manifest each BlockRef also says how many entities the
// block holds and its first and last entity id.
//
// ManifestFormat ("mimnode-manifest/2") covers the chunking rules and the
// block hash as well as the encoding: changing any would change version
// ids, so it needs a new format name. A manifest of SHA2-256 blocks only,
// as earlier nodes built them, stays "mimnode-manifest/1" (ManifestFormatV1).
package content
