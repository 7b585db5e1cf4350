package transfer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/protocol"
)

// The block phase of a snapshot pull, both sides.
//
// Consumer: Streams workers each ask for a run of blocks on their own
// stream, verify every block against its CID as it arrives and write it
// to the store's blobs (blockfiles.go) without a sync, at once, while its
// bytes are still in the CPU's cache, and put its frame buffer back for
// the next block (so a fetch reads into a few cached buffers rather than
// cycling through groups of cold ones). The written blocks go to one
// storer, which gathers them in groups of BatchBlocks blocks or syncBytes
// bytes, whichever comes first (an in-memory store, which has no blobs,
// gets a group's blocks in one batch there). A syncer makes the groups durable with
// one sync of the blobs (store.Blobs.Sync: an fdatasync of the segment) per
// syncEvery bytes or so, while the next groups are written, so the disk
// works while the network does. A block is reported (and counted as
// held) only once a sync that started after it was written has finished,
// so a fetch cut off anywhere resumes from what is durable, and a
// verified block that was not yet synced is fetched again unless it is
// still on disk. A block written but not synced when the machine (not
// just the process) crashed may be lost, or keep its name and lose its
// bytes; landing checks every block against its CID and drops one that
// fails (heldBlock in land.go), so the next fetch fetches it again.
//
// Provider: each block is read from its blob with one read into the
// frame buffer (from the database, in one read transaction per request,
// for blocks kept there) and written as one frame with one stream write.

// syncBytes is the most bytes of verified blocks one store write holds.
const syncBytes = 16 << 20

// syncEvery is the least bytes of written blocks one sync covers (unless
// the fetch ends first), and maxUnsyncedGroups the most written groups
// waiting for a sync: the writer stops there until a sync catches up.
const (
	syncEvery         = 32 << 20
	maxUnsyncedGroups = 8
)

// verifiedBlock is a block that matched its CID: written to the blobs
// (data nil) or waiting to be stored in a batch (no blobs).
type verifiedBlock struct {
	ref  content.BlockRef
	size int64
	data []byte  // nil once written
	buf  *[]byte // data's frame buffer, back to framePools once stored; nil for a rebuilt delta
	name string  // the blob it is written as (blockfiles.go)
}

// fetchBlocks fetches refs over Streams parallel streams and stores them,
// adding the bytes that come over the wire to moved. A block with a base in
// bases is asked for as a delta against it. A block that fails
// verification is fetched again, whole, up to maxBlockTries times.
// onBlock is called for every block once it is on disk.
func (s *Service) fetchBlocks(ctx context.Context, provider peer.ID, pids protocol.Pids, refs []content.BlockRef,
	bases map[cid.Cid]cid.Cid, onBlock func(int64), refetched, moved *atomic.Int64) error {
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
				if err := s.fetchBatch(ctx, provider, pids, batch, bases, verified, refetched, moved); err != nil {
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

// storeBlocks gathers the blocks arriving on in (written already, or
// written here when there are no blobs) in groups of BatchBlocks blocks
// or syncBytes bytes, without a sync each; a syncer makes them durable in
// the background, at least syncEvery bytes (or half of maxUnsyncedGroups
// groups) per sync, and only then reports them. At most
// maxUnsyncedGroups groups wait for a sync, and in stops being read
// until one is free, which bounds what a machine crash can cost. It reads in to its end even after a failed write (so
// that no fetching worker blocks), and cancels the fetch with the failure.
func (s *Service) storeBlocks(in <-chan verifiedBlock, onBlock func(int64), cancel context.CancelCauseFunc) error {
	groups := make(chan []verifiedBlock, 1)
	unsynced := make(chan writtenGroup, maxUnsyncedGroups)
	slots := make(chan struct{}, maxUnsyncedGroups)
	written, synced := make(chan error, 1), make(chan error, 1)
	go func() {
		var err error
		for g := range groups {
			if err != nil {
				continue
			}
			slots <- struct{}{}
			if err = s.putBlocks(g); err != nil {
				<-slots
				cancel(err)
				continue
			}
			w := writtenGroup{sizes: make([]int64, len(g)), cids: make([]string, len(g))}
			for i, b := range g {
				w.sizes[i], w.cids[i] = b.size, b.name
				if b.buf != nil {
					putFrameBuf(b.buf) // the store copied it
				}
			}
			unsynced <- w
		}
		close(unsynced)
		written <- err
	}()
	go func() { synced <- s.syncBlocks(unsynced, slots, onBlock, cancel) }()
	var g []verifiedBlock
	n := 0
	for b := range in {
		g = append(g, b)
		if n += int(b.size); n >= syncBytes || len(g) >= s.o.BatchBlocks {
			groups <- g
			g, n = nil, 0
		}
	}
	if len(g) > 0 {
		groups <- g
	}
	close(groups)
	err := <-written
	if serr := <-synced; err == nil {
		err = serr
	}
	return err
}

// writtenGroup is a group of blocks written and waiting for a sync.
type writtenGroup struct {
	sizes []int64
	cids  []string // the blobs' names
}

// syncBlocks syncs the store for the groups written on unsynced, several
// at a time, reports their blocks once synced, and frees their slots.
// Once synced, the blocks leave the page cache (store.Blobs.Uncache):
// landing reads each once, and a fetch larger than the cache would
// otherwise make the kernel reclaim pages as it writes (write(2) into the
// block files was 16-39% of a 1 GiB block phase's CPU, most where the
// cache was full). That runs on a goroutine of its own, and a group it
// has no room for stays cached: posix_fadvise can wait on every CPU
// (draining their page lists), and must not hold up the next sync.
func (s *Service) syncBlocks(unsynced <-chan writtenGroup, slots <-chan struct{}, onBlock func(int64), cancel context.CancelCauseFunc) error {
	var uncache chan []string
	if b := s.blobs(); b != nil {
		uncache = make(chan []string, maxUnsyncedGroups)
		uncached := make(chan struct{})
		defer func() { close(uncache); <-uncached }()
		go func() {
			defer close(uncached)
			for cids := range uncache {
				if err := b.Uncache(cids...); err != nil {
					s.log.Warn("dropping fetched blocks from the page cache", "err", err)
				}
			}
		}()
	}
	var err error
	for first := range unsynced {
		batch := []writtenGroup{first}
		n := sum(first.sizes)
		for n < syncEvery && len(batch) < maxUnsyncedGroups/2 {
			g, ok := <-unsynced
			if !ok {
				break
			}
			batch = append(batch, g)
			n += sum(g.sizes)
		}
		if err == nil {
			if err = s.syncBlockWrites(); err != nil {
				err = fmt.Errorf("syncing %d stored blocks: %w", len(batch), err)
				cancel(err)
			}
		}
		for _, g := range batch {
			if err == nil {
				for _, size := range g.sizes {
					onBlock(size)
				}
			}
		}
		for range batch {
			<-slots
		}
		if uncache != nil && err == nil {
			for _, g := range batch {
				select {
				case uncache <- g.cids:
				default:
				}
			}
		}
	}
	return err
}

func sum(sizes []int64) (n int64) {
	for _, v := range sizes {
		n += v
	}
	return n
}

// putBlocks writes the verified blocks of g that a worker did not write
// already, not yet synced.
func (s *Service) putBlocks(g []verifiedBlock) error {
	w := s.newBlockWriter()
	defer w.cancel()
	for _, b := range g {
		if b.data == nil {
			continue
		}
		if err := w.put(b.ref.CID.String(), b.data); err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("storing %d blocks: %w", len(g), err)
	}
	return nil
}

func (s *Service) fetchBatch(ctx context.Context, provider peer.ID, pids protocol.Pids, batch []content.BlockRef,
	bases map[cid.Cid]cid.Cid, out chan<- verifiedBlock, refetched, moved *atomic.Int64) error {
	for try := 1; len(batch) > 0; try++ {
		if try > maxBlockTries {
			return fmt.Errorf("block %s after %d tries: %w", batch[0].CID, maxBlockTries, ErrCorruptBlock)
		}
		if try > 1 {
			bases = nil // a block whose delta did not rebuild it comes whole
		}
		bad, err := s.fetchOnce(ctx, provider, pids, batch, bases, out, moved)
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
	bases map[cid.Cid]cid.Cid, out chan<- verifiedBlock, moved *atomic.Int64) (bad []content.BlockRef, err error) {
	req := DataRequest{Type: TypeBlockRequest, ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid}
	withBases := false
	for _, b := range batch {
		req.CIDs = append(req.CIDs, b.CID.String())
		base, ok := bases[b.CID]
		if ok {
			req.Bases = append(req.Bases, base.String())
			withBases = true
		} else {
			req.Bases = append(req.Bases, "")
		}
	}
	if !withBases {
		req.Bases = nil
	}
	if !s.o.PlainBlocks {
		req.Encodings = []string{EncodingS2}
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
		buf, a, err := s.readBlockFrame(st, br)
		if err != nil {
			return nil, fmt.Errorf("fetching block %s: %w", ref.CID, err)
		}
		moved.Add(int64(len(a.payload)))
		data := a.payload
		var base []byte
		if a.delta {
			base, err = s.deltaBase(bases[ref.CID])
		}
		// A whole block that came compressed is kept as it came (see
		// blockfiles.go), from its frame buffer, until it is stored.
		var zbuf *[]byte
		var z []byte
		if err == nil && a.s2 {
			// Decompressed into a buffer of its own. Bytes that do not
			// decompress are a block that fails verification.
			var out *[]byte
			if out, err = decompressAnswer(data, base); err == nil {
				data = *out
			}
			if err == nil && !a.delta {
				zbuf, z = buf, a.payload
			} else {
				putFrameBuf(buf)
			}
			buf = out
		}
		if err == nil && a.delta {
			data, err = content.ApplyLineDelta(base, data)
			if buf != nil {
				putFrameBuf(buf) // data is a new slice
			}
			buf = nil
		}
		if err == nil {
			err = content.VerifyBlock(ref.CID, data)
		}
		if err != nil {
			if buf != nil {
				putFrameBuf(buf)
			}
			if zbuf != nil {
				putFrameBuf(zbuf)
			}
			s.log.Warn("block failed verification; fetching it again", "cid", ref.CID, "err", err)
			bad = append(bad, ref)
			continue
		}
		v := verifiedBlock{ref: ref, size: int64(len(data)), data: data, buf: buf, name: ref.CID.String()}
		if blobs := s.blobs(); blobs != nil {
			name, err := putBlob(blobs, ref.CID.String(), data, z)
			if buf != nil {
				putFrameBuf(buf) // Put copied it
			}
			if err != nil {
				if zbuf != nil {
					putFrameBuf(zbuf)
				}
				return nil, fmt.Errorf("storing block %s: %w", ref.CID, err)
			}
			v.data, v.buf, v.name = nil, nil, name
		}
		if zbuf != nil {
			putFrameBuf(zbuf)
		}
		out <- v
	}
	return bad, nil
}

// framePools hold the buffers block answers are read into (*[]byte), one
// pool per 64 KiB of capacity (blocks cluster around the target size, so
// a buffer of the next class up fits most); a buffer goes back once its
// block is written to the store or failed verification, so a fetch does
// not allocate and zero one per block.
var framePools [protocol.MaxFrameSize>>frameClassShift + 2]sync.Pool

const frameClassShift = 16

// frameBuf returns a buffer of n bytes from the pool of its class.
func frameBuf(n uint64) *[]byte {
	class := (n + 1<<frameClassShift - 1) >> frameClassShift
	if b, ok := framePools[class].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, class<<frameClassShift)
	return &b
}

// putFrameBuf gives b back to the pool it came from.
func putFrameBuf(b *[]byte) {
	framePools[cap(*b)>>frameClassShift].Put(b)
}

// readBlockFrame reads one answer frame within the timeout into a buffer
// from framePools, which the caller puts back once done with payload (a
// block answer may be a delta). It checks what protocol.ReadFrame checks.
func (s *Service) readBlockFrame(st network.Stream, br *bufio.Reader) (buf *[]byte, a blockAnswer, err error) {
	_ = st.SetReadDeadline(s.o.Now().Add(s.o.Timeout))
	n, err := readFrameLen(br)
	if err != nil {
		return nil, a, err
	}
	buf = frameBuf(n)
	f := *buf
	if _, err := io.ReadFull(br, f); err != nil {
		putFrameBuf(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, a, fmt.Errorf("reading frame body of %d bytes: %w: %w", n, protocol.ErrTruncatedFrame, io.ErrUnexpectedEOF)
		}
		return nil, a, fmt.Errorf("reading frame body: %w", err)
	}
	if a, err = decodeBlockAnswer(f); err != nil {
		putFrameBuf(buf)
		return nil, a, err
	}
	return buf, a, nil
}

// readFrameLen reads a frame's length prefix as protocol.ReadFrame does:
// a minimal uvarint, not zero, at most protocol.MaxFrameSize.
func readFrameLen(br *bufio.Reader) (uint64, error) {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := br.ReadByte()
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("reading frame prefix: %w: %w", protocol.ErrTruncatedFrame, io.ErrUnexpectedEOF)
			}
			return 0, fmt.Errorf("reading frame prefix: %w", err)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b >= 0x80 {
			continue
		}
		switch {
		case b == 0 && i > 0:
			return 0, fmt.Errorf("reading frame prefix: %w: non-minimal varint", protocol.ErrMalformedFrame)
		case x == 0:
			return 0, fmt.Errorf("reading frame: %w: zero length", protocol.ErrMalformedFrame)
		case x > protocol.MaxFrameSize:
			return 0, fmt.Errorf("reading frame: announced %d bytes, cap %d: %w", x, protocol.MaxFrameSize, protocol.ErrFrameTooLarge)
		}
		return x, nil
	}
	return 0, fmt.Errorf("reading frame prefix: %w: varint too long", protocol.ErrMalformedFrame)
}

// deltaBase returns the held block a delta answer was asked against.
func (s *Service) deltaBase(base cid.Cid) ([]byte, error) {
	if !base.Defined() {
		return nil, fmt.Errorf("%w: a delta for a block asked for whole", ErrBadRequest)
	}
	return s.getBlock(base.String())
}

// serveBlocks answers a block request: one frame per CID, in order, each
// read in the same read transaction. Where the consumer names a base it
// holds, and that base is a block of a version this provider served it
// under the same agreement, the frame is a line delta against the base
// when that is less than half the block. When the consumer reads
// EncodingS2, a block or delta goes compressed if that saves an eighth of
// it or more.
func (s *Service) serveBlocks(st network.Stream, info Info, cids, bases, encodings []string) {
	compress := slices.Contains(encodings, EncodingS2)
	m, err := s.manifest(info.Version)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeInternal, err.Error()))
		return
	}
	in := make(map[string]bool, len(m.Blocks))
	for _, b := range m.Blocks {
		in[b.CID.String()] = true
	}
	var allowed map[string]bool
	if slices.ContainsFunc(bases, func(b string) bool { return b != "" }) {
		if allowed, err = s.servedBlocks(info.Agreement, info.Version); err != nil {
			s.writeFrame(st, errorFrame(protocol.CodeInternal, err.Error()))
			return
		}
	}
	err = s.o.Store.View(func(tx *store.Txn) error {
		// One frame buffer for the whole request: each block is copied
		// once, from the store into it, after room for the frame head.
		pb := serveBuf()
		defer func() { servePool.Put(pb) }()
		buf := *pb
		defer func() { *pb = buf[:0] }()
		var zb []byte // compressed frames, once one is
		if compress {
			zp := serveBuf()
			defer func() { *zp = zb[:0]; servePool.Put(zp) }()
			zb = *zp
		}
		for i, c := range cids {
			if !in[c] {
				s.writeFrame(st, errorFrame(protocol.CodeWrongParty, fmt.Sprintf("block %s is not part of version %s", c, info.Version)))
				return nil
			}
			var err error
			if compress && (i >= len(bases) || !allowed[bases[i]]) {
				// Kept compressed: it goes as it is kept.
				var kept bool
				if zb, kept, err = s.appendCompressedBlock(zb[:frameHead], c); err == nil && kept {
					if err := s.writeServed(st, c, statusS2, zb); err != nil {
						return err
					}
					continue
				}
			}
			if err == nil {
				buf, err = s.appendBlock(tx, buf[:frameHead], c)
			}
			if err != nil {
				s.writeFrame(st, errorFrame(protocol.CodeInternal, fmt.Sprintf("reading block %s: %v", c, err)))
				return nil
			}
			frame, status := buf, byte(statusData)
			var base []byte // the base of a delta, for compressing it
			if i < len(bases) && allowed[bases[i]] {
				if bb, err := s.appendBlock(tx, nil, bases[i]); err == nil {
					b := buf[frameHead:]
					if d := content.LineDelta(bb, b); len(d) < len(b)/2 {
						frame = append(make([]byte, frameHead, frameHead+len(d)), d...)
						status, base = statusDelta, bb
					}
				}
			}
			if compress {
				var ok bool
				if zb, ok = compressAnswer(zb, frame[frameHead:], base, buf[frameHead:]); ok {
					frame, status = zb, compressedStatus(status)
				}
			}
			if err := s.writeServed(st, c, status, frame); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		st.Reset()
	}
}

// writeServed writes the answer for block c (the test hook CorruptOnce
// garbles it first).
func (s *Service) writeServed(st network.Stream, c string, status byte, frame []byte) error {
	if _, ok := s.corrupt.LoadAndDelete(c); ok {
		b := frame[frameHead:]
		b[len(b)/2] ^= 0xff
	}
	return s.writeFramed(st, status, frame)
}

// servePool holds the frame buffers block requests are served from
// (*[]byte), each with room for the largest block: a buffer made per
// request at the target size grew, by a copy into a new one, every time a
// block was larger than any before it in the request (block sizes spread
// from content.MinBlockSize to content.MaxBlockSize), which was about half
// the provider's CPU for reading blocks (growslice and clearing the fresh
// memory beside pread).
var servePool sync.Pool

func serveBuf() *[]byte {
	if b, ok := servePool.Get().(*[]byte); ok {
		*b = (*b)[:frameHead]
		return b
	}
	b := make([]byte, frameHead, frameHead+content.MaxBlockSize)
	return &b
}

// servedBlocks returns the blocks of the versions other than current whose
// manifests went to the consumer of agreement: the bases it may name.
func (s *Service) servedBlocks(agreement, current string) (map[string]bool, error) {
	var versions []string
	prefix := servedKey(agreement, "")
	err := s.o.Store.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: prefix, KeysOnly: true}, func(k, _ []byte) error {
			if v := string(k[len(prefix):]); v != current {
				versions = append(versions, v)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading the versions served under %s: %w", agreement, err)
	}
	out := map[string]bool{}
	for _, v := range versions {
		m, err := s.manifest(v)
		if err != nil {
			continue // a manifest gone since is simply no base
		}
		for _, b := range m.Blocks {
			out[b.CID.String()] = true
		}
	}
	return out, nil
}

// frameHead is the room an answer frame's head (length, status byte)
// takes at most.
const frameHead = binary.MaxVarintLen64 + 1

// writeFramed writes buf[frameHead:] as the payload of one answer frame,
// the frame head written into the room before it, with a single stream
// write, so a block goes out as one run of multiplexer frames rather than
// a tiny one for the head first.
func (s *Service) writeFramed(st network.Stream, status byte, buf []byte) error {
	n := 1 + len(buf) - frameHead
	if n > protocol.MaxFrameSize {
		return fmt.Errorf("writing a data frame of %d bytes: %w", n, protocol.ErrFrameTooLarge)
	}
	var head [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(head[:], uint64(n))
	start := frameHead - 1 - h
	copy(buf[start:], head[:h])
	buf[frameHead-1] = status
	_ = st.SetWriteDeadline(s.o.Now().Add(s.o.Timeout))
	if _, err := st.Write(buf[start:]); err != nil {
		return fmt.Errorf("writing a data frame: %w", err)
	}
	return nil
}
