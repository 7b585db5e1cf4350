package store

import (
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestNearlyFullDiskStopsWritesNotReads: below MinFree every kind of
// write fails with ErrDiskFull, saying how much is free and what to do,
// and reads go on; once space is freed, writing resumes and nothing
// written before is lost. A store is not opened on such a disk.
func TestNearlyFullDiskStopsWritesNotReads(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	dir := filepath.Join(t.TempDir(), "badger")
	o := Options{MinFree: 64 << 20, DiskFree: func(string) (uint64, error) { return free.Load(), nil }}
	db, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	put := func(k string) error { return db.Update(func(tx *Txn) error { return tx.Set([]byte(k), []byte("v")) }) }
	if err := put("before"); err != nil {
		t.Fatal(err)
	}

	free.Store(10 << 20)
	waitRoomReading(db)
	err = put("during")
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "10 MiB free") || !strings.Contains(err.Error(), "Free some space") {
		t.Fatalf("Update on a nearly full disk: %v, want ErrDiskFull with the numbers and the remedy", err)
	}
	b := db.NewBatch()
	if err := b.Set([]byte("batch"), []byte("v")); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Batch.Set on a nearly full disk: %v", err)
	}
	b.Cancel()
	if err := db.Blobs().Put("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", []byte("blob")); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Blobs.Put on a nearly full disk: %v", err)
	}
	if err := db.View(func(tx *Txn) error { _, err := tx.Get([]byte("before")); return err }); err != nil {
		t.Errorf("a read on a nearly full disk: %v", err)
	}
	db.Close()
	if _, err := Open(dir, o); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "start it again") || strings.Contains(err.Error(), "writing resumes") {
		t.Errorf("Open on a nearly full disk: %v, want ErrDiskFull saying to start again once space is freed", err)
	}

	free.Store(1 << 30)
	if db, err = Open(dir, o); err != nil {
		t.Fatal(err)
	}
	if err := put("after"); err != nil {
		t.Fatalf("Update once space is freed: %v", err)
	}
	for _, k := range []string{"before", "after"} {
		if err := db.View(func(tx *Txn) error { _, err := tx.Get([]byte(k)); return err }); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if err := db.View(func(tx *Txn) error { _, err := tx.Get([]byte("during")); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused write: %v, want it absent", err)
	}
}

// waitRoomReading makes the next write read the free space again, as it
// does roomEvery after the last reading.
func waitRoomReading(db *DB) { db.room.last.Store(nil) }
