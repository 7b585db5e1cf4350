package transfer

import (
	"bufio"
	"io"

	"github.com/mimnode/mimnode/node/store"
)

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
	b, err := s.getBytes(blockKey(c))
	return len(b), err
}

// StoreBlock writes data under block c's key in s's store, as a crash can
// leave a block: held by its key, with other bytes.
func StoreBlock(s *Service, c string, data []byte) error {
	return s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(blockKey(c), data) })
}

// ReadFrameLen exposes the block reader's frame-length parser.
func ReadFrameLen(r io.Reader) (uint64, error) { return readFrameLen(bufio.NewReader(r)) }
