// Package federation implements signed membership for mimnode federations:
// regional groups of agencies (and read-only researchers) with no central
// server.
//
// A federation is a chain of Documents. The genesis document (Seq 0) lists
// its creator as the only admin and member; its CID is the federation ID.
// Every later version names the CID of the one before it and needs the
// signatures of Threshold distinct admins of that previous version (k of n),
// so the document that is in force decides who may change it. Anyone holding
// the chain can verify it offline, back to the federation ID.
//
// Service runs the federations of one node:
//
//	svc, _ := federation.New(federation.Options{Host: h, Store: db, Key: k, PubSub: ps, Gater: g})
//	svc.Start(ctx)
//	info, _ := svc.Create(ctx, "Aarhus region", nil)            // this node is admin
//	tok, _, _ := svc.Change(ctx, info.ID, federation.Change{Op: "add", PeerID: p, Role: federation.RoleAgency})
//	// on the invited node:
//	other.Join(ctx, tok)
//
// Updates spread on the GossipSub topic mim/<id>/members; a node also pulls
// missed versions over /mim/federation/1.0.0 when a member connects, when a
// member appears on the topic, and periodically from a random member (anti-
// entropy), so a node that was offline catches up within seconds.
//
// The Gater admits only members of the node's federations (plus peers the
// operator explicitly dialled) after the secure handshake; a revoked member is
// disconnected as soon as a node applies the revocation. Guard enforces the
// per-protocol authorization table (Rules) on stream handlers; the catalogue
// topic validator drops announcements from anyone who is not an agency member.
// Each federation runs its own Kademlia DHT (prefix /mim/<id>; agencies in
// server mode, researchers as clients), used to find members' addresses.
package federation
