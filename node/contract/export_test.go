package contract

import (
	"sync"

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

// HoldFinalize makes this process's providers wait, as each starts to
// check a consumer's countersignature, until release is called; it
// returns a channel that gets a value as each one starts waiting.
func HoldFinalize(t interface{ Cleanup(func()) }) (started <-chan struct{}, release func()) {
	st, gate := make(chan struct{}, 16), make(chan struct{})
	testHookFinalize = func() {
		select {
		case st <- struct{}{}:
		default:
		}
		<-gate
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { release(); testHookFinalize = nil })
	return st, release
}

// Reserved says how many agreement ids s holds reserved for negotiations
// countersigning them (verifyLocked).
func Reserved(s *Service) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.countersigning)
}
