package content

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// ManifestFormat names the manifest format and the rules behind it (entity
// boundaries, the gear table and masks of the file chunker, the hash that
// names blocks). Any change to those rules is a new format: the same data
// must always give the same version id.
//
// Format 2 names new blocks with BLAKE3-256 (BlockCID); blocks named with
// SHA2-256 by earlier nodes may appear in it too (a file's blocks kept
// from its own earlier manifest). A manifest whose blocks are all SHA2-256
// (or that has none) is written in format 1, as earlier nodes wrote it, so
// the versions they built keep their bytes and ids. Encode picks the
// format from the blocks and DecodeManifest accepts only that one, so a
// manifest still has one byte form.
const (
	ManifestFormat   = "mimnode-manifest/2"
	ManifestFormatV1 = "mimnode-manifest/1"
)

// format is the format m is written in: 2 once a block is named with
// BLAKE3.
func (m Manifest) format() string {
	for _, b := range m.Blocks {
		if b.CID.Prefix().MhType == multihash.BLAKE3 {
			return ManifestFormat
		}
	}
	return ManifestFormatV1
}

// Kinds of version.
const (
	KindEntities = "ngsi-ld-entities" // blocks of NGSI-LD entities, one JSON object per line, in id order
	KindFile     = "file"             // blocks of one file's bytes
	KindDataset  = "dataset"          // parts (entities, files) one after another; see Part
)

// MaxManifestSize bounds encoded manifest bytes DecodeManifest reads. At
// about 150 bytes per block it covers versions of several hundred GiB.
const MaxManifestSize = 64 << 20

// Manifest lists the blocks of one version, in order. Its CID is the
// version id.
type Manifest struct {
	Kind   string
	Size   int64 // total bytes of all blocks
	Blocks []BlockRef
	// Parts, in a KindDataset manifest only, say which consecutive runs of
	// Blocks make up the dataset's entities and each of its files.
	Parts []Part
}

// BlockRef is one block of a manifest.
type BlockRef struct {
	CID  cid.Cid
	Size int64
	// Entities manifests only: how many entities the block holds and the
	// first and last entity id, so a consumer can tell which block holds an
	// entity without fetching the others.
	Count       int64
	First, Last string
}

// Entities returns the number of entities in an entities manifest.
func (m Manifest) Entities() int64 {
	var n int64
	for _, b := range m.Blocks {
		n += b.Count
	}
	return n
}

type linkJSON struct {
	Link string `json:"/"`
}

type blockRefJSON struct {
	CID   linkJSON `json:"cid"`
	Size  int64    `json:"size"`
	Count int64    `json:"count,omitempty"`
	First string   `json:"first,omitempty"`
	Last  string   `json:"last,omitempty"`
}

type manifestJSON struct {
	Format string         `json:"format"`
	Kind   string         `json:"kind"`
	Size   int64          `json:"size"`
	Blocks []blockRefJSON `json:"blocks"`
	Parts  []partJSON     `json:"parts,omitempty"`
}

// Encode returns the manifest's canonical bytes: DAG-JSON (block CIDs as
// {"/": cid} links, keys sorted, no whitespace), which is also RFC 8785
// canonical JSON. Encoding checks the manifest first.
func (m Manifest) Encode() ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	w := manifestJSON{Format: m.format(), Kind: m.Kind, Size: m.Size, Blocks: make([]blockRefJSON, len(m.Blocks))}
	for i, b := range m.Blocks {
		w.Blocks[i] = blockRefJSON{CID: linkJSON{b.CID.String()}, Size: b.Size, Count: b.Count, First: b.First, Last: b.Last}
	}
	for _, p := range m.Parts {
		w.Parts = append(w.Parts, partJSON(p))
	}
	raw, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	c, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("canonicalising manifest: %w", err)
	}
	return c, nil
}

// CID returns the version id: CIDv1, dag-json codec, SHA2-256 of Encode().
func (m Manifest) CID() (cid.Cid, error) {
	b, err := m.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return sum(cid.DagJSON, b), nil
}

// VerifyManifest checks that data is the manifest c names and decodes it.
func VerifyManifest(c cid.Cid, data []byte) (Manifest, error) {
	if err := checkCID(c, cid.DagJSON); err != nil {
		return Manifest{}, fmt.Errorf("verifying manifest: %w", err)
	}
	if got := sum(cid.DagJSON, data); !got.Equals(c) {
		return Manifest{}, fmt.Errorf("verifying manifest %s: %w: the bytes hash to %s", c, ErrBlockMismatch, got)
	}
	return DecodeManifest(data)
}

// DecodeManifest reads manifest bytes. It accepts only the canonical
// encoding Encode produces, so a manifest has exactly one byte form and one
// CID.
func DecodeManifest(data []byte) (Manifest, error) {
	if len(data) > MaxManifestSize {
		return Manifest{}, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedManifest, len(data), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w manifestJSON
	if err := dec.Decode(&w); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrMalformedManifest, err)
	}
	if w.Format != ManifestFormat && w.Format != ManifestFormatV1 {
		return Manifest{}, fmt.Errorf("%w: format %q, want %s or %s", ErrMalformedManifest, w.Format, ManifestFormat, ManifestFormatV1)
	}
	m := Manifest{Kind: w.Kind, Size: w.Size, Blocks: make([]BlockRef, len(w.Blocks))}
	for i, b := range w.Blocks {
		c, err := cid.Decode(b.CID.Link)
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: blocks[%d].cid: %v", ErrMalformedManifest, i, err)
		}
		m.Blocks[i] = BlockRef{CID: c, Size: b.Size, Count: b.Count, First: b.First, Last: b.Last}
	}
	for _, p := range w.Parts {
		m.Parts = append(m.Parts, Part(p))
	}
	again, err := m.Encode()
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrMalformedManifest, err)
	}
	if !bytes.Equal(again, data) {
		return Manifest{}, fmt.Errorf("%w: not in canonical form", ErrMalformedManifest)
	}
	return m, nil
}

// check enforces what every manifest must satisfy.
func (m Manifest) check() error {
	var total int64
	for _, b := range m.Blocks {
		total += b.Size
	}
	if total != m.Size {
		return fmt.Errorf("size %d is not the sum of the block sizes %d", m.Size, total)
	}
	switch m.Kind {
	case KindEntities, KindFile:
		if len(m.Parts) > 0 {
			return fmt.Errorf("a %s manifest has no parts", m.Kind)
		}
		return checkRun(m.Kind, m.Blocks, 0)
	case KindDataset:
		return m.checkParts()
	default:
		return fmt.Errorf("kind %q is not %s, %s or %s", m.Kind, KindEntities, KindFile, KindDataset)
	}
}

// checkRun checks one run of blocks of a kind; off is the index of the
// run's first block in the manifest, for messages.
func checkRun(kind string, blocks []BlockRef, off int) error {
	for j, b := range blocks {
		i := off + j
		if err := checkCID(b.CID, cid.Raw); err != nil {
			return fmt.Errorf("blocks[%d]: %w", i, err)
		}
		if b.Size <= 0 || b.Size > MaxBlockSize {
			return fmt.Errorf("blocks[%d]: size %d is not in 1..%d", i, b.Size, MaxBlockSize)
		}
		if kind == KindFile {
			if b.Count != 0 || b.First != "" || b.Last != "" {
				return fmt.Errorf("blocks[%d]: a file block has no entities", i)
			}
			continue
		}
		if b.Count <= 0 || b.First == "" || b.Last == "" || b.Last < b.First || (b.Count == 1) != (b.First == b.Last) {
			return fmt.Errorf("blocks[%d]: entity count %d and ids %q..%q do not fit", i, b.Count, b.First, b.Last)
		}
		if j > 0 && b.First <= blocks[j-1].Last {
			return fmt.Errorf("blocks[%d]: first id %q is not after the previous block's last %q", i, b.First, blocks[j-1].Last)
		}
	}
	return nil
}

// Diff returns the blocks of next that old does not have, in next's order
// and each once: what a consumer holding old must fetch to have next.
func Diff(old, next Manifest) []BlockRef {
	have := make(map[cid.Cid]bool, len(old.Blocks))
	for _, b := range old.Blocks {
		have[b.CID] = true
	}
	var out []BlockRef
	for _, b := range next.Blocks {
		if !have[b.CID] {
			have[b.CID] = true
			out = append(out, b)
		}
	}
	return out
}
