package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/mimnode/mimnode/internal/osstat"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/store"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func openDB(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// fill appends n entries the way the contract driver does and returns them.
func fill(t *testing.T, l *audit.Log, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for i := 0; i < n; i++ {
		e, err := l.Append(audit.Entry{Time: t0.Add(time.Duration(i) * time.Second), Kind: audit.KindNegotiationTransition,
			Subject: fmt.Sprintf("urn:uuid:neg-%d", i%3), Peer: "12D3KooWPeer", Data: json.RawMessage(`{"from":"REQUESTED","to":"AGREED"}`)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestAppendChainsEntries(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	es := fill(t, l, 5)
	for i, e := range es {
		if e.Seq != uint64(i+1) {
			t.Errorf("entry %d has seq %d", i, e.Seq)
		}
		if i > 0 && e.Prev != es[i-1].Hash {
			t.Errorf("entry %d prev = %s, want %s", e.Seq, e.Prev, es[i-1].Hash)
		}
		if h, _ := audit.Hash(e); h != e.Hash {
			t.Errorf("entry %d hash does not recompute", e.Seq)
		}
	}
	rep, err := l.Verify()
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Entries != 5 || rep.Head != es[4].Hash {
		t.Errorf("Verify = %+v, want 5 entries ending in %s", rep, es[4].Hash)
	}
	got, err := l.List(2, 2)
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Errorf("List(2, 2) = %v, %v; want entries 2 and 3", got, err)
	}
}

func TestAppendRefusesIncompleteEntries(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	for _, tc := range []struct {
		name string
		e    audit.Entry
	}{
		{"no kind", audit.Entry{Time: t0, Subject: "x"}},
		{"no subject", audit.Entry{Time: t0, Kind: "decision"}},
		{"no time", audit.Entry{Kind: "decision", Subject: "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Append(tc.e); !errors.Is(err, audit.ErrBadEntry) {
				t.Errorf("Append = %v, want ErrBadEntry", err)
			}
		})
	}
}

// TestTamperingBreaksVerifyAtThatEntry edits the stored bytes of entries
// through the store, as someone with access to the data directory could,
// and checks that Verify names the entry that no longer fits.
func TestTamperingBreaksVerifyAtThatEntry(t *testing.T) {
	key := func(seq uint64) []byte { return store.Key(store.PrefixAudit, "e", fmt.Sprintf("%020d", seq)) }
	for _, tc := range []struct {
		name   string
		edit   func(tx *store.Txn, es []audit.Entry) error
		broken uint64
	}{
		{"change data of entry 3", func(tx *store.Txn, es []audit.Entry) error {
			e := es[2]
			e.Data = json.RawMessage(`{"from":"REQUESTED","to":"TERMINATED"}`)
			b, _ := json.Marshal(e)
			return tx.Set(key(3), b)
		}, 3},
		{"change entry 2 and rehash it", func(tx *store.Txn, es []audit.Entry) error {
			e := es[1]
			e.Peer = "12D3KooWSomeoneElse"
			e.Hash, _ = audit.Hash(e)
			b, _ := json.Marshal(e)
			return tx.Set(key(2), b)
		}, 3},
		{"flip one byte of entry 4", func(tx *store.Txn, es []audit.Entry) error {
			b, err := tx.Get(key(4))
			if err != nil {
				return err
			}
			b = []byte(strings.Replace(string(b), "neg-", "neG-", 1))
			return tx.Set(key(4), b)
		}, 4},
		{"delete entry 2", func(tx *store.Txn, es []audit.Entry) error { return tx.Delete(key(2)) }, 2},
		{"garbage in entry 1", func(tx *store.Txn, es []audit.Entry) error { return tx.Set(key(1), []byte("{not json")) }, 1},
		{"drop the last entry", func(tx *store.Txn, es []audit.Entry) error { return tx.Delete(key(5)) }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, t.TempDir())
			defer db.Close()
			l := audit.Open(db)
			es := fill(t, l, 5)
			if err := db.Update(func(tx *store.Txn) error { return tc.edit(tx, es) }); err != nil {
				t.Fatal(err)
			}
			_, err := l.Verify()
			var be *audit.BrokenError
			if !errors.As(err, &be) || !errors.Is(err, audit.ErrBroken) {
				t.Fatalf("Verify = %v, want a BrokenError", err)
			}
			if be.Seq != tc.broken {
				t.Errorf("Verify broken at %d (%s), want %d", be.Seq, be.Reason, tc.broken)
			}
		})
	}
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	es := fill(t, audit.Open(db), 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	l := audit.Open(db)
	more := fill(t, l, 2)
	if more[0].Seq != 4 || more[0].Prev != es[2].Hash {
		t.Errorf("after restart first entry = seq %d prev %s, want seq 4 after %s", more[0].Seq, more[0].Prev, es[2].Hash)
	}
	if rep, err := l.Verify(); err != nil || rep.Entries != 5 {
		t.Errorf("Verify after restart = %+v, %v", rep, err)
	}
}

func TestAppendTxIsAtomicWithTheChange(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	fill(t, l, 1)
	boom := errors.New("state change failed")
	err := l.Update(func(tx *store.Txn) error {
		if _, err := audit.AppendTx(tx, audit.Entry{Time: t0, Kind: "decision", Subject: "x"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if es, _ := l.List(1, 0); len(es) != 1 {
		t.Errorf("a failed transaction left %d entries, want 1", len(es))
	}
	if _, err := l.Verify(); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestHTTPListAndVerify(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	es := fill(t, l, 4)
	mux := http.NewServeMux()
	l.Register(mux)
	for _, tc := range []struct {
		name, query string
		status      int
		entries     int
		verified    bool
	}{
		{"all", "", 200, 4, false},
		{"from and limit", "?from=2&limit=2", 200, 2, false},
		{"verify", "?verify=true", 200, 4, true},
		{"bad from", "?from=x", 400, 0, false},
		{"bad limit", "?limit=-1", 400, 0, false},
		{"verify with an anchor", "?verify=true&anchor=4:" + es[3].Hash, 200, 4, true},
		{"verify with an anchor it does not hold", "?verify=true&anchor=4:" + es[2].Hash, 200, 4, false},
		{"bad anchor", "?verify=true&anchor=4", 400, 0, false},
		{"anchor without verify", "?anchor=4:" + es[3].Hash, 400, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/audit"+tc.query, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 200 {
				return
			}
			var out audit.Listing
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Entries) != tc.entries || out.Verified != tc.verified {
				t.Errorf("got %d entries verified=%v, want %d verified=%v", len(out.Entries), out.Verified, tc.entries, tc.verified)
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l := audit.Open(db)
	for i := 0; b.Loop(); i++ {
		if _, err := l.Append(audit.Entry{Time: t0, Kind: "decision", Subject: "x", Data: json.RawMessage(`{"permit":true}`)}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentAppendersKeepOneChain appends from many goroutines at once
// (the group commit path) and checks that the chain has every entry once.
func TestConcurrentAppendersKeepOneChain(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	const workers, each = 8, 25
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				if _, err := l.Append(audit.Entry{Time: t0, Kind: "decision", Subject: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rep, err := l.Verify()
	if err != nil || rep.Entries != workers*each {
		t.Fatalf("Verify = %+v, %v; want %d entries", rep, err, workers*each)
	}
	es, _ := l.List(1, 0)
	seen := map[string]bool{}
	for _, e := range es {
		if seen[e.Subject] {
			t.Errorf("%s appended twice", e.Subject)
		}
		seen[e.Subject] = true
	}
}

// TestFailingUpdateFailsOnlyItsCaller: in a group commit, one caller's
// error must not undo the others' changes.
func TestFailingUpdateFailsOnlyItsCaller(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	boom := errors.New("boom")
	const n = 16
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- l.Update(func(tx *store.Txn) error {
				if _, err := audit.AppendTx(tx, audit.Entry{Time: t0, Kind: "decision", Subject: fmt.Sprint(i)}); err != nil {
					return err
				}
				if i%4 == 0 {
					return boom
				}
				return nil
			})
		}()
	}
	failed := 0
	for i := 0; i < n; i++ {
		if err := <-errs; errors.Is(err, boom) {
			failed++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := l.Verify()
	if failed != n/4 || err != nil || rep.Entries != n-n/4 {
		t.Fatalf("failed %d, Verify = %+v, %v; want %d failed and %d entries", failed, rep, err, n/4, n-n/4)
	}
}

// TestUpdateAfterAPanic: a panic in an Update's fn (recovered by its
// caller, as net/http recovers a handler's) leaves the log usable.
func TestUpdateAfterAPanic(t *testing.T) {
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := audit.Open(db)
	func() {
		defer func() { _ = recover() }()
		_ = l.Update(func(tx *store.Txn) error { panic("boom") })
	}()
	if _, err := l.Append(audit.Entry{Time: t0, Kind: "decision", Subject: "x"}); err != nil {
		t.Fatalf("Append after a panicking Update: %v", err)
	}
	if rep, err := l.Verify(); err != nil || rep.Entries != 1 {
		t.Fatalf("Verify = %+v, %v; want 1 entry", rep, err)
	}
}

// TestPanicInABatchFailsOnlyItsCaller: a caller's fn that panics in a
// batch with others (one caller's fn holds the leader while two more
// queue, and they go in the next batch together) panics in that caller
// only; the other is committed and returns, and neither waits forever.
func TestPanicInABatchFailsOnlyItsCaller(t *testing.T) {
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := audit.Open(db)
	held, release := make(chan struct{}), make(chan struct{})
	var holding sync.Once
	first := make(chan error, 1)
	go func() {
		first <- l.Update(func(tx *store.Txn) error {
			holding.Do(func() { close(held) })
			<-release
			_, err := audit.AppendTx(tx, audit.Entry{Time: t0, Kind: "decision", Subject: "first"})
			return err
		})
	}()
	<-held
	type outcome struct {
		who      string
		err      error
		panicked any
	}
	out := make(chan outcome, 2)
	call := func(who string, fn func(tx *store.Txn) error) {
		defer func() {
			if r := recover(); r != nil {
				out <- outcome{who: who, panicked: r}
			}
		}()
		out <- outcome{who: who, err: l.Update(fn)}
	}
	go call("panicking", func(tx *store.Txn) error { panic("boom") })
	go call("appending", func(tx *store.Txn) error {
		_, err := audit.AppendTx(tx, audit.Entry{Time: t0, Kind: "decision", Subject: "second"})
		return err
	})
	for audit.Queued(l) < 2 {
		runtime.Gosched()
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first Update: %v", err)
	}
	for range 2 {
		var o outcome
		select {
		case o = <-out:
		case <-time.After(time.Minute): // a liveness bound, not a timing: it hangs otherwise
			t.Fatal("an Update in the batch with a panicking fn never returned")
		}
		switch {
		case o.who == "panicking" && o.panicked != "boom":
			t.Errorf("panicking Update: err %v, panic %v; want panic boom", o.err, o.panicked)
		case o.who == "appending" && (o.err != nil || o.panicked != nil):
			t.Errorf("appending Update: err %v, panic %v; want nil", o.err, o.panicked)
		}
	}
	if rep, err := l.Verify(); err != nil || rep.Entries != 2 {
		t.Fatalf("Verify = %+v, %v; want 2 entries", rep, err)
	}
}

// TestGroupCommitStress appends from many goroutines on disk, a step's
// two or three entries in one Update or one entry by Append, with some
// fns failing after they appended and some panicking, and checks the
// chain after: it verifies (one line, no gap, no two entries with the
// same prev), holds every entry of the calls that succeeded, in one run
// per call, and none of the others, and Append returned each entry as
// stored.
func TestGroupCommitStress(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	const workers, calls = 16, 40
	boom := errors.New("boom")
	type call struct {
		subjects []string
		appended audit.Entry // by Append
	}
	var mu sync.Mutex
	var ok []call
	failed := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				subject := func(k int) string { return fmt.Sprintf("w%d-c%d-e%d", w, i, k) }
				if i%3 == 0 {
					e, err := l.Append(audit.Entry{Time: t0, Kind: "decision", Subject: subject(0)})
					if err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					mu.Lock()
					ok = append(ok, call{subjects: []string{subject(0)}, appended: e})
					mu.Unlock()
					continue
				}
				n := 2 + i%2
				es := make([]audit.Entry, n)
				subjects := make([]string, n)
				for k := range es {
					subjects[k] = subject(k)
					es[k] = audit.Entry{Time: t0, Kind: "negotiation.transition", Subject: subjects[k]}
				}
				var err error
				func() {
					defer func() {
						if r := recover(); r != nil {
							err = fmt.Errorf("panicked: %v", r)
						}
					}()
					err = l.Update(func(tx *store.Txn) error {
						if err := audit.AppendAllTx(tx, es); err != nil {
							return err
						}
						switch {
						case (w+i)%7 == 0:
							return boom
						case (w+i)%11 == 0:
							panic("boom")
						}
						return nil
					})
				}()
				mu.Lock()
				if err == nil {
					ok = append(ok, call{subjects: subjects})
				} else {
					if (w+i)%7 != 0 && (w+i)%11 != 0 {
						t.Errorf("Update %s: %v", subject(0), err)
					}
					for _, s := range subjects {
						failed[s] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	rep, err := l.Verify()
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	es, err := l.List(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]int{}
	prevs := map[string]bool{}
	for i, e := range es {
		if _, dup := at[e.Subject]; dup {
			t.Errorf("%s appended twice", e.Subject)
		}
		if failed[e.Subject] {
			t.Errorf("%s of a failed call is in the chain", e.Subject)
		}
		if prevs[e.Prev] {
			t.Errorf("entry %d: another entry has the same prev", e.Seq)
		}
		at[e.Subject], prevs[e.Prev] = i, true
	}
	want := 0
	for _, c := range ok {
		want += len(c.subjects)
		first, found := at[c.subjects[0]]
		for k, s := range c.subjects {
			if i, found2 := at[s]; !found || !found2 || i != first+k {
				t.Errorf("entries of a call that succeeded: %s at %d (found %v), want %d", s, i, found2, first+k)
			}
		}
		if a := c.appended; a.Subject != "" && found && (a.Seq != es[first].Seq || a.Prev != es[first].Prev || a.Hash != es[first].Hash) {
			t.Errorf("Append returned %+v, stored %+v", c.appended, es[first])
		}
	}
	if rep.Entries != uint64(want) || len(es) != want {
		t.Fatalf("Verify: %d entries, listed %d; want %d", rep.Entries, len(es), want)
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	appendParallel(b, audit.Open(db))
}

// BenchmarkAppendParallelInMemory is BenchmarkAppendParallel without
// syncs: the group commit's own cost.
func BenchmarkAppendParallelInMemory(b *testing.B) {
	db, err := store.Open("", store.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	appendParallel(b, audit.Open(db))
}

// appendParallel appends from 8 goroutines per CPU and reports the CPU
// time the process used per append, user and system (syncs included),
// which says more than wall-clock time on a shared machine.
func appendParallel(b *testing.B, l *audit.Log) {
	b.SetParallelism(8)
	b.ResetTimer()
	cpu := osstat.ProcessCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(audit.Entry{Time: t0, Kind: "decision", Subject: "x"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((osstat.ProcessCPU()-cpu).Nanoseconds())/1000/float64(b.N), "cpu-us/op")
}

// refHash is the hash as the chain format defines it: SHA-256 over the
// previous hash and the entry (without hash) encoded by encoding/json and
// canonicalised by the jcs package.
func refHash(t *testing.T, e audit.Entry) string {
	t.Helper()
	prev, err := hex.DecodeString(e.Prev)
	if err != nil {
		t.Fatal(err)
	}
	e.Hash, e.Time = "", e.Time.UTC()
	raw, err := json.Marshal(struct {
		audit.Entry
		Hash string `json:"hash,omitempty"`
	}{Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	canon, err := jcs.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(prev, canon...))
	return hex.EncodeToString(sum[:])
}

// TestHashMatchesCanonicalForm: Hash writes the canonical form itself for
// speed; it must give the hash of the JCS form for every entry, so that
// logs written before and after verify alike.
func TestHashMatchesCanonicalForm(t *testing.T) {
	strs := []string{"", "decision", "urn:uuid:5b7c0a1e", "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo",
		"quote\"", "back\\slash", "tab\t", "<&>", "é中😀", "\u2028", "bad\xffutf8", "\ufffd"}
	datas := []json.RawMessage{nil, json.RawMessage(`null`), json.RawMessage(`{"b":1.0,"a":"<x>","c":[true,{"z":1,"y":2}]}`),
		json.RawMessage(` { "permit" : true } `), json.RawMessage(`{"n":1e21,"m":-0}`)}
	times := []time.Time{t0, t0.Add(123456789 * time.Nanosecond), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)), {}}
	rng := rand.New(rand.NewSource(4))
	for i := range 3000 {
		e := audit.Entry{
			Seq: uint64(rng.Int63n(1 << 20)), Time: times[rng.Intn(len(times))],
			Kind: strs[rng.Intn(len(strs))], Subject: strs[rng.Intn(len(strs))], Peer: strs[rng.Intn(len(strs))],
			Data: datas[rng.Intn(len(datas))],
		}
		switch rng.Intn(4) {
		case 0, 1:
			sum := sha256.Sum256([]byte(fmt.Sprint(i)))
			e.Prev = hex.EncodeToString(sum[:])
		case 2:
			sum := sha256.Sum256([]byte(fmt.Sprint(i)))
			e.Prev = strings.ToUpper(hex.EncodeToString(sum[:]))
		}
		if i == 0 {
			e.Seq = 1<<53 + 1
		}
		got, err := audit.Hash(e)
		if err != nil {
			t.Fatalf("Hash(%+v): %v", e, err)
		}
		if want := refHash(t, e); got != want {
			t.Fatalf("Hash(%+v) = %s, want %s", e, got, want)
		}
	}
}

// Hash refuses a prev that is not hex as hex.DecodeString does, and
// hashes the bytes of any hex it takes, whatever its length or case.
func TestHashPrev(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	for _, prev := range []string{"", h, strings.ToUpper(h), h[:62], h + "00", "0a", "Ab", h[:63], h[:63] + "g", "g" + h[1:], "zz", "0"} {
		e := audit.Entry{Seq: 2, Time: t0, Kind: "decision", Subject: "s", Prev: prev}
		got, err := audit.Hash(e)
		if _, herr := hex.DecodeString(prev); herr != nil {
			want := fmt.Sprintf("hashing audit entry 2: prev is not hex: %v", herr)
			if err == nil || err.Error() != want {
				t.Errorf("Hash(prev %q) = %q, %v; want error %q", prev, got, err, want)
			}
			continue
		}
		if want := refHash(t, e); err != nil || got != want {
			t.Errorf("Hash(prev %q) = %q, %v; want %q", prev, got, err, want)
		}
	}
}

// AppendAllTx stores what AppendTx stores for each entry in turn: the
// same entries under the same keys, and the same head.
func TestAppendAllTxIsAppendTx(t *testing.T) {
	entries := func(n int) []audit.Entry {
		var es []audit.Entry
		for i := range n {
			es = append(es, audit.Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: audit.KindNegotiationTransition,
				Subject: fmt.Sprintf("urn:uuid:neg-%d", i), Peer: "12D3KooWPeer", Data: json.RawMessage(fmt.Sprintf(`{"step":%d}`, i))})
		}
		return es
	}
	one, all := openDB(t, t.TempDir()), openDB(t, t.TempDir())
	for _, n := range []int{1, 3, 0, 2} {
		if err := audit.Open(one).Update(func(tx *store.Txn) error {
			for _, e := range entries(n) {
				if _, err := audit.AppendTx(tx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := audit.Open(all).Update(func(tx *store.Txn) error { return audit.AppendAllTx(tx, entries(n)) }); err != nil {
			t.Fatal(err)
		}
	}
	dump := func(db *store.DB) map[string]string {
		m := map[string]string{}
		if err := db.View(func(tx *store.Txn) error {
			return tx.Iterate(store.IterOptions{Prefix: []byte(store.PrefixAudit)}, func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := dump(one), dump(all)
	if len(a) != 7 { // 6 entries and the head
		t.Fatalf("AppendTx stored %d keys, want 7", len(a))
	}
	for k, v := range a {
		if b[k] != v {
			t.Errorf("%s: AppendAllTx stored %s, AppendTx %s", k, b[k], v)
		}
	}
	if len(b) != len(a) {
		t.Errorf("AppendAllTx stored %d keys, AppendTx %d", len(b), len(a))
	}
	if rep, err := audit.Open(all).Verify(); err != nil || rep.Entries != 6 {
		t.Errorf("Verify after AppendAllTx = %+v, %v", rep, err)
	}
	err := audit.Open(all).Update(func(tx *store.Txn) error {
		return audit.AppendAllTx(tx, []audit.Entry{entries(1)[0], {Time: t0, Kind: "decision"}})
	})
	if !errors.Is(err, audit.ErrBadEntry) {
		t.Errorf("AppendAllTx with an entry without subject: %v, want ErrBadEntry", err)
	}
}

// BenchmarkHash hashes an entry the size of a negotiation transition's.
func BenchmarkHash(b *testing.B) {
	e := audit.Entry{Seq: 12345, Time: t0, Kind: audit.KindNegotiationTransition, Subject: "urn:uuid:6f1c2a44-9a8e-4c55-b0a5-7d0c4e9b1f3a",
		Peer: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", Prev: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Data: json.RawMessage(`{"role":"provider","dataset":"urn:ngsi-ld:Dataset:noise","from":"REQUESTED","to":"AGREED","cause":"provider agreed","pids":{"consumerPid":"urn:uuid:6f1c2a44","providerPid":"urn:uuid:1f1c2a44"}}`)}
	for b.Loop() {
		if _, err := audit.Hash(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashCanonicalData hashes a transition entry whose data is
// already canonical, as the contract driver writes it.
func BenchmarkHashCanonicalData(b *testing.B) {
	e := audit.Entry{Seq: 12345, Time: t0, Kind: audit.KindNegotiationTransition, Subject: "urn:uuid:6f1c2a44-9a8e-4c55-b0a5-7d0c4e9b1f3a",
		Peer: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", Prev: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Data: json.RawMessage(`{"cause":"provider agreed","dataset":"urn:ngsi-ld:Dataset:noise","from":"REQUESTED","pids":{"consumerPid":"urn:uuid:6f1c2a44","providerPid":"urn:uuid:1f1c2a44"},"role":"provider","to":"AGREED"}`)}
	for b.Loop() {
		if _, err := audit.Hash(e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendDataInAnyForm: an entry's data, canonical or not, is hashed
// as its canonical form, so that each appended entry's hash recomputes
// and the log verifies.
func TestAppendDataInAnyForm(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	l := audit.Open(db)
	for _, data := range []string{
		`{"a":1,"b":"x"}`,
		`{"b":1,"a":2}`,
		`{ "a" : [1, 2] }`,
		`{"a":1.0,"b":1e2}`,
		`{"a":"\u0041<&>"}`,
		`{"a":"é","b":{"d":null,"c":true}}`,
	} {
		e, err := l.Append(audit.Entry{Time: t0, Kind: audit.KindNegotiationTransition, Subject: "urn:uuid:n", Peer: "12D3KooWPeer",
			Data: json.RawMessage(data)})
		if err != nil {
			t.Fatalf("Append(%s): %v", data, err)
		}
		if h, err := audit.Hash(e); err != nil || h != e.Hash {
			t.Errorf("Append(%s): hash %s, recomputed %s (%v)", data, e.Hash, h, err)
		}
	}
	if _, err := l.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestAnchorsCatchRewritesAndCuts: someone with write access to the data
// directory rewrites an entry and recomputes the chain after it, or cuts
// the log's end and moves its head. The chain alone still verifies; an
// anchor an earlier Verify printed, given back, does not.
func TestAnchorsCatchRewritesAndCuts(t *testing.T) {
	key := func(seq uint64) []byte { return store.Key(store.PrefixAudit, "e", fmt.Sprintf("%020d", seq)) }
	setHead := func(tx *store.Txn, seq uint64, hash string) error {
		b, _ := json.Marshal(map[string]any{"seq": seq, "hash": hash})
		return tx.Set(store.Key(store.PrefixAudit, "head"), b)
	}
	for _, tc := range []struct {
		name string
		edit func(tx *store.Txn, es []audit.Entry) error
		says string
	}{
		{"rewrite entry 2 and rehash the rest", func(tx *store.Txn, es []audit.Entry) error {
			prev := es[0].Hash
			for i := 1; i < len(es); i++ {
				e := es[i]
				if i == 1 {
					e.Subject = "urn:uuid:nothing-happened"
				}
				e.Prev = prev
				e.Hash, _ = audit.Hash(e)
				b, _ := json.Marshal(e)
				if err := tx.Set(key(e.Seq), b); err != nil {
					return err
				}
				prev = e.Hash
			}
			return setHead(tx, 5, prev)
		}, "rewritten"},
		{"cut entries 4 and 5", func(tx *store.Txn, es []audit.Entry) error {
			for _, s := range []uint64{4, 5} {
				if err := tx.Delete(key(s)); err != nil {
					return err
				}
			}
			return setHead(tx, 3, es[2].Hash)
		}, "cut"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t, t.TempDir())
			defer db.Close()
			l := audit.Open(db)
			es := fill(t, l, 5)
			rep, err := l.Verify()
			if err != nil {
				t.Fatal(err)
			}
			anchor, err := audit.ParseAnchor(rep.Anchor)
			if err != nil || anchor.Seq != 5 || anchor.Hash != es[4].Hash {
				t.Fatalf("report's anchor %q (%v), want entry 5 and its hash", rep.Anchor, err)
			}
			if _, err := l.Verify(anchor); err != nil {
				t.Fatalf("Verify with the anchor of an untouched log: %v", err)
			}
			if err := db.Update(func(tx *store.Txn) error { return tc.edit(tx, es) }); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Verify(); err != nil {
				t.Fatalf("the edited chain alone: %v (the test's edit should keep it consistent)", err)
			}
			_, err = l.Verify(anchor)
			var be *audit.BrokenError
			if !errors.As(err, &be) || !strings.Contains(be.Reason, tc.says) {
				t.Errorf("Verify with the anchor = %v, want a BrokenError saying the log was %s", err, tc.says)
			}
			first, _ := audit.ParseAnchor(fmt.Sprintf("1:%s", es[0].Hash))
			if _, err := l.Verify(first); err != nil {
				t.Errorf("Verify with an anchor before the edit: %v", err)
			}
		})
	}
	for _, bad := range []string{"", "5", "x:" + strings.Repeat("a", 64), "0:" + strings.Repeat("a", 64), "5:abc", "5:" + strings.Repeat("G", 64)} {
		if _, err := audit.ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) took it", bad)
		}
	}
}
