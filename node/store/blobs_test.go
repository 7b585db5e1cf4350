package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBlobs: a blob put and synced is read back whole, also after the
// store is reopened; deleting it leaves ErrNotFound; names that are not
// plain letters and digits are refused.
func TestBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.Blobs()
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
	if n := len(b.pending) + len(b.unsynced); n != 0 {
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
	// A blob kept as a file of its own, as nodes before segments wrote
	// them (a store opened with such files), is read.
	old := bytes.Repeat([]byte("old "), 10_000)
	const oldName = "bafkreioldfileblob"
	oldPath := b.path(oldName)
	db.Close()
	if err := os.MkdirAll(filepath.Dir(oldPath), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(oldPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	b = db.Blobs()
	if ok, err := b.Has(oldName); !ok || err != nil {
		t.Fatalf("Has(file blob) = %v, %v, want true", ok, err)
	}
	if got, err := b.AppendTo(nil, oldName); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("AppendTo(file blob) = %d bytes, %v, want %d", len(got), err, len(old))
	}
	if err := b.Uncache(oldName); err != nil {
		t.Fatalf("Uncache(file blob): %v", err)
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
	if got, err := b.AppendTo(nil, oldName); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("after reopen AppendTo(file blob) = %d bytes, %v", len(got), err)
	}
	for _, n := range []string{name, oldName} {
		if err := b.Delete(n); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Has(n); ok {
			t.Fatalf("Has(%s) after Delete = true", n)
		}
		if err := b.Delete(n); err != nil {
			t.Fatalf("Delete of a missing blob: %v", err)
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// The deletions hold after a restart.
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = db.Blobs()
	for _, n := range []string{name, oldName} {
		if ok, err := b.Has(n); ok || err != nil {
			t.Fatalf("after reopen Has(%s) = %v, %v, want deleted", n, ok, err)
		}
		if _, err := b.AppendTo(nil, n); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after reopen AppendTo(%s) err = %v, want ErrNotFound", n, err)
		}
	}
}

// TestBlobsAfterCrash: what a crash can leave at the end of a segment (a
// record cut short, bytes no record names, a record naming bytes past the
// end) loses no blob put before it, and later Puts work and are read
// after the next restart.
func TestBlobsAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.Blobs()
	blob := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 70_000+i) }
	names := []string{"bafkr4iblob0", "bafkr4iblob1", "bafkr4iblob2"}
	for i, n := range names[:2] {
		if err := b.Put(n, blob(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	seg := filepath.Join(b.Dir(), "seg")
	idx, _ := filepath.Glob(filepath.Join(seg, "*.idx"))
	if len(idx) != 1 {
		t.Fatalf("segment indexes %v, want one", idx)
	}
	for _, tail := range []struct {
		file string
		add  []byte
	}{
		{strings.TrimSuffix(idx[0], ".idx") + ".blk", []byte("bytes no record names")},
		// A put record naming 1 MiB past the end of the data.
		{idx[0], append([]byte{recPut, 12}, append([]byte("bafkr4iblobX"), bytes.Repeat([]byte{0, 0, 0, 1, 0, 0, 0, 0}, 2)...)...)},
		{idx[0], []byte{recPut, 12, 'b', 'a'}}, // cut short
	} {
		f, err := os.OpenFile(tail.file, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(tail.add)
		f.Close()
	}
	for round := range 2 {
		db, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		b := db.Blobs()
		if ok, _ := b.Has("bafkr4iblobX"); ok {
			t.Errorf("round %d: a record naming bytes past the end of its segment counts", round)
		}
		if round == 0 {
			if err := b.Put(names[2], blob(2)); err != nil {
				t.Fatal(err)
			}
		}
		for i, n := range names {
			if got, err := b.AppendTo(nil, n); err != nil || !bytes.Equal(got, blob(i)) {
				t.Errorf("round %d: AppendTo(%s) = %d bytes, %v, want %d", round, n, len(got), err, len(blob(i)))
			}
		}
		db.Close()
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
	// Blobs put one after another are dropped as one range.
	names := []string{"bafkreiuncache", "bafkreiuncache1", "bafkreiuncache2", "bafkreiuncache3"}
	for _, n := range names[1:] {
		if err := b.Put(n, append(bytes.Clone(data), n...)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := b.Uncache("bafkreiuncache", "bafkreiuncache3", "bafkreimissing", "bafkreiuncache1"); err != nil {
		t.Fatalf("Uncache: %v", err)
	}
	for i, n := range names {
		want := data
		if i > 0 {
			want = append(bytes.Clone(data), n...)
		}
		if got, err := b.AppendTo(nil, n); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("AppendTo(%s) after Uncache = %d bytes, %v, want %d", n, len(got), err, len(want))
		}
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
			for i := range 20 {
				if err := b.Put("bafkreisame", data); err != nil {
					t.Error(err)
				}
				if i%5 == 0 {
					if err := b.Sync(); err != nil {
						t.Error(err)
					}
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

// TestBlobsSegments: Put starts a new segment once one is full; blobs in
// every segment, and a deletion recorded in a later one, hold after a
// restart.
func TestBlobsSegments(t *testing.T) {
	defer func(n int64) { segmentBytes = n }(segmentBytes)
	segmentBytes = 150_000
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.Blobs()
	blob := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 60_000+i) }
	var names []string
	for i := range 7 {
		names = append(names, fmt.Sprintf("bafkr4iseg%d", i))
		if err := b.Put(names[i], blob(i)); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Delete(names[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if idx, _ := filepath.Glob(filepath.Join(b.Dir(), "seg", "*.idx")); len(idx) < 3 {
		t.Errorf("%d segments for 7 blobs of 60 kB, at most 150 kB each, want 3 or more", len(idx))
	}
	db.Close()
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = db.Blobs()
	for i, n := range names {
		got, err := b.AppendTo(nil, n)
		if i == 0 {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("AppendTo(deleted %s) err = %v, want ErrNotFound", n, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, blob(i)) {
			t.Errorf("AppendTo(%s) = %d bytes, %v, want %d", n, len(got), err, len(blob(i)))
		}
	}
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

// TestBlobsPutsWhileReading: Puts write their bytes outside the lock, so
// readers run while blobs are half written and segments fill up: a blob
// is either missing or read whole with its own bytes (never a reserved
// room not yet written), and every blob whose Put returned is there
// after a Sync and a restart, in whichever segment it went to.
func TestBlobsPutsWhileReading(t *testing.T) {
	defer func(n int64) { segmentBytes = n }(segmentBytes)
	segmentBytes = 400_000
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.Blobs()
	const writers, each = 6, 25
	name := func(w, i int) string { return fmt.Sprintf("bafkr4iw%dn%d", w, i) }
	blob := func(w, i int) []byte {
		// Sizes from 1 byte to about 130 kB, each byte naming the blob.
		return bytes.Repeat([]byte{byte('A' + w), byte('a' + i%26)}, 1+(i*7919+w*104729)%65_000)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 3 {
		wg.Go(func() {
			var buf []byte
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				w, i := (n+r)%writers, (n*13+r)%each
				held, err := b.Has(name(w, i))
				if err != nil {
					t.Error(err)
					return
				}
				buf, err = b.AppendTo(buf[:0], name(w, i))
				switch {
				case errors.Is(err, ErrNotFound):
					if held {
						t.Errorf("%s held but not found", name(w, i))
					}
				case err != nil:
					t.Error(err)
					return
				case !bytes.Equal(buf, blob(w, i)):
					t.Errorf("%s read %d bytes, not the %d put", name(w, i), len(buf), len(blob(w, i)))
					return
				}
			}
		})
	}
	var puts sync.WaitGroup
	for w := range writers {
		puts.Go(func() {
			for i := range each {
				if err := b.Put(name(w, i), blob(w, i)); err != nil {
					t.Error(err)
					return
				}
				// The same blob again, as two streams fetching one block.
				if i%5 == 0 {
					if err := b.Put(name(w, i), blob(w, i)); err != nil {
						t.Error(err)
					}
				}
				if i%7 == w {
					if err := b.Sync(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	puts.Wait()
	close(done)
	wg.Wait()
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if idx, _ := filepath.Glob(filepath.Join(b.Dir(), "seg", "*.idx")); len(idx) < 5 {
		t.Errorf("%d segments, want several (the test fills them while Puts write)", len(idx))
	}
	db.Close()
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = db.Blobs()
	for w := range writers {
		for i := range each {
			if got, err := b.AppendTo(nil, name(w, i)); err != nil || !bytes.Equal(got, blob(w, i)) {
				t.Errorf("after restart AppendTo(%s) = %d bytes, %v, want %d", name(w, i), len(got), err, len(blob(w, i)))
			}
		}
	}
}

// TestBlobsFailedPut: a Put whose write fails leaves its room in the
// segment unnamed: the blob is not held, not read, not there after a
// restart, and the blobs put before and after it are.
func TestBlobsFailedPut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.Blobs()
	blob := func(c byte) []byte { return bytes.Repeat([]byte{c}, 50_000) }
	if err := b.Put("bafkr4ibefore", blob('a')); err != nil {
		t.Fatal(err)
	}
	// A data file the write fails on (as on a full or failing disk).
	data := b.cur.data
	ro, err := os.Open(data.Name())
	if err != nil {
		t.Fatal(err)
	}
	b.cur.data = ro
	if err := b.Put("bafkr4ifailed", blob('b')); err == nil {
		t.Fatal("Put into a read-only segment succeeded")
	}
	b.cur.data = data
	ro.Close()
	if err := b.Put("bafkr4iafter", blob('c')); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if ok, err := b.Has("bafkr4ifailed"); ok || err != nil {
			t.Errorf("%s: Has(failed put) = %v, %v, want false", when, ok, err)
		}
		if got, err := b.AppendTo(nil, "bafkr4ifailed"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: AppendTo(failed put) = %d bytes, %v, want ErrNotFound", when, len(got), err)
		}
		for n, c := range map[string]byte{"bafkr4ibefore": 'a', "bafkr4iafter": 'c'} {
			if got, err := b.AppendTo(nil, n); err != nil || !bytes.Equal(got, blob(c)) {
				t.Errorf("%s: AppendTo(%s) = %d bytes, %v, want %d", when, n, len(got), err, len(blob(c)))
			}
		}
	}
	check("before restart")
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b = db.Blobs()
	check("after restart")
}

// TestBlobsSyncWaitsForRunningSync: a Sync called while another syncs
// the segment a returned Put wrote to returns only once that one has
// synced it (two fetches, or a build and a fetch, syncing at once): the
// running Sync took the segment off the list, and the second one, which
// found nothing to sync, returned at once and had its caller report the
// blob on disk before it was. The test lets the first Sync go once the
// second returns or after half a second; it checks only the order.
func TestBlobsSyncWaitsForRunningSync(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.Blobs()
	if err := b.Put("bafkr4isynced", bytes.Repeat([]byte("x"), 70_000)); err != nil {
		t.Fatal(err)
	}
	inSync, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var firstDone atomic.Bool
	defer func(f func(*os.File) error) { blobsDatasync = f }(blobsDatasync)
	blobsDatasync = func(f *os.File) error {
		first := false
		once.Do(func() { first = true })
		if !first {
			return datasync(f)
		}
		close(inSync)
		<-release
		err := datasync(f)
		firstDone.Store(true)
		return err
	}
	first := make(chan error, 1)
	go func() { first <- b.Sync() }()
	<-inSync
	second := make(chan error, 1)
	go func() { second <- b.Sync() }()
	var err2 error
	select {
	case err2 = <-second:
		if !firstDone.Load() {
			t.Error("a Sync returned while the running one had not yet synced the blob put before both")
		}
		close(release)
	case <-time.After(500 * time.Millisecond):
		close(release)
		err2 = <-second
		if !firstDone.Load() {
			t.Error("a Sync returned before the running one had synced the blob put before both")
		}
	}
	if err := <-first; err != nil || err2 != nil {
		t.Fatalf("Syncs: %v, %v", err, err2)
	}
}

// BenchmarkBlobsHasMissing measures asking for a blob the store does not
// hold (a transfer asks for every block of a manifest, most of them
// missing on a first fetch, and a block may be kept under two names):
// on a store with only segments it is an index lookup; on one that
// still has the per-file layout of earlier nodes, a failed stat as well.
func BenchmarkBlobsHasMissing(b *testing.B) {
	for _, layout := range []string{"segments", "per-file"} {
		b.Run(layout, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "db")
			db, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.Blobs().Put("bafkreiheld", []byte("held")); err != nil {
				b.Fatal(err)
			}
			if layout == "per-file" {
				p := db.Blobs().path("bafkreioldfile")
				if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
					b.Fatal(err)
				}
			}
			db.Close()
			if db, err = Open(dir, Options{}); err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			blobs := db.Blobs()
			for b.Loop() {
				if ok, err := blobs.Has("bafkreimissingblock"); ok || err != nil {
					b.Fatalf("Has = %v, %v", ok, err)
				}
			}
		})
	}
}
