package ngsild

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
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
// decoded every seed line before, from the buffer it then reads the line
// from, decodes it as DecodeLine does, or fails where it fails.
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
		// The decoder reads every line from one buffer, as a caller
		// reading line after line into it would give them.
		var d LineDecoder
		var buf []byte
		for _, s := range seeds {
			buf = append(buf[:0], s...)
			if err := d.Decode(buf, new(Entity)); err != nil {
				t.Fatalf("seed %s: %v", s, err)
			}
		}
		buf = append(buf[:0], line...)
		rerr := d.Decode(buf, &reused)
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

// lineDecoderLines are entity lines a LineDecoder decodes one after
// another: the same shape with other values in the same places (times
// of the same length, numbers written 1, 1.0, 1e0, -0, strings of other
// lengths, escapes, unicode, a value that is a string here and a number
// there), members in another order, and lines of other shapes.
var lineDecoderLines = []string{
	`{"id":"urn:x:1","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":1,"u":"CEL","oa":"2026-01-02T03:04:05Z","c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:2","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":2,"u":"CEM","oa":"2026-01-02T03:04:06Z","c":"2026-01-02T03:04:06Z","m":"2026-01-02T03:04:06Z"}]},"c":"2026-01-02T03:04:06Z","m":"2026-01-02T03:04:06Z"}`,
	`{"id":"urn:x:3","t":["urn:U"],"a":{"urn:p":[{"t":"Property","v":1.0,"u":"CEL","oa":"2026-01-02T03:04:07Z"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:07Z"}`,
	`{"id":"urn:x:4","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":1e0,"u":"CE","oa":"2026-01-02T03:04:07.5Z"}]},"am":"2026-01-02T03:04:08Z","c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:08Z"}`,
	`{"id":"urn:x:5","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":"1","u":"CEL"}],"urn:q":[{"t":"Property","v":-0},{"t":"Property","v":0,"d":"urn:ds:1"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:6","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":"abcdefgh","u":"C\u0045L","oa":"2026-01-02T03:04:05Z"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:7","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":"abcdefghi","u":"CEL\\","oa":"2026-01-02T03:04:05Z"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:8","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":"abcdefgi","u":"ÇEL","oa":"2026-01-02T03:04:05Z"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:9","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":"a\"b","u":"CEL"}],"urn:ä":[{"t":"Property","v":"é"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:10","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":12345678,"u":"CEL"}],"urn:ä":[{"t":"Property","v":"e\u0301"}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:11","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":123456789,"u":"CEL"}],"urn:q":[{"t":"Property","v":1234567890}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:12","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":12345679,"u":"CEL"}],"urn:q":[{"t":"Property","v":1234567891}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:13","t":["urn:T"],"a":{"urn:v":[{"t":"Property","v":{"a":1,"b":[1,"x",true,null],"c":{"d":"e"}}}],"urn:l":[{"t":"LanguageProperty","l":{"en":"x","fr":"é"}}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:14","t":["urn:T"],"a":{"urn:v":[{"t":"Property","v":{"b":[2,"y",false,null],"a":1.5,"c":{"d":"f"}}}],"urn:l":[{"t":"LanguageProperty","l":{"fr":"y","en":"é"}}]},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:15","t":["urn:T","urn:U"],"sc":["/a","/b"],"a":{"urn:r":[{"t":"Relationship","o":"urn:o:1","s":{"urn:sub":[{"t":"Property","v":"s","c":"2026-01-02T03:04:04Z","m":"2026-01-02T03:04:04Z"}]}},{"t":"Relationship","o":["urn:o:2","urn:o:3"],"d":"urn:ds:2"}]},"c":"2026-01-02T03:04:04Z","m":"2026-01-02T03:04:04Z"}`,
	`{"id":"urn:x:16","t":["urn:T"],"a":{"urn:r":[{"t":"Relationship","o":"urn:o:9","s":{"urn:sub":[{"t":"Property","v":"t","c":"2026-01-02T03:04:03Z","m":"2026-01-02T03:04:03Z"}]}}]},"c":"2026-01-02T03:04:03Z","m":"2026-01-02T03:04:03Z"}`,
	`{"m":"2026-01-02T03:04:05Z","c":"2026-01-02T03:04:05Z","a":{"urn:p":[{"m":"2026-01-02T03:04:05Z","c":"2026-01-02T03:04:05Z","oa":"2026-01-02T03:04:05Z","u":"CEL","v":1,"t":"Property"}]},"t":["urn:T"],"id":"urn:x:17"}`,
	`{"id":"urn:x:18","t":[],"a":{},"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:19","t":["urn:T"],"later":1,"c":"2026-01-02T03:04:05Z","m":"2026-01-02T03:04:05Z"}`,
	`{"id":"urn:x:20","t":["urn:T"],"a":{"urn:p":[{"t":"Property","v":1,"u":"CEL","oa":"2026-01-02T03:04:09Z","c":"2026-01-02T03:04:09Z","m":"2026-01-02T03:04:09Z"}]},"c":"2026-01-02T03:04:09Z","m":"2026-01-02T03:04:09Z"}`,
}

// TestLineDecoderIsDecodeLine: a LineDecoder decodes every line of any
// sequence into the entity DecodeLine decodes it into (DeepEqual), also
// when the caller reads each line into the buffer the line before was in,
// and when the caller changes the entities it decoded before.
func TestLineDecoderIsDecodeLine(t *testing.T) {
	want := make([]*Entity, len(lineDecoderLines))
	for i, l := range lineDecoderLines {
		want[i] = new(Entity)
		if err := DecodeLine([]byte(l), want[i]); err != nil {
			t.Fatalf("DecodeLine(%s): %v", l, err)
		}
	}
	rng := rand.New(rand.NewPCG(5, 8))
	orders := [][]int{}
	for range 100 {
		orders = append(orders, rng.Perm(len(lineDecoderLines)))
	}
	in := make([]int, len(lineDecoderLines))
	for i := range in {
		in[i] = i
	}
	orders = append(orders, in)
	for _, reuse := range []bool{false, true} {
		for _, order := range orders {
			var d LineDecoder
			var buf []byte
			var last *Entity
			for _, i := range order {
				line := []byte(lineDecoderLines[i])
				if reuse {
					buf = append(buf[:0], lineDecoderLines[i]...)
					line = buf
				}
				got := new(Entity)
				if err := d.Decode(line, got); err != nil {
					t.Fatalf("Decode(%s): %v", line, err)
				}
				if !reflect.DeepEqual(got, want[i]) {
					gb, _ := json.Marshal(got)
					wb, _ := json.Marshal(want[i])
					t.Fatalf("reused buffer %v, order %v: LineDecoder.Decode(%s)\n = %s\nwant %s", reuse, order, line, gb, wb)
				}
				if last != nil {
					mutateEntity(last)
				}
				last = got
			}
		}
	}
}

// mutateEntity changes everything a caller can change in e: its lists,
// maps, attribute instances and the maps and lists in their values.
func mutateEntity(e *Entity) {
	e.ID = "mutated"
	for i := range e.Types {
		e.Types[i] = "mutated"
	}
	for i := range e.Scope {
		e.Scope[i] = "mutated"
	}
	mutateAttrs(e.Attrs)
	if e.Attrs == nil {
		e.Attrs = map[string][]*Attribute{}
	}
	e.Attrs["urn:mutated"] = []*Attribute{{Type: Property, Value: "mutated"}}
}

func mutateAttrs(attrs map[string][]*Attribute) {
	for name, insts := range attrs {
		for _, a := range insts {
			a.Value, a.Object = mutateValue(a.Value), mutateValue(a.Object)
			for k := range a.LanguageMap {
				a.LanguageMap[k] = "mutated"
			}
			a.Type, a.UnitCode, a.ObservedAt, a.DatasetID = "mutated", "mutated", "mutated", "mutated"
			a.CreatedAt = a.CreatedAt.Add(time.Hour)
			mutateAttrs(a.Sub)
		}
		attrs[name] = append(insts, &Attribute{Type: Property, Value: "mutated"})
		if len(insts) > 0 {
			insts[0] = &Attribute{Type: Property, Value: "mutated"}
		}
	}
}

func mutateValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			v[k] = mutateValue(x)
		}
		v["mutated"] = true
	case []any:
		for i, x := range v {
			v[i] = mutateValue(x)
		}
	}
	return "mutated"
}
