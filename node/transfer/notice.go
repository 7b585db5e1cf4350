package transfer

import (
	"context"
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Telling the provider that a transfer completed.
//
// A fetch that has every entity landed completes its process and tells
// the provider, after the receipt exchange (MIM3: the provider's signed
// receipt and the consumer's acknowledgement, in both logs). When the
// provider cannot be reached then (stopped, restarting, the link down),
// the data is here but the provider's process would stay STARTED, with
// no receipt in its log and no completion in its metrics, for ever. So
// the completion is owed from the moment the process completes (a key
// written with that step), and the notice loop tries again, receipt
// first when it is missing, until the provider has both.

// noticeKey marks consumer process pid as owing its provider the
// completion (and the receipt exchange, when Info.Receipt is false).
func noticeKey(pid string) []byte { return store.Key(store.PrefixTransfer, "c", pid) }

// noticeLoop runs until the service closes, telling providers of
// completions owed every NoticeRetry.
func (s *Service) noticeLoop() {
	t := time.NewTicker(s.o.NoticeRetry)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.tellOwed(s.ctx)
		}
	}
}

// tellOwed tries each completion owed once.
func (s *Service) tellOwed(ctx context.Context) {
	var pids []string
	prefix := noticeKey("")
	err := s.o.Store.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: prefix, KeysOnly: true}, func(k, _ []byte) error {
			pids = append(pids, string(k[len(prefix):]))
			return nil
		})
	})
	if err != nil {
		s.log.Warn("reading the completions owed to providers", "err", err)
		return
	}
	for _, pid := range pids {
		if ctx.Err() != nil {
			return
		}
		s.tellOwedOne(ctx, pid)
	}
}

func (s *Service) tellOwedOne(ctx context.Context, pid string) {
	unlock := s.lockProc(dsp.Consumer, pid)
	defer unlock()
	e, err := s.load(dsp.Consumer, pid)
	if err != nil || e.p.State() != dsp.Completed {
		s.forgetNotice(pid)
		return
	}
	provider, err := peer.Decode(e.info.Provider)
	if err != nil {
		s.forgetNotice(pid)
		return
	}
	if !s.owes(pid) {
		return // told meanwhile (the fetch itself, as this tick began)
	}
	if !e.info.Receipt {
		err := s.exchangeReceipt(ctx, provider, e)
		var re *RefusedError
		switch {
		case errors.As(err, &re):
			// The provider will not sign one now (the agreement ended or
			// was revoked since): the completion is still its to know.
			s.log.Warn("the provider refused the receipt owed for a transfer; telling it the transfer completed without one", "transfer", pid, "code", re.Code, "reasons", re.Reasons)
		case err != nil:
			s.log.Debug("receipt exchange owed to the provider failed again", "transfer", pid, "err", err)
			return
		}
	}
	s.tellCompleted(ctx, provider, e, []protocol.Message{&protocol.TransferCompletionMessage{Pids: e.p.Pids()}})
}

// tellCompleted sends a completed consumer process's completion to its
// provider and, once the provider has it (or answers that it cannot take
// it: then nothing will change its mind), clears what is owed. The
// caller holds the process's lock.
func (s *Service) tellCompleted(ctx context.Context, provider peer.ID, e *entry, msgs []protocol.Message) {
	for _, m := range msgs {
		ans, err := s.exchange(ctx, provider, m)
		var re *RefusedError
		switch {
		case errors.As(err, &re):
			s.log.Warn("the provider did not take the completion of a transfer", "transfer", e.info.ID, "code", re.Code, "reasons", re.Reasons)
		case err != nil:
			s.log.Warn("telling the provider the transfer completed failed; it is tried again", "transfer", e.info.ID, "err", err)
			return
		default:
			s.step(e, dsp.Msg{Type: dsp.MsgReceive, From: provider.String(), Body: ans})
		}
	}
	s.forgetNotice(e.info.ID)
}

// owes reports whether the completion of pid is still owed.
func (s *Service) owes(pid string) bool {
	err := s.o.Store.View(func(tx *store.Txn) error { _, err := tx.Get(noticeKey(pid)); return err })
	return err == nil
}

func (s *Service) forgetNotice(pid string) {
	if err := s.o.Store.Update(func(tx *store.Txn) error { return tx.Delete(noticeKey(pid)) }); err != nil {
		s.log.Warn("clearing a completion told", "transfer", pid, "err", err)
	}
}
