package transfer

import "github.com/mimnode/mimnode/protocol"

// Key names a transfer process on one node.
type Key struct {
	Role Role
	Pid  string
}

// Route tells the driver where an incoming message belongs. isNew is set
// for a TransferRequestMessage: the driver looks for a provider-side
// process with the same sender and consumerPid first (a resent request)
// and creates one with NewProvider only if there is none. Otherwise the
// candidates are looked up in order: every other transfer message may come
// from either side, so the provider side (by providerPid) is tried first,
// then the consumer side (by consumerPid). If none exists, answer with
// UnknownTransfer.
func Route(m protocol.Message) (candidates []Key, isNew bool) {
	if _, ok := m.(*protocol.TransferRequestMessage); ok {
		return nil, true
	}
	p := m.PIDs()
	return []Key{{Provider, p.ProviderPid}, {Consumer, p.ConsumerPid}}, false
}

// UnknownTransfer is the answer to a message for which Route found no
// process.
func UnknownTransfer(m protocol.Message) *protocol.TransferError {
	return protocol.TransferErrorFor(m, protocol.Errorf(protocol.CodeUnknownTransfer, ErrUnknownTransfer,
		"no transfer process here for providerPid %q / consumerPid %q", m.PIDs().ProviderPid, m.PIDs().ConsumerPid))
}
