package negotiation

import "github.com/mimnode/mimnode/protocol"

// Key names a negotiation on one node: a node may be the consumer in some
// negotiations and the provider in others, and keeps each under its own
// pid.
type Key struct {
	Role Role
	Pid  string
}

// Route tells the driver where an incoming message belongs. isNew is set
// for a consumer's first ContractRequestMessage (no providerPid). The
// driver then looks for a provider-side negotiation with the same sender
// and consumerPid first, because a consumer whose answer got lost resends
// its first request, and that must reach the negotiation it created (and
// get the same answer), not start a second one. Only if there is none does
// it create one with NewProvider and step the message into it. Otherwise candidates lists the keys to look up, in order: one
// for messages only one role sends, two for terminations and answers, which
// either side may send. If no candidate exists, answer with
// UnknownNegotiation.
func Route(m protocol.Message) (candidates []Key, isNew bool) {
	p := m.PIDs()
	switch SenderRole(m) {
	case Consumer:
		if req, ok := m.(*protocol.ContractRequestMessage); ok && req.ProviderPid == "" {
			return nil, true
		}
		return []Key{{Provider, p.ProviderPid}}, false
	case Provider:
		return []Key{{Consumer, p.ConsumerPid}}, false
	}
	return []Key{{Provider, p.ProviderPid}, {Consumer, p.ConsumerPid}}, false
}

// UnknownNegotiation is the answer to a message for which Route found no
// negotiation (DSP: the pid is not known).
func UnknownNegotiation(m protocol.Message) *protocol.ContractNegotiationError {
	return protocol.NegotiationErrorFor(m, protocol.Errorf(protocol.CodeUnknownNegotiation, ErrUnknownNegotiation,
		"no negotiation here for providerPid %q / consumerPid %q", m.PIDs().ProviderPid, m.PIDs().ConsumerPid))
}
