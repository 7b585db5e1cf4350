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
// they decode to entities with the same line.
func FuzzDecodeLine(f *testing.F) {
	for _, e := range lineEntities(f) {
		line, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var got, want Entity
		if DecodeLine(line, &got) != nil || json.Unmarshal(line, &want) != nil {
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
// record decoder against encoding/json.
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
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := json.Unmarshal(lines[i%len(lines)], new(Entity)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
