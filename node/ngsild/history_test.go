package ngsild

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// entriesOf lists a history record's entries as code, then instance.
func entriesOf(t *testing.T, v []byte) [][]byte {
	t.Helper()
	var out [][]byte
	if err := recordEntries(v, func(code uint32, inst []byte) bool {
		out = append(out, binary.BigEndian.AppendUint32(nil, code), bytes.Clone(inst))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHistoryPacked checks that history records are written packed when
// that is smaller, and that packed records and the plain ones written
// before read the same; a plain value that would start with the packed
// marker is packed whatever its size, so it is never misread.
func TestHistoryPacked(t *testing.T) {
	n := newTestNode(t, nil)
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEntity(aqoEntity(rand.New(rand.NewPCG(1, 2)), 3), tc, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := n.svc.historyOf(nil, nil, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		plain, err := store.Unpack(r.val, maxUnpackedHistory)
		if err != nil {
			t.Fatal(err)
		}
		if r.val[0] != store.PackedMarker || len(r.val) >= len(plain) {
			t.Errorf("history record of %d bytes stored as %d bytes, packed %v", len(plain), len(r.val), r.val[0] == store.PackedMarker)
		}
		if got, want := entriesOf(t, r.val), entriesOf(t, plain); len(want) == 0 || !equalBytesLists(got, want) {
			t.Errorf("packed record reads %d entries, plain %d, or differently", len(got)/2, len(want)/2)
		}
	}
	small := []byte{0, 0, 0, 1, 0, 0, 0, 0}
	if got := packHistory(small); !bytes.Equal(got, small) {
		t.Errorf("packHistory(%x) = %x, want it plain (packing does not make it smaller)", small, got)
	}
	marked := []byte{store.PackedMarker, 0, 0, 1, 0, 0, 0, 0}
	if got := packHistory(marked); got[0] != store.PackedMarker || !equalBytesLists(entriesOf(t, got), [][]byte{{1, 0, 0, 1}, {}}) {
		t.Errorf("packHistory(%x) = %x, want it packed", marked, got)
	}
}

// TestHistorySharedLayout checks that a write's history records say the
// write's modifiedAt once (histShared) and read as the same entries as
// records of the older layout (4-byte code and length, each instance with
// its modifiedAt), which stores written before hold; and that a damaged
// record of the shared layout is an error.
func TestHistorySharedLayout(t *testing.T) {
	n := newTestNode(t, nil)
	tc, err := n.svc.ctx.resolve(envContext)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 123, time.UTC)
	e, err := decodeEntity(aqoEntity(rand.New(rand.NewPCG(1, 2)), 3), tc, at, true)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := n.svc.historyOf(nil, nil, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("historyOf made %d records, want 2 (observedAt and modifiedAt)", len(recs))
	}
	for _, r := range recs {
		plain, err := store.Unpack(r.val, maxUnpackedHistory)
		if err != nil {
			t.Fatal(err)
		}
		if plain[0] != histShared {
			t.Errorf("record starts with %#x, want histShared", plain[0])
		}
		// The same instances in the older layout, in the record's order.
		var codes []uint32
		if err := recordEntries(r.val, func(code uint32, _ []byte) bool { codes = append(codes, code); return true }); err != nil {
			t.Fatal(err)
		}
		var old []byte
		for _, c := range codes {
			name, _ := n.svc.codes.nameOf(c)
			a := e.Attrs[name][0]
			old = appendHistEntry(old, false, c, a, instantOf(a))
		}
		got, want := entriesOf(t, r.val), entriesOf(t, old)
		if len(want) != 2*len(codes) || !equalBytesLists(got, want) {
			t.Errorf("shared record reads %d entries, older layout %d, or differently", len(got)/2, len(want)/2)
		}
		if err := recordEntries(plain[:5], func(uint32, []byte) bool { return true }); err == nil {
			t.Errorf("record cut inside its modifiedAt decoded")
		}
		long := append(bytes.Clone(plain[:9]), 1, 200, 1)
		if err := recordEntries(long, func(uint32, []byte) bool { return true }); err == nil {
			t.Errorf("entry claiming more than the record decoded")
		}
	}
}

func equalBytesLists(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
