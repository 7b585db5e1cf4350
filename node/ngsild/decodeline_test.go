package ngsild

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDecodeLine: every line entity's line decodes (DecodeLine) into an
// entity whose line is the one json.Unmarshal's entity has, and a
// line with a member the record decoder does not know still decodes.
func TestDecodeLine(t *testing.T) {
	for _, e := range lineEntities(t) {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var got, want Entity
		if err := DecodeLine(line, &got); err != nil {
			t.Fatalf("DecodeLine(%s): %v", line, err)
		}
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(&got)
		wb, _ := json.Marshal(&want)
		if !bytes.Equal(gb, wb) {
			t.Errorf("DecodeLine of %s:\n gives %s\n  want %s", e.ID, gb, wb)
		}
	}
	var e Entity
	odd := []byte(`{"id":"urn:x:1","t":["urn:T"],"later":1,"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`)
	if err := DecodeLine(odd, &e); err != nil || e.ID != "urn:x:1" || len(e.Types) != 1 {
		t.Errorf("DecodeLine of a line with an unknown member = %+v, %v", e, err)
	}
	for _, bad := range []string{``, `{`, `{"id":`, `[]`, `{"id":"urn:x:1"} x`, `{"a":{"urn:p":[{"t":1}]}}`} {
		if err := DecodeLine([]byte(bad), new(Entity)); err == nil {
			t.Errorf("DecodeLine(%q) accepted it", bad)
		}
	}
}

// FuzzDecodeLine: whatever both DecodeLine and json.Unmarshal accept,
// they decode to entities with the same line; and a LineDecoder that
// decoded every seed line before decodes it as DecodeLine does, or
// fails where it fails.
func FuzzDecodeLine(f *testing.F) {
	var seeds [][]byte
	for _, e := range lineEntities(f) {
		line, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(line)
		seeds = append(seeds, line)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var got, want, reused Entity
		derr := DecodeLine(line, &got)
		var d LineDecoder
		for _, s := range seeds {
			if err := d.Decode(s, new(Entity)); err != nil {
				t.Fatalf("seed %s: %v", s, err)
			}
		}
		rerr := d.Decode(line, &reused)
		if (derr == nil) != (rerr == nil) {
			t.Fatalf("DecodeLine(%s) = %v, a used LineDecoder %v", line, derr, rerr)
		}
		if derr == nil {
			gb, gerr := json.Marshal(&got)
			rb, rerr := json.Marshal(&reused)
			if (gerr == nil) != (rerr == nil) || !bytes.Equal(gb, rb) {
				t.Fatalf("DecodeLine(%s) gives %s (%v), a used LineDecoder %s (%v)", line, gb, gerr, rb, rerr)
			}
		}
		if derr != nil || json.Unmarshal(line, &want) != nil {
			return
		}
		// Where a line leaves a member out, DecodeLine's record decoder
		// gives the times of what the attribute belongs to, and no types
		// or attributes rather than none at all; json.Unmarshal (also
		// its fallback) leaves them zero.
		for _, e := range []*Entity{&got, &want} {
			fillTimes(e.Attrs, e.CreatedAt)
			if e.Types == nil {
				e.Types = []string{}
			}
			if e.Attrs == nil {
				e.Attrs = map[string][]*Attribute{}
			}
		}
		gb, gerr := json.Marshal(&got)
		wb, werr := json.Marshal(&want)
		if gerr != nil || werr != nil {
			return // e.g. a time outside what json.Marshal writes
		}
		if !bytes.Equal(gb, wb) {
			t.Fatalf("DecodeLine(%s) gives %s, json.Unmarshal %s", line, gb, wb)
		}
	})
}

// BenchmarkDecodeLine: decoding an AirQualityObserved line, with the
// record decoder's way (alone, and a LineDecoder decoding line after
// line) against encoding/json.
func BenchmarkDecodeLine(b *testing.B) {
	var lines [][]byte
	for _, e := range storedEntities(b, 1000) {
		l, err := json.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, l)
	}
	b.Run("DecodeLine", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := DecodeLine(lines[i%len(lines)], new(Entity)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LineDecoder", func(b *testing.B) {
		b.ReportAllocs()
		var d LineDecoder
		for i := 0; i < b.N; i++ {
			if err := d.Decode(lines[i%len(lines)], new(Entity)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := json.Unmarshal(lines[i%len(lines)], new(Entity)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
