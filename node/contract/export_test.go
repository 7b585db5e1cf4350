package contract

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// KeptStreams returns the conversation streams to p that s keeps for its
// next messages (keepIdle), oldest first.
func (s *Service) KeptStreams(p peer.ID) []network.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []network.Stream
	for _, is := range s.idle[p] {
		out = append(out, is.st)
	}
	return out
}

// ReuseAgreementID makes every agreement this process's providers make
// take id, as a careless or malicious provider's would, until the test
// ends.
func ReuseAgreementID(t interface{ Cleanup(func()) }, id string) {
	newAgreementID = func() string { return id }
	t.Cleanup(func() { newAgreementID = newPid })
}
