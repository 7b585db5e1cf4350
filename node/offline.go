package node

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/store"
)

// ReadAuditOffline lists and, with verify, checks the transaction log of
// the data directory dir while no daemon runs there: a stopped node, or a
// backup copy, checked without starting it as a node (which would join
// its federations). It takes the directory's lock as a daemon does, so
// neither can start while the other reads.
func ReadAuditOffline(dir string, from uint64, limit int, verify bool, anchors []audit.Anchor) (audit.Listing, error) {
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err != nil {
		return audit.Listing{}, fmt.Errorf("%s is not a node's data directory (no %s): %w", dir, ConfigFile, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return audit.Listing{}, err
	}
	defer unlock()
	db, err := store.Open(filepath.Join(dir, StoreDir), store.Options{Logger: slog.New(slog.DiscardHandler), BlobsDir: filepath.Join(dir, BlocksDir)})
	if err != nil {
		return audit.Listing{}, err
	}
	defer db.Close()
	if err := checkFormat(db, dir); err != nil {
		return audit.Listing{}, err
	}
	return audit.Open(db).Read(from, limit, verify, anchors)
}
