package catalogsvc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/testnet"
)

var ctx = context.Background()

// member is a testnet node with a catalogue service on it.
type member struct {
	n   *node.Node
	cat *catalogsvc.Service
}

func withCatalog(t testing.TB, n *node.Node) *catalogsvc.Service {
	t.Helper()
	return withCatalogResync(t, n, 0)
}

// withCatalogResync starts a catalogue service with the given full resync
// interval (0: the default, negative: none).
func withCatalogResync(t testing.TB, n *node.Node, every time.Duration) *catalogsvc.Service {
	t.Helper()
	s, err := catalogsvc.New(catalogsvc.Options{Host: n.Host(), Store: n.Store(), Signer: n.Signer(),
		Verifier: node.PeerIDVerifier{}, Federations: n.Federations(), Agency: n.Config().Name, ResyncInterval: every})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func federation3(t testing.TB, shape testnet.Shape) (*testnet.Net, []member) {
	net := testnet.New(t, shape).Federate()
	var ms []member
	for _, m := range net.Members {
		ms = append(ms, member{m.Node(), withCatalog(t, m.Node())})
	}
	return net, ms
}

func dataset(id, title string, extra func(*catalog.Dataset)) catalog.Dataset {
	d, err := catalog.ParseDataset([]byte(fmt.Sprintf(`{
	  "id": %q, "title": %q,
	  "description": "Hourly NO2, PM10 and PM2.5 readings from the city's monitoring stations.",
	  "keywords": ["air quality", "NO2", "PM10"], "themes": ["ENVI"],
	  "entityTypes": ["https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"],
	  "spatial": {"type": "Polygon", "coordinates": [[[10.0,56.0],[10.4,56.0],[10.4,56.3],[10.0,56.3],[10.0,56.0]]]},
	  "license": "CC-BY-4.0", "offers": [{"template": "research-only"}], "dissemination": "federation"}`, id, title)), "json")
	if err != nil {
		panic(err)
	}
	if extra != nil {
		extra(&d)
	}
	return d
}

func found(s *catalogsvc.Service, q catalog.Query, id string) bool {
	res, err := s.Search(q)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(res.Hits, func(h catalog.Hit) bool { return h.Record.Dataset.ID == id })
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

func TestPublishedDatasetIsFoundByEveryMember(t *testing.T) {
	_, ms := federation3(t, testnet.Shape{Cities: 2, AgenciesPerCity: 2, Researchers: 1})
	id := "urn:mim:dataset:aarhus:air-quality"
	if _, err := ms[0].cat.Publish(ctx, dataset(id, "Air quality observations, Aarhus", nil)); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		eventually(t, 5*time.Second, fmt.Sprintf("member %d finds the dataset", i), func() bool {
			return found(m.cat, catalog.Query{Text: "air quality", Type: "AirQualityObserved", Theme: "ENVI"}, id)
		})
	}
	// An update propagates.
	if _, err := ms[0].cat.Publish(ctx, dataset(id, "Air quality, Aarhus (hourly)", nil)); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		eventually(t, 5*time.Second, fmt.Sprintf("member %d sees the new title", i), func() bool {
			return found(m.cat, catalog.Query{Text: "hourly"}, id)
		})
	}
	// A retirement propagates.
	if _, err := ms[0].cat.Retire(ctx, id); err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		eventually(t, 5*time.Second, fmt.Sprintf("member %d drops the retired dataset", i), func() bool {
			return !found(m.cat, catalog.Query{}, id)
		})
	}
}

func TestOfflineMemberCatchesUp(t *testing.T) {
	net, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 3})
	net.Stop(2)
	for i := range 3 {
		id := fmt.Sprintf("urn:mim:dataset:aarhus:set-%d", i)
		if _, err := ms[0].cat.Publish(ctx, dataset(id, "Set", nil)); err != nil {
			t.Fatal(err)
		}
	}
	net.Restart(2)
	cat := withCatalog(t, net.Members[2].Node())
	eventually(t, 10*time.Second, "restarted member has all three datasets", func() bool {
		res, _ := cat.Search(catalog.Query{})
		return res.Total == 3
	})
}

func TestRestrictedDatasetOnlyReachesItsAudience(t *testing.T) {
	_, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 3})
	id := "urn:mim:dataset:aarhus:restricted"
	d := dataset(id, "Restricted", func(d *catalog.Dataset) {
		d.Dissemination = catalog.Restricted
		d.Audience = []string{ms[1].n.ID().String()}
	})
	if _, err := ms[0].cat.Publish(ctx, d); err != nil {
		t.Fatal(err)
	}
	public := "urn:mim:dataset:aarhus:public"
	if _, err := ms[0].cat.Publish(ctx, dataset(public, "Public", nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "audience member sees it", func() bool { return found(ms[1].cat, catalog.Query{}, id) })
	eventually(t, 5*time.Second, "other member got the later public one", func() bool { return found(ms[2].cat, catalog.Query{}, public) })
	if found(ms[2].cat, catalog.Query{}, id) {
		t.Fatal("restricted dataset reached a member outside its audience")
	}
}

// TestHiddenDatasetWithdrawn: a dataset its publisher later restricts to
// another peer disappears from the excluded peer's search, by the
// scheduled full resync or on reconnecting after a gap, and stays with
// its audience.
func TestHiddenDatasetWithdrawn(t *testing.T) {
	for _, how := range []string{"scheduled resync", "reconnection"} {
		t.Run(how, func(t *testing.T) {
			net := testnet.New(t, testnet.Shape{Cities: 1, AgenciesPerCity: 3}).Federate()
			every := 200 * time.Millisecond
			if how == "reconnection" {
				every = -1
			}
			var ms []member
			for _, m := range net.Members {
				ms = append(ms, member{m.Node(), withCatalogResync(t, m.Node(), every)})
			}
			id := "urn:mim:dataset:aarhus:cameras"
			if _, err := ms[0].cat.Publish(ctx, dataset(id, "Traffic cameras", nil)); err != nil {
				t.Fatal(err)
			}
			for i, m := range ms[1:] {
				eventually(t, 5*time.Second, fmt.Sprintf("member %d finds the dataset", i+1), func() bool { return found(m.cat, catalog.Query{}, id) })
			}
			if how == "reconnection" {
				net.Partition([]int{0}, []int{2})
			}
			hidden := dataset(id, "Traffic cameras (police only)", func(d *catalog.Dataset) {
				d.Dissemination = catalog.Restricted
				d.Audience = []string{ms[1].n.ID().String()}
			})
			if _, err := ms[0].cat.Publish(ctx, hidden); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, "the audience sees the change", func() bool { return found(ms[1].cat, catalog.Query{Text: "police"}, id) })
			if how == "reconnection" {
				if !found(ms[2].cat, catalog.Query{}, id) {
					t.Fatal("the cut-off member lost the dataset before reconnecting")
				}
				net.Heal()
				eventually(t, 10*time.Second, "member 2 reconnects", func() bool {
					for _, a := range ms[0].n.P2PAddrs() {
						if _, err := ms[2].n.Connect(ctx, a); err == nil {
							return true
						}
					}
					return false
				})
			}
			eventually(t, 10*time.Second, "the excluded member no longer finds it", func() bool { return !found(ms[2].cat, catalog.Query{}, id) })
			if _, err := ms[2].cat.Get(id); !errors.Is(err, catalogsvc.ErrNotFound) {
				t.Errorf("Get(%s) on the excluded member = %v, want ErrNotFound", id, err)
			}
			if !found(ms[1].cat, catalog.Query{}, id) {
				t.Error("the audience lost the dataset")
			}
		})
	}
}

// TestGetByIDAlone: a dataset id names one publisher's dataset; an id two
// publishers use is refused as ambiguous, and publisher/id picks one.
func TestGetByIDAlone(t *testing.T) {
	_, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 3})
	id := "urn:mim:dataset:shared:noise"
	for _, m := range ms[:2] {
		if _, err := m.cat.Publish(ctx, dataset(id, "Noise", nil)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "member 2 has both", func() bool {
		res, _ := ms[2].cat.Search(catalog.Query{Text: "noise"})
		return res.Total == 2
	})
	if _, err := ms[2].cat.Get(id); !errors.Is(err, catalogsvc.ErrAmbiguous) {
		t.Errorf("Get(%s) = %v, want ErrAmbiguous", id, err)
	}
	r, err := ms[2].cat.Get(ms[1].n.ID().String() + "/" + id)
	if err != nil || r.Publisher != ms[1].n.ID().String() {
		t.Errorf("Get(publisher/id) = %v, %v", r.Publisher, err)
	}
	if r, err := ms[0].cat.Get(id); err != nil || r.Publisher != ms[0].n.ID().String() {
		t.Errorf("the publisher's own Get(%s) = %v, %v; want its own", id, r.Publisher, err)
	}
}

func TestResearcherCannotPublish(t *testing.T) {
	_, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 1, Researchers: 1})
	_, err := ms[1].cat.Publish(ctx, dataset("urn:mim:dataset:lab:x", "X", nil))
	if !errors.Is(err, federation.ErrResearcher) {
		t.Fatalf("researcher publish: %v, want ErrResearcher", err)
	}
}

func TestCatalogueSurvivesRestart(t *testing.T) {
	net, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 2})
	id := "urn:mim:dataset:aarhus:air-quality"
	ms[0].cat.Publish(ctx, dataset(id, "Air", nil))
	eventually(t, 5*time.Second, "member 1 has it", func() bool { return found(ms[1].cat, catalog.Query{}, id) })
	ms[1].cat.Close()
	net.Stop(1).Restart(1)
	cat := withCatalog(t, net.Members[1].Node())
	if !found(cat, catalog.Query{Text: "air"}, id) {
		t.Fatal("index lost over a restart")
	}
}

// BenchmarkPropagation20 measures publish-to-searchable on all 19 other
// members of a 20-node federation.
func BenchmarkPropagation20(b *testing.B) {
	_, ms := federation3(b, testnet.Shape{Cities: 4, AgenciesPerCity: 4, Researchers: 4})
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("urn:mim:dataset:bench:%d", i)
		start := time.Now()
		if _, err := ms[i%16].cat.Publish(ctx, dataset(id, "Bench", nil)); err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			eventually(b, 10*time.Second, "searchable everywhere", func() bool { return found(m.cat, catalog.Query{Text: "bench"}, id) })
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// TestAddFileKeepsViewAndSurvivesRepublish: a file added to a view of
// entity types sits beside the view; publishing the description again
// (which lists no files) keeps the file; removing it returns the dataset
// to a plain view. Each change makes a new version.
func TestAddFileKeepsViewAndSurvivesRepublish(t *testing.T) {
	net := testnet.New(t, testnet.Shape{Cities: 1, AgenciesPerCity: 1}).Federate()
	cat := net.Members[0].Node().Catalog()
	id := "urn:mim:dataset:aarhus:air-quality"
	d := dataset(id, "Air quality", nil)
	if _, err := cat.Publish(ctx, d); err != nil {
		t.Fatal(err)
	}
	rec, f, err := cat.AddFile(ctx, id, "stations.csv", "text/csv", strings.NewReader("station,lat,lon\nA,56.1,10.2\n"))
	if err != nil {
		t.Fatal(err)
	}
	src := rec.Dataset.Source
	if src == nil || src.View == nil || len(src.Files) != 1 || src.Files[0] != f || rec.Dataset.Version == "" {
		t.Fatalf("after add-file source = %+v, version %q", src, rec.Dataset.Version)
	}
	if _, _, err := cat.AddFile(ctx, id, ".hidden", "", strings.NewReader("x")); !errors.Is(err, catalogsvc.ErrBadFile) {
		t.Errorf("hidden file name: %v, want ErrBadFile", err)
	}
	// A description published again through the API keeps the files.
	d.Title = "Air quality, Aarhus"
	body, _ := json.Marshal(d)
	resp, err := http.Post(net.Members[0].Node().APIURL()+"/api/v1/datasets", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var viaAPI catalog.Record
	json.NewDecoder(resp.Body).Decode(&viaAPI)
	resp.Body.Close()
	if s := viaAPI.Dataset.Source; s == nil || len(s.Files) != 1 || viaAPI.Dataset.Title != d.Title || viaAPI.Dataset.Version != rec.Dataset.Version {
		t.Errorf("republished through the API: source %+v, version %q; want the file kept and version %s", s, viaAPI.Dataset.Version, rec.Dataset.Version)
	}
	gone, err := cat.RemoveFile(ctx, id, "stations.csv")
	if err != nil {
		t.Fatal(err)
	}
	if gone.Dataset.Source != nil || gone.Dataset.Version == "" || gone.Dataset.Version == rec.Dataset.Version {
		t.Errorf("after rm-file: source %+v, version %q; want a plain view with a new version", gone.Dataset.Source, gone.Dataset.Version)
	}
	if _, err := cat.RemoveFile(ctx, id, "stations.csv"); !errors.Is(err, catalogsvc.ErrNoSuchFile) {
		t.Errorf("removing it twice: %v, want ErrNoSuchFile", err)
	}
}

// TestNewFollowerHearsCurrentSeq: a member that starts following a
// federation's catalogue topic after a change was announced is told the
// publisher's current sequence number. A member pulls when it connects, but
// GossipSub learns of its subscription a moment later, so it may miss the
// announcement of a change made in between; without this it would not
// hear of the change before the next one or the periodic resync.
func TestNewFollowerHearsCurrentSeq(t *testing.T) {
	net := testnet.New(t, testnet.Shape{Cities: 1, AgenciesPerCity: 2}).Federate()
	a, b := net.Members[0].Node(), net.Members[1].Node()
	id := "urn:mim:dataset:aarhus:air-quality"
	rec, err := a.Catalog().Publish(ctx, dataset(id, "Air quality", nil))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "b finds the dataset", func() bool { return found(b.Catalog(), catalog.Query{}, id) })
	// b stops following the topic, and a sees it gone.
	b.Catalog().Close()
	eventually(t, 10*time.Second, "a sees b leave the catalogue topic", func() bool {
		return !slices.Contains(a.Federations().CatalogTopicHandle(net.Fed).ListPeers(), b.ID())
	})
	sub, err := b.Federations().CatalogTopicHandle(net.Fed).Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := sub.Next(wctx)
	if err != nil {
		t.Fatalf("no announcement reached a member that started following after the change: %v", err)
	}
	var got struct {
		Publisher string
		Seq       uint64
	}
	if err := json.Unmarshal(msg.Data, &got); err != nil || got.Publisher != a.ID().String() || got.Seq != rec.Seq {
		t.Fatalf("announcement %s (%v); want publisher %s at seq %d", msg.Data, err, a.ID(), rec.Seq)
	}
}

// TestNewAgencyCaughtUpOnMembershipChange: a member that learns another
// member became an agency only after connecting to it (the membership
// update came over that connection) still pulls the new agency's
// catalogue, though its announcement went out while the member was cut
// off and the pull made on connecting was skipped (not an agency then).
func TestNewAgencyCaughtUpOnMembershipChange(t *testing.T) {
	net := testnet.New(t, testnet.Shape{Cities: 1, AgenciesPerCity: 2, Researchers: 1}).Federate()
	admin, a, lab := net.Members[0].Node(), net.Members[1].Node(), net.Members[2].Node()
	setRole := func(role federation.Role) {
		t.Helper()
		if _, _, err := admin.Federations().Change(ctx, net.Fed, federation.Change{Op: "role", PeerID: a.ID().String(), Role: role}); err != nil {
			t.Fatal(err)
		}
	}
	roleIs := func(on *node.Node, role federation.Role) func() bool {
		return func() bool { r, _ := on.Federations().RoleOf(net.Fed, a.ID()); return r == role }
	}
	setRole(federation.RoleResearcher)
	eventually(t, 10*time.Second, "the lab sees the agency become a researcher", roleIs(lab, federation.RoleResearcher))
	net.Partition([]int{2}, []int{0, 1})
	setRole(federation.RoleAgency)
	eventually(t, 10*time.Second, "the new agency sees its role", roleIs(a, federation.RoleAgency))
	id := "urn:mim:dataset:aarhus:parking"
	if _, err := a.Catalog().Publish(ctx, dataset(id, "Parking", nil)); err != nil {
		t.Fatal(err)
	}
	if !roleIs(lab, federation.RoleResearcher)() {
		t.Fatal("the cut-off lab learnt of the role change")
	}
	// Only the lab and the new agency meet again.
	lab.Gater().Unblock(a.ID())
	a.Gater().Unblock(lab.ID())
	eventually(t, 10*time.Second, "the lab reconnects to the new agency", func() bool {
		for _, addr := range a.P2PAddrs() {
			if _, err := lab.Connect(ctx, addr); err == nil {
				return true
			}
		}
		return false
	})
	eventually(t, 10*time.Second, "the lab learns the role", roleIs(lab, federation.RoleAgency))
	eventually(t, 10*time.Second, "the lab finds the new agency's dataset", func() bool { return found(lab.Catalog(), catalog.Query{}, id) })
}

// TestUnknownOfferListsTheOffers: asking for an offer a dataset does not
// have says which it has, as a consumer's --offer names them.
func TestUnknownOfferListsTheOffers(t *testing.T) {
	_, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 1})
	id := "urn:mim:dataset:aarhus:air"
	if _, err := ms[0].cat.Publish(ctx, dataset(id, "Air", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := ms[0].cat.Offer(id, "research-only"); err != nil {
		t.Fatalf("the offer by its template: %v", err)
	}
	_, err := ms[0].cat.Offer(id, "7")
	if !errors.Is(err, contract.ErrUnknownOffer) || !strings.Contains(err.Error(), `has no offer "7"; its offers are 1 (research-only)`) {
		t.Errorf("Offer(%s, 7) = %v, want ErrUnknownOffer listing offer 1 (research-only)", id, err)
	}
}

// TestOfferFederationByName: an agency-internal offer may name its
// federation as the operator knows it; the published offer holds the
// federation's ID, so the members see the dataset. A federation the node
// does not belong to is refused, saying where to find the right one.
func TestOfferFederationByName(t *testing.T) {
	_, ms := federation3(t, testnet.Shape{Cities: 1, AgenciesPerCity: 2})
	feds := ms[0].n.Federations().List()
	if len(feds) != 1 {
		t.Fatalf("the node is in %d federations, want 1", len(feds))
	}
	fed := feds[0]
	id := "urn:mim:dataset:aarhus:traffic-flow"
	internal := func(ref string) func(*catalog.Dataset) {
		return func(d *catalog.Dataset) {
			d.Offers = []catalog.Offer{{Template: "agency-internal", Params: catalog.OfferParams{Federation: ref}}}
		}
	}
	if _, err := ms[0].cat.Publish(ctx, dataset(id, "Traffic flow", internal("Nowhere region"))); err == nil ||
		!strings.Contains(err.Error(), "offers[0].params.federation") || !strings.Contains(err.Error(), "mimnode federation list") {
		t.Errorf("publishing for a federation this node is not in: %v, want it refused naming the field and where to look", err)
	}
	rec, err := ms[0].cat.Publish(ctx, dataset(id, "Traffic flow", internal(fed.Name)))
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.Dataset.Offers[0].Params.Federation; got != fed.ID {
		t.Errorf("published offer names federation %q, want its ID %s", got, fed.ID)
	}
	eventually(t, 5*time.Second, "the other agency finds the dataset", func() bool { return found(ms[1].cat, catalog.Query{}, id) })
}
