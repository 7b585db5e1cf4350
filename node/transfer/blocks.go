package transfer

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol"
)

// The block phase of a snapshot pull, both sides.
//
// Consumer: Streams workers each ask for a run of blocks on their own
// stream and verify every block against its CID as it arrives; verified
// blocks go to one storer, which writes them in groups of BatchBlocks
// blocks or syncBytes bytes, whichever comes first (one synced store write
// each), while the workers keep reading about one group ahead. A block is
// reported (and counted as held) only once its group is on disk, so a
// fetch cut off anywhere resumes from what is durable, and a verified
// block that was not yet synced is simply fetched again.
//
// Provider: one read transaction per request; each block is read once
// (large values live in badger's value log) and written as one frame with
// one stream write.

// syncBytes is the most bytes of verified blocks one synced store write
// holds.
const syncBytes = 16 << 20

// verifiedBlock is a block that matched its CID and waits to be stored.
type verifiedBlock struct {
	ref  content.BlockRef
	data []byte
}

// fetchBlocks fetches refs over Streams parallel streams and stores them.
// A block that fails verification is fetched again, up to maxBlockTries
// times. onBlock is called for every block once it is on disk.
func (s *Service) fetchBlocks(ctx context.Context, provider peer.ID, pids protocol.Pids, refs []content.BlockRef,
	onBlock func(int64), refetched *atomic.Int64) error {
	if len(refs) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	verified := make(chan verifiedBlock, min(s.o.BatchBlocks, 16))
	stored := make(chan error, 1)
	go func() { stored <- s.storeBlocks(verified, onBlock, cancel) }()

	batches := make(chan []content.BlockRef)
	var wg sync.WaitGroup
	for range s.o.Streams {
		wg.Go(func() {
			for batch := range batches {
				if err := s.fetchBatch(ctx, provider, pids, batch, verified, refetched); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	// Few long requests rather than many short ones: each new stream
	// starts with a small flow-control window, and a stream kept busy
	// grows it. Workers still share the load when some finish early.
	per := max(s.o.BatchBlocks, min(MaxBlocksPerRequest, (len(refs)+4*s.o.Streams-1)/(4*s.o.Streams)))
	for b := range slices.Chunk(refs, per) {
		select {
		case batches <- b:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(batches)
	wg.Wait()
	// Whatever was verified is stored, also when the fetch was cut off.
	close(verified)
	if err := <-stored; err != nil {
		return err
	}
	return context.Cause(ctx)
}

// storeBlocks writes the blocks arriving on in, in synced groups of
// BatchBlocks blocks or syncBytes bytes; the next group fills while one is
// written. It reads in to its
// end even after a failed write (so that no fetching worker blocks), and
// cancels the fetch with the failure.
func (s *Service) storeBlocks(in <-chan verifiedBlock, onBlock func(int64), cancel context.CancelCauseFunc) error {
	groups := make(chan []verifiedBlock, 1)
	written := make(chan error, 1)
	go func() {
		var err error
		for g := range groups {
			if err != nil {
				continue
			}
			if err = s.putBlocks(g); err != nil {
				cancel(err)
				continue
			}
			for _, b := range g {
				onBlock(int64(len(b.data)))
			}
		}
		written <- err
	}()
	var g []verifiedBlock
	n := 0
	for b := range in {
		g = append(g, b)
		if n += len(b.data); n >= syncBytes || len(g) >= s.o.BatchBlocks {
			groups <- g
			g, n = nil, 0
		}
	}
	if len(g) > 0 {
		groups <- g
	}
	close(groups)
	return <-written
}

// putBlocks stores verified blocks in one synced write.
func (s *Service) putBlocks(g []verifiedBlock) error {
	wb := s.o.Store.NewBatch()
	defer wb.Cancel()
	for _, b := range g {
		if err := wb.Set(blockKey(b.ref.CID.String()), b.data); err != nil {
			return fmt.Errorf("storing block %s: %w", b.ref.CID, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("storing %d blocks: %w", len(g), err)
	}
	return nil
}

func (s *Service) fetchBatch(ctx context.Context, provider peer.ID, pids protocol.Pids, batch []content.BlockRef,
	out chan<- verifiedBlock, refetched *atomic.Int64) error {
	for try := 1; len(batch) > 0; try++ {
		if try > maxBlockTries {
			return fmt.Errorf("block %s after %d tries: %w", batch[0].CID, maxBlockTries, ErrCorruptBlock)
		}
		bad, err := s.fetchOnce(ctx, provider, pids, batch, out)
		if err != nil {
			return err
		}
		refetched.Add(int64(len(bad)))
		batch = bad
	}
	return nil
}

// fetchOnce asks for batch on one stream, hands every block that matches
// its CID to out, and returns the ones that did not.
func (s *Service) fetchOnce(ctx context.Context, provider peer.ID, pids protocol.Pids, batch []content.BlockRef,
	out chan<- verifiedBlock) (bad []content.BlockRef, err error) {
	req := DataRequest{Type: TypeBlockRequest, ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid}
	for _, b := range batch {
		req.CIDs = append(req.CIDs, b.CID.String())
	}
	// Timeout bounds opening the stream and then each block's frame (read
	// deadlines), not the whole run: a long run on a slow link is fine as
	// long as it moves.
	octx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	st, br, err := s.dataStream(octx, provider, req, true)
	cancel()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	for _, ref := range batch {
		data, err := s.readAnswer(st, br)
		if err != nil {
			return nil, fmt.Errorf("fetching block %s: %w", ref.CID, err)
		}
		if err := content.VerifyBlock(ref.CID, data); err != nil {
			s.log.Warn("block failed verification; fetching it again", "cid", ref.CID, "err", err)
			bad = append(bad, ref)
			continue
		}
		out <- verifiedBlock{ref: ref, data: data}
	}
	return bad, nil
}

// serveBlocks answers a block request: one data frame per CID, in order,
// each read in the same read transaction.
func (s *Service) serveBlocks(st network.Stream, info Info, cids []string) {
	m, err := s.manifest(info.Version)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeInternal, err.Error()))
		return
	}
	in := make(map[string]bool, len(m.Blocks))
	for _, b := range m.Blocks {
		in[b.CID.String()] = true
	}
	err = s.o.Store.View(func(tx *store.Txn) error {
		for _, c := range cids {
			if !in[c] {
				s.writeFrame(st, errorFrame(protocol.CodeWrongParty, fmt.Sprintf("block %s is not part of version %s", c, info.Version)))
				return nil
			}
			b, err := tx.Get(blockKey(c))
			if err != nil {
				s.writeFrame(st, errorFrame(protocol.CodeInternal, fmt.Sprintf("reading block %s: %v", c, err)))
				return nil
			}
			if _, ok := s.corrupt.LoadAndDelete(c); ok {
				b[len(b)/2] ^= 0xff
			}
			if err := s.writeData(st, b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		st.Reset()
	}
}

// writeData writes payload as one data answer frame (length, status byte,
// payload) with a single stream write, so a block goes out as one run of
// multiplexer frames rather than a tiny one for the prefix first.
func (s *Service) writeData(st network.Stream, payload []byte) error {
	n := 1 + len(payload)
	if n > protocol.MaxFrameSize {
		return fmt.Errorf("writing a data frame of %d bytes: %w", n, protocol.ErrFrameTooLarge)
	}
	buf := make([]byte, 0, binary.MaxVarintLen64+n)
	buf = binary.AppendUvarint(buf, uint64(n))
	buf = append(buf, statusData)
	buf = append(buf, payload...)
	_ = st.SetWriteDeadline(s.o.Now().Add(s.o.Timeout))
	if _, err := st.Write(buf); err != nil {
		return fmt.Errorf("writing a data frame: %w", err)
	}
	return nil
}
