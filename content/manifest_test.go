package content

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multihash"
)

func sampleManifests(t testing.TB) []Manifest {
	t.Helper()
	es := makeEntities(t, 600, 5)
	var out []Manifest
	out = append(out, buildEntities(t, es).m)
	out = append(out, buildEntities(t, es[:3]).m)
	out = append(out, chunk(t, randomBytes(3<<20, 4)).m)
	out = append(out, Manifest{Kind: KindFile})
	out = append(out, sampleDataset(t, es[:40], randomBytes(3<<20, 4)))
	return out
}

func TestManifestRoundTrip(t *testing.T) {
	for _, m := range sampleManifests(t) {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeManifest(b)
		if err != nil {
			t.Fatalf("DecodeManifest(Encode(m)): %v\n%s", err, b)
		}
		again, _ := back.Encode()
		if !bytes.Equal(b, again) {
			t.Errorf("round trip changed the manifest")
		}
		c, _ := m.CID()
		if _, err := VerifyManifest(c, b); err != nil {
			t.Errorf("VerifyManifest: %v", err)
		}
		if _, err := VerifyManifest(c, append(bytes.Clone(b[:len(b)-1]), ' ')); !errors.Is(err, ErrBlockMismatch) {
			t.Errorf("VerifyManifest(changed bytes) = %v, want ErrBlockMismatch", err)
		}
	}
}

// TestManifestIsDAGJSON checks that the manifest bytes are exactly what an
// IPLD implementation (go-ipld-prime) writes for the same data, and that
// block CIDs are IPLD links, so IPFS tools can read and address versions.
func TestManifestIsDAGJSON(t *testing.T) {
	for _, m := range sampleManifests(t) {
		b, _ := m.Encode()
		nb := basicnode.Prototype.Any.NewBuilder()
		if err := dagjson.Decode(nb, bytes.NewReader(b)); err != nil {
			t.Fatalf("dagjson.Decode: %v", err)
		}
		n := nb.Build()
		var out bytes.Buffer
		if err := dagjson.Encode(n, &out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), b) {
			t.Errorf("go-ipld-prime re-encodes the manifest differently:\n ours %s\n ipld %s", b, out.Bytes())
		}
		blocks, _ := n.LookupByString("blocks")
		if blocks.Length() > 0 {
			first, _ := blocks.LookupByIndex(0)
			c, _ := first.LookupByString("cid")
			l, err := c.AsLink()
			if err != nil || l.String() != m.Blocks[0].CID.String() {
				t.Errorf("blocks[0].cid is not an IPLD link to %s: %v, %v", m.Blocks[0].CID, l, err)
			}
		}
		c, _ := m.CID()
		if c.Prefix().Codec != cid.DagJSON || c.Version() != 1 {
			t.Errorf("version id %s is not a CIDv1 dag-json", c)
		}
	}
}

// TestManifestFormats: a manifest of SHA2-256 blocks only, as earlier
// nodes built every version, keeps format 1 and its bytes; one with a
// BLAKE3 block is format 2, also when SHA2-256 blocks are kept in it.
func TestManifestFormats(t *testing.T) {
	old := `{"blocks":[{"cid":{"/":"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"},"size":11}],"format":"mimnode-manifest/1","kind":"file","size":11}`
	m, err := DecodeManifest([]byte(old))
	if err != nil {
		t.Fatalf("DecodeManifest(format 1): %v", err)
	}
	if b, _ := m.Encode(); string(b) != old {
		t.Errorf("format 1 manifest encodes as\n%s\nwant\n%s", b, old)
	}
	c, _ := m.CID()
	if _, err := VerifyManifest(c, []byte(old)); err != nil {
		t.Errorf("VerifyManifest(format 1): %v", err)
	}
	for _, tc := range []struct {
		name   string
		blocks []cid.Cid
		want   string
	}{
		{"none", nil, ManifestFormatV1},
		{"sha2-256", []cid.Cid{blockCID(multihash.SHA2_256, []byte("a"))}, ManifestFormatV1},
		{"blake3", []cid.Cid{BlockCID([]byte("a"))}, ManifestFormat},
		{"mixed", []cid.Cid{blockCID(multihash.SHA2_256, []byte("a")), BlockCID([]byte("b"))}, ManifestFormat},
	} {
		m := Manifest{Kind: KindFile}
		for _, c := range tc.blocks {
			m.Blocks = append(m.Blocks, BlockRef{CID: c, Size: 1})
			m.Size++
		}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("%s: Encode: %v", tc.name, err)
		}
		if !strings.Contains(string(b), `"format":"`+tc.want+`"`) {
			t.Errorf("%s: Encode = %s, want format %s", tc.name, b, tc.want)
		}
		if _, err := DecodeManifest(b); err != nil {
			t.Errorf("%s: DecodeManifest(Encode) = %v", tc.name, err)
		}
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	m := sampleManifests(t)[1]
	good, _ := m.Encode()
	s := string(good)
	blk := m.Blocks[0].CID.String()
	sha256Manifest, _ := Manifest{Kind: KindFile, Size: 11, Blocks: []BlockRef{{CID: blockCID(multihash.SHA2_256, []byte("hello world")), Size: 11}}}.Encode()
	cases := []struct {
		name, doc string
	}{
		{"not JSON", "{"},
		{"whitespace", strings.Replace(s, `,"kind"`, `, "kind"`, 1)},
		{"keys out of order", strings.Replace(s, `{"blocks":`, `{"kind":"x","blocks":`, 1)},
		{"unknown field", strings.Replace(s, `"format"`, `"extra":1,"format"`, 1)},
		{"other format", strings.Replace(s, ManifestFormat, "mimnode-manifest/3", 1)},
		{"format 1 with BLAKE3 blocks", strings.Replace(s, ManifestFormat, ManifestFormatV1, 1)},
		{"format 2 with SHA2-256 blocks only", strings.Replace(string(sha256Manifest), ManifestFormatV1, ManifestFormat, 1)},
		{"unknown kind", strings.Replace(s, KindEntities, "tiles", 1)},
		{"size does not add up", strings.Replace(s, `"size":`+strconv.FormatInt(m.Size, 10)+`}`, `"size":1}`, 1)},
		{"bad CID", strings.Replace(s, blk, "bafy-not-a-cid", 1)},
		{"block CID not raw", strings.Replace(s, blk, cid.NewCidV1(cid.DagJSON, m.Blocks[0].CID.Hash()).String(), 1)},
		{"trailing data", s + "{}"},
		{"too large", strings.Repeat(" ", MaxManifestSize+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeManifest([]byte(tc.doc)); !errors.Is(err, ErrMalformedManifest) {
				t.Errorf("DecodeManifest = %v, want ErrMalformedManifest", err)
			}
		})
	}
	bad := []struct {
		name string
		m    Manifest
	}{
		{"entity ids overlap", Manifest{Kind: KindEntities, Size: 2, Blocks: []BlockRef{
			{CID: BlockCID([]byte("a")), Size: 1, Count: 1, First: "b", Last: "b"},
			{CID: BlockCID([]byte("b")), Size: 1, Count: 1, First: "a", Last: "a"}}}},
		{"file block with entities", Manifest{Kind: KindFile, Size: 1, Blocks: []BlockRef{{CID: BlockCID([]byte("a")), Size: 1, Count: 1, First: "a", Last: "a"}}}},
		{"block too large", Manifest{Kind: KindFile, Size: MaxBlockSize + 1, Blocks: []BlockRef{{CID: BlockCID([]byte("a")), Size: MaxBlockSize + 1}}}},
		{"undefined block CID", Manifest{Kind: KindFile, Size: 1, Blocks: []BlockRef{{Size: 1}}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.Encode(); err == nil {
				t.Errorf("Encode accepted it")
			}
		})
	}
}

func TestDiff(t *testing.T) {
	a, b, c := BlockRef{CID: BlockCID([]byte("a")), Size: 1}, BlockRef{CID: BlockCID([]byte("b")), Size: 1}, BlockRef{CID: BlockCID([]byte("c")), Size: 1}
	old := Manifest{Kind: KindFile, Blocks: []BlockRef{a, b}}
	next := Manifest{Kind: KindFile, Blocks: []BlockRef{b, c, a, c}}
	d := Diff(old, next)
	if len(d) != 1 || !d[0].CID.Equals(c.CID) {
		t.Errorf("Diff = %v, want [c] once", d)
	}
	if d := Diff(Manifest{}, old); len(d) != 2 {
		t.Errorf("Diff(empty, old) = %d blocks, want all 2", len(d))
	}
}

func FuzzDecodeManifest(f *testing.F) {
	for _, m := range sampleManifests(f) {
		b, _ := m.Encode()
		f.Add(b)
	}
	f.Add([]byte(`{"blocks":[],"format":"mimnode-manifest/1","kind":"file","size":0}`))
	f.Add([]byte(`{"blocks":[{"cid":{"/":"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"},"size":11}],"format":"mimnode-manifest/1","kind":"file","size":11}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(data)
		if err != nil {
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded manifest encodes differently:\n%s\n%s", data, again)
		}
	})
}
