package transfer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// servableIDs are entity ids whose provenance keys are easy to miss when
// they are visited in key order: ids that are prefixes of others, ids
// whose escaped keys sort in another order than the ids (a space escapes
// to "%20", after "!"), literal escapes, slashes, unicode and the ends of
// the key range.
var servableIDs = []string{
	"urn:ngsi-ld:X:1", "urn:ngsi-ld:X:10", "urn:ngsi-ld:X:1:", "urn:ngsi-ld:X:1/", "urn:ngsi-ld:X:1/a",
	"urn:ngsi-ld:X:1 ", "urn:ngsi-ld:X:1!", "urn:ngsi-ld:X:1%20", "urn:ngsi-ld:X:1%", "urn:ngsi-ld:X:1~",
	"urn:ngsi-ld:X:1?", "urn:ngsi-ld:X:1#", "urn:ngsi-ld:X:1\x00", "urn:ngsi-ld:X:1\x7f", "urn:ngsi-ld:X:1\xff",
	"urn:ngsi-ld:X:ä", "urn:ngsi-ld:X:a", "urn:ngsi-ld:X:日本", "urn:ngsi-ld:X:😀", "urn:ngsi-ld:X:",
	"urn", "u", "", "!", " ", "%", "~~~~", "\U0010ffff", "a/b/c", "a%2Fb",
}

// TestServableFindsEveryProvenance: servable, which visits a chunk's
// provenance keys with one iterator in key order, keeps out every entity
// a per-entity lookup finds received under a policy that forbids
// distribute (MIM3: never served onwards), and keeps every other one,
// whatever the ids, their order in the chunk and which of them the chunk
// holds.
func TestServableFindsEveryProvenance(t *testing.T) {
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &Service{o: Options{Store: db, Now: time.Now}}

	forbid, err := json.Marshal(Provenance{Provider: "p", Agreement: "a1", Distribute: false})
	if err != nil {
		t.Fatal(err)
	}
	allow, err := json.Marshal(Provenance{Provider: "p", Agreement: "a2", Distribute: true})
	if err != nil {
		t.Fatal(err)
	}
	forbidKey, forbidRef := sharedProvenance(forbid)
	allowKey, allowRef := sharedProvenance(allow)

	// Every id in three forms (a received entity's provenance is stored
	// whole or as a reference to a shared record, or it is the node's
	// own), and with a suffix so that each has neighbours.
	var ids []string
	for _, id := range servableIDs {
		ids = append(ids, id, id+"x", id+"/", id+" ")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]bool{}
	err = db.Update(func(tx *store.Txn) error {
		if err := tx.Set(forbidKey, forbid); err != nil {
			return err
		}
		if err := tx.Set(allowKey, allow); err != nil {
			return err
		}
		for _, id := range ids {
			var v []byte
			switch rng.IntN(5) {
			case 0:
				v = forbid
			case 1:
				v = forbidRef
			case 2:
				v = allow
			case 3:
				v = allowRef
			default:
				// the node's own entity: no provenance key
			}
			if v != nil {
				if err := tx.Set(provenanceKey(id), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *store.Txn) error {
		r := provenanceReader{tx: tx}
		for _, id := range ids {
			p, ok, err := r.read(id)
			if err != nil {
				return err
			}
			want[id] = !ok || p.Distribute
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	forbidden := 0
	for _, k := range want {
		if !k {
			forbidden++
		}
	}
	if forbidden == 0 || forbidden == len(ids) {
		t.Fatalf("%d of %d entities forbid distribute: the test needs both", forbidden, len(ids))
	}

	check := func(name string, chunk []string) {
		t.Helper()
		keep, err := s.servable(len(chunk), func(i int) string { return chunk[i] })
		if err != nil {
			t.Fatalf("%s: servable: %v", name, err)
		}
		if len(keep) != len(chunk) {
			t.Fatalf("%s: servable returned %d verdicts for %d entities", name, len(keep), len(chunk))
		}
		for i, id := range chunk {
			if keep[i] != want[id] {
				t.Errorf("%s: servable(%q) = %v, want %v", name, id, keep[i], want[id])
			}
		}
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	check("ids in order", sorted)
	check("ids in reverse order", reversed(sorted))
	check("ids as listed", ids)
	check("one id twice", append(slices.Clone(sorted[:3]), sorted[1], sorted[1]))
	for _, id := range ids {
		check(fmt.Sprintf("only %q", id), []string{id})
	}
	// Chunks of every size, each a random subset in random order, and
	// with ids that have no key before, between and after the others.
	for round := range 300 {
		n := 1 + rng.IntN(len(ids))
		chunk := make([]string, 0, n+2)
		for _, i := range rng.Perm(len(ids))[:n] {
			chunk = append(chunk, ids[i])
		}
		if round%2 == 0 {
			chunk = append(chunk, "\x00unknown", "\xff\xffunknown", ids[rng.IntN(len(ids))]+"\x01")
			for _, id := range chunk[len(chunk)-3:] {
				want[id] = true
			}
		}
		check(fmt.Sprintf("round %d", round), chunk)
	}
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}
