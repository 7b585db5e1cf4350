// Package catalog describes datasets in DCAT-AP terms, signs catalogue
// records, keeps the federated index and answers searches (DESIGN.md,
// Catalogue; issue 6). It does no I/O of its own: no network, no storage,
// no clock, no goroutines. The node persists what it returns, sends what
// it encodes, and passes the time in.
//
// # Describing a dataset
//
// An agency authors a dataset description as JSON or TOML
// (testdata/air-quality.json is the example of issue 6):
//
//	d, err := catalog.ParseDataset(file, "json") // or "toml"
//	var fe *catalog.FieldError
//	if errors.As(err, &fe) {
//		// fe.Field names the field: "keywords[2]", "spatial.coordinates[0]", "sla.uptime"
//	}
//
// Every rule failure is a *FieldError wrapping ErrInvalidDataset; unknown
// fields are errors. Offers are policy template names ({"template":
// "research-only"}, with "params") or inline ODRL policies, checked with
// package policy.
//
// # The node's own catalogue
//
// A Catalog holds the latest signed Record of each dataset the node
// publishes and the catalogue sequence number. The node builds it at start
// from the records it persisted, with its libp2p key as the policy.Signer:
//
//	cat, err := catalog.NewCatalog(nodeKey, persistedOwnRecords)
//	rec, err := cat.Put(d, now)         // publish or update: a new signed record, Seq+1
//	rec, err = cat.Retire(id, now)      // withdraw: a signed retirement
//
// After each change the node must, in this order: persist rec (badger,
// synced), put it in its own Index, and announce "seq N" on the
// federation's GossipSub topic. Put with an unchanged description returns
// the current record and changes nothing (compare rec.Seq with cat.Seq()
// before to know whether to announce). To set a new version (a manifest
// CID from package content), Get the record, set Dataset.Version, Put it.
//
// A Record's signature covers the dataset and the SHA-256 digest of each
// offer, not the offers themselves, so a copy can leave out offers a peer
// may not see and still verify.
//
// # Answering peers (/mim/catalog/1.0.0)
//
// The stream handler checks the caller is a member, reads one frame
// (protocol.MaxCatalogFrame), and:
//
//	req, err := catalog.DecodeMessage(frame)   // ErrMalformedMessage / ErrUnknownMessageType: reset the stream
//	resp := cat.Answer(req, catalog.Viewer{PeerID: caller, Role: role, Federations: feds, Now: now})
//	out, err := catalog.EncodeMessage(resp)   // write it as one frame
//
// Answer applies Visible to every record: a private dataset is seen by
// nobody else, a restricted one only by its audience, and each offer only
// by peers that policy.Evaluate in the catalog scope admits (a dataset with
// no offer left is hidden). A changes answer holds at most MaxPage records;
// CatalogResponse.More says to ask again with Since = CatalogResponse.Seq.
//
// # Pulling from peers and searching
//
// On an announcement "publisher P is at seq N" above what the node holds
// for P, the node opens the stream and sends ChangesRequest{Since: held}:
//
//	msg, err := catalog.DecodeMessage(frame)
//	resp, ok := msg.(*catalog.CatalogResponse)    // or *catalog.CatalogError
//	// check resp.Participant == P, then:
//	err = resp.Verify(verifier)                   // ErrBadSignature: drop the answer, penalise the peer
//	for _, r := range append(resp.Records, resp.Retired...) {
//		if index.Put(r) { persist r }
//	}
//	held = resp.Seq                               // repeat while resp.More
//
// Index is the federated index in memory. At start the node feeds it every
// persisted record, its own included; Put keeps only the newest record per
// (publisher, dataset id) and drops retired datasets (remembering the
// retirement, so an older record arriving late does not bring a dataset
// back). Remove drops a dataset whose publisher left the federation.
// A dataset the publisher later hides from this node (made restricted or
// private) is in no answer to this node, so the node also resyncs now and
// then (on reconnecting to a publisher, say): it collects every page of
// ChangesRequest{Since: 0} and calls index.Replace(publisher, records),
// which drops whatever the publisher no longer shows it.
//
//	res, err := index.Search(catalog.Query{Text: "air quality", Type: "AirQualityObserved",
//		Theme: "ENVI", Publisher: peerOrName, License: "CC-BY-4.0", BBox: &bbox, Limit: 20})
//
// Text is ranked with BM25 over title (weight 3), keywords (2),
// description, entity type words and theme labels (1); the other fields
// are exact filters and the bbox must intersect the dataset's spatial
// coverage. ParseBBox reads the CLI's "minLon,minLat,maxLon,maxLat".
// Searches may run concurrently; Put and Remove need the write lock.
//
// # DCAT-AP for harvesters
//
// CatalogJSONLD(cat.All(), url) is the node's own catalogue as DCAT-AP
// JSON-LD for GET /api/v1/catalog.jsonld (pass the records the caller may
// see; retired ones are left out).
package catalog
