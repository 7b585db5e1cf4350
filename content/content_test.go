package content

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// entity is one test entity: the real Smart Data Models AirQualityObserved
// example with its own id and readings.
type entity struct {
	id   string
	json []byte
}

func loadExample(t testing.TB) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/AirQualityObserved.example-normalized.jsonld")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func makeEntity(t testing.TB, tpl map[string]any, n int, no2 int) entity {
	t.Helper()
	tpl["id"] = fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:aarhus-%07d", n)
	tpl["no2"].(map[string]any)["value"] = no2
	b, err := json.Marshal(tpl) // compact, keys sorted: canonical enough for the test
	if err != nil {
		t.Fatal(err)
	}
	return entity{tpl["id"].(string), b}
}

// makeEntities returns n entities with ids 0, 2, 4, ... (room to insert).
func makeEntities(t testing.TB, n int, seed uint64) []entity {
	tpl := loadExample(t)
	rng := rand.New(rand.NewPCG(seed, 0))
	out := make([]entity, n)
	for i := range out {
		out[i] = makeEntity(t, tpl, 2*i, 10+rng.IntN(80))
	}
	return out
}

type collected struct {
	m      Manifest
	blocks map[cid.Cid][]byte
}

func buildEntities(t testing.TB, es []entity) collected {
	t.Helper()
	got := collected{blocks: map[cid.Cid][]byte{}}
	b := NewEntityBuilder(func(bl Block) error {
		got.blocks[bl.CID] = bl.Data
		return nil
	})
	for _, e := range es {
		if err := b.Add(e.id, e.json); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	got.m = m
	return got
}

func versionID(t testing.TB, m Manifest) string {
	t.Helper()
	c, err := m.CID()
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func TestBlockCIDIsRawBLAKE3CIDv1(t *testing.T) {
	c := BlockCID([]byte("hello world"))
	p := c.Prefix()
	if p.Version != 1 || p.Codec != cid.Raw || p.MhType != multihash.BLAKE3 || p.MhLength != 32 {
		t.Fatalf("BlockCID(hello world) = %s, prefix %+v, want CIDv1 raw blake3-256", c, p)
	}
	// The BLAKE3 of "hello world" that b3sum and the reference
	// implementation give.
	d, err := multihash.Decode(c.Hash())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(d.Digest); got != "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24" {
		t.Errorf("BlockCID(hello world) digest = %s", got)
	}
	if got := c.String(); got != "bafkr4igxjga67jykbseaxdmmdgc5a5o3zp3htom2l6mrjznk7fvyggu6eq" {
		t.Errorf("BlockCID(hello world) = %s", got)
	}
}

// TestVerifyBlockSHA256: blocks named with SHA2-256 before BLAKE3 still
// verify, by their own hash.
func TestVerifyBlockSHA256(t *testing.T) {
	// The CID every IPFS implementation gives the bytes "hello world" as a raw block.
	c, err := cid.Decode("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
	if err != nil {
		t.Fatal(err)
	}
	if got := blockCID(multihash.SHA2_256, []byte("hello world")); !got.Equals(c) {
		t.Errorf("blockCID(sha2-256, hello world) = %s, want %s", got, c)
	}
	if err := VerifyBlock(c, []byte("hello world")); err != nil {
		t.Errorf("VerifyBlock(sha2-256 CID, its bytes) = %v", err)
	}
	if err := VerifyBlock(c, []byte("hello World")); !errors.Is(err, ErrBlockMismatch) {
		t.Errorf("VerifyBlock(sha2-256 CID, other bytes) = %v, want ErrBlockMismatch", err)
	}
}

func TestVerifyBlock(t *testing.T) {
	data := []byte(strings.Repeat("NO2 reading 42\n", 100))
	for _, code := range []uint64{multihash.BLAKE3, multihash.SHA2_256} {
		c := blockCID(code, data)
		t.Run(multihash.Codes[code], func(t *testing.T) {
			testVerifyBlock(t, c, data)
		})
	}
}

func testVerifyBlock(t *testing.T, c cid.Cid, data []byte) {
	if err := VerifyBlock(c, data); err != nil {
		t.Fatalf("VerifyBlock(good block): %v", err)
	}
	flip := func(i int, bit byte) []byte {
		d := bytes.Clone(data)
		d[i] ^= bit
		return d
	}
	dagJSON := cid.NewCidV1(cid.DagJSON, c.Hash())
	sha512, _ := multihash.Sum(data, multihash.SHA2_512, -1)
	shortBLAKE3, _ := multihash.Sum(data, multihash.BLAKE3, 16)
	cases := []struct {
		name string
		c    cid.Cid
		data []byte
		want error
	}{
		{"first bit flipped", c, flip(0, 1), ErrBlockMismatch},
		{"middle bit flipped", c, flip(len(data)/2, 0x10), ErrBlockMismatch},
		{"last bit flipped", c, flip(len(data)-1, 0x80), ErrBlockMismatch},
		{"truncated", c, data[:len(data)-1], ErrBlockMismatch},
		{"extended", c, append(bytes.Clone(data), 0), ErrBlockMismatch},
		{"empty", c, nil, ErrBlockMismatch},
		{"CID with another codec", dagJSON, data, ErrUnsupportedCID},
		{"CID with another hash", cid.NewCidV1(cid.Raw, sha512), data, ErrUnsupportedCID},
		{"CID with a short hash", cid.NewCidV1(cid.Raw, shortBLAKE3), data, ErrUnsupportedCID},
		{"CIDv0", cid.NewCidV0(blockCID(multihash.SHA2_256, data).Hash()), data, ErrUnsupportedCID},
		{"undefined CID", cid.Undef, data, ErrUnsupportedCID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyBlock(tc.c, tc.data); !errors.Is(err, tc.want) {
				t.Errorf("VerifyBlock = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEntityVersionsAreDeterministic(t *testing.T) {
	es := makeEntities(t, 4000, 1)
	a, b := buildEntities(t, es), buildEntities(t, es)
	if versionID(t, a.m) != versionID(t, b.m) {
		t.Fatalf("same entities gave versions %s and %s", versionID(t, a.m), versionID(t, b.m))
	}
	if len(a.m.Blocks) < 10 {
		t.Fatalf("%d blocks for %d bytes; the test needs many blocks", len(a.m.Blocks), a.m.Size)
	}
	var total int64
	var lines int64
	for i, r := range a.m.Blocks {
		data := a.blocks[r.CID]
		if err := VerifyBlock(r.CID, data); err != nil {
			t.Fatal(err)
		}
		if r.Size > MaxBlockSize || (i < len(a.m.Blocks)-1 && r.Size < MinBlockSize) {
			t.Errorf("block %d has %d bytes, want %d..%d", i, r.Size, MinBlockSize, MaxBlockSize)
		}
		total += r.Size
		lines += int64(bytes.Count(data, []byte("\n")))
	}
	if lines != int64(len(es)) || a.m.Entities() != int64(len(es)) || total != a.m.Size {
		t.Errorf("blocks hold %d lines, manifest counts %d entities and %d bytes (sum %d); want %d entities", lines, a.m.Entities(), a.m.Size, total, len(es))
	}
	avg := a.m.Size / int64(len(a.m.Blocks))
	if avg < TargetBlockSize/2 || avg > 2*TargetBlockSize {
		t.Errorf("average block %d bytes, want near %d", avg, TargetBlockSize)
	}
}

func TestEntityChangesTouchFewBlocks(t *testing.T) {
	es := makeEntities(t, 4000, 1)
	base := buildEntities(t, es)
	tpl := loadExample(t)
	cases := []struct {
		name    string
		edit    func([]entity) []entity
		maxDiff int
	}{
		{"one reading changed, same size", func(es []entity) []entity {
			es[1234] = makeEntity(t, tpl, 2*1234, 99) // two-digit value to two-digit value
			return es
		}, 1},
		{"one entity grows", func(es []entity) []entity {
			es[2000] = makeEntity(t, tpl, 4000, 123456)
			return es
		}, 2},
		{"one entity inserted", func(es []entity) []entity {
			return slices.Insert(es, 1500, makeEntity(t, tpl, 2*1500-1, 42))
		}, 3},
		{"one entity deleted", func(es []entity) []entity {
			return slices.Delete(es, 2500, 2501)
		}, 3},
		{"first entity deleted", func(es []entity) []entity { return es[1:] }, 3},
		{"entity appended", func(es []entity) []entity {
			return append(es, makeEntity(t, tpl, 2*len(es)+1, 42))
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := buildEntities(t, tc.edit(slices.Clone(es)))
			d := Diff(base.m, next.m)
			if len(d) == 0 || len(d) > tc.maxDiff {
				t.Errorf("Diff = %d new blocks of %d, want 1..%d", len(d), len(next.m.Blocks), tc.maxDiff)
			}
			if versionID(t, next.m) == versionID(t, base.m) {
				t.Errorf("version id did not change")
			}
		})
	}
}

func TestEntityBuilderRejectsBadInput(t *testing.T) {
	e := makeEntities(t, 2, 1)
	cases := []struct {
		name string
		adds []entity
	}{
		{"ids out of order", []entity{e[1], e[0]}},
		{"duplicate id", []entity{e[0], e[0]}},
		{"empty id", []entity{{"", e[0].json}}},
		{"empty entity", []entity{{"urn:x", nil}}},
		{"entity with newline", []entity{{"urn:x", []byte("{\n}")}}},
		{"entity larger than a block", []entity{{"urn:x", bytes.Repeat([]byte("x"), MaxBlockSize)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewEntityBuilder(func(Block) error { return nil })
			var err error
			for _, a := range tc.adds {
				if err = b.Add(a.id, a.json); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrInput) {
				t.Errorf("Add = %v, want ErrInput", err)
			}
		})
	}
	t.Run("emit error stops the build", func(t *testing.T) {
		boom := errors.New("disk full")
		b := NewEntityBuilder(func(Block) error { return boom })
		var err error
		for _, x := range makeEntities(t, 2000, 1) {
			if err = b.Add(x.id, x.json); err != nil {
				break
			}
		}
		if _, ferr := b.Finish(); !errors.Is(err, boom) || !errors.Is(ferr, boom) {
			t.Errorf("Add/Finish = %v / %v, want %v", err, ferr, boom)
		}
	})
	t.Run("empty version", func(t *testing.T) {
		m, err := NewEntityBuilder(func(Block) error { return nil }).Finish()
		if err != nil || len(m.Blocks) != 0 || m.Size != 0 {
			t.Fatalf("Finish() on nothing = %+v, %v", m, err)
		}
		if _, err := m.CID(); err != nil {
			t.Errorf("CID of the empty version: %v", err)
		}
	})
}

func chunk(t testing.TB, data []byte) collected {
	t.Helper()
	got := collected{blocks: map[cid.Cid][]byte{}}
	m, err := ChunkFile(bytes.NewReader(data), func(b Block) error {
		got.blocks[b.CID] = b.Data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got.m = m
	return got
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestChunkFile(t *testing.T) {
	data := randomBytes(12<<20, 3)
	a := chunk(t, data)
	if versionID(t, a.m) != versionID(t, chunk(t, data).m) {
		t.Fatal("same file gave two versions")
	}
	var re []byte
	for i, r := range a.m.Blocks {
		if r.Size > MaxBlockSize || (i < len(a.m.Blocks)-1 && r.Size < MinBlockSize) {
			t.Errorf("block %d has %d bytes", i, r.Size)
		}
		re = append(re, a.blocks[r.CID]...)
	}
	if !bytes.Equal(re, data) {
		t.Fatal("blocks do not reassemble to the file")
	}
	avg := a.m.Size / int64(len(a.m.Blocks))
	if avg < TargetBlockSize/2 || avg > 2*TargetBlockSize {
		t.Errorf("average block %d bytes over %d blocks, want near %d", avg, len(a.m.Blocks), TargetBlockSize)
	}
	cases := []struct {
		name    string
		edit    func([]byte) []byte
		maxDiff int
	}{
		{"byte flipped", func(d []byte) []byte { d[5<<20] ^= 1; return d }, 1},
		{"bytes inserted", func(d []byte) []byte { return slices.Insert(d, 6<<20, []byte("inserted")...) }, 2},
		{"bytes deleted", func(d []byte) []byte { return slices.Delete(d, 3<<20, 3<<20+1000) }, 2},
		{"prepended", func(d []byte) []byte { return append([]byte("header,"), d...) }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := chunk(t, tc.edit(bytes.Clone(data)))
			if d := Diff(a.m, b.m); len(d) == 0 || len(d) > tc.maxDiff {
				t.Errorf("Diff = %d new blocks of %d, want 1..%d", len(d), len(b.m.Blocks), tc.maxDiff)
			}
		})
	}
	t.Run("small and empty files", func(t *testing.T) {
		if m := chunk(t, nil).m; len(m.Blocks) != 0 {
			t.Errorf("empty file: %d blocks", len(m.Blocks))
		}
		if m := chunk(t, []byte("id,no2\n1,42\n")).m; len(m.Blocks) != 1 || m.Size != 12 {
			t.Errorf("small file: %+v", m)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("disk gone")
		_, err := ChunkFile(io.MultiReader(bytes.NewReader(data[:1<<20]), errReader{boom}), func(Block) error { return nil })
		if !errors.Is(err, boom) {
			t.Errorf("ChunkFile = %v, want %v", err, boom)
		}
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
