package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/policy"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// TestLiveFeedAcrossProviderRestart: after the snapshot, every change to
// the dataset's entities reaches the consumer's store in order; the feed
// survives a provider restart without gaps or duplicates; suspending the
// transfer ends it with a reason.
func TestLiveFeedAcrossProviderRestart(t *testing.T) {
	prov, cons := pair(t)
	es := entities(t, 50, 0)
	upsert(t, prov.n, es)
	a, b := agreementFile(t, prov, cons, readOffer(datasetID, prov.id(), ""), nil)
	prov.shelf.put(a.ID, b)
	cons.shelf.put(a.ID, b)

	var mu sync.Mutex
	var seqs []uint64
	var ids []string
	var interrupted, resumed int // outages reported, and ends of them
	started := make(chan transfer.Info, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- cons.svc.Live(lctx, a.ID, transfer.LiveOptions{Retry: 50 * time.Millisecond,
			Started: func(in transfer.Info) { started <- in },
			OnChange: func(c transfer.LiveChange) {
				mu.Lock()
				seqs = append(seqs, c.Seq)
				ids = append(ids, c.ID)
				mu.Unlock()
			},
			Interrupted: func(error) { mu.Lock(); interrupted++; mu.Unlock() },
			Resumed:     func() { mu.Lock(); resumed++; mu.Unlock() }})
	}()
	var in transfer.Info
	select {
	case in = <-started:
	case err := <-done:
		t.Fatalf("Live ended before the feed opened: %v", err)
	}
	if n := len(query(t, cons.n)); n != 50 {
		t.Fatalf("snapshot landed %d entities, want 50", n)
	}
	received := func() int { mu.Lock(); defer mu.Unlock(); return len(seqs) }
	change := func(i int, v float64) {
		es[i]["no2"].(map[string]any)["value"] = v
		upsert(t, prov.n, es[i:i+1])
	}
	for i := range 10 {
		change(i, 1000+float64(i))
	}
	eventually(t, 10*time.Second, "10 changes delivered", func() bool { return received() == 10 })

	prov.stop()
	prov.start(t)
	eventually(t, 20*time.Second, "consumer reaches the restarted provider", func() bool { return connect(cons, prov) == nil })
	for i := 10; i < 20; i++ {
		change(i, 2000+float64(i))
	}
	eventually(t, 20*time.Second, "20 changes delivered across the restart", func() bool { return received() == 20 })
	// The restart showed as one outage, reported when it began and when
	// it ended.
	mu.Lock()
	if interrupted != 1 || resumed != 1 {
		t.Errorf("the provider's restart was reported as %d interruptions and %d resumptions, want 1 and 1", interrupted, resumed)
	}
	mu.Unlock()

	mu.Lock()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("change %d has seq %d after %d: a gap or a duplicate", i, seqs[i], seqs[i-1])
		}
	}
	for i, id := range ids {
		if want := fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:test-%06d", i); id != want {
			t.Errorf("change %d is for %s, want %s", i, id, want)
		}
	}
	mu.Unlock()
	got, want := query(t, cons.n), query(t, prov.n)
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("entity %d differs after the feed:\nprovider %s\nconsumer %s", i, want[i], got[i])
		}
	}
	// An entity the feed brings (not in the snapshot) carries the
	// agreement's provenance, as a landed one does.
	upsert(t, prov.n, entities(t, 51, 0)[50:])
	eventually(t, 10*time.Second, "a new entity delivered", func() bool { return received() == 21 })
	if p, ok, err := cons.svc.ProvenanceOf(testID(50)); err != nil || !ok || p.Agreement != a.ID || p.Provider != prov.id() {
		t.Errorf("ProvenanceOf(%s) = %+v, %v, %v, want provider %s, agreement %s", testID(50), p, ok, err, prov.id(), a.ID)
	}

	// The usage record counts the snapshot's entities and every change
	// landed since, with their bytes.
	if got, err := cons.svc.Get(in.ID); err != nil || got.Usage.Entities != 50+21 || got.Usage.Bytes <= in.Usage.Bytes {
		t.Errorf("usage after the snapshot and 21 changes: %+v, %v; want 71 entities and more bytes than the snapshot's %d", got.Usage, err, in.Usage.Bytes)
	}
	if _, err := cons.svc.Suspend(ctx, in.ID, "pause for maintenance"); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
	select {
	case err := <-done:
		var re *transfer.RefusedError
		if !errors.As(err, &re) {
			t.Fatalf("Live ended with %v, want the provider's refusal", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live feed still open 10 s after the suspension")
	}
	eventually(t, 5*time.Second, "provider's side SUSPENDED", func() bool {
		l, _ := prov.svc.List()
		return len(l) == 1 && l[0].State == dsp.Suspended
	})
	// The provider's record counts the same: the snapshot, from its
	// acknowledged receipt, and the 21 changes it pushed, across its
	// restart.
	eventually(t, 5*time.Second, "provider's usage record holds the snapshot and the changes", func() bool {
		l, _ := prov.svc.List()
		return len(l) == 1 && l[0].Receipt && l[0].Usage.Entities == 50+21
	})
	// Following the agreement again does not start a second feed beside
	// the suspended one: it says how to resume it.
	err := cons.svc.Live(ctx, a.ID, transfer.LiveOptions{})
	if !errors.Is(err, transfer.ErrBadState) || !strings.Contains(err.Error(), "mimnode transfer resume "+in.ID) {
		t.Errorf("Live while the feed is suspended: %v, want ErrBadState saying how to resume %s", err, in.ID)
	}
	if l, _ := cons.svc.List(); len(l) != 1 {
		t.Errorf("consumer holds %d transfers after asking again, want the suspended one alone", len(l))
	}
	// Resumed, the same transfer is followed again, from where it was.
	if _, err := cons.svc.Resume(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	started = make(chan transfer.Info, 1)
	done = make(chan error, 1)
	go func() {
		done <- cons.svc.Live(lctx, a.ID, transfer.LiveOptions{Started: func(in transfer.Info) { started <- in },
			OnChange: func(c transfer.LiveChange) { mu.Lock(); seqs = append(seqs, c.Seq); mu.Unlock() }})
	}()
	select {
	case again := <-started:
		if again.ID != in.ID {
			t.Errorf("the resumed feed runs as transfer %s, want %s", again.ID, in.ID)
		}
	case err := <-done:
		t.Fatalf("the resumed feed ended at once: %v", err)
	}
	upsert(t, prov.n, entities(t, 52, 0)[51:])
	eventually(t, 10*time.Second, "a change after the resumption delivered", func() bool { return received() == 22 })
}

// TestLiveFeedNeverRelaysUndistributable: a node that received entities
// under an agreement that does not let it distribute them does not push
// changes to them on a live feed of a dataset of its own, as its versions
// leave them out; changes to its own entities it pushes.
func TestLiveFeedNeverRelaysUndistributable(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 10, 0))
	if _, err := cons.svc.Fetch(ctx, agreePermissions(t, prov, cons, `{"action": "read"}`), transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cons.cat.Put(resoldDataset(t), time.Now()); err != nil {
		t.Fatal(err)
	}
	a, b := agreementFile(t, cons, prov, readOffer(resoldID, cons.id(), ""), func(a *policy.Agreement) {
		a.ID, a.Dataset = "urn:uuid:agreement-resold", resoldID
	})
	cons.shelf.put(a.ID, b)
	prov.shelf.put(a.ID, b)

	var mu sync.Mutex
	var got []string
	started := make(chan struct{})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- prov.svc.Live(lctx, a.ID, transfer.LiveOptions{Retry: 50 * time.Millisecond,
			Started: func(transfer.Info) { close(started) },
			OnChange: func(c transfer.LiveChange) {
				mu.Lock()
				got = append(got, c.ID)
				mu.Unlock()
			}})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Live ended before the feed opened: %v", err)
	}
	// A local edit of a received entity is still the provider's data; an
	// entity of the relay's own is its to share.
	es := entities(t, 11, 0)
	es[3]["no2"].(map[string]any)["value"] = 777.0
	upsert(t, cons.n, es[3:4])
	upsert(t, cons.n, es[10:11])
	eventually(t, 10*time.Second, "the relay's own entity pushed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, testID(10))
	})
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(got, testID(3)) {
		t.Errorf("the live feed pushed %s, received under an agreement without distribute: %v", testID(3), got)
	}
}
