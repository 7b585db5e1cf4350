package transfer_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/transfer"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// TestCompletionReachesAProviderThatWasAway: the provider stops once every
// block is sent, while the consumer lands them. The fetch completes; the
// provider, started again, gets the receipt exchange and the completion
// from the consumer's node, so its process ends COMPLETED with the
// receipt, not STARTED for ever.
func TestCompletionReachesAProviderThatWasAway(t *testing.T) {
	prov, cons := pairTuned(t, func(o *transfer.Options) { o.NoticeRetry = 50 * time.Millisecond })
	upsert(t, prov.n, entities(t, 20, 0))
	a := agreePermissions(t, prov, cons, `{"action": "read"}`)
	var once sync.Once
	in, err := cons.svc.Fetch(ctx, a, transfer.FetchOptions{Progress: func(p transfer.Progress) {
		if p.Phase == "landing" {
			once.Do(prov.stop)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if in.State != dsp.Completed || in.Receipt {
		t.Fatalf("fetch ended %s with receipt %v; want COMPLETED, the receipt still owed", in.State, in.Receipt)
	}
	prov.start(t)
	eventually(t, 20*time.Second, "consumer reaches the provider again", func() bool { return connect(cons, prov) == nil })
	eventually(t, 20*time.Second, "the provider's transfer completes with its receipt", func() bool {
		list, err := prov.svc.List()
		return err == nil && len(list) == 1 && list[0].State == dsp.Completed && list[0].Receipt
	})
	got, err := cons.svc.Get(in.ID)
	if err != nil || !got.Receipt {
		t.Errorf("consumer's transfer %+v (%v), want it to hold the receipt", got, err)
	}
}

// TestEndedTransferSaysItCannotChange: terminating a transfer that
// completed says so in one sentence (and is ErrBadState).
func TestEndedTransferSaysItCannotChange(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 5, 0))
	in, err := cons.svc.Fetch(ctx, agreePermissions(t, prov, cons, `{"action": "read"}`), transfer.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cons.svc.Terminate(ctx, in.ID, "")
	if !errors.Is(err, transfer.ErrBadState) || err.Error() != "transfer "+in.ID+" is COMPLETED: it cannot be terminated now" {
		t.Errorf("terminating a completed transfer: %v", err)
	}
}
