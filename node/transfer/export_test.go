package transfer

import (
	"bufio"
	"encoding/json"
	"io"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/store"
)

// DatasetDirName is datasetDirName, for a test of its form on every OS.
var DatasetDirName = datasetDirName

// CorruptOnce makes the provider garble the next delivery of block c, as
// a bad link or disk would, so tests can watch the consumer catch it.
func CorruptOnce(s *Service, c string) { s.corrupt.Store(c, struct{}{}) }

// ManifestBlocks returns the block CIDs of a stored version.
func ManifestBlocks(s *Service, version string) ([]string, error) {
	m, err := s.manifest(version)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range m.Blocks {
		out = append(out, b.CID.String())
	}
	return out, nil
}

// ManifestBytes returns a stored version's manifest bytes.
func ManifestBytes(s *Service, version string) ([]byte, error) {
	return s.getBytes(manifestKey(version))
}

// ManifestEntities returns the entity count of a stored version.
func ManifestEntities(s *Service, version string) int {
	m, err := s.manifest(version)
	if err != nil {
		return -1
	}
	return int(m.Entities())
}

// BlockLen returns the size of a stored block.
func BlockLen(s *Service, c string) (int, error) {
	b, err := s.getBlock(c)
	return len(b), err
}

// BlockBytes returns a stored block's bytes.
func BlockBytes(s *Service, c string) ([]byte, error) { return s.getBlock(c) }

// StoreBlock writes data as block c where s keeps new blocks, as a crash
// can leave a block: held by its name, with other bytes.
func StoreBlock(s *Service, c string, data []byte) error {
	w := s.newBlockWriter()
	defer w.cancel()
	if err := w.put(c, data); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	return s.syncBlockWrites()
}

// MoveBlockToDB moves block c from its file into s's database, under the
// key where nodes kept blocks before they were files.
func MoveBlockToDB(s *Service, c string) error {
	b := s.blobs()
	data, err := appendBlob(b, nil, c)
	if err != nil {
		return err
	}
	if err := s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(blockKey(c), data) }); err != nil {
		return err
	}
	if err := b.Delete(zName(c)); err != nil {
		return err
	}
	return b.Delete(c)
}

// StoreCompressedBlob writes z as block c kept compressed, synced, as a
// fault of the disk can leave it: whatever z is.
func StoreCompressedBlob(s *Service, c string, z []byte) error {
	if err := s.blobs().Put(zName(c), z); err != nil {
		return err
	}
	return s.blobs().Sync()
}

// KeepBlockPlain rewrites block c as nodes before compressed blobs kept
// it: the blob named c, its bytes as they are. It reports whether the
// block was kept compressed.
func KeepBlockPlain(s *Service, c string) (bool, error) {
	b := s.blobs()
	was, err := b.Has(zName(c))
	if err != nil {
		return false, err
	}
	data, err := appendBlob(b, nil, c)
	if err != nil {
		return false, err
	}
	if err := b.Put(c, data); err != nil {
		return false, err
	}
	if err := b.Delete(zName(c)); err != nil {
		return false, err
	}
	return was, b.Sync()
}

// ReadFrameLen exposes the block reader's frame-length parser.
func ReadFrameLen(r io.Reader) (uint64, error) { return readFrameLen(bufio.NewReader(r)) }

// SetProvenanceJSON stores p as entity id's provenance the way nodes did
// before shared provenance records: the whole JSON under the entity.
func SetProvenanceJSON(s *Service, id string, p Provenance) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.provenanceWrite(func() error {
		return s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(provenanceKey(id), b) })
	})
}

// LastBuild says how the last build of dataset ds ran: whole (every
// entity read) or from the version before, and how many blocks it wrote.
func LastBuild(s *Service, ds string) (whole bool, recut int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.built[ds]
	return b.whole, b.recut
}

// ForgetBuilt makes the next build of every dataset a whole one.
func ForgetBuilt(s *Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.built)
}

// ManifestRefs returns the block references of a stored version.
func ManifestRefs(s *Service, version string) ([]content.BlockRef, error) {
	m, err := s.manifest(version)
	return m.Blocks, err
}

// ProvenanceValue returns what entity id's provenance key holds.
func ProvenanceValue(s *Service, id string) ([]byte, error) { return s.getBytes(provenanceKey(id)) }

// MovedRecorded reports whether transfer pid still keeps the record of
// what its earlier runs moved.
func MovedRecorded(s *Service, pid string) bool {
	ok, err := s.hasKey(movedKey(pid))
	return ok || err != nil
}

// HandleStream runs the service's transfer stream handler on st, so a test
// can stand in front of it (a provider that answers some requests itself).
func HandleStream(s *Service, st network.Stream) { s.handleStream(st) }
