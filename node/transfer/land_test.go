package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/transfer"
)

// deleteEntity deletes one entity through the node's NGSI-LD API.
func deleteEntity(t testing.TB, n *node.Node, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, n.APIURL()+"/ngsi-ld/v1/entities/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete %s: %s %s", id, resp.Status, body)
	}
}

// entityWithSysAttrs is the consumer's answer for one entity, with
// createdAt and modifiedAt; nil when it has none.
func entityWithSysAttrs(t testing.TB, n *node.Node, id string) []byte {
	t.Helper()
	resp, err := http.Get(n.APIURL() + "/ngsi-ld/v1/entities/" + id + "?options=sysAttrs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return body
	case http.StatusNotFound:
		return nil
	}
	t.Fatalf("get %s: %s %s", id, resp.Status, body)
	return nil
}

func testID(i int) string { return fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:test-%06d", i) }

// TestNewVersionLandsOnlyChanges: a later version writes only the entities
// that changed and deletes the ones that left the dataset; the consumer's
// copies of the others are not rewritten (their modifiedAt stays).
func TestNewVersionLandsOnlyChanges(t *testing.T) {
	prov, cons, a, es, first := fetchedOnce(t, 600)
	if first.Usage.Entities != 600 {
		t.Fatalf("first fetch landed %d entities, want 600", first.Usage.Entities)
	}
	// A neighbour of the changed entity, most likely in the same block.
	untouched := entityWithSysAttrs(t, cons.n, testID(301))

	es[300]["no2"].(map[string]any)["value"] = 1234.0
	upsert(t, prov.n, es[300:301])
	deleteEntity(t, prov.n, testID(450))
	time.Sleep(10 * time.Millisecond) // a rewrite would show a later modifiedAt

	second, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Usage.Entities != 2 {
		t.Errorf("second fetch wrote or deleted %d entities, want 2 (one changed, one deleted)", second.Usage.Entities)
	}
	if got := entityWithSysAttrs(t, cons.n, testID(300)); !bytes.Contains(got, []byte("1234")) {
		t.Errorf("consumer's changed entity = %s, want no2 1234", got)
	}
	if got := entityWithSysAttrs(t, cons.n, testID(450)); got != nil {
		t.Errorf("consumer still holds the entity the provider deleted: %s", got)
	}
	if got := entityWithSysAttrs(t, cons.n, testID(301)); !bytes.Equal(got, untouched) {
		t.Errorf("unchanged entity was rewritten:\nbefore %s\nafter  %s", untouched, got)
	}
	if _, ok, _ := cons.svc.ProvenanceOf(testID(450)); ok {
		t.Error("the deleted entity still has provenance on the consumer")
	}
	if got, want := query(t, cons.n), query(t, prov.n); len(got) != len(want) || len(got) != 599 {
		t.Errorf("consumer holds %d entities, provider %d; want 599 each", len(got), len(want))
	}
}

// TestFullFetchPutsBackLocalChanges: received entities changed or deleted
// on the consumer stay so through a fetch that finds nothing new at the
// provider; a full fetch puts them back as the provider has them, and
// still deletes what left the dataset.
func TestFullFetchPutsBackLocalChanges(t *testing.T) {
	prov, cons, a, es, _ := fetchedOnce(t, 300)
	deleteEntity(t, cons.n, testID(10))
	local := es[11]
	local["no2"].(map[string]any)["value"] = 7777.0
	upsert(t, cons.n, []map[string]any{local})

	again, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Usage.Entities != 0 || entityWithSysAttrs(t, cons.n, testID(10)) != nil {
		t.Errorf("a fetch with nothing new wrote %d entities, or put back the deleted one", again.Usage.Entities)
	}
	if got := entityWithSysAttrs(t, cons.n, testID(11)); !bytes.Contains(got, []byte("7777")) {
		t.Errorf("a fetch with nothing new overwrote the local change: %s", got)
	}

	deleteEntity(t, prov.n, testID(200)) // leaves the dataset
	full, err := cons.svc.Fetch(ctx, a.ID, transfer.FetchOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.Usage.Entities != 299+1 {
		t.Errorf("full fetch wrote or deleted %d entities, want 300 (299 written, 1 deleted)", full.Usage.Entities)
	}
	if got, want := query(t, cons.n), query(t, prov.n); len(got) != 299 || len(want) != 299 {
		t.Fatalf("consumer holds %d entities, provider %d; want 299 each", len(got), len(want))
	} else {
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("after the full fetch, entity %d differs:\nprovider %s\nconsumer %s", i, want[i], got[i])
			}
		}
	}
	if entityWithSysAttrs(t, cons.n, testID(200)) != nil {
		t.Error("the full fetch kept an entity that left the dataset")
	}
}

// TestLiveFeedCarriesDeletes: an entity the provider deletes while a live
// feed is open is deleted on the consumer too.
func TestLiveFeedCarriesDeletes(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 20, 0))
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)
	started := make(chan struct{})
	changes := make(chan transfer.LiveChange, 10)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cons.svc.Live(lctx, a.ID, transfer.LiveOptions{
		Started:  func(transfer.Info) { close(started) },
		OnChange: func(c transfer.LiveChange) { changes <- c }})
	<-started
	if got := entityWithSysAttrs(t, cons.n, testID(7)); got == nil {
		t.Fatal("the snapshot did not land entity 7")
	}
	deleteEntity(t, prov.n, testID(7))
	select {
	case c := <-changes:
		if c.Op != "delete" || c.ID != testID(7) {
			t.Fatalf("change = %s %s, want delete of %s", c.Op, c.ID, testID(7))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change delivered within 10 s of the delete")
	}
	if got := entityWithSysAttrs(t, cons.n, testID(7)); got != nil {
		t.Errorf("consumer still holds the deleted entity: %s", got)
	}
	if n := len(query(t, cons.n)); n != 19 {
		t.Errorf("consumer holds %d entities, want 19", n)
	}
}

// TestLandManyBlocks: a version of several landing chunks over many
// blocks lands every entity as the provider holds it.
func TestLandManyBlocks(t *testing.T) {
	prov, cons, agreement, blocks := agreedVersion(t, 2500)
	if len(blocks) < 8 {
		t.Fatalf("version has %d blocks, want several per landing chunk", len(blocks))
	}
	if _, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	got, want := query(t, cons.n), query(t, prov.n)
	if len(got) != len(want) {
		t.Fatalf("consumer holds %d entities, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("entity %d on the consumer = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestLandReusesNoDecodedBytes: an entity decoded from a block line
// keeps no reference into the line, so a landed entity neither pins nor
// changes with the block bytes it was read from.
func TestLandReusesNoDecodedBytes(t *testing.T) {
	prov, _ := pair(t)
	es := entities(t, 3, 0)
	for _, e := range es {
		for k, v := range e {
			if a, ok := v.(map[string]any); ok && a["type"] == "Property" {
				if _, ok := a["value"].(string); ok {
					a["value"] = "caf\u00e9 \"quoted\" back\\slash " + k
				}
			}
		}
	}
	upsert(t, prov.n, es)
	for _, raw := range es {
		id := raw["id"].(string)
		stored, err := prov.n.NGSILD().Entity(id)
		if err != nil || stored == nil {
			t.Fatalf("Entity(%s) = %v, %v", id, stored, err)
		}
		line, err := json.Marshal(stored)
		if err != nil {
			t.Fatal(err)
		}
		var e ngsild.Entity
		if err := ngsild.DecodeLine(line, &e); err != nil {
			t.Fatalf("DecodeLine(%s): %v", id, err)
		}
		want, _ := json.Marshal(&e)
		for i := range line {
			line[i] = 'x'
		}
		if got, _ := json.Marshal(&e); !bytes.Equal(got, want) {
			t.Errorf("entity %s changed when its line was overwritten:\n%s\nwant\n%s", id, got, want)
		}
	}
}
