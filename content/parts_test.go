package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func filePart(t testing.TB, name string, data []byte) FilePart {
	t.Helper()
	sum := sha256.Sum256(data)
	return FilePart{Name: name, MediaType: "text/csv", SHA256: hex.EncodeToString(sum[:]), File: chunk(t, data).m}
}

func sampleDataset(t testing.TB, es []entity, data []byte) Manifest {
	t.Helper()
	ents := buildEntities(t, es).m
	m, err := NewDatasetManifest(&ents, []FilePart{filePart(t, "b.csv", data), filePart(t, "a.csv", data[:1000])})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDatasetManifestParts: a dataset version lists the entities first,
// then the files in name order; each part's blocks are exactly the blocks
// of the part's own manifest, so the bytes of a file are the concatenation
// of its part's blocks.
func TestDatasetManifestParts(t *testing.T) {
	data := randomBytes(5<<20, 11)
	es := makeEntities(t, 300, 2)
	ents := buildEntities(t, es).m
	b := filePart(t, "b.csv", data)
	a := filePart(t, "a.csv", []byte("x,y\n1,2\n"))
	m, err := NewDatasetManifest(&ents, []FilePart{b, a})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"", "a.csv", "b.csv"}
	if len(m.Parts) != 3 {
		t.Fatalf("parts = %+v, want 3", m.Parts)
	}
	for i, p := range m.Parts {
		if p.Name != wantNames[i] {
			t.Errorf("parts[%d].Name = %q, want %q", i, p.Name, wantNames[i])
		}
	}
	if got := m.PartBlocks(2); len(got) != len(b.File.Blocks) || !got[0].CID.Equals(b.File.Blocks[0].CID) {
		t.Errorf("PartBlocks(2) are not the blocks of b.csv")
	}
	if e := m.EntitiesPart(); e.Entities() != 300 || len(e.Blocks) != len(ents.Blocks) {
		t.Errorf("EntitiesPart has %d entities in %d blocks, want 300 in %d", e.Entities(), len(e.Blocks), len(ents.Blocks))
	}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeManifest(enc)
	if err != nil {
		t.Fatalf("DecodeManifest: %v", err)
	}
	if back.Parts[2] != m.Parts[2] {
		t.Errorf("round trip: part %+v, want %+v", back.Parts[2], m.Parts[2])
	}
	// Deterministic whatever order the files come in.
	again, err := NewDatasetManifest(&ents, []FilePart{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if versionID(t, again) != versionID(t, m) {
		t.Error("the same parts in another order gave another version")
	}
	// Files only.
	only, err := NewDatasetManifest(nil, []FilePart{a})
	if err != nil {
		t.Fatal(err)
	}
	if e := only.EntitiesPart(); len(e.Blocks) != 0 {
		t.Errorf("a files-only version has %d entity blocks", len(e.Blocks))
	}
}

// TestDatasetManifestFewBytesChanged: changing a few bytes in the middle
// of a big file changes a few blocks of the dataset version.
func TestDatasetManifestFewBytesChanged(t *testing.T) {
	data := randomBytes(20<<20, 5)
	before, err := NewDatasetManifest(nil, []FilePart{filePart(t, "big.bin", data)})
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Clone(data)
	copy(edited[10<<20:], "changed!")
	after, err := NewDatasetManifest(nil, []FilePart{filePart(t, "big.bin", edited)})
	if err != nil {
		t.Fatal(err)
	}
	if versionID(t, before) == versionID(t, after) {
		t.Fatal("an edited file kept its version")
	}
	if d := Diff(before, after); len(d) > 2 {
		t.Errorf("8 changed bytes changed %d of %d blocks, want at most 2", len(d), len(after.Blocks))
	}
}

func TestDatasetManifestRejects(t *testing.T) {
	data := []byte("a,b\n")
	good := filePart(t, "a.csv", data)
	ents := buildEntities(t, makeEntities(t, 3, 1)).m
	for _, tc := range []struct {
		name  string
		ents  *Manifest
		files []FilePart
		want  string
	}{
		{"same name twice", nil, []FilePart{good, good}, "not after"},
		{"directory in name", nil, []FilePart{{Name: "x/a.csv", SHA256: good.SHA256, File: good.File}}, "plain file name"},
		{"hidden name", nil, []FilePart{{Name: ".env", SHA256: good.SHA256, File: good.File}}, "plain file name"},
		{"no checksum", nil, []FilePart{{Name: "a.csv", File: good.File}}, "sha256"},
		{"entities as a file", nil, []FilePart{{Name: "a.csv", SHA256: good.SHA256, File: ents}}, "manifest"},
		{"file as entities", &good.File, nil, "entities part"},
		{"no parts", nil, nil, "needs parts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDatasetManifest(tc.ents, tc.files)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewDatasetManifest = %v, want ErrInput mentioning %q", err, tc.want)
			}
		})
	}
	// Parts on a plain kind, and parts that do not cover the blocks, are
	// malformed on the wire.
	m, _ := NewDatasetManifest(&ents, []FilePart{good})
	for _, bad := range []Manifest{
		{Kind: KindFile, Size: good.File.Size, Blocks: good.File.Blocks, Parts: m.Parts[1:]},
		{Kind: KindDataset, Size: m.Size, Blocks: m.Blocks, Parts: m.Parts[:1]},
	} {
		if _, err := bad.Encode(); err == nil {
			t.Errorf("Encode(%+v) succeeded", bad.Parts)
		}
	}
}

func TestValidFileName(t *testing.T) {
	for name, want := range map[string]bool{
		"stations.csv": true, "air quality 2026.geojson": true, "ÆØÅ.txt": true,
		"": false, ".": false, "..": false, ".hidden": false, "a/b": false, `a\b`: false,
		"a:b": false, "line\nbreak": false, strings.Repeat("x", 256): false,
	} {
		if got := ValidFileName(name); got != want {
			t.Errorf("ValidFileName(%q) = %v, want %v", name, got, want)
		}
	}
}
