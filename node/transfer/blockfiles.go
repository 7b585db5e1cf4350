package transfer

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/store"
)

// Where blocks live.
//
// A block is a blob of the store's blob directory named by its CID
// (store.Blobs: appended to a segment file and named in the segment's
// index, synced by one fdatasync for many blocks; nodes before segments wrote
// a file per block, which Blobs still reads). Nodes before blobs kept
// blocks in the database under t/b/<cid>, and an in-memory store (tests)
// still does: every read looks in the blobs first and then under the key,
// so blocks an existing node holds are still found and served, and a
// dropped block is removed from both. New blocks go to blobs only.
//
// In the blobs a block is kept S2-compressed when that saves an eighth of
// it or more, as the blob zName(c), else as the blob c (as every block
// written before was); readers look for the compressed one first and
// decompress it, so what they get is the block. An NGSI-LD block shrinks
// to about a seventeenth: a fetch writes, syncs and reads back that much
// less (a 1 GiB block phase was bound by the disk's write speed), a
// provider serves a block that went compressed without compressing it
// again, and the blobs take that much less room. Blocks kept in the
// database stay plain.
//
// Durability: a block written by a fetch is reported held only once a
// blob sync that started after its write has finished (blocks.go); a
// version's or file's blocks are synced before its manifest is stored, so
// a manifest on disk names blocks on disk.

// blobs returns the store's blob directory, nil when blocks go to the
// database (in-memory store).
func (s *Service) blobs() *store.Blobs { return s.o.Store.Blobs() }

// zName is the blob name of block c kept compressed. CIDs as this node
// writes them are base32 (multibase "b"), so no block's own name starts
// with "s2".
func zName(c string) string { return "s2" + c }

// blobNames are the names block c may be kept under in the blobs,
// compressed first.
func blobNames(c string) [2]string { return [2]string{zName(c), c} }

// errStoredBlock: a block kept compressed does not decompress to a
// block (a fault of the disk, or a writer outside this node).
var errStoredBlock = errors.New("stored block does not decompress")

// hasBlock reports whether this node holds block c (its bytes may still be
// bad; landing checks them).
func (s *Service) hasBlock(c string) (bool, error) {
	if b := s.blobs(); b != nil {
		for _, name := range blobNames(c) {
			if ok, err := b.Has(name); err != nil || ok {
				return ok, err
			}
		}
	}
	return s.hasKey(blockKey(c))
}

// getBlock returns the bytes of block c, or an error wrapping
// store.ErrNotFound.
func (s *Service) getBlock(c string) ([]byte, error) {
	if b := s.blobs(); b != nil {
		data, err := appendBlob(b, nil, c)
		if !errors.Is(err, store.ErrNotFound) {
			return data, err
		}
	}
	return s.getBytes(blockKey(c))
}

// appendBlock appends block c to dst, reading it in tx when it is not a
// file.
func (s *Service) appendBlock(tx *store.Txn, dst []byte, c string) ([]byte, error) {
	if b := s.blobs(); b != nil {
		out, err := appendBlob(b, dst, c)
		if !errors.Is(err, store.ErrNotFound) {
			return out, err
		}
	}
	return tx.AppendValue(dst, blockKey(c))
}

// appendCompressedBlock appends block c as kept compressed to dst, and
// reports whether it is kept so (false: dst unchanged, read it with
// appendBlock).
func (s *Service) appendCompressedBlock(dst []byte, c string) ([]byte, bool, error) {
	b := s.blobs()
	if b == nil {
		return dst, false, nil
	}
	out, err := b.AppendTo(dst, zName(c))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return dst, false, nil
	case err != nil:
		return dst, false, err
	}
	return out, true, nil
}

// appendBlob appends block c from the blobs to dst, decompressed when it
// is kept compressed.
func appendBlob(b *store.Blobs, dst []byte, c string) ([]byte, error) {
	zp := zPool.Get().(*[]byte)
	defer zPool.Put(zp)
	z, err := b.AppendTo((*zp)[:0], zName(c))
	if cap(z) > cap(*zp) {
		*zp = z[:0]
	}
	if errors.Is(err, store.ErrNotFound) {
		return b.AppendTo(dst, c)
	}
	if err != nil {
		return dst, err
	}
	n, err := decodedLen(z, content.MaxBlockSize)
	if err == nil {
		dst = slices.Grow(dst, n)
		err = decodeS2(dst[len(dst):len(dst)+n], z, nil)
	}
	if err != nil {
		return dst, fmt.Errorf("block %s: %w", c, errStoredBlock)
	}
	return dst[:len(dst)+n], nil
}

// zPool holds buffers for compressed blocks on their way to or from the
// blobs (*[]byte).
var zPool = sync.Pool{New: func() any { b := make([]byte, 0, s2.MaxEncodedLen(content.MaxBlockSize)); return &b }}

// putBlob writes block c to the blobs, compressed when that saves an
// eighth or more; z, when set, is the block compressed already (an answer
// that came so). It returns the blob's name.
func putBlob(b *store.Blobs, c string, data, z []byte) (string, error) {
	if z == nil {
		zp := zPool.Get().(*[]byte)
		defer zPool.Put(zp)
		if e := s2.Encode((*zp)[:cap(*zp)], data); worthCompressing(len(e), len(data)) {
			z = e
		}
	}
	if z != nil {
		return zName(c), b.Put(zName(c), z)
	}
	return c, b.Put(c, data)
}

// dropBlock removes block c from wherever it is held.
func (s *Service) dropBlock(c string) error {
	if b := s.blobs(); b != nil {
		for _, name := range blobNames(c) {
			if err := b.Delete(name); err != nil {
				return err
			}
		}
	}
	return s.o.Store.Update(func(tx *store.Txn) error { return tx.Delete(blockKey(c)) })
}

// blockWriter writes blocks without a sync each: to blobs, or to a store
// batch when there are none. sync makes what it wrote durable.
type blockWriter struct {
	s  *Service
	wb *store.Batch // nil when blocks go to blobs
}

func (s *Service) newBlockWriter() *blockWriter {
	w := &blockWriter{s: s}
	if s.blobs() == nil {
		w.wb = s.o.Store.NewBatch()
	}
	return w
}

// put writes block c, not yet synced.
func (w *blockWriter) put(c string, data []byte) error {
	var err error
	if w.wb == nil {
		_, err = putBlob(w.s.blobs(), c, data, nil)
	} else {
		err = w.wb.Set(blockKey(c), data)
	}
	if err != nil {
		return fmt.Errorf("storing block %s: %w", c, err)
	}
	return nil
}

// flush commits what a store batch holds (blobs are written by put), not
// yet synced; the writer is done after it.
func (w *blockWriter) flush() error {
	if w.wb == nil {
		return nil
	}
	return w.wb.FlushNoSync()
}

// putNew writes block c unless this node holds it already.
func (w *blockWriter) putNew(c string, data []byte) error {
	if ok, err := w.s.hasBlock(c); err != nil || ok {
		return err
	}
	return w.put(c, data)
}

// behind returns a put that hands blocks to a goroutine of their own,
// which writes each with putNew, so that the caller (a version build,
// which reads, encodes and hashes the entities) does not wait on the
// file system; the caller owns neither data nor the block after put. A
// put after a failed write returns that write's error. wait, which the
// caller must call once it puts no more (also when it gives up), returns
// once every block handed over is written, with the first error.
func (w *blockWriter) behind() (put func(c string, data []byte) error, wait func() error) {
	type block struct {
		c    string
		data []byte
	}
	// A few blocks in flight (each at most content.MaxBlockSize).
	ch := make(chan block, 4)
	done := make(chan struct{})
	var failed atomic.Pointer[error]
	go func() {
		defer close(done)
		for b := range ch {
			if failed.Load() != nil {
				continue
			}
			if err := w.putNew(b.c, b.data); err != nil {
				failed.Store(&err)
			}
		}
	}()
	put = func(c string, data []byte) error {
		if err := failed.Load(); err != nil {
			return *err
		}
		ch <- block{c, data}
		return nil
	}
	var waited bool
	wait = func() error {
		if !waited {
			waited = true
			close(ch)
			<-done
		}
		if err := failed.Load(); err != nil {
			return *err
		}
		return nil
	}
	return put, wait
}

// finish commits what the writer wrote so that a durable store write
// after it (a manifest's) covers it: blobs are synced, a store batch is
// flushed for the store's next sync.
func (w *blockWriter) finish() error {
	if w.wb == nil {
		return w.s.blobs().Sync()
	}
	return w.wb.FlushNoSync()
}

// cancel drops what was not flushed.
func (w *blockWriter) cancel() {
	if w.wb != nil {
		w.wb.Cancel()
	}
}

// syncBlockWrites returns once every block written (and flushed) before
// the call is on disk.
func (s *Service) syncBlockWrites() error {
	if b := s.blobs(); b != nil {
		return b.Sync()
	}
	return s.o.Store.Sync()
}
