package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/audit"
)

// sizedEntries are entries from well under to well over the 1 KiB buffer
// Hash assembles an entry in on the stack, through its three ways of
// writing the canonical form: canonical data written as it is, other data
// canonicalised first, and strings json.Marshal escapes (encoding/json and
// jcs.Transform of the whole entry).
func sizedEntries() []audit.Entry {
	sum := sha256.Sum256([]byte("prev"))
	prev := hex.EncodeToString(sum[:])
	var es []audit.Entry
	add := func(size int) {
		pad := strings.Repeat("x", size)
		at := t0.Add(time.Duration(size) * time.Microsecond)
		es = append(es,
			audit.Entry{Seq: uint64(size), Time: at, Kind: audit.KindNegotiationTransition, Subject: "urn:uuid:n", Peer: "12D3KooWPeer",
				Prev: prev, Data: json.RawMessage(`{"a":"` + pad + `","b":1}`)},
			audit.Entry{Seq: uint64(size), Time: at, Kind: audit.KindNegotiationTransition, Subject: "urn:uuid:n", Peer: "12D3KooWPeer",
				Prev: prev, Data: json.RawMessage(`{ "b" : 1.0, "a" : "` + pad + `" }`)},
			audit.Entry{Seq: uint64(size), Time: at, Kind: audit.KindNegotiationTransition, Subject: "urn:uuid:n<" + pad + ">",
				Prev: prev, Data: json.RawMessage(`{"a":"` + pad + `"}`)},
			audit.Entry{Seq: uint64(size), Time: at, Kind: "decision", Subject: "urn:uuid:" + pad, Peer: "12D3KooW" + pad},
		)
	}
	for size := 600; size <= 1100; size += 3 {
		add(size)
	}
	for _, size := range []int{2000, 4096, 70000} {
		add(size)
	}
	return es
}

// TestHashLargeEntries: entries past the stack buffer, and those on
// either side of it, hash as the chain format defines (refHash).
func TestHashLargeEntries(t *testing.T) {
	for _, e := range sizedEntries() {
		got, err := audit.Hash(e)
		if err != nil {
			t.Fatalf("Hash(entry %d, data %.40s, subject %.40s): %v", e.Seq, e.Data, e.Subject, err)
		}
		if want := refHash(t, e); got != want {
			t.Fatalf("Hash(entry %d, data %.40s, subject %.40s) = %s, want %s", e.Seq, e.Data, e.Subject, got, want)
		}
	}
}

// TestHashFixtures: hashes of entries as the code before the stack
// buffer (70d7a8c) computed them, the ways it had of writing the
// canonical form, in and past 1 KiB; logs written then verify now.
func TestHashFixtures(t *testing.T) {
	es := sizedEntries()
	for _, tc := range []struct {
		i    int
		want string
	}{
		// 600-byte data, canonical and not (the same canonical form),
		// escaped subject, long subject and peer.
		{0, "082f7798e84117a0f36f7c023da1b4998a786d3eee36927902d2626e3c7c028e"},
		{1, "082f7798e84117a0f36f7c023da1b4998a786d3eee36927902d2626e3c7c028e"},
		{2, "3ba07810c58a2824fb1d5404c5dbfcce7e0ceab6c947d6ca074327fad09ba75b"},
		{3, "00d0a2e5f0bb21d8378a8e6e1ce6ab0c31bc074ddb0382e257cab5c347deff78"},
		// The same at 4,096 bytes,
		{len(es) - 8, "c805dd3f9681c683ec72e62ef5d3984ff4b41bc319ba3ba97513d154726b2520"},
		{len(es) - 7, "c805dd3f9681c683ec72e62ef5d3984ff4b41bc319ba3ba97513d154726b2520"},
		{len(es) - 6, "f8c7af2ab2a89868b18e030429827d8a0da826b947cbb5afe627e64e18322d60"},
		{len(es) - 5, "6da38e406bb560e5fb69fada0a50aa9c9b05880fdca75cd348f469517e500fb7"},
		// and at 70,000.
		{len(es) - 4, "bf4874f2ef1c0d18ab62a606b1f8608cd97c2cad55c9345991c45359aded659a"},
		{len(es) - 3, "bf4874f2ef1c0d18ab62a606b1f8608cd97c2cad55c9345991c45359aded659a"},
		{len(es) - 2, "b89aa4ec8c444a7400777a36496620f3fcb3121cd3a7bf46c36ba607c475125b"},
		{len(es) - 1, "d26b4f34b85c7681e7bf5adc0a701cfd14312ce6737b69ae5b761672a5bf2ed1"},
	} {
		e := es[tc.i]
		if got, err := audit.Hash(e); err != nil || got != tc.want {
			t.Errorf("Hash(sizedEntries()[%d]) = %s, %v, want %s", tc.i, got, err, tc.want)
		}
	}
}

// TestHashConcurrent: Hash calls at once (the log's verifier runs while
// entries are appended) give each entry its own hash.
func TestHashConcurrent(t *testing.T) {
	es := sizedEntries()
	want := make([]string, len(es))
	for i, e := range es {
		want[i] = refHash(t, e)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range es {
				i := (k*7 + g*len(es)/4) % len(es)
				if got, err := audit.Hash(es[i]); err != nil || got != want[i] {
					errs <- fmt.Errorf("Hash(sizedEntries()[%d]) = %s, %v, want %s", i, got, err, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
