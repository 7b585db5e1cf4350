package testnet

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mimnode/mimnode/catalog"
)

func TestFederateAndSeed(t *testing.T) {
	net := New(t, Shape{Cities: 2, AgenciesPerCity: 2, Researchers: 1}, Options{EntitiesPerModel: 5}).Federate().Seed()
	if len(net.Members) != 5 || len(net.Researchers()) != 1 {
		t.Fatalf("members = %d, researchers = %d", len(net.Members), len(net.Researchers()))
	}
	// The environment agency of the first city answers an NGSI-LD query
	// for its seeded air quality entities.
	env := net.Members[0]
	req, _ := http.NewRequest("GET", env.Node().APIURL()+"/ngsi-ld/v1/entities?type=AirQualityObserved&count=true", nil)
	req.Header.Set("Link", `<https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ents []map[string]any
	json.NewDecoder(resp.Body).Decode(&ents)
	resp.Body.Close()
	if got := resp.Header.Get("NGSILD-Results-Count"); got != "5" || len(ents) != 5 {
		t.Fatalf("%s: count %s, %d entities; want 5", env.Name, got, len(ents))
	}
}

func TestFaults(t *testing.T) {
	net := New(t, Shape{Cities: 1, AgenciesPerCity: 3}).Federate()
	id := net.Members[2].Node().ID()
	net.Partition([]int{0}, []int{1, 2})
	net.WaitFor(5*time.Second, "partition cut 0 from 1 and 2", func() bool {
		return !net.Connected(0, 1) && !net.Connected(0, 2)
	})
	net.Heal()
	net.WaitFor(15*time.Second, "healed nodes reconnect", func() bool { return net.Connected(0, 1) && net.Connected(0, 2) })
	net.Kill(2)
	net.WaitFor(5*time.Second, "killed node disconnected", func() bool { return !net.Connected(0, 2) })
	net.Restart(2)
	if got := net.Members[2].Node().ID(); got != id {
		t.Fatalf("restarted node has peer ID %s, want %s", got, id)
	}
	net.WaitFor(15*time.Second, "restarted node reconnects", func() bool { return net.Connected(0, 2) && net.Connected(1, 2) })
	net.Stop(1)
	if net.Members[1].Node() != nil {
		t.Fatal("stopped member still has a node")
	}
}

// TestScale20 runs a 20-node federation (4 cities × 4 agencies + 4
// researchers): every member must see every other.
func TestScale20(t *testing.T) {
	if testing.Short() {
		t.Skip("20 nodes")
	}
	net := New(t, Shape{Cities: 4, AgenciesPerCity: 4, Researchers: 4}, Options{EntitiesPerModel: 1}).Federate().Seed().Publish()
	if len(net.Members) != 20 {
		t.Fatalf("%d members", len(net.Members))
	}
	want := 0
	for _, m := range net.Agencies() {
		want += len(ModelsOf(m.Kind))
	}
	// Every dataset of the 16 agencies reaches every one of the 20 members.
	for _, m := range net.Members {
		net.WaitFor(2*time.Minute, m.Name+" indexes every dataset", func() bool {
			res, err := m.Node().Catalog().Search(catalog.Query{Limit: 100})
			return err == nil && res.Total == want
		})
	}
}

func TestPublishReachesEveryone(t *testing.T) {
	net := New(t, Shape{Cities: 2, AgenciesPerCity: 2, Researchers: 1}, Options{EntitiesPerModel: 2}).Federate().Seed().Publish()
	want := 0
	for _, m := range net.Agencies() {
		want += len(ModelsOf(m.Kind))
	}
	for _, m := range net.Members {
		net.WaitFor(10*time.Second, m.Name+" indexes every dataset", func() bool {
			res, err := m.Node().Catalog().Search(catalog.Query{Limit: 100})
			return err == nil && res.Total == want
		})
	}
}

// TestFounderBackOnANewAddressFindsTheMembers: the founder, whose
// address is the federation's only bootstrap address, restarts on
// another port. The members cannot reach it at the old one; it finds them
// at the addresses they announced before the restart, which it kept.
func TestFounderBackOnANewAddressFindsTheMembers(t *testing.T) {
	net := New(t, Shape{Cities: 1, AgenciesPerCity: 3}).Federate()
	net.WaitFor(10*time.Second, "all connected", func() bool { return net.Connected(0, 1) && net.Connected(0, 2) })
	before := net.Members[0].Node().P2PAddrs()
	net.Stop(0).Restart(0)
	if after := net.Members[0].Node().P2PAddrs(); slices.Equal(before, after) {
		t.Fatalf("the founder came back on the same addresses %v; the test needs new ones", after)
	}
	net.WaitFor(20*time.Second, "the founder reconnects to the members", func() bool { return net.Connected(0, 1) && net.Connected(0, 2) })
}
