package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
)

// TestLandingLeavesTheConsumersOwnEntities: a provider's dataset holds an
// id the consumer uses for an entity of its own (two agencies can pick
// one id; a malicious provider can pick it on purpose). The fetch lands
// the rest, says one was not landed, and leaves the consumer's entity as
// it was and its own (no provenance); a later version without the id
// does not delete it either.
func TestLandingLeavesTheConsumersOwnEntities(t *testing.T) {
	prov, cons := pair(t)
	own := entities(t, 10, 0)[5]
	own["no2"].(map[string]any)["value"] = 4242.0
	upsert(t, cons.n, []map[string]any{own})
	upsert(t, prov.n, entities(t, 10, 0))
	a := agreePermissions(t, prov, cons, `{"action": "read"}`)
	in, err := cons.svc.Fetch(ctx, a, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.NotLanded != 1 || in.Usage.Entities != 9 {
		t.Errorf("fetch landed %d and left out %d, want 9 and 1", in.Usage.Entities, in.NotLanded)
	}
	ownKept := func(when string) {
		t.Helper()
		if got := string(entityWithSysAttrs(t, cons.n, testID(5))); !strings.Contains(got, "4242") {
			t.Errorf("%s: the consumer's own entity became %s", when, got)
		}
		if p, ok, err := cons.svc.ProvenanceOf(testID(5)); err != nil || ok {
			t.Errorf("%s: the consumer's own entity has provenance %+v (%v), want none", when, p, err)
		}
	}
	ownKept("after the fetch")
	if got := len(query(t, cons.n)); got != 10 {
		t.Errorf("consumer holds %d entities, want 10 (9 received, 1 its own)", got)
	}
	deleteEntity(t, prov.n, testID(5))
	if _, err := cons.svc.Fetch(ctx, a, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	ownKept("after a version without the id")
}

// relayStream is a stream whose first bytes were read already and are
// given back by r.
type relayStream struct {
	network.Stream
	r io.Reader
}

func (s relayStream) Read(p []byte) (int, error) { return s.r.Read(p) }

// TestLiveFeedTouchesOnlyItsOwnEntities: a member M with a live feed to V
// pushes a change whose id names an entity V received from P without
// distribute, carrying a junk entity of another id, then a deletion of
// V's own entity. V passes over both: P's entity keeps P's provenance and
// stays out of V's own dataset, no junk lands, V's entity stays.
func TestLiveFeedTouchesOnlyItsOwnEntities(t *testing.T) {
	P, V, M := &peer{cfg: initDir(t, "P")}, &peer{cfg: initDir(t, "V")}, &peer{cfg: initDir(t, "M")}
	for _, p := range []*peer{P, V, M} {
		p.start(t)
	}
	federate(t, []*node.Node{P.n, V.n, M.n})
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Test air quality readings.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{P, M} {
		if _, err := p.cat.Put(ds, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	upsert(t, P.n, entities(t, 10, 0))
	aP := agreePermissions(t, P, V, `{"action": "read"}`)
	if _, err := V.svc.Fetch(ctx, aP, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	mine := entities(t, 1, 0)[0]
	mine["id"] = "urn:ngsi-ld:AirQualityObserved:v-own"
	upsert(t, V.n, []map[string]any{mine})
	if _, err := V.cat.Put(resoldDataset(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	resold := func() bool {
		for _, c := range manifestBlocks(t, V, buildResold(t, V)) {
			if b, _ := transfer.BlockBytes(V.svc, c); bytes.Contains(b, []byte(testID(3))) {
				return true
			}
		}
		return false
	}
	if resold() {
		t.Fatal("P's entity, received without distribute, is in V's own dataset before the feed")
	}
	am, b := agreementFile(t, M, V, `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:uuid:offer-m",
		"target": "`+datasetID+`", "assigner": "`+M.id()+`", "permission": [{"action": "read"}, {"action": "distribute"}]}`,
		func(a *policy.Agreement) { a.ID = "urn:uuid:agreement-M" })
	M.shelf.put(am.ID, b)
	V.shelf.put(am.ID, b)
	// M's node answers as usual but for the live request, which gets the
	// crafted changes.
	M.n.Host().SetStreamHandler(p2pproto.ID(protocol.TransferProtocol), func(st network.Stream) {
		br := bufio.NewReader(st)
		body, err := protocol.ReadFrame(br, protocol.MaxTransferFrame)
		if err != nil {
			st.Reset()
			return
		}
		var r transfer.DataRequest
		if json.Unmarshal(body, &r) == nil && r.Type == transfer.TypeLiveRequest {
			now := time.Now().UTC()
			for _, c := range []transfer.LiveChange{
				{Seq: r.From, Op: ngsild.OpUpdate, ID: testID(3),
					Entity: &ngsild.Entity{ID: "urn:ngsi-ld:Junk:1", Types: []string{"https://example.org/Junk"}, CreatedAt: now, ModifiedAt: now}},
				{Seq: r.From + 1, Op: ngsild.OpUpdate, ID: testID(4),
					Entity: &ngsild.Entity{ID: testID(4), Types: []string{"https://example.org/Junk"}, CreatedAt: now, ModifiedAt: now}},
				{Seq: r.From + 2, Op: ngsild.OpDelete, ID: "urn:ngsi-ld:AirQualityObserved:v-own"},
				// A new id whose entity the store refuses (an empty
				// instance): it must not keep M's provenance, or M
				// would own the id once V creates an entity there.
				{Seq: r.From + 3, Op: ngsild.OpUpdate, ID: "urn:ngsi-ld:AirQualityObserved:v-later",
					Entity: &ngsild.Entity{ID: "urn:ngsi-ld:AirQualityObserved:v-later", Types: []string{"https://example.org/Junk"},
						Attrs: map[string][]*ngsild.Attribute{"https://example.org/p": {nil}}, CreatedAt: now, ModifiedAt: now}},
			} {
				cb, _ := json.Marshal(c)
				if err := protocol.WriteFrame(st, append([]byte{0}, cb...)); err != nil {
					return
				}
			}
			<-time.After(10 * time.Second)
			st.Reset()
			return
		}
		var fb bytes.Buffer
		if err := protocol.WriteFrame(&fb, body); err != nil {
			st.Reset()
			return
		}
		transfer.HandleStream(M.svc, relayStream{Stream: st, r: io.MultiReader(&fb, br)})
	})
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	changes := make(chan transfer.LiveChange, 10)
	go V.svc.Live(lctx, am.ID, transfer.LiveOptions{Retry: time.Hour, OnChange: func(c transfer.LiveChange) { changes <- c }})
	for i := 0; i < 4; i++ {
		select {
		case <-changes:
		case <-lctx.Done():
			t.Fatalf("%d of the 4 pushed changes were handled", i)
		}
	}
	if p, ok, err := V.svc.ProvenanceOf("urn:ngsi-ld:AirQualityObserved:v-later"); err != nil || ok {
		t.Errorf("an id whose entity the store refused keeps provenance %+v (%v)", p, err)
	}
	cancel()
	for _, id := range []string{testID(3), testID(4)} {
		if p, ok, err := V.svc.ProvenanceOf(id); err != nil || !ok || p.Provider != P.id() {
			t.Errorf("provenance of P's entity %s on V is %+v (%v, %v), want P's", id, p, ok, err)
		}
		if got := string(entityWithSysAttrs(t, V.n, id)); !strings.Contains(got, "AirQualityObserved") || strings.Contains(got, "Junk") {
			t.Errorf("P's entity %s on V became %s", id, got)
		}
	}
	if resold() {
		t.Errorf("V serves P's entity %s, received without distribute, in its own dataset", testID(3))
	}
	var own bool
	for _, raw := range query(t, V.n) {
		if bytes.Contains(raw, []byte("Junk")) {
			t.Errorf("V landed a junk entity: %s", raw)
		}
		own = own || bytes.Contains(raw, []byte("v-own"))
	}
	if !own {
		t.Error("a live change from M deleted V's own entity")
	}
}
