package content_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mimnode/mimnode/content"
)

// entityLines returns n one-line fake entities with ids from start.
func entityLines(start, n int, value func(i int) int) []byte {
	var b strings.Builder
	for i := start; i < start+n; i++ {
		fmt.Fprintf(&b, `{"id":"urn:ngsi-ld:AirQualityObserved:%07d","no2":{"type":"Property","value":%d},"pad":"%s"}`+"\n",
			i, value(i), strings.Repeat("x", 200))
	}
	return []byte(b.String())
}

func TestLineDeltaRebuildsTheBlock(t *testing.T) {
	same := func(i int) int { return i % 200 }
	base := entityLines(0, 150, same)
	cases := map[string][]byte{
		"identical":      base,
		"one changed":    entityLines(0, 150, func(i int) int { return map[bool]int{true: 9999, false: same(i)}[i == 77] }),
		"three changed":  entityLines(0, 150, func(i int) int { return map[bool]int{true: -i, false: same(i)}[i%50 == 3] }),
		"one inserted":   append(append(entityLines(0, 10, same), entityLines(1000, 1, same)...), entityLines(10, 140, same)...),
		"first dropped":  entityLines(1, 149, same),
		"shifted window": entityLines(40, 150, same),
		"all new":        entityLines(5000, 20, same),
		"no final \\n":   bytes.TrimSuffix(entityLines(0, 3, same), []byte("\n")),
	}
	for name, target := range cases {
		t.Run(name, func(t *testing.T) {
			d := content.LineDelta(base, target)
			got, err := content.ApplyLineDelta(base, d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, target) {
				t.Fatalf("rebuilt %d bytes, want the %d of the target", len(got), len(target))
			}
		})
	}
	// What a consumer saves: one changed entity of 150 costs about that
	// entity's line, not the block.
	target := cases["one changed"]
	if d := content.LineDelta(base, target); len(d) > 2*len(target)/150+32 {
		t.Fatalf("delta for one changed line of 150 is %d bytes (block %d)", len(d), len(target))
	}
}

func TestApplyLineDeltaRefusesWhatDoesNotFit(t *testing.T) {
	base := []byte("a\nb\nc\n")
	for name, d := range map[string][]byte{
		"copy past the base": {0, 2, 5},
		"copy of no lines":   {0, 0, 0},
		"truncated copy":     {0, 1},
		"literal too long":   {1, 10, 'x'},
		"empty literal":      {1, 0},
		"unknown operation":  {7},
		"empty result":       {},
		"truncated tag":      {0x80},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := content.ApplyLineDelta(base, d); !errors.Is(err, content.ErrBadDelta) {
				t.Fatalf("err = %v, want ErrBadDelta", err)
			}
		})
	}
	// A delta cannot blow a block up past MaxBlockSize by copying a line
	// again and again.
	big := bytes.Repeat([]byte("y"), 1<<16)
	big = append(big, '\n')
	var d []byte
	for range 20 {
		d = append(d, 0, 0, 1)
	}
	if _, err := content.ApplyLineDelta(big, d); !errors.Is(err, content.ErrBadDelta) {
		t.Fatalf("20 copies of a 64 KiB line: err = %v, want ErrBadDelta", err)
	}
}

func TestDeltaBasePicksTheBlockWithTheSameIDs(t *testing.T) {
	old := []content.BlockRef{
		{First: "a", Last: "c"}, {First: "d", Last: "h"}, {First: "i", Last: "m"},
	}
	for _, c := range []struct {
		first, last, want string
	}{
		{"d", "h", "d"}, // same range
		{"e", "g", "d"}, // inside
		{"c", "f", "a"}, // starts in the first
		{"ca", "f", "d"},
		{"n", "p", ""}, // after every old block
		{"", "", ""},
	} {
		got, ok := content.DeltaBase(old, content.BlockRef{First: c.first, Last: c.last})
		if (c.want == "") == ok || (ok && got.First != c.want) {
			t.Errorf("block %s..%s: base %q (%v), want %q", c.first, c.last, got.First, ok, c.want)
		}
	}
}

// A version after 1% of scattered entities changed: the deltas of its new
// blocks against the old blocks at the same ids are a few percent of the
// blocks' bytes.
func TestLineDeltasOfAScatteredChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	changed := map[int]bool{}
	for len(changed) < 100 {
		changed[rng.IntN(10000)] = true
	}
	dataOf := map[string][]byte{}
	build := func(value func(int) int) content.Manifest {
		b := content.NewEntityBuilder(func(blk content.Block) error { dataOf[blk.CID.String()] = blk.Data; return nil })
		for i := range 10000 {
			line := entityLines(i, 1, value)
			if err := b.Add(fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:%07d", i), line[:len(line)-1]); err != nil {
				t.Fatal(err)
			}
		}
		m, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	v1 := build(func(i int) int { return i % 200 })
	v2 := build(func(i int) int {
		if changed[i] {
			return 100000 + i
		}
		return i % 200
	})
	var moved, full int
	have := map[string]bool{}
	for _, b := range v1.Blocks {
		have[b.CID.String()] = true
	}
	for _, b := range v2.Blocks {
		full += int(b.Size)
		if have[b.CID.String()] {
			continue
		}
		base, ok := content.DeltaBase(v1.Blocks, b)
		if !ok {
			t.Fatalf("no base for block %s..%s", b.First, b.Last)
		}
		moved += len(content.LineDelta(dataOf[base.CID.String()], dataOf[b.CID.String()]))
	}
	if moved*100 > full*3 {
		t.Fatalf("deltas for 1%% scattered changes move %d of %d bytes", moved, full)
	}
}

func FuzzApplyLineDelta(f *testing.F) {
	base := entityLines(0, 5, func(i int) int { return i })
	f.Add(base, content.LineDelta(base, entityLines(1, 5, func(i int) int { return 2 * i })))
	f.Add([]byte("a\nb\n"), []byte{0, 0, 2, 1, 2, 'c', '\n'})
	f.Add([]byte(""), []byte{1, 1, 'x'})
	f.Fuzz(func(t *testing.T, base, delta []byte) {
		out, err := content.ApplyLineDelta(base, delta)
		if err != nil {
			if !errors.Is(err, content.ErrBadDelta) {
				t.Fatalf("error %v is not ErrBadDelta", err)
			}
			return
		}
		if len(out) == 0 || len(out) > content.MaxBlockSize {
			t.Fatalf("%d bytes out", len(out))
		}
		// What a delta rebuilds, a delta from the same base rebuilds too.
		again, err := content.ApplyLineDelta(base, content.LineDelta(base, out))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("LineDelta of an applied delta does not rebuild it: %v", err)
		}
	})
}
