package federation

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mimnode/mimnode/node/store"
)

// The peerstore lives in memory. After a power cut in which every node of
// a federation restarted, a node knew only the bootstrap addresses in the
// genesis document, which may be gone (a founder that moved, or listened
// on a port picked at random), and the federation stayed split until
// someone dialled by hand. So a node keeps the listen addresses each
// member announced when identify last completed with it, and dials them
// when it starts.

// addrsKey holds member p's last announced listen addresses.
func addrsKey(p peer.ID) []byte {
	return store.Key(store.PrefixMeta, "peer-addrs", p.String())
}

// keptAddrsTTL is how long the peerstore keeps remembered addresses: the
// reconnect loop dials them long before.
var keptAddrsTTL = peerstore.AddressTTL

// rememberAddrs stores the listen addresses of members as identify learns
// them, until ctx ends.
func (s *Service) rememberAddrs(ctx context.Context) error {
	sub, err := s.o.Host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return err
	}
	s.spawn(func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sub.Out():
				e := ev.(event.EvtPeerIdentificationCompleted)
				if len(e.ListenAddrs) == 0 || len(s.SharedFederations(e.Peer)) == 0 {
					continue
				}
				if err := s.keepAddrs(e.Peer, e.ListenAddrs); err != nil {
					s.log.Debug("keeping a member's addresses", "peer", e.Peer, "err", err)
				}
			}
		}
	})
	return nil
}

// keepAddrs stores addrs for p unless they are what is stored already.
func (s *Service) keepAddrs(p peer.ID, addrs []ma.Multiaddr) error {
	list := make([]string, 0, len(addrs))
	for _, a := range addrs {
		list = append(list, a.String())
	}
	slices.Sort(list)
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if old, err := s.getAddrs(p); err == nil && slices.Equal(old, list) {
		return nil
	}
	return s.o.Store.UpdateNoSync(func(tx *store.Txn) error { return tx.Set(addrsKey(p), b) })
}

func (s *Service) getAddrs(p peer.ID) ([]string, error) {
	var list []string
	err := s.o.Store.View(func(tx *store.Txn) error {
		b, err := tx.Get(addrsKey(p))
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &list)
	})
	return list, err
}

// recallAddrs puts the remembered addresses of every member into the
// peerstore, for the reconnect loop to dial.
func (s *Service) recallAddrs() {
	for _, p := range s.memberPeers() {
		list, err := s.getAddrs(p)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			s.log.Debug("reading a member's addresses", "peer", p, "err", err)
			continue
		}
		var addrs []ma.Multiaddr
		for _, a := range list {
			if m, err := ma.NewMultiaddr(a); err == nil {
				addrs = append(addrs, m)
			}
		}
		s.o.Host.Peerstore().AddAddrs(p, addrs, keptAddrsTTL)
	}
}
