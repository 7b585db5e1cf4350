package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
)

// BenchmarkBuildEntities measures version building from NGSI-LD entities
// (hashing every block and id, building the manifest); MB/s is over the
// entities' JSON.
func BenchmarkBuildEntities(b *testing.B) {
	es := makeEntities(b, 20000, 7)
	var size int64
	for _, e := range es {
		size += int64(len(e.json))
	}
	b.SetBytes(size)
	for b.Loop() {
		bl := NewEntityBuilder(func(Block) error { return nil })
		for _, e := range es {
			if err := bl.Add(e.id, e.json); err != nil {
				b.Fatal(err)
			}
		}
		m, err := bl.Finish()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.CID(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunkFile measures version building from a file: FastCDC
// chunking and hashing every block.
func BenchmarkChunkFile(b *testing.B) {
	data := randomBytes(32<<20, 8)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		m, err := ChunkFile(bytes.NewReader(data), func(Block) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.CID(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDatasetVersion100MB measures a file dataset's version as
// add-file makes it, without storage: FastCDC chunking of a 100 MB file,
// hashing every block, the SHA-256 of the whole file, and the dataset
// manifest and its CID.
func BenchmarkDatasetVersion100MB(b *testing.B) {
	data := randomBytes(100<<20, 9)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		h := sha256.New()
		m, err := ChunkFile(io.TeeReader(bytes.NewReader(data), h), func(Block) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		d, err := NewDatasetManifest(nil, []FilePart{{Name: "big.bin", SHA256: hex.EncodeToString(h.Sum(nil)), File: m}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.CID(); err != nil {
			b.Fatal(err)
		}
	}
}
