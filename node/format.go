package node

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/mimnode/mimnode/node/store"
)

// StoreFormat is the version of what a node writes into its store: the
// key layout and the encodings under it. A node stamps its store with it
// when the store has no stamp (new, or made before stamps), and refuses
// to run on a store stamped with a newer format, which it would misread
// and could damage: a data directory taken back to an older mimnode
// after an upgrade. Whoever changes the stored format in a way older
// nodes cannot read raises it (and writes the upgrade of older stores).
const StoreFormat = 1

// ErrNewerStore: the store was written by a newer mimnode.
var ErrNewerStore = errors.New("the store was written by a newer mimnode")

func formatKey() []byte { return store.Key(store.PrefixMeta, "format") }

// checkFormat stamps db with StoreFormat if it has no stamp yet, and
// fails, changing nothing, if its stamp is one this node cannot read. A
// stamped store, every start but the first, is only read.
func checkFormat(db *store.DB, dir string) error {
	var v []byte
	err := db.View(func(tx *store.Txn) (err error) { v, err = tx.Get(formatKey()); return err })
	if errors.Is(err, store.ErrNotFound) {
		return db.Update(func(tx *store.Txn) error { return tx.Set(formatKey(), []byte(strconv.Itoa(StoreFormat))) })
	}
	if err != nil {
		return fmt.Errorf("reading the store's format: %w", err)
	}
	f, err := strconv.Atoi(string(v))
	if err != nil || f < 1 {
		return fmt.Errorf("the store in %s has an unreadable format stamp %q", dir, v)
	}
	if f > StoreFormat {
		return fmt.Errorf("%w: %s holds store format %d, and this mimnode (%s) reads formats up to %d; run the newer mimnode that wrote it (nothing was changed)",
			ErrNewerStore, dir, f, Version, StoreFormat)
	}
	return nil
}
