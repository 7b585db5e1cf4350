package transfer_test

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
)

var ctx = context.Background()

//go:embed testdata/AirQualityObserved.example-normalized.jsonld
var airQualityExample []byte

const datasetID = "urn:mim:dataset:test:air-quality"

func initDir(t testing.TB, name string) node.Config {
	t.Helper()
	c, err := node.Init(t.TempDir(), node.InitOptions{Name: name, API: "127.0.0.1:0",
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// shelf is the agreement source a test node reads: the node's real
// contract store first, then agreement files the test put there (crafted
// expired, tampered or foreign agreements the negotiation would never make).
type shelf struct {
	n     *node.Node
	mu    sync.Mutex
	files map[string][]byte // guarded by mu
}

func (s *shelf) Agreement(id string) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.files[id]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	return s.n.Contracts().Agreement(id)
}

func (s *shelf) put(id string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[id] = b
}

// peer is one real node with a transfer service on top of it.
type peer struct {
	cfg   node.Config
	n     *node.Node
	svc   *transfer.Service
	shelf *shelf
	cat   *catalog.Catalog
	// tune, if set, adjusts the transfer options before the service starts.
	tune func(*transfer.Options)
}

func (p *peer) id() string { return p.n.ID().String() }

// start starts (or restarts) the node on p.cfg and its transfer service.
func (p *peer) start(t testing.TB) {
	t.Helper()
	n, err := node.New(ctx, p.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.n = n
	if p.shelf == nil {
		p.shelf = &shelf{files: map[string][]byte{}}
	}
	p.shelf.n = n
	if p.cat == nil {
		if p.cat, err = catalog.NewCatalog(n.Signer(), nil); err != nil {
			t.Fatal(err)
		}
	}
	o := transfer.Options{Host: n.Host(), Store: n.Store(), NGSILD: n.NGSILD(),
		Agreements: p.shelf, Audit: n.Audit(), Members: n.Federations(), Datasets: transfer.CatalogDatasets{Catalog: p.cat},
		Signer: n.Signer(), Verifier: node.PeerIDVerifier{}, Timeout: 10 * time.Second}
	if p.tune != nil {
		p.tune(&o)
	}
	p.svc, err = transfer.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	svc := p.svc
	t.Cleanup(func() { svc.Close(); n.Close() })
}

func (p *peer) stop() {
	p.svc.Close()
	p.n.Close()
}

// pair starts two agencies, federates them and publishes the dataset on
// the provider (the first).
func pair(t testing.TB) (prov, cons *peer) {
	t.Helper()
	return pairTuned(t, consumerTune)
}

// pairTuned is pair with the consumer's transfer options adjusted by tune.
func pairTuned(t testing.TB, tune func(*transfer.Options)) (prov, cons *peer) {
	t.Helper()
	prov, cons = &peer{cfg: initDir(t, "Provider")}, &peer{cfg: initDir(t, "Consumer"), tune: tune}
	prov.start(t)
	cons.start(t)
	federate(t, []*node.Node{prov.n, cons.n})
	ds, err := catalog.ParseDataset([]byte(`{"id": "`+datasetID+`", "title": "Air quality", "description": "Test air quality readings.",
		"entityTypes": ["AirQualityObserved"], "license": "CC-BY-4.0", "offers": [{"template": "open-data"}]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.cat.Put(ds, time.Now()); err != nil {
		t.Fatal(err)
	}
	return prov, cons
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func federate(t testing.TB, nodes []*node.Node) {
	t.Helper()
	in, err := nodes[0].Federations().Create(ctx, "Region", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes[1:] {
		tok, applied, err := nodes[0].Federations().Change(ctx, in.ID, federation.Change{Op: "add",
			PeerID: n.ID().String(), Name: n.Config().Name, Role: federation.RoleAgency})
		if err != nil || !applied {
			t.Fatalf("invite %s: applied=%v err=%v", n.ID(), applied, err)
		}
		if _, err := n.Federations().Join(ctx, tok); err != nil {
			t.Fatalf("join %d: %v", i+1, err)
		}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				eventually(t, 20*time.Second, a.Config().Name+" knows "+b.Config().Name, func() bool {
					return len(a.Federations().SharedFederations(b.ID())) > 0
				})
			}
		}
	}
}

// entities derives n AirQualityObserved entities from the Smart Data
// Models example: new ids, readings that depend on the index.
func entities(t testing.TB, n, salt int) []map[string]any {
	t.Helper()
	out := make([]map[string]any, n)
	for i := range out {
		var e map[string]any
		if err := json.Unmarshal(airQualityExample, &e); err != nil {
			t.Fatal(err)
		}
		delete(e, "@context") // sent as application/json: the core context
		e["id"] = fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:test-%06d", i)
		e["no2"].(map[string]any)["value"] = float64(i%97 + salt)
		out[i] = e
	}
	return out
}

// upsert writes entities through the node's NGSI-LD API.
func upsert(t testing.TB, n *node.Node, es []map[string]any) {
	t.Helper()
	for i := 0; i < len(es); i += 500 {
		b, _ := json.Marshal(es[i:min(i+500, len(es))])
		resp, err := http.Post(n.APIURL()+"/ngsi-ld/v1/entityOperations/upsert", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 && resp.StatusCode != 204 {
			t.Fatalf("upsert: %s %.500s", resp.Status, body)
		}
	}
}

// query returns the node's NGSI-LD answer for the dataset's entities,
// sorted by id, as a client sees it.
func query(t testing.TB, n *node.Node) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	for off := 0; ; off += 1000 {
		resp, err := http.Get(fmt.Sprintf("%s/ngsi-ld/v1/entities?type=AirQualityObserved&limit=1000&offset=%d", n.APIURL(), off))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("query: %s %s", resp.Status, body)
		}
		var page []json.RawMessage
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
	}
	id := func(r json.RawMessage) string {
		var x struct{ ID string }
		json.Unmarshal(r, &x)
		return x.ID
	}
	sort.Slice(all, func(i, j int) bool { return id(all[i]) < id(all[j]) })
	return all
}

// agreementFile makes an agreement between provider and consumer signed
// by both nodes' keys (the real agreement format); edit may change the
// terms before signing.
func agreementFile(t testing.TB, prov, cons *peer, odrl string, edit func(*policy.Agreement)) (policy.Agreement, []byte) {
	t.Helper()
	p, err := policy.Parse([]byte(odrl))
	if err != nil {
		t.Fatal(err)
	}
	a := policy.Agreement{ID: "urn:uuid:agreement-" + t.Name(), Dataset: datasetID, Provider: prov.id(), Consumer: cons.id(),
		Policy: p, Created: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	if edit != nil {
		edit(&a)
	}
	if a, err = policy.NewAgreement(a); err != nil {
		t.Fatal(err)
	}
	for _, s := range []policy.Signer{prov.n.Signer(), cons.n.Signer()} {
		if err := a.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func readOffer(target, assigner string, constraints string) string {
	c := ""
	if constraints != "" {
		c = `, "constraint": [` + constraints + `]`
	}
	return `{"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Offer", "uid": "urn:uuid:offer-1",
		"target": "` + target + `", "assigner": "` + assigner + `", "permission": [{"action": "read"` + c + `}]}`
}

// negotiate runs a real contract negotiation for the dataset under the
// open-data template and returns the agreement id.
func negotiate(t testing.TB, prov, cons *peer) string {
	t.Helper()
	p, err := contract.OfferRequest{Dataset: datasetID, Template: "open-data"}.Build(prov.id())
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.n.Offers().Add(p); err != nil {
		t.Fatal(err)
	}
	offer, err := policy.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cons.n.Contracts().Request(ctx, contract.RequestOptions{Provider: prov.n.ID(), Dataset: datasetID, Offer: offer, Purpose: "research"})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	in, err := cons.n.Contracts().Wait(c, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.AgreementID == "" {
		t.Fatalf("negotiation ended without agreement: %+v", in)
	}
	// The provider finalizes a moment after the consumer.
	eventually(t, 10*time.Second, "provider holds the agreement", func() bool {
		_, err := prov.n.Contracts().Agreement(in.AgreementID)
		return err == nil
	})
	return in.AgreementID
}

func refusal(t testing.TB, err error) *transfer.RefusedError {
	t.Helper()
	var re *transfer.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want a *RefusedError", err)
	}
	return re
}

func manifestBlocks(t testing.TB, p *peer, version string) []string {
	t.Helper()
	l, err := transfer.ManifestBlocks(p.svc, version)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// agreedVersion gives a provider holding n test entities and the built
// version of the test dataset, a consumer, the id of an agreement between
// them for the dataset, and the version's blocks.
func agreedVersion(t *testing.T, n int) (prov, cons *peer, agreement string, blocks []string) {
	t.Helper()
	return agreedVersionTuned(t, n, consumerTune)
}

// agreedVersionTuned is agreedVersion with the consumer's options tuned.
func agreedVersionTuned(t *testing.T, n int, tune func(*transfer.Options)) (prov, cons *peer, agreement string, blocks []string) {
	t.Helper()
	prov, cons = pairTuned(t, tune)
	upsert(t, prov.n, entities(t, n, 0))
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	ds, _ := transfer.CatalogDatasets{Catalog: prov.cat}.Dataset(datasetID)
	version, err := prov.svc.Build(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	return prov, cons, a.ID, manifestBlocks(t, prov, version)
}

// fetchedOnce gives a provider holding n test entities, a consumer with an
// agreement for the test dataset, and the consumer's first fetch of it.
func fetchedOnce(t *testing.T, n int) (prov, cons *peer, a policy.Agreement, es []map[string]any, first transfer.Info) {
	t.Helper()
	return fetchedOnceTuned(t, n, consumerTune)
}

// fetchedOnceTuned is fetchedOnce with the consumer's options tuned.
func fetchedOnceTuned(t *testing.T, n int, tune func(*transfer.Options)) (prov, cons *peer, a policy.Agreement, es []map[string]any, first transfer.Info) {
	t.Helper()
	prov, cons = pairTuned(t, tune)
	es = entities(t, n, 0)
	upsert(t, prov.n, es)
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	first, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return prov, cons, a, es, first
}

// eachEncoding runs test once with a consumer that asks for plain blocks
// and once with one that takes them compressed (the default), each with
// tune for its options.
func eachEncoding(t *testing.T, test func(t *testing.T, plain bool, tune func(*transfer.Options))) {
	for _, plain := range []bool{true, false} {
		t.Run(map[bool]string{true: "plain", false: "compressed"}[plain], func(t *testing.T) {
			test(t, plain, func(o *transfer.Options) { consumerTune(o); o.PlainBlocks = plain })
		})
	}
}

// wireLen is how many bytes b takes on the wire whole: its size plain,
// its S2 size compressed (the provider sends it so when that saves an
// eighth or more).
func wireLen(b []byte, plain bool) int {
	if z := s2.Encode(nil, b); !plain && len(z) <= len(b)-len(b)/8 {
		return len(z)
	}
	return len(b)
}
