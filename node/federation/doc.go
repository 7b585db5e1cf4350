// Package federation holds membership documents, the connection gater,
// roles and GossipSub validators.
package federation
