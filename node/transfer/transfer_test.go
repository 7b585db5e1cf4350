package transfer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// TestSnapshotEndToEnd: publish, negotiate, fetch; the consumer's NGSI-LD
// query returns the provider's entities exactly, each with provenance, and
// both logs hold the receipt and the acknowledgement.
func TestSnapshotEndToEnd(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 400, 0))
	agreement := negotiate(t, prov, cons)

	var last transfer.Progress
	in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{Progress: func(p transfer.Progress) { last = p }})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if in.State != dsp.Completed {
		t.Errorf("consumer state = %s, want COMPLETED", in.State)
	}
	want, got := query(t, prov.n), query(t, cons.n)
	if len(want) != 400 {
		t.Fatalf("provider query returned %d entities, want 400", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("consumer query returned %d entities, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			t.Fatalf("entity %d differs:\nprovider %s\nconsumer %s", i, want[i], got[i])
		}
	}
	if in.Usage.Entities != 400 || in.Usage.Blocks == 0 || in.Usage.Bytes == 0 {
		t.Errorf("usage = %+v, want 400 entities and some blocks and bytes", in.Usage)
	}
	if last.Phase != "done" || last.Entities != 400 || last.Blocks != last.TotalBlocks {
		t.Errorf("last progress = %+v, want done with 400 entities and every block", last)
	}
	pv, ok, err := cons.svc.ProvenanceOf("urn:ngsi-ld:AirQualityObserved:test-000007")
	if err != nil || !ok {
		t.Fatalf("ProvenanceOf: ok=%v err=%v", ok, err)
	}
	if pv.Provider != prov.id() || pv.Dataset != datasetID || pv.Agreement != agreement || pv.Version != in.Version {
		t.Errorf("provenance = %+v, want provider %s, dataset, agreement %s, version %s", pv, prov.id(), agreement, in.Version)
	}
	if !in.Receipt {
		t.Errorf("consumer's transfer has no receipt")
	}
	eventually(t, 10*time.Second, "provider's side COMPLETED with receipt", func() bool {
		l, _ := prov.svc.List()
		return len(l) == 1 && l[0].State == dsp.Completed && l[0].Receipt
	})
	for _, p := range []*peer{prov, cons} {
		if _, err := p.n.Audit().Verify(); err != nil {
			t.Errorf("%s audit log: %v", p.n.Config().Name, err)
		}
		es, _ := p.n.Audit().List(1, 0)
		kinds := map[string]int{}
		for _, e := range es {
			kinds[e.Kind]++
		}
		if kinds[transfer.KindReceipt] != 1 || kinds[transfer.KindAck] != 1 {
			t.Errorf("%s log holds %d receipts and %d acks, want 1 each", p.n.Config().Name, kinds[transfer.KindReceipt], kinds[transfer.KindAck])
		}
		checkSignedReceipt(t, es)
	}
}

// checkSignedReceipt checks that the logged acknowledgement verifies with
// both parties' keys.
func checkSignedReceipt(t *testing.T, es []audit.Entry) {
	t.Helper()
	for _, e := range es {
		if e.Kind != transfer.KindAck {
			continue
		}
		var sg transfer.Signed
		if err := json.Unmarshal(e.Data, &sg); err != nil {
			t.Fatal(err)
		}
		if len(sg.ProviderSignature) == 0 || len(sg.ConsumerSignature) == 0 || sg.Receipt.Entities != 400 {
			t.Errorf("logged acknowledgement %+v lacks a signature or the entity count", sg)
		}
	}
}

// TestRefusals: DSP transfer process, provider side: each request is
// checked against the agreement's signatures, its consumer and its policy
// in the transfer scope, and refused with reasons.
func TestRefusals(t *testing.T) {
	prov, cons := pair(t)
	third := &peer{cfg: initDir(t, "Third")}
	third.start(t)
	upsert(t, prov.n, entities(t, 20, 0))
	open := readOffer(datasetID, prov.id(), "")

	cases := []struct {
		name string
		// setup returns the agreement id the consumer fetches.
		setup      func(t *testing.T) string
		wantCode   protocol.Code
		wantReason string
	}{
		{"no agreement on the provider", func(t *testing.T) string {
			a, b := agreementFile(t, prov, cons, open, nil)
			cons.shelf.put(a.ID, b)
			return a.ID
		}, protocol.CodeAgreementNotValid, "no agreement"},
		{"someone else's agreement", func(t *testing.T) string {
			a, b := agreementFile(t, prov, third, open, nil)
			prov.shelf.put(a.ID, b)
			cons.shelf.put(a.ID, b)
			return a.ID
		}, protocol.CodeAgreementNotValid, "is not the agreement's consumer"},
		{"tampered agreement", func(t *testing.T) string {
			a, b := agreementFile(t, prov, cons, open, nil)
			cons.shelf.put(a.ID, b)
			// The provider's copy had its end date pushed out after
			// signing: the signatures no longer match.
			a.NotAfter = time.Now().Add(100 * 24 * time.Hour).UTC().Truncate(time.Second)
			tb, err := a.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			prov.shelf.put(a.ID, tb)
			return a.ID
		}, protocol.CodeInvalidAgreement, "signature"},
		{"expired agreement", func(t *testing.T) string {
			a, b := agreementFile(t, prov, cons, open, func(a *policy.Agreement) {
				a.NotAfter = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
			})
			prov.shelf.put(a.ID, b)
			cons.shelf.put(a.ID, b)
			return a.ID
		}, protocol.CodeAgreementNotValid, "outside the agreement's validity"},
		{"past its count", func(t *testing.T) string {
			a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(),
				`{"leftOperand": "count", "operator": "lteq", "rightOperand": 1}`), nil)
			prov.shelf.put(a.ID, b)
			cons.shelf.put(a.ID, b)
			if _, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{}); err != nil {
				t.Fatalf("first transfer under a count of 1: %v", err)
			}
			return a.ID
		}, protocol.CodeAgreementNotValid, "number of transfers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := c.setup(t)
			_, err := cons.svc.Fetch(ctx, id, transfer.FetchOptions{})
			re := refusal(t, err)
			if re.Code != c.wantCode {
				t.Errorf("code = %s, want %s (reasons %q)", re.Code, c.wantCode, re.Reasons)
			}
			if !slices.ContainsFunc(re.Reasons, func(r string) bool { return strings.Contains(r, c.wantReason) }) {
				t.Errorf("reasons %q do not mention %q", re.Reasons, c.wantReason)
			}
			for _, p := range []*peer{prov, cons} {
				if !logged(t, p, transfer.KindRefused, id) {
					t.Errorf("%s did not log the refusal", p.n.Config().Name)
				}
			}
		})
	}
}

// logged reports whether p's log holds an entry of kind about agreement.
func logged(t *testing.T, p *peer, kind, agreement string) bool {
	t.Helper()
	es, err := p.n.Audit().List(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Kind == kind && bytes.Contains(e.Data, []byte(agreement)) {
			return true
		}
	}
	return false
}

// TestCorruptBlockRefetched: a block that does not hash to its CID is
// caught before use and fetched again; the landed data is right.
func TestCorruptBlockRefetched(t *testing.T) {
	eachEncoding(t, func(t *testing.T, _ bool, tune func(*transfer.Options)) {
		prov, cons, agreement, blocks := agreedVersionTuned(t, 300, tune)
		transfer.CorruptOnce(prov.svc, blocks[len(blocks)/2])

		in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if in.Usage.Refetched != 1 {
			t.Errorf("refetched = %d, want 1", in.Usage.Refetched)
		}
		if got, want := query(t, cons.n), query(t, prov.n); len(got) != len(want) || !bytes.Equal(got[150], want[150]) {
			t.Errorf("consumer holds %d entities, want %d identical ones", len(got), len(want))
		}
	})
}

// TestUnreadableHeldBlockDropped: a block the consumer holds by its key
// but with other bytes (what a machine crash before a sync can leave), or
// kept compressed with bytes that do not decompress, is caught when
// landing, dropped, and fetched again by the next Fetch.
func TestUnreadableHeldBlockDropped(t *testing.T) {
	for name, garble := range map[string]func(s *transfer.Service, c string) error{
		"other bytes": func(s *transfer.Service, c string) error { return transfer.StoreBlock(s, c, make([]byte, 40<<10)) },
		// Kept compressed, the bytes do not decompress.
		"not compressed data": func(s *transfer.Service, c string) error {
			return transfer.StoreCompressedBlob(s, c, []byte("\xff\xff\xff\xff\x0fnot s2"))
		},
	} {
		t.Run(name, func(t *testing.T) { unreadableHeldBlockDropped(t, garble) })
	}
}

func unreadableHeldBlockDropped(t *testing.T, garble func(s *transfer.Service, c string) error) {
	prov, cons, agreement, blocks := agreedVersion(t, 300)
	bad := blocks[len(blocks)/2]
	if err := garble(cons.svc, bad); err != nil {
		t.Fatal(err)
	}

	_, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if !errors.Is(err, transfer.ErrCorruptBlock) {
		t.Fatalf("Fetch over a garbled held block: %v, want ErrCorruptBlock", err)
	}
	if _, err := transfer.BlockLen(cons.svc, bad); err == nil {
		t.Fatal("the garbled block is still held after landing failed on it")
	}
	in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	if in.Usage.Blocks < 1 {
		t.Errorf("second Fetch fetched %d blocks, want the dropped one at least", in.Usage.Blocks)
	}
	if got, want := query(t, cons.n), query(t, prov.n); len(got) != len(want) || !bytes.Equal(got[150], want[150]) {
		t.Errorf("consumer holds %d entities, want %d identical ones", len(got), len(want))
	}
}

// TestBlocksKeptInTheDatabase: blocks that a node kept in its database,
// as nodes did before blocks were files, are still served by a provider
// and count as held by a consumer, which lands them without fetching
// them again.
func TestBlocksKeptInTheDatabase(t *testing.T) {
	blocksKeptElsewhere(t, agreedVersion, func(t *testing.T, s *transfer.Service, c string) {
		if err := transfer.MoveBlockToDB(s, c); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBlocksKeptPlain: blocks are kept compressed in the blobs by the
// provider that built them and the consumer that fetched them; blocks
// kept plain, as nodes did before, are still served (to consumers that
// take them compressed or not), count as held and land.
func TestBlocksKeptPlain(t *testing.T) {
	eachEncoding(t, func(t *testing.T, _ bool, tune func(*transfer.Options)) {
		agreed := func(t *testing.T, n int) (*peer, *peer, string, []string) { return agreedVersionTuned(t, n, tune) }
		blocksKeptElsewhere(t, agreed, func(t *testing.T, s *transfer.Service, c string) {
			was, err := transfer.KeepBlockPlain(s, c)
			if err != nil {
				t.Fatal(err)
			}
			if !was {
				t.Errorf("block %s was not kept compressed", c)
			}
		})
	})
}

// blocksKeptElsewhere moves the blocks of an agreed version where nodes
// before kept them (move), on the provider, then on the consumer after
// its first fetch: the provider still serves them, the consumer's second
// fetch counts them as held and fetches none, and it lands them.
func blocksKeptElsewhere(t *testing.T, agreed func(t *testing.T, n int) (prov, cons *peer, agreement string, blocks []string),
	move func(t *testing.T, s *transfer.Service, c string)) {
	prov, cons, agreement, blocks := agreed(t, 300)
	for _, c := range blocks {
		move(t, prov.svc, c)
	}
	first, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatalf("Fetch from the provider's moved blocks: %v", err)
	}
	if first.Usage.Blocks != int64(len(blocks)) {
		t.Fatalf("first Fetch fetched %d blocks, want %d", first.Usage.Blocks, len(blocks))
	}
	for _, c := range blocks {
		move(t, cons.svc, c)
	}
	second, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatalf("Fetch over the consumer's moved blocks: %v", err)
	}
	if second.Usage.Blocks != 0 || second.Usage.Skipped != int64(len(blocks)) {
		t.Errorf("second Fetch fetched %d blocks and reused %d, want 0 and %d", second.Usage.Blocks, second.Usage.Skipped, len(blocks))
	}
	if got, want := query(t, cons.n), query(t, prov.n); len(got) != len(want) || !bytes.Equal(got[150], want[150]) {
		t.Errorf("consumer holds %d entities, want %d identical ones", len(got), len(want))
	}
}

// TestNewVersionFetchesOnlyChangedBlocks: after one entity changes, the
// next transfer moves only the blocks that differ, and of the one that
// differs the lines that changed: plain, and compressed against the
// block the consumer holds (with the manifest compressed).
func TestNewVersionFetchesOnlyChangedBlocks(t *testing.T) {
	eachEncoding(t, func(t *testing.T, plain bool, tune func(*transfer.Options)) {
		prov, cons, a, es, first := fetchedOnceTuned(t, 600, tune)
		if first.Usage.Blocks < 3 {
			t.Fatalf("first version has %d blocks; the test needs several", first.Usage.Blocks)
		}
		es[300]["no2"].(map[string]any)["value"] = 1234.0
		upsert(t, prov.n, es[300:301])

		var last transfer.Progress
		second, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{Progress: func(p transfer.Progress) { last = p }})
		if err != nil {
			t.Fatal(err)
		}
		if second.Version == first.Version {
			t.Fatalf("second transfer got the same version %s", first.Version)
		}
		// The progress ends with every entity of the version held, those
		// kept from the first one included, though one was written.
		if last.Phase != "done" || last.Entities != int64(len(es)) || last.TotalEntities != int64(len(es)) {
			t.Errorf("second transfer ended reporting %s %d/%d entities, want done %d/%d", last.Phase, last.Entities, last.TotalEntities, len(es), len(es))
		}
		if second.Usage.Entities != 1 {
			t.Errorf("second transfer's usage counts %d entities, want the 1 it wrote", second.Usage.Entities)
		}
		if second.Usage.Blocks != 1 || second.Usage.Skipped != first.Usage.Blocks-1 {
			t.Errorf("second transfer fetched %d blocks and reused %d; want 1 and %d", second.Usage.Blocks, second.Usage.Skipped, first.Usage.Blocks-1)
		}
		// The changed block came as the lines that differ from the block
		// the consumer held at the same ids, not whole.
		mb, err := transfer.ManifestBytes(cons.svc, second.Version)
		if err != nil {
			t.Fatal(err)
		}
		moved := int(second.Usage.Bytes) - wireLen(mb, plain)
		whole := wireLen(changedBlock(t, cons, first.Version, second.Version), plain)
		if moved*5 > whole {
			t.Errorf("the changed block moved %d bytes (%d with the manifest), the block whole %d; want a delta of one entity", moved, second.Usage.Bytes, whole)
		}
		got := query(t, cons.n)
		if !bytes.Contains(got[300], []byte("1234")) {
			t.Errorf("consumer's entity 300 = %s, want the changed no2 1234", got[300])
		}
	})
}

// changedBlock is the one block of version next that version prev does
// not have, as the consumer holds it.
func changedBlock(t *testing.T, cons *peer, prev, next string) []byte {
	t.Helper()
	old, err := transfer.ManifestBlocks(cons.svc, prev)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := transfer.ManifestBlocks(cons.svc, next)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cur {
		if !slices.Contains(old, c) {
			b, err := transfer.BlockBytes(cons.svc, c)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("version %s has no block that %s does not", next, prev)
	return nil
}

// TestCorruptDeltaRefetchedWhole: a delta that does not rebuild its block
// is caught, and the block is fetched again whole.
func TestCorruptDeltaRefetchedWhole(t *testing.T) {
	eachEncoding(t, func(t *testing.T, plain bool, tune func(*transfer.Options)) {
		prov, cons, a, es, first := fetchedOnceTuned(t, 600, tune)
		es[300]["no2"].(map[string]any)["value"] = 4321.0
		upsert(t, prov.n, es[300:301])
		ds, _ := transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
		version, err := prov.svc.Build(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		old := manifestBlocks(t, prov, first.Version)
		whole := 0 // the changed block's bytes on the wire, sent whole
		for _, c := range manifestBlocks(t, prov, version) {
			if !slices.Contains(old, c) {
				transfer.CorruptOnce(prov.svc, c)
				b, err := transfer.BlockBytes(prov.svc, c)
				if err != nil {
					t.Fatal(err)
				}
				whole = wireLen(b, plain)
			}
		}
		second, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if second.Usage.Blocks != 1 || second.Usage.Refetched != 1 {
			t.Errorf("second transfer fetched %d blocks, %d again; want 1 and 1", second.Usage.Blocks, second.Usage.Refetched)
		}
		// The first answer was a delta, so the refetch cost about one
		// block, not the two a corrupt whole block would.
		mb, err := transfer.ManifestBytes(cons.svc, version)
		if err != nil {
			t.Fatal(err)
		}
		if moved := int(second.Usage.Bytes) - wireLen(mb, plain); moved > whole*3/2 {
			t.Errorf("second transfer moved %d bytes besides the manifest for one changed block of %d; want a delta and one whole block", moved, whole)
		}
		if got, want := query(t, cons.n), query(t, prov.n); len(got) != len(want) || !bytes.Equal(got[300], want[300]) || !bytes.Contains(got[300], []byte("4321")) {
			t.Errorf("consumer's entity 300 = %s, want the provider's %s", got[300], want[300])
		}
	})
}

// TestResumeAfterKill: either side is killed in the middle of the block
// fetch and started again on the same data directory; the consumer's next
// Fetch resumes the same transfer and fetches none of the blocks it had
// verified and stored. The transfer's usage record counts the blocks of
// both runs as moved for it.
func TestResumeAfterKill(t *testing.T) {
	for _, victim := range []string{"provider", "consumer"} {
		t.Run(victim, func(t *testing.T) {
			prov, cons := pair(t)
			upsert(t, prov.n, entities(t, 3000, 0))
			a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(),
				`{"leftOperand": "count", "operator": "lteq", "rightOperand": 1}`), nil)
			prov.shelf.put(a.ID, b)
			cons.shelf.put(a.ID, b)
			// One block per store write on one stream, so the kill lands
			// between stored blocks.
			cons.stop()
			cons.tune = func(o *transfer.Options) { o.Streams, o.BatchBlocks = 1, 1 }
			cons.start(t)
			eventually(t, 10*time.Second, "consumer reconnected", func() bool { return connect(cons, prov) == nil })

			var stored atomic.Int64
			kill := make(chan struct{})
			var once sync.Once
			done := make(chan error, 1)
			go func() {
				_, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{Progress: func(p transfer.Progress) {
					if p.Phase != "blocks" {
						return
					}
					stored.Store(p.Blocks)
					if p.Blocks == 5 {
						once.Do(func() { close(kill) })
					}
				}})
				done <- err
			}()
			<-kill
			killed := map[string]*peer{"provider": prov, "consumer": cons}[victim]
			killed.stop()
			if err := <-done; err == nil {
				t.Fatalf("Fetch succeeded although the %s was killed mid-transfer", victim)
			}
			before := stored.Load()
			killed.start(t)
			in, _ := cons.svc.List()
			if len(in) != 1 || in[0].State != dsp.Started {
				t.Fatalf("consumer transfers after the kill = %+v, want one STARTED", in)
			}
			eventually(t, 20*time.Second, "consumer reaches the provider again", func() bool { return connect(cons, prov) == nil })
			firstAfter := int64(-1) // blocks held at the resumed fetch's first stored block
			got, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{Progress: func(p transfer.Progress) {
				if p.Phase == "blocks" && firstAfter < 0 {
					firstAfter = p.Blocks
				}
			}})
			if err != nil {
				t.Fatalf("resumed Fetch: %v", err)
			}
			if got.ID != in[0].ID {
				t.Errorf("resumed transfer %s, want the interrupted %s", got.ID, in[0].ID)
			}
			if firstAfter != before+1 {
				t.Errorf("the resumed fetch stored its first block with %d held, want the %d stored before the kill and that one", firstAfter, before)
			}
			total := int64(len(manifestBlocks(t, cons, got.Version)))
			if got.Usage.Blocks != total || got.Usage.Skipped != 0 {
				t.Errorf("usage record: %d blocks moved, %d skipped; want all %d moved for this transfer, over both runs", got.Usage.Blocks, got.Usage.Skipped, total)
			}
			if transfer.MovedRecorded(cons.svc, got.ID) {
				t.Error("the completed transfer still keeps the count of its earlier runs beside its usage record")
			}

			if n := len(query(t, cons.n)); n != 3000 {
				t.Errorf("consumer holds %d entities, want 3000", n)
			}
		})
	}
}

func connect(from, to *peer) error {
	for _, a := range to.n.P2PAddrs() {
		if _, err := from.n.Connect(ctx, a); err == nil {
			return nil
		}
	}
	return errors.New("no address of the peer answered")
}

// TestNoDistributeNeverReserved: entities received under a policy that
// permits read but not distribute are left out of every version the
// consumer builds; with distribute permitted they are served onwards.
func TestNoDistributeNeverReserved(t *testing.T) {
	cases := []struct {
		name    string
		actions string
		want    int
	}{
		{"read only", `{"action": "read"}`, 0},
		{"read and distribute", `{"action": "read"}, {"action": "distribute"}`, 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prov, cons := pair(t)
			upsert(t, prov.n, entities(t, 30, 0))
			agreement := agreePermissions(t, prov, cons, c.actions)
			if _, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{}); err != nil {
				t.Fatal(err)
			}
			// The consumer publishes a dataset over the same entity type.
			version := buildResold(t, cons)
			if got := transfer.ManifestEntities(cons.svc, version); got != c.want {
				t.Errorf("consumer's own version holds %d received entities, want %d", got, c.want)
			}
		})
	}
}

// agreePermissions puts on both peers' shelves an agreement on an offer
// of the test dataset with the given ODRL permissions (a JSON list's
// items) and returns its id.
func agreePermissions(t testing.TB, prov, cons *peer, permissions string) string {
	t.Helper()
	odrl := `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:uuid:offer-2",
		"target": "` + datasetID + `", "assigner": "` + prov.id() + `", "permission": [` + permissions + `]}`
	a, b := agreementFile(t, prov, cons, odrl, nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	return a.ID
}

// buildResold has the consumer build a version of a dataset of its own
// over the entity type it received, and returns the version.
func buildResold(t testing.TB, cons *peer) string {
	t.Helper()
	version, err := cons.svc.Build(ctx, resoldDataset(t))
	if err != nil {
		t.Fatal(err)
	}
	return version
}

// resoldID is the consumer's own dataset over the entity type it
// received (resoldDataset).
const resoldID = "urn:mim:dataset:test:resold"

// resoldDataset is a dataset of resoldID over AirQualityObserved, open
// data, as a consumer might publish over what it received.
func resoldDataset(t testing.TB) catalog.Dataset {
	t.Helper()
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+resoldID+`", "title": "Resold", "description": "x",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestProvenanceRecordsBeforeShared: a landing points each entity at one
// shared provenance record; records written whole per entity, as nodes
// did before, are still read, by ProvenanceOf and when the consumer
// builds its own version (one that forbids distribute keeps the entity
// out of it).
func TestProvenanceRecordsBeforeShared(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 30, 0))
	agreement := agreePermissions(t, prov, cons, `{"action": "read"}, {"action": "distribute"}`)
	in, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	landed := transfer.Provenance{Provider: prov.id(), Dataset: datasetID, Agreement: agreement, Version: in.Version, Distribute: true}
	if v, err := transfer.ProvenanceValue(cons.svc, testID(1)); err != nil || len(v) == 0 || v[0] != '@' {
		t.Fatalf("provenance value of a landed entity = %q, %v, want a reference to a shared record", v, err)
	}
	old := transfer.Provenance{Provider: prov.id(), Dataset: datasetID, Agreement: "urn:uuid:older", Version: "bafyolder", Distribute: false}
	for i := range 5 {
		if err := transfer.SetProvenanceJSON(cons.svc, testID(i), old); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		id   string
		want transfer.Provenance
	}{{testID(0), old}, {testID(4), old}, {testID(5), landed}, {testID(29), landed}} {
		if got, ok, err := cons.svc.ProvenanceOf(c.id); err != nil || !ok || got != c.want {
			t.Errorf("ProvenanceOf(%s) = %+v, %v, %v, want %+v", c.id, got, ok, err, c.want)
		}
	}
	version := buildResold(t, cons)
	if got := transfer.ManifestEntities(cons.svc, version); got != 25 {
		t.Errorf("consumer's own version holds %d received entities, want 25 (5 forbid distribute)", got)
	}
}

// TestProviderEndsTransferMidFetch: DSP transfer process, provider
// terminates while STARTED: the provider refuses the next data request,
// the consumer's Fetch returns the refusal and ends its side, and a new
// Fetch asks afresh.
func TestProviderEndsTransferMidFetch(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 3000, 0))
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	cons.stop()
	cons.tune = func(o *transfer.Options) { o.Streams, o.BatchBlocks = 1, 1 }
	cons.start(t)
	eventually(t, 10*time.Second, "consumer reconnected", func() bool { return connect(cons, prov) == nil })

	var once sync.Once
	_, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{Progress: func(p transfer.Progress) {
		if p.Phase != "blocks" {
			return
		}
		once.Do(func() {
			l, _ := prov.svc.List()
			if _, err := prov.svc.Terminate(ctx, l[0].ID, "dataset withdrawn"); err != nil {
				t.Errorf("provider Terminate: %v", err)
			}
		})
	}})
	refusal(t, err)
	l, _ := cons.svc.List()
	if len(l) != 1 || l[0].State != dsp.Terminated {
		t.Fatalf("consumer transfers = %+v, want one TERMINATED", l)
	}
	in, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatalf("new Fetch after the termination: %v", err)
	}
	if in.ID == l[0].ID || in.State != dsp.Completed {
		t.Errorf("new Fetch = %s %s, want a new COMPLETED transfer", in.ID, in.State)
	}
}

// TestBuildIsDeterministic: the same entities always give the same version
// id, however the encoding work is spread; a changed entity gives another.
func TestBuildIsDeterministic(t *testing.T) {
	prov, _ := pair(t)
	es := entities(t, 5000, 0)
	upsert(t, prov.n, es)
	ds, _ := transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
	build := func() string {
		// A fresh service has no cached version: it builds from the feed.
		svc, err := transfer.New(transfer.Options{Host: prov.n.Host(), Store: prov.n.Store(), NGSILD: prov.n.NGSILD(),
			Agreements: prov.shelf, Audit: prov.n.Audit(), Members: prov.n.Federations(),
			Datasets: transfer.CatalogDatasets{Catalog: prov.cat}, Signer: prov.n.Signer(), Verifier: node.PeerIDVerifier{}})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		v, err := svc.Build(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first, second := build(), build()
	if first != second {
		t.Fatalf("two builds of the same entities: %s and %s", first, second)
	}
	es[4321]["no2"].(map[string]any)["value"] = 99999.0
	upsert(t, prov.n, es[4321:4322])
	if third := build(); third == first {
		t.Errorf("build after a change kept version %s", first)
	}
}

// TestSilentProviderNamed checks that a provider that takes the transfer
// request and never answers (stopped, or overloaded) ends the fetch after
// the timeout with an error that says so, not "deadline exceeded".
func TestSilentProviderNamed(t *testing.T) {
	prov, cons := pairTuned(t, func(o *transfer.Options) { o.Timeout = 2 * time.Second })
	agreement := negotiate(t, prov, cons)
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	prov.n.Host().SetStreamHandler(p2pproto.ID(protocol.TransferProtocol), func(st network.Stream) {
		defer st.Close()
		<-hold // reads nothing, answers nothing
	})
	_, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "did not answer the transfer request within") {
		t.Fatalf("Fetch from a silent provider: %v, want an error saying it did not answer", err)
	}
}

// TestTransferRefusedWhenDatasetNotOpen: whom a dataset is open to is
// checked on every transfer: once its publisher makes it private, or
// restricts it to an audience without the consumer, an agreement made
// before no longer gets the data.
func TestTransferRefusedWhenDatasetNotOpen(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 5, 0))
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	for _, c := range []struct {
		dis      string
		audience string
	}{{"restricted", `"` + prov.id() + `"`}, {"private", ""}} {
		ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Test air quality readings.",
			"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}],
			"dissemination": "`+c.dis+`", "audience": [`+c.audience+`]}`), "json")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := prov.cat.Put(ds, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, err = cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
		var re *transfer.RefusedError
		if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Reasons, " "), "does not open it to this peer") {
			t.Errorf("fetch of a %s dataset: %v, want a refusal saying it is not open to the consumer", c.dis, err)
		}
	}
	if n := len(query(t, cons.n)); n != 0 {
		t.Errorf("consumer holds %d entities, want none", n)
	}
}

// TestFetchFromAnOfflineProviderSaysSo: with the provider stopped, a
// fetch fails saying the provider cannot be reached and what to try, not
// with the dialer's error alone.
func TestFetchFromAnOfflineProviderSaysSo(t *testing.T) {
	prov, cons := pair(t)
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	cons.shelf.put(a.ID, b)
	prov.stop()
	cons.n.Host().Network().ClosePeer(prov.n.ID())
	_, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "cannot be reached") || !strings.Contains(err.Error(), "try again later") {
		t.Fatalf("fetch from a stopped provider: %v, want it to say the provider cannot be reached", err)
	}
	// The request never left: no process waits for an answer.
	list, err := cons.svc.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.State != dsp.Terminated || !strings.Contains(strings.Join(in.Reasons, " "), "could not be reached") {
			t.Errorf("transfer %s is %s (%v) after an unsent request, want TERMINATED saying the provider could not be reached", in.ID, in.State, in.Reasons)
		}
	}
	if len(list) != 1 {
		t.Errorf("%d transfers listed, want the one ended", len(list))
	}
}
