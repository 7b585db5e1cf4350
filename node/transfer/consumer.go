package transfer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// Progress is reported while a fetch runs.
type Progress struct {
	Phase         string `json:"phase"`  // "manifest", "blocks", "landing", "done"; a live feed's "live", "interrupted", "resumed"
	Blocks        int64  `json:"blocks"` // blocks held of the version so far
	TotalBlocks   int64  `json:"totalBlocks"`
	Bytes         int64  `json:"bytes"` // bytes held of the version so far
	TotalBytes    int64  `json:"totalBytes"`
	Entities      int64  `json:"entities"` // entities landed so far
	TotalEntities int64  `json:"totalEntities"`
	// Note says what happened, for the phases that are events of a live
	// feed: "interrupted" (what broke it) and "resumed".
	Note string `json:"note,omitempty"`
	// Transfer names the live feed's transfer, in its "live" phase.
	Transfer string `json:"transfer,omitempty"`
}

// FetchOptions tune one fetch.
type FetchOptions struct {
	// Progress, if set, is called as blocks arrive and entities land,
	// from the fetching goroutines (serialised).
	Progress func(Progress)
	// Full lands every entity of the version, not only those that changed
	// since the version landed last under the agreement: it puts back
	// received entities changed or deleted on this node since.
	Full bool
}

// maxBlockTries bounds how often one block is fetched when it keeps
// failing verification.
const maxBlockTries = 3

// Fetch runs a snapshot pull under agreement id: it asks the provider for a
// transfer (or resumes this node's started one), fetches the version's
// manifest and the blocks it lacks over parallel streams, verifying each
// against its CID, lands the entities in the node's store with provenance,
// exchanges the signed receipt and acknowledgement and completes the
// transfer. A refusal is a *RefusedError.
func (s *Service) Fetch(ctx context.Context, agreementID string, o FetchOptions) (Info, error) {
	if !s.enter() {
		return Info{}, ErrClosed
	}
	defer s.wg.Done()
	ctx, cancel := s.bind(ctx)
	defer cancel()
	a, err := s.heldAgreement(agreementID)
	if err != nil {
		return Info{}, err
	}
	// Whether this node is the agreement's consumer is the provider's
	// call, made on every request; asking anyway gets its reasons.
	provider, err := peer.Decode(a.Provider)
	if err != nil {
		return Info{}, fmt.Errorf("agreement %s provider: %w", a.ID, err)
	}
	e, err := s.startedConsumer(ctx, a, provider)
	if err != nil {
		return Info{}, err
	}
	started := s.o.Now()
	u, err := s.pull(ctx, provider, e, a, o)
	if err != nil {
		return s.refused(ctx, e, err)
	}
	u.Duration = s.o.Now().Sub(started)
	unlock := s.lockProc(dsp.Consumer, e.info.ID)
	defer unlock()
	e.info.Usage = u
	receiptErr := s.exchangeReceipt(ctx, provider, e)
	if receiptErr != nil {
		s.log.Warn("receipt exchange failed; it is tried again", "transfer", e.info.ID, "err", receiptErr)
	}
	// The completion is owed to the provider from here on: noted in the
	// step's own write, cleared once the provider has it (notice.go).
	rd, err := s.step(e, dsp.Msg{Type: dsp.MsgComplete}, func(tx *store.Txn) error { return tx.Set(noticeKey(e.info.ID), nil) })
	if err != nil {
		return e.info, fmt.Errorf("completing transfer %s: %w", e.info.ID, err)
	}
	s.forgetMoved(e.info.ID)
	if receiptErr == nil {
		s.tellCompleted(ctx, provider, e, rd.Messages)
	}
	return e.info, nil
}

// refused ends this side of a transfer whose provider refused a data
// request (the agreement expired or was revoked, the provider ended the
// transfer), so that the next Fetch asks afresh instead of resuming a
// transfer the provider will not serve. Other errors leave it STARTED for
// a resume.
func (s *Service) refused(ctx context.Context, e *entry, err error) (Info, error) {
	var re *RefusedError
	if !errors.As(err, &re) {
		return e.info, err
	}
	s.auditf(KindRefused, e.info.ID, e.p.Peer(), map[string]any{"agreement": e.info.Agreement, "code": re.Code, "reasons": re.Reasons})
	s.told(e.info.Agreement, e.p.Peer(), re.Code, re.Reasons)
	in, terr := s.Terminate(ctx, e.info.ID, fmt.Sprintf("provider refused data [%s]: %s", re.Code, strings.Join(re.Reasons, "; ")))
	if terr != nil && !errors.Is(terr, ErrBadState) {
		s.log.Warn("ending a refused transfer", "transfer", e.info.ID, "err", terr)
	}
	if terr == nil {
		return in, err
	}
	return e.info, err
}

// startedConsumer returns this node's STARTED consumer process under a
// (resuming an interrupted fetch), or requests a new transfer.
func (s *Service) startedConsumer(ctx context.Context, a policy.Agreement, provider peer.ID) (*entry, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, in := range list {
		if in.Role == dsp.Consumer && in.Agreement == a.ID && in.State == dsp.Started && in.Format == FormatBlocks {
			return s.load(dsp.Consumer, in.ID)
		}
	}
	return s.request(ctx, a, provider, FormatBlocks)
}

// abandon ends this side of a consumer process whose request failed,
// saying why, so that 'transfer list' does not keep a request nobody
// answers. When the provider may have heard of it (tell is set: the
// request was sent), it is told in the background, as it may have
// started its side. The caller holds the process's lock.
func (s *Service) abandon(e *entry, reason string, tell peer.ID) {
	rd, err := s.step(e, dsp.Msg{Type: dsp.MsgTerminate, Code: protocol.CodeCancelled, Reasons: []string{reason}})
	if err != nil {
		s.log.Warn("ending a failed transfer request", "transfer", e.info.ID, "err", err)
		return
	}
	if tell == "" || len(rd.Messages) == 0 || !s.enter() {
		return
	}
	go func() {
		defer s.wg.Done()
		for _, m := range rd.Messages {
			if _, err := s.exchange(s.ctx, tell, m); err != nil {
				s.log.Debug("telling the provider a failed request ended", "transfer", e.info.ID, "err", err)
			}
		}
	}()
}

// request asks the provider for a transfer and waits on the same stream
// for its start or termination.
func (s *Service) request(ctx context.Context, a policy.Agreement, provider peer.ID, format string) (*entry, error) {
	pid := newPid()
	unlock := s.lockProc(dsp.Consumer, pid)
	defer unlock()
	p, err := dsp.NewConsumer(dsp.Config{Pid: pid, Peer: provider.String(), CallbackAddress: "/p2p/" + s.self.String()})
	if err != nil {
		return nil, err
	}
	now := s.o.Now().UTC()
	e := &entry{p: p, info: Info{ID: pid, Role: dsp.Consumer, Agreement: a.ID, Dataset: a.Dataset, Format: format,
		Provider: a.Provider, Consumer: a.Consumer, Created: now}}
	rd, err := s.step(e, dsp.Msg{Type: dsp.MsgRequest, AgreementID: a.ID, Format: format})
	if err != nil {
		return nil, fmt.Errorf("requesting a transfer under %s: %w", a.ID, err)
	}
	octx, ocancel := context.WithTimeout(ctx, s.o.Timeout)
	st, err := s.o.Host.NewStream(network.WithAllowLimitedConn(octx, "transfer"), provider, p2pproto.ID(protocol.TransferProtocol))
	ocancel()
	if err != nil {
		// The provider never heard of this process: nothing to tell.
		s.abandon(e, "the provider could not be reached; the request was not sent", "")
		return nil, fmt.Errorf("the provider %s cannot be reached (offline, no address of it known here, or it no longer lets this node in: the members of a federation cut off a node removed from it): try again later; 'mimnode peers' lists the peers connected now, 'mimnode federation show' this node's membership as it last heard: %w", provider, err)
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	br := bufio.NewReader(st)
	fail := func(err error) (*entry, error) {
		s.abandon(e, "the transfer request failed here: "+err.Error(), provider)
		return nil, err
	}
	for _, m := range rd.Messages {
		if err := s.writeMsg(st, m); err != nil {
			return fail(fmt.Errorf("sending the transfer request to %s: %w", provider, err))
		}
	}
	// The answer, then the provider's start or termination.
	for i := 0; i < 2 && !e.p.State().Terminal() && e.p.State() != dsp.Started; i++ {
		wait := s.o.Timeout
		if i == 1 {
			// The provider may be building the version.
			wait = s.o.BuildTimeout
		}
		_ = st.SetReadDeadline(s.o.Now().Add(wait))
		body, err := protocol.ReadFrame(br, protocol.MaxTransferFrame)
		if isTimeout(err) {
			return fail(fmt.Errorf("the provider %s did not answer the transfer request within %s (it may be overloaded or stopped; try again later): %w", provider, wait, err))
		}
		if err != nil {
			return fail(fmt.Errorf("reading the provider's answer to the transfer request: %w", err))
		}
		m, err := protocol.Decode(body)
		if err != nil {
			return fail(fmt.Errorf("provider's answer to the transfer request: %w", err))
		}
		rd, err := s.step(e, dsp.Msg{Type: dsp.MsgReceive, From: provider.String(), Body: m})
		if err != nil {
			return fail(fmt.Errorf("stepping the provider's %s: %w", m.MessageType(), err))
		}
		if rd.Reply != nil {
			if err := s.writeMsg(st, rd.Reply); err != nil {
				return fail(fmt.Errorf("answering the provider: %w", err))
			}
		}
	}
	switch e.p.State() {
	case dsp.Started:
		var da struct {
			Version string `json:"urn:mimnode:version"`
		}
		if err := json.Unmarshal(e.p.DataAddress(), &da); err != nil || da.Version == "" {
			return fail(fmt.Errorf("provider's start names no version: %w", ErrBadRequest))
		}
		e.info.Version = da.Version
		if err := s.save(e, nil); err != nil {
			return nil, err
		}
		return e, nil
	case dsp.Terminated:
		code, reasons := e.p.Reason()
		s.auditf(KindRefused, pid, provider.String(), map[string]any{"agreement": a.ID, "code": code, "reasons": reasons})
		return nil, &RefusedError{Code: code, Reasons: reasons}
	}
	return nil, fmt.Errorf("transfer %s is %s after the provider's answer: %w", pid, e.p.State(), ErrBadState)
}

// exchange sends one DSP message on a new stream and reads its answer.
func (s *Service) exchange(ctx context.Context, p peer.ID, m protocol.Message) (protocol.Message, error) {
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	st, err := s.o.Host.NewStream(cctx, p, p2pproto.ID(protocol.TransferProtocol))
	if err != nil {
		return nil, fmt.Errorf("opening a transfer stream to %s: %w", p, err)
	}
	defer st.Close()
	stop := context.AfterFunc(cctx, func() { st.Reset() })
	defer stop()
	if err := s.writeMsg(st, m); err != nil {
		return nil, fmt.Errorf("sending %s: %w", m.MessageType(), err)
	}
	_ = st.CloseWrite()
	_ = st.SetReadDeadline(s.o.Now().Add(s.o.Timeout))
	body, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxTransferFrame)
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %s: %w", m.MessageType(), err)
	}
	return protocol.Decode(body)
}

// dataStream opens a stream, sends one data request and returns the
// stream and its reader for the answer frames.
// closeWrite says the request is all the consumer sends; a live feed keeps
// its side open, and closing it means leaving.
func (s *Service) dataStream(ctx context.Context, p peer.ID, r DataRequest, closeWrite bool) (network.Stream, *bufio.Reader, error) {
	st, err := s.o.Host.NewStream(ctx, p, p2pproto.ID(protocol.TransferProtocol))
	if err != nil {
		return nil, nil, fmt.Errorf("opening a transfer stream to %s: %w", p, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		st.Reset()
		return nil, nil, err
	}
	if err := s.writeFrame(st, b); err != nil {
		st.Reset()
		return nil, nil, fmt.Errorf("sending %s: %w", r.Type, err)
	}
	if closeWrite {
		_ = st.CloseWrite()
	}
	return st, bufio.NewReaderSize(st, 64<<10), nil
}

// readAnswer reads one answer frame within the timeout: a data payload,
// or the refusal it carries.
func (s *Service) readAnswer(st network.Stream, br *bufio.Reader) ([]byte, error) {
	_ = st.SetReadDeadline(s.o.Now().Add(s.o.Timeout))
	f, err := protocol.ReadFrame(br, protocol.MaxFrameSize)
	if err != nil {
		return nil, err
	}
	return DecodeAnswer(f)
}

func (s *Service) hasKey(k []byte) (bool, error) {
	var ok bool
	err := s.o.Store.View(func(tx *store.Txn) error {
		var err error
		ok, err = tx.Has(k)
		return err
	})
	return ok, err
}

// movedSoFar is what the runs of a consumer process moved before the
// current one: a fetch cut off (the node stopped, the link broke) and
// resumed moves only the blocks it still lacks, and its usage record and
// receipt count what every run moved.
type movedSoFar struct {
	Bytes  int64 `json:"bytes"`
	Blocks int64 `json:"blocks"`
}

// movedEvery spaces the records of movedSoFar during a fetch.
const movedEvery = 500 * time.Millisecond

func (s *Service) readMoved(pid string) (movedSoFar, error) {
	var m movedSoFar
	b, err := s.getBytes(movedKey(pid))
	if errors.Is(err, store.ErrNotFound) {
		return m, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		return m, fmt.Errorf("reading what transfer %s moved before: %w", pid, err)
	}
	return m, nil
}

// noteMoved records m for pid without a sync: a crash loses at most the
// last moments' count.
func (s *Service) noteMoved(pid string, m movedSoFar) {
	b, _ := json.Marshal(m)
	s.writeNoSync("recording what a transfer moved", pid, func(wb *store.Batch) error { return wb.Set(movedKey(pid), b) })
}

// forgetMoved drops pid's movedSoFar once its usage record, stored,
// holds what every run moved.
func (s *Service) forgetMoved(pid string) {
	s.writeNoSync("forgetting what a finished transfer moved", pid, func(wb *store.Batch) error { return wb.Delete(movedKey(pid)) })
}

// writeNoSync writes what put adds to a batch, without a sync, logging a
// failure: the records it serves are kept for the usage record's sake
// and must not fail a fetch.
func (s *Service) writeNoSync(what, pid string, put func(*store.Batch) error) {
	wb := s.o.Store.NewBatch()
	defer wb.Cancel()
	err := put(wb)
	if err == nil {
		err = wb.FlushNoSync()
	}
	if err != nil {
		s.log.Debug(what, "transfer", pid, "err", err)
	}
}

// pull fetches the manifest and the missing blocks and lands the entities.
func (s *Service) pull(ctx context.Context, provider peer.ID, e *entry, a policy.Agreement, o FetchOptions) (Usage, error) {
	var u Usage
	pids := e.p.Pids()
	earlier, err := s.readMoved(e.info.ID)
	if err != nil {
		return u, err
	}
	report := func(p Progress) {
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	report(Progress{Phase: "manifest"})
	m, mbytes, err := s.fetchManifest(ctx, provider, pids, e.info.Version)
	u.Bytes = earlier.Bytes + mbytes
	if err != nil {
		return u, err
	}
	var missing []content.BlockRef
	var held, heldBytes int64
	for _, b := range m.Blocks {
		ok, err := s.hasBlock(b.CID.String())
		if err != nil {
			return u, err
		}
		if ok {
			held++
			heldBytes += b.Size
			continue
		}
		missing = append(missing, b)
	}
	// Blocks an earlier run of this process fetched are held now, but
	// were moved for this transfer, not skipped.
	u.Skipped = max(0, held-earlier.Blocks)
	var mu sync.Mutex // serialises progress reports
	var nBlocks, nBytes atomic.Int64
	nBlocks.Store(held)
	nBytes.Store(heldBytes)
	total := Progress{TotalBlocks: int64(len(m.Blocks)), TotalBytes: m.Size, TotalEntities: m.Entities()}
	var refetched, moved atomic.Int64
	moved.Store(u.Bytes)
	lastNote := time.Now()
	onBlock := func(size int64) {
		nBlocks.Add(1)
		nBytes.Add(size)
		mu.Lock()
		p := total
		p.Phase, p.Blocks, p.Bytes = "blocks", nBlocks.Load(), nBytes.Load()
		report(p)
		if time.Since(lastNote) >= movedEvery {
			lastNote = time.Now()
			s.noteMoved(e.info.ID, movedSoFar{Bytes: moved.Load(), Blocks: earlier.Blocks + nBlocks.Load() - held})
		}
		mu.Unlock()
	}
	bases, err := s.deltaBases(a.ID, m, missing)
	if err != nil {
		return u, err
	}
	err = s.fetchBlocks(ctx, provider, pids, missing, bases, onBlock, &refetched, &moved)
	// Cut off or done, the count is exact here; the notes on the way
	// cover a crash.
	u.Bytes, u.Blocks = moved.Load(), earlier.Blocks+nBlocks.Load()-held
	s.noteMoved(e.info.ID, movedSoFar{Bytes: u.Bytes, Blocks: u.Blocks})
	if err != nil {
		return u, err
	}
	u.Refetched = refetched.Load()
	n, err := s.land(ctx, e, a, m, o.Full, func(n int64) {
		p := total
		p.Phase, p.Blocks, p.Bytes, p.Entities = "landing", total.TotalBlocks, total.TotalBytes, n
		report(p)
	})
	u.Entities = n
	if err != nil {
		return u, err
	}
	// Landed, the store holds every entity of the version. Land's count
	// (n, the usage record's) is only those it wrote and deleted: a new
	// version that changed 1 of 600 entities would end as "1/600".
	p := total
	p.Phase, p.Blocks, p.Bytes, p.Entities = "done", total.TotalBlocks, total.TotalBytes, total.TotalEntities
	report(p)
	return u, nil
}

// deltaBases picks, for each missing block of m's entities, the block at
// the same ids in the version landed last under agreement, where this
// node holds it: the provider may then send only the lines that differ.
func (s *Service) deltaBases(agreement string, m content.Manifest, missing []content.BlockRef) (map[cid.Cid]cid.Cid, error) {
	prev, err := s.getBytes(landedKey(agreement))
	if errors.Is(err, store.ErrNotFound) || len(missing) == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pm, err := s.manifest(string(prev))
	if err != nil {
		return nil, nil // no earlier manifest: whole blocks
	}
	old := pm.EntitiesPart().Blocks
	isEntity := make(map[cid.Cid]bool, len(m.Blocks))
	for _, b := range m.EntitiesPart().Blocks {
		isEntity[b.CID] = true
	}
	bases := map[cid.Cid]cid.Cid{}
	for _, b := range missing {
		if !isEntity[b.CID] {
			continue
		}
		base, ok := content.DeltaBase(old, b)
		if !ok {
			continue
		}
		if held, err := s.hasBlock(base.CID.String()); err != nil {
			return nil, err
		} else if held {
			bases[b.CID] = base.CID
		}
	}
	return bases, nil
}

// fetchManifest returns the manifest of version, held or fetched (and
// then stored), and the bytes that came over the wire for it.
func (s *Service) fetchManifest(ctx context.Context, provider peer.ID, pids protocol.Pids, version string) (m content.Manifest, moved int64, err error) {
	vc, err := cid.Decode(version)
	if err != nil {
		return content.Manifest{}, 0, fmt.Errorf("version %q: %w", version, err)
	}
	if b, err := s.getBytes(manifestKey(version)); err == nil {
		m, err := content.VerifyManifest(vc, b)
		if err == nil {
			return m, 0, nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req := DataRequest{Type: TypeManifestRequest, ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid}
	if !s.o.PlainBlocks {
		req.Encodings = []string{EncodingS2}
	}
	st, br, err := s.dataStream(cctx, provider, req, true)
	if err != nil {
		return content.Manifest{}, 0, err
	}
	defer st.Close()
	b, moved, err := s.readManifestAnswer(st, br)
	if err != nil {
		return content.Manifest{}, moved, fmt.Errorf("fetching manifest %s: %w", version, err)
	}
	m, err = content.VerifyManifest(vc, b)
	if err != nil {
		return content.Manifest{}, moved, fmt.Errorf("manifest %s from %s: %w", version, provider, err)
	}
	if err := s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(manifestKey(version), b) }); err != nil {
		return content.Manifest{}, moved, fmt.Errorf("storing manifest %s: %w", version, err)
	}
	return m, moved, nil
}

// readManifestAnswer reads the answer to a manifest request, which may
// come compressed, and returns the manifest bytes and the bytes that
// came for them.
func (s *Service) readManifestAnswer(st network.Stream, br *bufio.Reader) ([]byte, int64, error) {
	_ = st.SetReadDeadline(s.o.Now().Add(s.o.Timeout))
	f, err := protocol.ReadFrame(br, protocol.MaxFrameSize)
	if err != nil {
		return nil, 0, err
	}
	a, err := decodeBlockAnswer(f)
	moved := int64(len(a.payload))
	switch {
	case err != nil:
		return nil, moved, err
	case a.delta:
		return nil, moved, errBlockOnlyStatus
	case a.s2:
		b, err := decompressManifest(a.payload)
		return b, moved, err
	}
	return a.payload, moved, nil
}

// land writes the version's files and entities into the node's store
// with provenance (land.go).
func (s *Service) land(ctx context.Context, e *entry, a policy.Agreement, m content.Manifest, full bool, progress func(int64)) (int64, error) {
	m, err := s.landFiles(e, a, m) // files.go: a version's files, then its entities here
	if err != nil {
		return 0, err
	}
	n, notLanded, err := s.landEntities(ctx, a, e.info.Version, m, full, progress)
	e.info.NotLanded = notLanded
	return n, err
}

func provenanceFor(a policy.Agreement, version string) []byte {
	b, _ := json.Marshal(Provenance{Provider: a.Provider, Dataset: a.Dataset, Agreement: a.ID, Version: version,
		Distribute: permits(a, policy.ActionDistribute), Until: a.NotAfter})
	return b
}

// permits reports whether the agreement's policy permits action for its
// consumer whatever the purpose, time or count of later requests: a data
// copy whose agreement does not permit distribute outright (only for some
// purpose, after an embargo, for a number of days) must never be served
// onwards, as this node decides it once, at landing, without knowing
// those requests.
func permits(a policy.Agreement, action policy.Action) bool {
	d := policy.Evaluate(a.Policy, policy.Request{Now: a.NotBefore, Action: action, PeerID: a.Consumer}, policy.ScopeCatalog)
	return d.Unconditional()
}

// isTimeout reports whether err is a read or write deadline passing, as
// the stream muxers and transports report it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
