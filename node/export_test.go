package node

import "github.com/mimnode/mimnode/catalog"

// Described is n.described, which the node's transfers check received
// entities against (transfer.Options.Described).
func (n *Node) Described(provider, dataset string) (catalog.Dataset, bool) {
	return n.described(provider, dataset)
}
