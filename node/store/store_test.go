package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// openBoth runs f against an on-disk and an in-memory store: one conformance
// suite for both ways of opening.
func openBoth(t *testing.T, f func(t *testing.T, db *DB)) {
	for _, tc := range []struct {
		name string
		o    Options
	}{{"disk", Options{}}, {"memory", Options{InMemory: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(t.TempDir(), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f(t, db)
		})
	}
}

func TestGetSetDelete(t *testing.T) {
	openBoth(t, func(t *testing.T, db *DB) {
		k := Key(PrefixMeta, "a", "b")
		if string(k) != "m/a/b" {
			t.Fatalf("Key = %q, want m/a/b", k)
		}
		err := db.View(func(tx *Txn) error { _, err := tx.Get(k); return err })
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get missing: %v, want ErrNotFound", err)
		}
		if err := db.Update(func(tx *Txn) error { return tx.Set(k, []byte("v")) }); err != nil {
			t.Fatal(err)
		}
		var got []byte
		db.View(func(tx *Txn) error { got, err = tx.Get(k); return err })
		if string(got) != "v" {
			t.Fatalf("Get = %q, %v; want v", got, err)
		}
		db.Update(func(tx *Txn) error { return tx.Delete(k) })
		db.View(func(tx *Txn) error {
			ok, _ := tx.Has(k)
			got = nil
			if ok {
				got = []byte{1}
			}
			return nil
		})
		if got != nil {
			t.Fatal("key still there after Delete")
		}
	})
}

func TestIterate(t *testing.T) {
	openBoth(t, func(t *testing.T, db *DB) {
		db.Update(func(tx *Txn) error {
			for i := 0; i < 5; i++ {
				tx.Set(Key(PrefixCatalog, fmt.Sprint(i)), []byte{byte(i)})
			}
			return tx.Set(Key(PrefixMeta, "x"), nil)
		})
		collect := func(o IterOptions) (keys string) {
			db.View(func(tx *Txn) error {
				return tx.Iterate(o, func(k, v []byte) error {
					keys += string(k[len(PrefixCatalog):])
					if len(keys) == 3 {
						return ErrStop
					}
					return nil
				})
			})
			return keys
		}
		for _, tc := range []struct {
			name string
			o    IterOptions
			want string
		}{
			{"prefix", IterOptions{Prefix: []byte(PrefixCatalog)}, "012"},
			{"reverse", IterOptions{Prefix: []byte(PrefixCatalog), Reverse: true}, "432"},
			{"start", IterOptions{Prefix: []byte(PrefixCatalog), Start: Key(PrefixCatalog, "3")}, "34"},
			{"keys only", IterOptions{Prefix: []byte(PrefixCatalog), KeysOnly: true}, "012"},
		} {
			if got := collect(tc.o); got != tc.want {
				t.Errorf("%s: Iterate visited %q, want %q", tc.name, got, tc.want)
			}
		}
	})
}

func TestBatchAndReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for i := 0; i < 10000; i++ {
		b.Set(Key(PrefixNGSILD, fmt.Sprintf("%05d", i)), make([]byte, 100))
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *Txn) error {
		return tx.Iterate(IterOptions{Prefix: []byte(PrefixNGSILD), KeysOnly: true}, func(k, v []byte) error { n++; return nil })
	})
	if n != 10000 {
		t.Fatalf("after reopen %d keys, want 10000", n)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

// TestLargeValues checks values on both sides of the value-log threshold
// read back intact, in memory too (where badger has no value log).
func TestLargeValues(t *testing.T) {
	openBoth(t, func(t *testing.T, db *DB) {
		for _, n := range []int{100, 32 << 10, 200 << 10} {
			k := Key(PrefixMeta, fmt.Sprint(n))
			v := make([]byte, n)
			for i := range v {
				v[i] = byte(i)
			}
			if err := db.Update(func(tx *Txn) error { return tx.Set(k, v) }); err != nil {
				t.Fatalf("Set %d bytes: %v", n, err)
			}
			var got []byte
			err := db.View(func(tx *Txn) (err error) { got, err = tx.Get(k); return err })
			if err != nil || len(got) != n || got[n-1] != v[n-1] {
				t.Fatalf("Get %d bytes: %d bytes, %v", n, len(got), err)
			}
			err = db.View(func(tx *Txn) (err error) { got, err = tx.AppendValue([]byte("head"), k); return err })
			if err != nil || len(got) != 4+n || string(got[:4]) != "head" || got[4+n-1] != v[n-1] {
				t.Fatalf("AppendValue %d bytes after 4: %d bytes, %v", n, len(got), err)
			}
		}
	})
}

// TestDamagedStoreSaysSo checks that a store whose files were damaged on
// disk (here its manifest) fails to open with an error that says the
// files look damaged and to restore them, not badger's words alone.
func TestDamagedStoreSaysSo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "badger")
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Txn) error { return tx.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("not a manifest at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{})
	if err == nil {
		db.Close()
		t.Fatal("a store with a damaged manifest opened")
	}
	if !strings.Contains(err.Error(), "look damaged") || !strings.Contains(err.Error(), "backup") {
		t.Errorf("error %q does not say the files are damaged and to restore them", err)
	}
}

// A MANIFEST cut short lists fewer tables than hold the store's data:
// badger would delete the others when it opens. They are kept aside
// instead, with a warning, so the data can still be recovered.
func TestTruncatedStoreFilesLoseNothing(t *testing.T) {
	write := func(t *testing.T) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "badger")
		db, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			if err := db.Update(func(tx *Txn) error { return tx.Set(fmt.Appendf(nil, "k%03d", i), []byte("value")) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil { // flushes the memtable into a table file
			t.Fatal(err)
		}
		return dir
	}
	tables := func(dir string) []string {
		m, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
		return m
	}

	t.Run("manifest", func(t *testing.T) {
		dir := write(t)
		before := tables(dir)
		if len(before) == 0 {
			t.Fatal("no table file written")
		}
		man := filepath.Join(dir, "MANIFEST")
		b, err := os.ReadFile(man)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(man, b[:10], 0o600); err != nil {
			t.Fatal(err)
		}
		var logs strings.Builder
		db, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("reopening with the MANIFEST cut short: %v", err)
		}
		db.Close()
		for _, f := range before {
			if _, err := os.Stat(filepath.Join(dir, orphanDir, filepath.Base(f))); err != nil {
				t.Errorf("table %s was not kept: %v", filepath.Base(f), err)
			}
		}
		if !strings.Contains(logs.String(), "kept aside") {
			t.Errorf("no warning about the kept tables in the log:\n%s", logs.String())
		}
	})

	// A table file cut short made badger panic in its own goroutine: the
	// node died with a stack trace. Open now names the file, and changes
	// nothing: with the file put back, every key is there.
	t.Run("table", func(t *testing.T) {
		dir := write(t)
		sst := tables(dir)[0]
		whole, err := os.ReadFile(sst)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 3, 10, 100, len(whole) / 2, len(whole) - 20, len(whole) - 1} {
			if err := os.WriteFile(sst, whole[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(dir, Options{})
			if err == nil {
				db.Close()
				t.Fatalf("opened a store whose table is cut to %d of %d bytes", n, len(whole))
			}
			if !strings.Contains(err.Error(), filepath.Base(sst)+" is damaged") || !strings.Contains(err.Error(), "restore") {
				t.Errorf("table cut to %d bytes: %v, want the file named as damaged", n, err)
			}
			if b, _ := os.ReadFile(sst); len(b) != n {
				t.Errorf("the damaged table now holds %d bytes, want the %d it was left with", len(b), n)
			}
		}
		if err := os.WriteFile(sst, whole, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("reopening with the table restored: %v", err)
		}
		defer db.Close()
		for i := range 100 {
			if err := db.View(func(tx *Txn) error { _, err := tx.Get(fmt.Appendf(nil, "k%03d", i)); return err }); err != nil {
				t.Fatalf("k%03d after restoring the table: %v", i, err)
			}
		}
	})
}

// TestCacheWarningsBecomeOneNote: badger's minute-by-minute warnings that
// its cache seems small become one note, at most hourly, naming the
// setting to change; other warnings pass as they are.
func TestCacheWarningsBecomeOneNote(t *testing.T) {
	var out bytes.Buffer
	b := badgerLogger{l: slog.New(slog.NewTextHandler(&out, nil)), cacheMiB: 32, cacheNote: new(atomic.Int64)}
	for range 3 {
		b.Warningf("%s might be too small. Metrics: %s\n", "Block cache", "hit: 1 miss: 9")
		b.Warningf("Cache life expectancy (in seconds): %+v\n", "-- Histogram: ...")
	}
	b.Warningf("Value log %d is corrupt\n", 7)
	got := out.String()
	if n := strings.Count(got, "raise [store] cache_mib"); n != 1 || !strings.Contains(got, "cache_mib=32") {
		t.Errorf("cache notes: %d, want 1 naming cache_mib=32:\n%s", n, got)
	}
	if strings.Contains(got, "Histogram") || strings.Contains(got, "might be too small") {
		t.Errorf("badger's cache warnings passed through:\n%s", got)
	}
	if !strings.Contains(got, "Value log 7 is corrupt") {
		t.Errorf("another warning was dropped:\n%s", got)
	}
}
