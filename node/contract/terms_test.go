package contract

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/policy"
)

func TestOfferMemoReadsAsParse(t *testing.T) {
	p, err := OfferRequest{Dataset: "urn:ngsi-ld:Dataset:noise", Template: "research-only"}.Build("12D3KooWProvider")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := policy.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m offerMemo
	for i := range 2 { // read, then remembered
		got, err := m.read(raw)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := policy.Parse(raw)
		if !reflect.DeepEqual(got.p, want) {
			t.Fatalf("read %d: %+v, want %+v", i, got.p, want)
		}
		terms, _ := termsOf(want)
		if !bytes.Equal(got.terms, terms) || !sameTermsAs(want, got) {
			t.Fatalf("read %d: terms %s, want %s", i, got.terms, terms)
		}
	}
	if len(m.m) != 1 {
		t.Fatalf("remembers %d offers, want 1", len(m.m))
	}
	if _, err := m.read([]byte(`{"@type":`)); err == nil {
		t.Fatal("a broken offer was read")
	}
	if len(m.m) != 1 {
		t.Fatalf("a broken offer was remembered")
	}
	for i := range memoOffers + 1 {
		q := p.Clone()
		q.ID = p.ID + string(rune('a'+i%26)) + string(rune('a'+i/26))
		b, _ := policy.Marshal(q)
		if _, err := m.read(b); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.m) > memoOffers {
		t.Fatalf("remembers %d offers, at most %d allowed", len(m.m), memoOffers)
	}
}

func TestPeerNamesIDIsDecode(t *testing.T) {
	var pn peerNames
	for _, s := range []string{
		"12D3KooWQLRbAdyTeAgwxkRWdPJYttbBNAFKPVk9kV74GCf28G9L",
		"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
		"12D3KooWQLRbAdyTeAgwxkRWdPJYttbBNAFKPVk9kV74GCf28G9L", // remembered
		"not a peer", "", "12D3KooW",
	} {
		for range 2 { // the second time from the memo, if remembered
			want, wantErr := peer.Decode(s)
			got, err := pn.id(s)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Errorf("id(%q) = %v, %v, want %v, %v", s, got, err, want, wantErr)
			}
			if err == nil && pn.of(got) != want.String() {
				t.Errorf("of(id(%q)) = %q, want %q", s, pn.of(got), want.String())
			}
		}
	}
	if len(pn.ids) != 2 {
		t.Errorf("%d texts remembered, want the 2 that decode", len(pn.ids))
	}
}

func TestAsRequestedIsMarshal(t *testing.T) {
	p, err := OfferRequest{Dataset: "urn:ngsi-ld:Dataset:noise", Template: "research-only"}.Build("12D3KooWProvider")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := policy.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m offerMemo
	r, err := m.read(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, ds := range []string{"urn:ngsi-ld:Dataset:noise", "urn:ngsi-ld:Dataset:other", "", "urn:ngsi-ld:Dataset:noise"} {
		want := p.Clone()
		want.Type, want.Target = policy.TypeOffer, ds
		wantRaw, err := policy.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 { // made, then remembered
			got, err := m.asRequested(raw, r, ds)
			if err != nil || !bytes.Equal(got, wantRaw) {
				t.Fatalf("asRequested(%q) #%d = %s, %v, want %s", ds, i, got, err, wantRaw)
			}
			if cap(got) != len(got) {
				t.Fatalf("asRequested(%q) has room to append in place: cap %d, len %d", ds, cap(got), len(got))
			}
		}
	}
	if fresh, _ := policy.Parse(raw); !reflect.DeepEqual(r.p, fresh) {
		t.Fatalf("the remembered offer was changed: %+v, read %+v", r.p, fresh)
	}
	if len(m.req) != 3 {
		t.Fatalf("remembers %d requested offers, want 3", len(m.req))
	}
	for i := range memoOffers + 1 {
		if _, err := m.asRequested(raw, r, "urn:ds:"+string(rune('a'+i%26))+string(rune('a'+i/26))); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.req) > memoOffers {
		t.Fatalf("remembers %d requested offers, at most %d allowed", len(m.req), memoOffers)
	}
}

// TestAsRequestedBoundedBytes: the requested offers remembered hold
// about memoOffers offers of maxMemoOffer bytes at most, however long
// the datasets they are requested for (a request's dataset comes from the
// API client, in a body of up to 1 MiB).
func TestAsRequestedBoundedBytes(t *testing.T) {
	p, err := OfferRequest{Dataset: "urn:ngsi-ld:Dataset:noise", Template: "research-only"}.Build("12D3KooWProvider")
	if err != nil {
		t.Fatal(err)
	}
	p.Target = "" // an offer for any dataset
	raw, err := policy.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var m offerMemo
	r, err := m.read(raw)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 4*maxMemoOffer)
	for i := range memoOffers {
		ds := fmt.Sprintf("urn:ngsi-ld:Dataset:%d:%s", i, long)
		want := r.p.Clone()
		want.Type, want.Target = policy.TypeOffer, ds
		wantRaw, err := policy.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := m.asRequested(raw, r, ds); err != nil || !bytes.Equal(got, wantRaw) {
			t.Fatalf("asRequested(dataset %d) = %.80s, %v, want %.80s", i, got, err, wantRaw)
		}
	}
	held := 0
	for k, b := range m.req {
		held += len(k.dataset) + len(k.raw) + len(b)
	}
	if limit := 3 * memoOffers * maxMemoOffer; held > limit {
		t.Fatalf("remembers %d bytes of requested offers, more than %d", held, limit)
	}
}
