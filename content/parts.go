package content

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Part is one piece of a KindDataset version: the entities of the
// dataset's NGSI-LD view, or one of its files. A part is Blocks
// consecutive blocks of the manifest, in the order the parts are listed.
type Part struct {
	Kind      string `json:"kind"`                // KindEntities or KindFile
	Name      string `json:"name,omitempty"`      // file parts: the file's plain name
	MediaType string `json:"mediaType,omitempty"` // file parts: e.g. text/csv
	SHA256    string `json:"sha256,omitempty"`    // file parts: hex SHA2-256 of the whole file
	Size      int64  `json:"size"`                // bytes of the part's blocks
	Blocks    int    `json:"blocks"`              // how many blocks of the manifest
}

// partJSON has Part's wire shape; kept apart so that the field order and
// names of the encoding are fixed here, next to manifestJSON.
type partJSON struct {
	Kind      string `json:"kind"`
	Name      string `json:"name,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	Size      int64  `json:"size"`
	Blocks    int    `json:"blocks"`
}

// FilePart is one file of a dataset version: its own KindFile manifest
// (ChunkFile) and what the catalogue says about it.
type FilePart struct {
	Name      string
	MediaType string
	SHA256    string // hex SHA2-256 of the file's bytes
	File      Manifest
}

// NewDatasetManifest puts a dataset's parts into one KindDataset manifest:
// the entities of its view first (entities may be nil: a dataset of files
// only), then its files in name order. The blocks are those of the parts'
// own manifests, unchanged, so the version shares every block with the
// versions of the parts, and a few changed bytes of a big file change only
// the blocks around them.
func NewDatasetManifest(entities *Manifest, files []FilePart) (Manifest, error) {
	m := Manifest{Kind: KindDataset}
	if entities != nil {
		if entities.Kind != KindEntities {
			return Manifest{}, fmt.Errorf("%w: the entities part is a %q manifest", ErrInput, entities.Kind)
		}
		m.Blocks = append(m.Blocks, entities.Blocks...)
		m.Size += entities.Size
		m.Parts = append(m.Parts, Part{Kind: KindEntities, Size: entities.Size, Blocks: len(entities.Blocks)})
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b FilePart) int { return cmp.Compare(a.Name, b.Name) })
	for _, f := range files {
		if f.File.Kind != KindFile {
			return Manifest{}, fmt.Errorf("%w: file %q has a %q manifest", ErrInput, f.Name, f.File.Kind)
		}
		m.Blocks = append(m.Blocks, f.File.Blocks...)
		m.Size += f.File.Size
		m.Parts = append(m.Parts, Part{Kind: KindFile, Name: f.Name, MediaType: f.MediaType, SHA256: f.SHA256,
			Size: f.File.Size, Blocks: len(f.File.Blocks)})
	}
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return m, nil
}

// PartBlocks returns the blocks of part i of a KindDataset manifest.
func (m Manifest) PartBlocks(i int) []BlockRef {
	off := 0
	for _, p := range m.Parts[:i] {
		off += p.Blocks
	}
	return m.Blocks[off : off+m.Parts[i].Blocks]
}

// EntitiesPart returns the entities of a version as a KindEntities
// manifest: the whole manifest if it is one, the entities part of a
// KindDataset manifest (empty if it has none), nothing for a file.
func (m Manifest) EntitiesPart() Manifest {
	out := Manifest{Kind: KindEntities}
	switch m.Kind {
	case KindEntities:
		return m
	case KindDataset:
		for i, p := range m.Parts {
			if p.Kind == KindEntities {
				out.Blocks, out.Size = m.PartBlocks(i), p.Size
			}
		}
	}
	return out
}

// ValidFileName reports whether name can name a file of a dataset: a plain
// name (no directory, not "." or ".."), not hidden, printable, at most 255
// bytes, so that a consumer can write it into a directory as it is.
func ValidFileName(name string) bool {
	if name == "" || len(name) > 255 || name == "." || name == ".." || strings.HasPrefix(name, ".") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == ':' {
			return false
		}
	}
	return true
}

// checkParts checks a KindDataset manifest: parts cover the blocks exactly,
// at most one entities part and it comes first, files in strictly
// increasing name order with a checksum, each part's size the sum of its
// blocks.
func (m Manifest) checkParts() error {
	if len(m.Parts) == 0 {
		return fmt.Errorf("a %s manifest needs parts", KindDataset)
	}
	off := 0
	prev := ""
	for i, p := range m.Parts {
		if p.Blocks < 0 || off+p.Blocks > len(m.Blocks) {
			return fmt.Errorf("parts[%d]: %d blocks from block %d run past the %d blocks", i, p.Blocks, off, len(m.Blocks))
		}
		run := m.Blocks[off : off+p.Blocks]
		var size int64
		for _, b := range run {
			size += b.Size
		}
		if size != p.Size {
			return fmt.Errorf("parts[%d]: size %d is not the sum of its block sizes %d", i, p.Size, size)
		}
		switch p.Kind {
		case KindEntities:
			if i != 0 || p.Name != "" || p.MediaType != "" || p.SHA256 != "" {
				return fmt.Errorf("parts[%d]: the entities part comes first and has no name, media type or checksum", i)
			}
		case KindFile:
			if !ValidFileName(p.Name) {
				return fmt.Errorf("parts[%d]: %q is not a plain file name", i, p.Name)
			}
			if p.Name <= prev {
				return fmt.Errorf("parts[%d]: file %q is not after %q (files are in name order, each once)", i, p.Name, prev)
			}
			prev = p.Name
			if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 || strings.ToLower(p.SHA256) != p.SHA256 {
				return fmt.Errorf("parts[%d]: sha256 %q is not 64 lower-case hex digits", i, p.SHA256)
			}
		default:
			return fmt.Errorf("parts[%d]: kind %q is not %s or %s", i, p.Kind, KindEntities, KindFile)
		}
		if err := checkRun(p.Kind, run, off); err != nil {
			return fmt.Errorf("parts[%d]: %w", i, err)
		}
		off += p.Blocks
	}
	if off != len(m.Blocks) {
		return fmt.Errorf("parts cover %d of the %d blocks", off, len(m.Blocks))
	}
	return nil
}
