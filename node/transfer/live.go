package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// LiveChange is one pushed change on a live feed: the provider's change
// feed entry for an entity of the dataset.
type LiveChange struct {
	Seq    uint64         `json:"seq"`
	Op     ngsild.Op      `json:"op"`
	ID     string         `json:"id"`
	Entity *ngsild.Entity `json:"entity,omitempty"`
}

// liveRecheck is how often the provider re-checks a live feed's process
// and agreement while no change flows.
const liveRecheck = 500 * time.Millisecond

// serveLive pushes the dataset's changes from r.From on, as they are
// committed, until the agreement stops allowing it, the transfer leaves
// STARTED, or the consumer goes away. The last frame says why it ended.
func (s *Service) serveLive(st network.Stream, remote peer.ID, info Info, r *DataRequest) {
	a, err := s.agreement(info.Agreement)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeInvalidAgreement, err.Error()))
		return
	}
	ds, err := s.o.Datasets.Dataset(a.Dataset)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeAgreementNotValid, err.Error()))
		return
	}
	f, err := s.filterFor(ds)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeAgreementNotValid, err.Error()))
		return
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	// A revocation stops the feed at once (EndAgreements).
	done, refused := s.serve(info.Agreement, func(re *RefusedError) { cancel(re) })
	defer done()
	if refused != nil {
		cancel(refused)
	}
	// What the feed pushes counts in this side's usage record (MIM3
	// accounting), as the consumer counts what it lands: added to the
	// record at every recheck and when the feed ends.
	var pushed, pushedBytes atomic.Int64
	defer s.addPushed(info, &pushed, &pushedBytes)
	// The consumer sends nothing more; its side ending (close or reset)
	// means it left.
	go func() {
		var b [1]byte
		_ = st.SetReadDeadline(time.Time{})
		st.Read(b[:])
		cancel(errors.New("consumer left"))
	}()
	go func() {
		t := time.NewTicker(liveRecheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.addPushed(info, &pushed, &pushedBytes)
				if _, refused := s.checkData(remote, r, FormatLive); refused != nil {
					cancel(refused)
					return
				}
			}
		}
	}()
	err = s.o.NGSILD.Follow(ctx, r.From, func(c ngsild.Change) error {
		if !f.match(c.Types, c.Entity) && c.Op != ngsild.OpDelete {
			return nil
		}
		if c.Op == ngsild.OpDelete && !f.match(c.Types, nil) {
			return nil
		}
		if c.Op != ngsild.OpDelete {
			// An entity this node received under an agreement that does
			// not let it pass the data on is not pushed, as a version
			// leaves it out (servable, the same rule for many ids): its
			// provenance is written before the entity lands, so the
			// change is never seen without it.
			p, ok, err := s.ProvenanceOf(c.ID)
			if err != nil {
				return err
			}
			if ok {
				pass, err := s.passable(p, s.o.Now(), map[string]bool{})
				if err != nil {
					return err
				}
				if !pass {
					return nil
				}
			}
		}
		if ctx.Err() != nil {
			// Stopped (revoked, suspended, consumer gone) while Follow
			// had this change in hand: not pushed.
			return context.Cause(ctx)
		}
		b, err := json.Marshal(LiveChange{Seq: c.Seq, Op: c.Op, ID: c.ID, Entity: c.Entity})
		if err != nil {
			return err
		}
		if err := s.writeFrame(st, dataFrame(b)); err != nil {
			return err
		}
		pushed.Add(1)
		pushedBytes.Add(int64(len(b)))
		return nil
	})
	var re *RefusedError
	if errors.As(context.Cause(ctx), &re) {
		s.writeFrame(st, errorFrame(re.Code, re.Reasons...))
		return
	}
	if err != nil && ctx.Err() == nil {
		s.log.Debug("live feed ended", "transfer", info.ID, "err", err)
	}
	st.Reset()
}

// addPushed adds the changes a live feed pushed since the last call to
// the provider's record of the transfer, and resets the counts.
func (s *Service) addPushed(info Info, n, bytes *atomic.Int64) {
	unlock := s.lockProc(info.Role, info.ID)
	defer unlock()
	dn, db := n.Swap(0), bytes.Swap(0)
	if dn == 0 && db == 0 {
		return
	}
	e, err := s.load(info.Role, info.ID)
	if err == nil {
		e.info.Usage.Entities += dn
		e.info.Usage.Bytes += db
		err = s.save(e, nil)
	}
	if err != nil {
		s.log.Warn("recording a live feed's usage", "transfer", info.ID, "entities", dn, "bytes", db, "err", err)
	}
}

// LiveOptions tune a live feed.
type LiveOptions struct {
	// OnChange, if set, is called after each change has landed.
	OnChange func(LiveChange)
	// Retry is the pause before reconnecting after the stream broke
	// (default 500 ms).
	Retry time.Duration
	// Started, if set, is called with the transfer once the snapshot has
	// landed and the feed is about to open.
	Started func(Info)
	// Progress, if set, reports the snapshot as FetchOptions.Progress does.
	Progress func(Progress)
	// Interrupted, if set, is called when the feed breaks and the node
	// starts reconnecting (once per outage, with what broke it), and
	// Resumed when a stream to the provider is open again: a provider
	// gone, or a federation that let this node go, shows.
	Interrupted func(error)
	Resumed     func()
}

func liveSeqKey(pid string) []byte {
	return store.Key(store.PrefixTransfer, "l", pid)
}

// Live runs `mimnode fetch AGREEMENT --live`: it pulls the snapshot under a
// live transfer, then keeps a stream open on which the provider pushes
// each change to the dataset's entities, landing each in the node's store.
// The last change received is kept on disk; after a broken stream (or a
// restart of either side) it reconnects and resumes from the next one,
// without gaps or duplicates. It returns when ctx ends, or with a
// *RefusedError when the provider ends the feed (agreement expired or
// revoked, transfer suspended or terminated).
func (s *Service) Live(ctx context.Context, agreementID string, o LiveOptions) error {
	if !s.enter() {
		return ErrClosed
	}
	defer s.wg.Done()
	ctx, cancel := s.bind(ctx)
	defer cancel()
	if o.Retry <= 0 {
		o.Retry = 500 * time.Millisecond
	}
	a, err := s.heldAgreement(agreementID)
	if err != nil {
		return err
	}
	provider, err := peer.Decode(a.Provider)
	if err != nil {
		return fmt.Errorf("agreement %s provider: %w", a.ID, err)
	}
	var e *entry
	list, err := s.List()
	if err != nil {
		return err
	}
	suspended := ""
	for _, in := range list {
		if in.Role != dsp.Consumer || in.Agreement != a.ID || in.Format != FormatLive {
			continue
		}
		if in.State == dsp.Suspended && suspended == "" {
			suspended = in.ID
		}
		if in.State == dsp.Started {
			if e, err = s.load(dsp.Consumer, in.ID); err != nil {
				return err
			}
			break
		}
	}
	if e == nil && suspended != "" {
		// A second feed beside the suspended one would land the
		// snapshot again and leave two feeds once both run.
		return fmt.Errorf("the live transfer %s under agreement %s is SUSPENDED: resume it with 'mimnode transfer resume %s' and follow it again with 'mimnode fetch %s --live', or end it with 'mimnode transfer terminate %s': %w",
			suspended, a.ID, suspended, a.ID, suspended, ErrBadState)
	}
	if e == nil {
		if e, err = s.request(ctx, a, provider, FormatLive); err != nil {
			return err
		}
	}
	from, err := s.liveFrom(e)
	if err != nil {
		return err
	}
	if from == 0 {
		// First run: land the snapshot; the feed starts after the change
		// the version was built at.
		started := s.o.Now()
		u, err := s.pull(ctx, provider, e, a, FetchOptions{Progress: o.Progress})
		if err != nil {
			return err
		}
		u.Duration = s.o.Now().Sub(started)
		e.info.Usage = u
		// The snapshot gets its receipt and acknowledgement, as a fetch's
		// does: the provider's usage record and both logs then hold it
		// (MIM3); the changes pushed after it count on both sides.
		unlock := s.lockProc(dsp.Consumer, e.info.ID)
		if err := s.exchangeReceipt(ctx, provider, e); err != nil {
			s.log.Warn("receipt exchange failed", "transfer", e.info.ID, "err", err)
		}
		unlock()
		var da struct {
			Seq uint64 `json:"urn:mimnode:feedSeq"`
		}
		_ = json.Unmarshal(e.p.DataAddress(), &da)
		from = da.Seq + 1
		if err := s.save(e, func(tx *store.Txn) error { return tx.Set(liveSeqKey(e.info.ID), fmt.Appendf(nil, "%d", from)) }); err != nil {
			return err
		}
		s.forgetMoved(e.info.ID)
	}
	if o.Started != nil {
		o.Started(e.info)
	}
	prov := provenanceFor(a, e.info.Version)
	down := false // the feed broke, and no stream was opened since
	opened := func() {
		if down && o.Resumed != nil {
			o.Resumed()
		}
		down = false
	}
	for {
		err := s.follow(ctx, provider, e, &from, a, prov, o, opened)
		var re *RefusedError
		if errors.As(err, &re) {
			s.auditf(KindRefused, e.info.ID, provider.String(), map[string]any{"agreement": a.ID, "code": re.Code, "reasons": re.Reasons})
			s.told(a.ID, provider.String(), re.Code, re.Reasons)
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !down {
			down = true
			if o.Interrupted != nil {
				o.Interrupted(err)
			}
		}
		s.log.Debug("live feed broke; reconnecting", "transfer", e.info.ID, "from", from, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Retry):
		}
	}
}

func (s *Service) liveFrom(e *entry) (uint64, error) {
	b, err := s.getBytes(liveSeqKey(e.info.ID))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	if _, err := fmt.Sscanf(string(b), "%d", &n); err != nil {
		return 0, fmt.Errorf("live position of %s: %w", e.info.ID, err)
	}
	return n, nil
}

// follow reads one live stream, landing each change and recording the
// next sequence number in the same store transaction as its provenance.
// src is the agreement the feed runs under (ownership, liveOwnership).
func (s *Service) follow(ctx context.Context, provider peer.ID, e *entry, from *uint64, src policy.Agreement, prov []byte, o LiveOptions, opened func()) error {
	pids := e.p.Pids()
	st, br, err := s.dataStream(ctx, provider, DataRequest{Type: TypeLiveRequest, ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid, From: *from}, false)
	if err != nil {
		return err
	}
	opened()
	defer st.Reset()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	for {
		_ = st.SetReadDeadline(time.Time{}) // a quiet dataset sends nothing for a long time
		f, err := protocol.ReadFrame(br, protocol.MaxFrameSize)
		if err != nil {
			return err
		}
		b, err := DecodeAnswer(f)
		if err != nil {
			return err
		}
		var c LiveChange
		if err := json.Unmarshal(b, &c); err != nil {
			return fmt.Errorf("live change: %w: %v", ErrBadRequest, err)
		}
		if c.Seq < *from {
			continue // already landed
		}
		// The store owns the entity it lands; the caller's callback gets a
		// copy of its own.
		var seen LiveChange
		if o.OnChange != nil {
			_ = json.Unmarshal(b, &seen)
		}
		// A new state's provenance goes in before the entity, without a
		// sync (Land's covers it), as a landing's does (landChunk): a crash
		// between the two leaves provenance without its change, never the
		// change without provenance, which this node would serve onwards
		// as its own. A deletion's goes after the entity.
		// Only what this dataset sent may be written or deleted here
		// (ownership, land.go): a change to any other id is passed over.
		s.landMu.Lock() // as a snapshot's landing holds it (landChunk)
		// The description is read for each change: one this node
		// indexes meanwhile applies at once (declared.go).
		mine, err := s.landLive(ctx, src, s.declaredFor(src), prov, c)
		s.landMu.Unlock()
		if err != nil {
			return err
		}
		next := c.Seq + 1
		// The change counts in the transfer's usage record (MIM3
		// accounting), stored with the mark of the last change landed.
		e.info.Usage.Entities++
		e.info.Usage.Bytes += int64(len(f))
		if err := s.provenanceWrite(func() error {
			return s.save(e, func(tx *store.Txn) error {
				if mine && c.Op == ngsild.OpDelete {
					if err := tx.Delete(provenanceKey(c.ID)); err != nil {
						return err
					}
				}
				return tx.Set(liveSeqKey(e.info.ID), fmt.Appendf(nil, "%d", next))
			})
		}); err != nil {
			return fmt.Errorf("recording change %d: %w", c.Seq, err)
		}
		*from = next
		if o.OnChange != nil {
			o.OnChange(seen)
		}
	}
}

// landLive lands change c of a feed from src with provenance prov, when
// it is the feed's to land (liveOwnership) and its entity is of a type the
// dataset declares (dt), and says whether it was. Called with landMu held.
func (s *Service) landLive(ctx context.Context, src policy.Agreement, dt *declared, prov []byte, c LiveChange) (mine bool, err error) {
	if c.Op != ngsild.OpDelete && c.Entity != nil && !dt.fits(c.Entity) {
		s.noteMisfits(src, []string{c.ID})
		return false, nil
	}
	create, mine, err := s.liveOwnership(src, &c)
	if err != nil || !mine {
		return false, err
	}
	if c.Op != ngsild.OpDelete && c.Entity != nil {
		if err := s.provenanceWrite(func() error {
			return s.o.Store.UpdateNoSync(func(tx *store.Txn) error { return tx.Set(provenanceKey(c.ID), prov) })
		}); err != nil {
			return false, fmt.Errorf("recording the provenance of change %d: %w", c.Seq, err)
		}
	}
	return true, s.landChange(ctx, c, create)
}

// landChange writes one pushed change into the node's store: the entity's
// new state, or its deletion. An entity the store refuses, or a delete of
// one that is not there, is logged and passed over, so the feed goes on.
func (s *Service) landChange(ctx context.Context, c LiveChange, create bool) error {
	var errs []error
	var err error
	switch {
	case c.Op == ngsild.OpDelete:
		errs, err = s.o.NGSILD.Delete(ctx, []string{c.ID})
	case c.Entity != nil && create:
		// Land owns the entity from here on; c keeps only its id.
		errs, err = s.o.NGSILD.LandNew(ctx, []*ngsild.Entity{c.Entity})
	case c.Entity != nil:
		errs, err = s.o.NGSILD.Land(ctx, []*ngsild.Entity{c.Entity})
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("landing change %d: %w", c.Seq, err)
	}
	if errs[0] != nil {
		s.log.Warn("received change refused by the store", "id", c.ID, "op", c.Op, "err", errs[0])
	}
	if create && errs[0] != nil {
		// Not created: the id keeps no provenance of ours (one created
		// here meanwhile is this node's; one refused would otherwise
		// pass as ours when this node later creates it).
		return s.dropProvenance([]string{c.ID})
	}
	return nil
}

// liveOwnership decides whether change c of a live feed from src (the
// provider and dataset of its agreement) may land (mine), and whether its
// entity is created rather than replaced (create), by the rules a
// snapshot's landing follows (ownership, land.go). A change whose entity
// names another id than the change does is passed over too.
func (s *Service) liveOwnership(src policy.Agreement, c *LiveChange) (create, mine bool, err error) {
	if c.Entity != nil && c.Entity.ID != c.ID {
		s.log.Warn("received change passed over: its entity's id is not the change's", "provider", src.Provider, "change", c.Seq, "id", c.ID, "entity", c.Entity.ID)
		return false, false, nil
	}
	if c.Op == ngsild.OpDelete || c.Entity == nil {
		own, err := s.ownedIDs(src, []string{c.ID})
		if err != nil {
			return false, false, err
		}
		if len(own) == 0 {
			s.noteRefused(src, []string{c.ID})
		}
		return false, len(own) == 1, nil
	}
	owned, fresh, refused, err := s.ownership(src, []*ngsild.Entity{c.Entity})
	if err != nil {
		return false, false, err
	}
	s.noteRefused(src, refused)
	return len(fresh) == 1, len(owned)+len(fresh) == 1, nil
}
