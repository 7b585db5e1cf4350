package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBlobs: a blob put and synced is read back whole, also after the
// store is reopened; deleting it leaves ErrNotFound; names that are not
// plain letters and digits are refused.
func TestBlobs(t *testing.T) {
	t.Run("syncfs", func(t *testing.T) { testBlobs(t, haveSyncfs) })
	t.Run("fsync each", func(t *testing.T) { testBlobs(t, false) })
}

func testBlobs(t *testing.T, syncfs bool) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.Blobs()
	b.syncfs = syncfs
	if _, err := os.Stat(b.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("blob directory exists before the first Put: %v", err)
	}
	data := bytes.Repeat([]byte("block "), 50_000)
	const name = "bafkreiexampleblock0"
	if err := b.Put(name, data); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := len(b.pending); n != 0 {
		t.Fatalf("%d files and directories left to sync after Sync", n)
	}
	if ok, err := b.Has(name); !ok || err != nil {
		t.Fatalf("Has(%q) = %v, %v, want true", name, ok, err)
	}
	got, err := b.AppendTo([]byte("head"), name)
	if err != nil || !bytes.Equal(got, append([]byte("head"), data...)) {
		t.Fatalf("AppendTo(%q) = %d bytes, %v, want head and %d bytes", name, len(got), err, len(data))
	}
	if _, err := b.AppendTo(nil, "bafkreimissing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AppendTo(missing) err = %v, want ErrNotFound", err)
	}
	// A temporary file left by a crash does not stop a later Put.
	_, path, _ := b.path(name)
	if err := os.WriteFile(path+".1.tmp", []byte("left over"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.tmps.Store(0)
	if err := b.Put(name, data); err != nil {
		t.Fatalf("Put over a leftover temporary file: %v", err)
	}
	for _, bad := range []string{"", "ab", "../../etc", "a/b/c", "name.tmp", strings.Repeat("x", 256)} {
		if err := b.Put(bad, data); !errors.Is(err, ErrBadBlobName) {
			t.Errorf("Put(%q) err = %v, want ErrBadBlobName", bad, err)
		}
	}
	db.Close()

	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = db.Blobs()
	if got, err := b.AppendTo(nil, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after reopen AppendTo(%q) = %d bytes, %v", name, len(got), err)
	}
	if err := b.Delete(name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Has(name); ok {
		t.Fatal("Has after Delete = true")
	}
	if err := b.Delete(name); err != nil {
		t.Fatalf("Delete of a missing blob: %v", err)
	}
}

// TestBlobsUncache: a synced blob dropped from the page cache reads back
// whole from disk; a missing blob is no error, a bad name is.
func TestBlobsUncache(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.Blobs()
	data := bytes.Repeat([]byte("uncached "), 40_000)
	if err := b.Put("bafkreiuncache", data); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := b.Uncache("bafkreiuncache", "bafkreimissing"); err != nil {
		t.Fatalf("Uncache: %v", err)
	}
	if got, err := b.AppendTo(nil, "bafkreiuncache"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("AppendTo after Uncache = %d bytes, %v, want %d", len(got), err, len(data))
	}
	if err := b.Uncache("../x"); !errors.Is(err, ErrBadBlobName) {
		t.Fatalf("Uncache(../x) err = %v, want ErrBadBlobName", err)
	}
}

// TestBlobsConcurrentPuts: writers putting the same blob at once leave it
// whole, and no temporary file behind.
func TestBlobsConcurrentPuts(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.Blobs()
	data := bytes.Repeat([]byte("0123456789"), 30_000)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if err := b.Put("bafkreisame", data); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, err := b.AppendTo(nil, "bafkreisame"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("AppendTo = %d bytes, %v, want %d", len(got), err, len(data))
	}
	filepath.WalkDir(b.Dir(), func(path string, d os.DirEntry, err error) error {
		if strings.HasSuffix(path, ".tmp") {
			t.Errorf("temporary file left: %s", path)
		}
		return err
	})
}

// TestInMemoryHasNoBlobs: an in-memory store keeps everything in memory,
// so it has no blob directory.
func TestInMemoryHasNoBlobs(t *testing.T) {
	db, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Blobs() != nil {
		t.Fatal("in-memory store has blobs")
	}
}
