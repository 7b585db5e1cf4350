package store

// Key prefixes: the whole key layout of a node's database. Each package owns
// the keys under its prefix and documents their shape next to its code.
const (
	// PrefixMeta holds node metadata (the store's format, node/format.go;
	// members' last addresses, node/federation).
	PrefixMeta = "m/"
	// PrefixNGSILD holds entities, their indexes, attribute history and the
	// JSON-LD context store (package node/ngsild).
	PrefixNGSILD = "n/"
	// PrefixFederation holds federation documents (package node/federation).
	PrefixFederation = "f/"
	// PrefixCatalog holds the node's own catalogue and the federated index.
	PrefixCatalog = "c/"
	// PrefixNegotiation holds contract negotiations and agreements.
	PrefixNegotiation = "g/"
	// PrefixTransfer holds transfer processes, manifests and blocks.
	PrefixTransfer = "t/"
	// PrefixAudit holds the hash-chained transaction log.
	PrefixAudit = "a/"
)

// Key joins a prefix and parts with '/' into one key.
func Key(prefix string, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, p...)
	}
	return b
}
