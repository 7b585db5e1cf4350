package content

import (
	"bytes"
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
