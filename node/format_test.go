package node

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/node/store"
)

// formatStamp reads the store's format stamp with the node stopped.
func formatStamp(t *testing.T, c Config) string {
	t.Helper()
	db, err := store.Open(filepath.Join(c.DataDir, StoreDir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	if err := db.View(func(tx *store.Txn) (err error) { v, err = tx.Get(formatKey()); return err }); err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func setFormatStamp(t *testing.T, c Config, v string) {
	t.Helper()
	db, err := store.Open(filepath.Join(c.DataDir, StoreDir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *store.Txn) error { return tx.Set(formatKey(), []byte(v)) }); err != nil {
		t.Fatal(err)
	}
}

// TestNewerStoreIsRefused: a data directory taken back to an older
// mimnode after a newer one changed its store format is refused with
// what to do, and left as it was; a new store is stamped with this
// node's format.
func TestNewerStoreIsRefused(t *testing.T) {
	c := testConfig(t)
	n, err := New(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := n.ID()
	n.Close()
	this, newer := strconv.Itoa(StoreFormat), strconv.Itoa(StoreFormat+1)
	if got := formatStamp(t, c); got != this {
		t.Fatalf("a new store is stamped %q, want %s", got, this)
	}

	setFormatStamp(t, c, newer)
	_, err = New(context.Background(), c, nil)
	if !errors.Is(err, ErrNewerStore) || !strings.Contains(err.Error(), "store format "+newer) || !strings.Contains(err.Error(), c.DataDir) {
		t.Fatalf("New on a newer store: %v, want ErrNewerStore naming the format and the directory", err)
	}
	if got := formatStamp(t, c); got != newer {
		t.Errorf("the refused store's stamp became %q", got)
	}

	setFormatStamp(t, c, "two")
	if _, err = New(context.Background(), c, nil); err == nil || !strings.Contains(err.Error(), "unreadable format stamp") {
		t.Errorf("New on a store with a garbled stamp: %v", err)
	}

	// Stamped with this node's format again, the store opens as before.
	setFormatStamp(t, c, this)
	if n := startNode(t, c); n.ID() != id {
		t.Errorf("peer ID %s after the refusals, want %s", n.ID(), id)
	}
}
