package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
	"google.golang.org/protobuf/proto"
)

// A table file cut short (a disk that filled up, a copy interrupted, a
// crash on a file system that does not order its writes) makes badger
// panic in one of its own goroutines while it opens the store, where no
// caller can recover: the node died with a stack trace instead of saying
// what is wrong. Open therefore checks the footer of every table file the
// MANIFEST lists before badger opens them, as badger reads it (table
// initIndex): from the end, the checksum's length and the checksum, the
// index's length and the index, which must match the checksum. A table
// that fails is named in Open's error and left as it is.

// errCutShort: a length in the footer points before the file's start.
var errCutShort = errors.New("cut short: its footer names more bytes than the file holds")

// checkTable checks the footer and index checksum of the table file at
// path.
func checkTable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	pos := size
	// back reads the n bytes before pos and moves pos to their start.
	back := func(n int64) ([]byte, error) {
		if n < 0 || n > pos {
			return nil, errCutShort
		}
		pos -= n
		b := make([]byte, n)
		if _, err := f.ReadAt(b, pos); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := back(4)
	if err != nil {
		return err
	}
	sum, err := back(int64(binary.BigEndian.Uint32(b)))
	if err != nil {
		return err
	}
	var chk pb.Checksum
	if err := proto.Unmarshal(sum, &chk); err != nil {
		return fmt.Errorf("its index checksum does not decode: %w", err)
	}
	if b, err = back(4); err != nil {
		return err
	}
	index, err := back(int64(binary.BigEndian.Uint32(b)))
	if err != nil {
		return err
	}
	if err := y.VerifyChecksum(index, &chk); err != nil {
		return fmt.Errorf("its index does not match its checksum (%d bytes): %w", size, err)
	}
	return nil
}
