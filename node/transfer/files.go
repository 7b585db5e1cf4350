package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/catalogsvc"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
)

// Files of datasets (mimnode dataset add-file).
//
// On the publisher a file's bytes are kept as blocks in the store, the
// same t/b/<CID> blocks the provider serves, with the file's own KindFile
// manifest under t/m/<CID>; StoreFile cuts them once, when the file is
// added. The provider never reads the file again, so a file changed or
// deleted on disk after add-file cannot make a served block differ from
// its CID, and a few changed bytes added again store only the blocks
// around them. A dataset's version is then a KindDataset manifest whose
// parts are the view's entities and the files (buildWithFiles).
//
// On the consumer, landing writes each file of the version to
// FilesDir/<dataset>/<version>/<name> (the dataset id path-escaped), checks
// its SHA2-256, and writes FilesDir/<dataset>/<version>.json with the
// provenance. The checksum of every received file is recorded under
// t/f/<sha256> with its provenance, so the same bytes are refused by
// StoreFile and by Build (ErrNotDistributable) when the agreement does not
// permit distribute, whatever path or name they are added under.

var _ catalogsvc.Files = (*Service)(nil)

func receivedFileKey(sha string) []byte { return store.Key(store.PrefixTransfer, "f", sha) }

// hasFiles reports whether ds's data includes files.
func hasFiles(ds catalog.Dataset) bool { return ds.Source != nil && len(ds.Source.Files) > 0 }

// ctxReader stops reading when ctx ends (an upload cancelled by the
// client).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// StoreFile cuts everything r yields into content-defined blocks, stores
// the blocks this node does not hold yet and the file's own manifest, and
// returns the file as a dataset lists it.
func (s *Service) StoreFile(ctx context.Context, name, mediaType string, r io.Reader) (catalog.File, error) {
	h := sha256.New()
	bw := s.newBlockWriter()
	defer bw.cancel()
	m, err := content.ChunkFile(io.TeeReader(ctxReader{ctx, r}, h), func(b content.Block) error {
		return bw.putNew(b.CID.String(), b.Data)
	})
	if err != nil {
		return catalog.File{}, fmt.Errorf("storing file %s: %w", name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := s.distributable(name, sum); err != nil {
		return catalog.File{}, err
	}
	c, enc, err := encodeManifest(m)
	if err != nil {
		return catalog.File{}, fmt.Errorf("storing file %s: %w", name, err)
	}
	// The blocks before the manifest that names them.
	if err := bw.finish(); err != nil {
		return catalog.File{}, fmt.Errorf("storing file %s: %w", name, err)
	}
	if err := s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(manifestKey(c), enc) }); err != nil {
		return catalog.File{}, fmt.Errorf("storing file %s: %w", name, err)
	}
	return catalog.File{Name: name, MediaType: mediaType, Version: c, Size: m.Size, SHA256: sum}, nil
}

// encodeManifest returns a manifest's id and canonical bytes.
func encodeManifest(m content.Manifest) (version string, enc []byte, err error) {
	if enc, err = m.Encode(); err != nil {
		return "", nil, err
	}
	c, err := m.CID()
	if err != nil {
		return "", nil, err
	}
	return c.String(), enc, nil
}

// distributable refuses the bytes with checksum sum when this node
// received them under an agreement that does not permit distribute.
func (s *Service) distributable(name, sum string) error {
	b, err := s.getBytes(receivedFileKey(sum))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var p Provenance
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("provenance of received file %s: %w", sum, err)
	}
	pass, err := s.passable(p, s.o.Now(), map[string]bool{})
	if err != nil || pass {
		return err
	}
	why := "does not let this node pass it on"
	if p.Distribute {
		why = "has ended or was revoked"
	}
	return fmt.Errorf("file %s: %w: it is a copy of a file of dataset %s from %s, whose agreement %s %s", name, catalogsvc.ErrNotDistributable,
		p.Dataset, p.Provider, p.Agreement, why)
}

// buildWithFiles makes the version of a dataset with files: the entities
// of its view, if it has one (built by Build as for any view), then its
// files, each from the manifest StoreFile kept.
func (s *Service) buildWithFiles(ctx context.Context, ds catalog.Dataset) (string, error) {
	var ents *content.Manifest
	if _, ok := ds.EffectiveView(); ok {
		view := ds
		src := *ds.Source
		src.Files = nil
		view.Source = &src
		v, err := s.Build(ctx, view)
		if err != nil {
			return "", err
		}
		m, err := s.manifest(v)
		if err != nil {
			return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
		}
		ents = &m
	}
	parts := make([]content.FilePart, 0, len(ds.Source.Files))
	for _, f := range ds.Source.Files {
		if f.Version == "" || f.SHA256 == "" {
			return "", fmt.Errorf("building a version of %s: file %s was not added on this node (no content)", ds.ID, f.Name)
		}
		fm, err := s.manifest(f.Version)
		if err != nil {
			return "", fmt.Errorf("building a version of %s: file %s: %w", ds.ID, f.Name, err)
		}
		if fm.Kind != content.KindFile || fm.Size != f.Size {
			return "", fmt.Errorf("building a version of %s: file %s: stored manifest %s is not a file of %d bytes", ds.ID, f.Name, f.Version, f.Size)
		}
		if err := s.distributable(f.Name, f.SHA256); err != nil {
			return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
		}
		parts = append(parts, content.FilePart{Name: f.Name, MediaType: f.MediaType, SHA256: f.SHA256, File: fm})
	}
	m, err := content.NewDatasetManifest(ents, parts)
	if err != nil {
		return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
	}
	version, enc, err := encodeManifest(m)
	if err != nil {
		return "", fmt.Errorf("encoding the manifest of %s: %w", ds.ID, err)
	}
	if err := s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(manifestKey(version), enc) }); err != nil {
		return "", fmt.Errorf("storing version %s of %s: %w", version, ds.ID, err)
	}
	s.mu.Lock()
	s.manifests[version] = m
	s.mu.Unlock()
	return version, nil
}

// ReceivedFile is one file of a landed version, as the provenance file
// next to the version's directory lists it.
type ReceivedFile struct {
	Name      string `json:"name"`
	MediaType string `json:"mediaType,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Path      string `json:"path"`
}

// ReceivedVersion is the provenance file FilesDir/<dataset>/<version>.json.
type ReceivedVersion struct {
	Provenance
	Files []ReceivedFile `json:"files"`
}

// ReceivedDir returns the directory the files of version of dataset land
// in on a consumer.
func (s *Service) ReceivedDir(dataset, version string) string {
	return filepath.Join(s.o.FilesDir, datasetDirName(dataset, runtime.GOOS), version)
}

// datasetDirName is the name of the directory of a dataset's received
// files on goos: its id, path-escaped. Windows allows no ':' in a file
// name, and a dataset id is a URN, so there ':' is escaped too.
func datasetDirName(dataset, goos string) string {
	n := url.PathEscape(dataset)
	if goos == "windows" {
		n = strings.ReplaceAll(n, ":", "%3A")
	}
	return n
}

// landFiles writes the files of version m (held as verified blocks) into
// the consumer's files directory and returns the entities part, for land
// to put into the entity store.
func (s *Service) landFiles(e *entry, a policy.Agreement, m content.Manifest) (content.Manifest, error) {
	if m.Kind != content.KindDataset {
		return m, nil
	}
	var rv ReceivedVersion
	if err := json.Unmarshal(provenanceFor(a, e.info.Version), &rv.Provenance); err != nil {
		return m, err
	}
	dir := s.ReceivedDir(a.Dataset, e.info.Version)
	for i, p := range m.Parts {
		if p.Kind != content.KindFile {
			continue
		}
		if s.o.FilesDir == "" {
			return m, fmt.Errorf("landing file %s of %s: this node has no directory for received files", p.Name, a.Dataset)
		}
		path := filepath.Join(dir, p.Name)
		if err := s.writeReceived(path, p, m.PartBlocks(i)); err != nil {
			return m, fmt.Errorf("landing file %s of %s: %w", p.Name, a.Dataset, err)
		}
		rv.Files = append(rv.Files, ReceivedFile{Name: p.Name, MediaType: p.MediaType, Size: p.Size, SHA256: p.SHA256, Path: path})
	}
	if len(rv.Files) > 0 {
		e.info.FilesDir = dir
		b, err := json.MarshalIndent(rv, "", "  ")
		if err != nil {
			return m, err
		}
		if err := writeFileAtomic(dir+".json", func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			return m, fmt.Errorf("writing the provenance of %s: %w", a.Dataset, err)
		}
		wb := s.o.Store.NewBatch()
		defer wb.Cancel()
		prov := provenanceFor(a, e.info.Version)
		for _, f := range rv.Files {
			if err := wb.Set(receivedFileKey(f.SHA256), prov); err != nil {
				return m, err
			}
		}
		if err := wb.Flush(); err != nil {
			return m, fmt.Errorf("recording received files: %w", err)
		}
	}
	return m.EntitiesPart(), nil
}

// writeReceived writes the blocks of one file part to path, checking the
// whole file's SHA2-256 (each block was checked against its CID on
// arrival) before it takes the final name.
func (s *Service) writeReceived(path string, p content.Part, blocks []content.BlockRef) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return writeFileAtomic(path, func(w io.Writer) error {
		h := sha256.New()
		for _, b := range blocks {
			data, err := s.getBlock(b.CID.String())
			if err != nil {
				return err
			}
			h.Write(data)
			if _, err := w.Write(data); err != nil {
				return err
			}
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
			return fmt.Errorf("%w: the file's bytes hash to sha256 %s, the manifest says %s", ErrCorruptBlock, got, p.SHA256)
		}
		return nil
	})
}

// writeFileAtomic writes a file through a temporary one in the same
// directory, synced and renamed, so a reader never sees half a file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".landing-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o640); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
