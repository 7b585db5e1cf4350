package transfer_test

import (
	"bufio"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
)

// revocations keeps, as contract.Service does, the revocations this node
// made as a provider apart from those its providers told it of.
type revocations struct {
	mu   sync.Mutex
	made map[string]contract.Revocation // guarded by mu
	told map[string]contract.Revocation // guarded by mu
}

func (r *revocations) Revoked(id string) (contract.Revocation, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rv, ok := r.made[id]
	return rv, ok, nil
}

func (r *revocations) ToldRevoked(id string) (contract.Revocation, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rv, ok := r.told[id]
	return rv, ok, nil
}

func (r *revocations) Told(id string, from libp2ppeer.ID, reasons []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.told[id] = contract.Revocation{Agreement: id, Time: time.Now(), Told: true}
	return nil
}

// TestReceivedDataIsPassedOnOnlyWhileAgreed: a consumer received entities
// under an agreement that permits distribute outright, valid for a day,
// and serves them in a dataset of its own. Once the provider revokes the
// agreement, or once the day is over, its next version leaves them out,
// built whole.
func TestReceivedDataIsPassedOnOnlyWhileAgreed(t *testing.T) {
	for _, end := range []string{"revoked", "expired"} {
		t.Run(end, func(t *testing.T) {
			var skew atomic.Int64 // the consumer's clock runs ahead by this
			rv := &revocations{made: map[string]contract.Revocation{}, told: map[string]contract.Revocation{}}
			prov, cons := pairTuned(t, func(o *transfer.Options) {
				o.Revocations = rv
				o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			})
			upsert(t, prov.n, entities(t, 30, 0))
			until := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
			a, b := agreementFile(t, prov, cons, `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:uuid:offer-use",
				"target": "`+datasetID+`", "assigner": "`+prov.id()+`", "permission": [{"action": "use"}]}`,
				func(a *policy.Agreement) { a.NotAfter = until })
			prov.shelf.put(a.ID, b)
			cons.shelf.put(a.ID, b)
			if _, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{}); err != nil {
				t.Fatal(err)
			}
			if p, ok, err := cons.svc.ProvenanceOf(testID(0)); err != nil || !ok || !p.Distribute || !p.Until.Equal(until) {
				t.Fatalf("provenance %+v (%v, %v), want it passable until %s", p, ok, err, until)
			}
			if got := transfer.ManifestEntities(cons.svc, buildResold(t, cons)); got != 30 {
				t.Fatalf("consumer's own version holds %d received entities, want 30", got)
			}
			switch end {
			case "revoked":
				tellRevoked(t, prov, cons, a.ID)
			case "expired":
				skew.Store(int64(25 * time.Hour))
			}
			if got := transfer.ManifestEntities(cons.svc, buildResold(t, cons)); got != 0 {
				t.Errorf("after the agreement was %s, the consumer's own version holds %d received entities, want 0", end, got)
			}
			if whole, _ := transfer.LastBuild(cons.svc, resoldID); !whole {
				t.Errorf("the build after the agreement was %s started from the version before", end)
			}
			if end == "revoked" {
				// The provider says it again, and an entity of the
				// consumer's own changes: the next build starts from the
				// version before (one that holds that entity, as an
				// empty one is always built whole).
				own := entities(t, 1, 0)
				own[0]["id"] = "urn:ngsi-ld:AirQualityObserved:own-1"
				upsert(t, cons.n, own)
				buildResold(t, cons)
				tellRevoked(t, prov, cons, a.ID)
				own = entities(t, 1, 5) // a new value
				own[0]["id"] = "urn:ngsi-ld:AirQualityObserved:own-1"
				upsert(t, cons.n, own)
				buildResold(t, cons)
				if whole, _ := transfer.LastBuild(cons.svc, resoldID); whole {
					t.Errorf("a repeated revocation notice made the next build a whole one")
				}
			}
		})
	}
}

// tellRevoked sends cons prov's notice that it revoked agreement, as
// contract.Service does, and checks that cons took it.
func tellRevoked(t *testing.T, prov, cons *peer, agreement string) {
	t.Helper()
	st, err := prov.n.Host().NewStream(ctx, cons.n.ID(), p2pproto.ID(protocol.TransferProtocol))
	if err != nil {
		t.Fatal(err)
	}
	notice, _ := json.Marshal(transfer.DataRequest{Type: transfer.TypeRevocation, Agreement: agreement, Reasons: []string{"the study ended"}})
	if err := protocol.WriteFrame(st, notice); err != nil {
		t.Fatal(err)
	}
	answer, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxTransferFrame)
	st.Reset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.DecodeAnswer(answer); err != nil {
		t.Fatalf("the consumer refused its provider's revocation notice: %v", err)
	}
}
