package catalogsvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/api"
)

// Files keeps the bytes of datasets' files and makes datasets' versions;
// node/transfer.Service implements it (the transfer provider serves the
// blocks it stores).
type Files interface {
	// StoreFile reads r to the end, keeps the bytes as content-addressed
	// blocks and returns the file as the catalogue lists it: Name and
	// MediaType as given, Version (the file's own manifest CID), Size and
	// SHA256 from the bytes. It wraps ErrNotDistributable when the bytes
	// are a file this node received under an agreement that does not
	// permit distribute. What was read is kept even when ctx ends or r
	// fails; nothing refers to it until a dataset lists the file.
	StoreFile(ctx context.Context, name, mediaType string, r io.Reader) (catalog.File, error)
	// Build makes the current version of d (its view's entities and its
	// files) and returns the version id.
	Build(ctx context.Context, d catalog.Dataset) (string, error)
}

// Errors of the file operations.
var (
	// ErrNotDistributable: the file was received under an agreement whose
	// policy does not permit distribute; it is never served onwards.
	ErrNotDistributable = errors.New("received under an agreement that does not permit distribute")
	// ErrBadFile: a file name or request the catalogue cannot take.
	ErrBadFile = errors.New("bad file")
	// ErrNoFiles: this node keeps no files (UseFiles was not called).
	ErrNoFiles = errors.New("this node keeps no dataset files")
)

// UseFiles sets where the service keeps dataset files and builds
// versions. The node calls it once, before Start.
func (s *Service) UseFiles(f Files) { s.files = f }

// AddFile adds the file read from r to this node's live dataset id (or
// replaces the file of that name), builds the dataset's new version, whose
// manifest covers its entities and all its files, and republishes it. A
// dataset that was a view of entity types stays one, with the file beside
// its entities.
func (s *Service) AddFile(ctx context.Context, id, name, mediaType string, r io.Reader) (catalog.Record, catalog.File, error) {
	if s.files == nil {
		return catalog.Record{}, catalog.File{}, ErrNoFiles
	}
	if !content.ValidFileName(name) {
		return catalog.Record{}, catalog.File{}, fmt.Errorf("%w: %q is not a plain file name (no directory, not hidden, no ':' or control characters, at most 255 bytes)", ErrBadFile, name)
	}
	if mediaType != "" {
		if _, _, err := mime.ParseMediaType(mediaType); err != nil {
			return catalog.Record{}, catalog.File{}, fmt.Errorf("%w: media type %q: %v", ErrBadFile, mediaType, err)
		}
	}
	if !s.o.Federations.IsAgency() {
		return catalog.Record{}, catalog.File{}, fmt.Errorf("add a file to %s: %w", id, ErrResearcher)
	}
	if _, err := s.ownLive(id); err != nil {
		return catalog.Record{}, catalog.File{}, err
	}
	f, err := s.files.StoreFile(ctx, name, mediaType, r)
	if err != nil {
		return catalog.Record{}, catalog.File{}, fmt.Errorf("adding %s to %s: %w", name, id, err)
	}
	rec, err := s.changeFiles(ctx, id, func(files []catalog.File) []catalog.File {
		files = slices.DeleteFunc(files, func(x catalog.File) bool { return x.Name == name })
		return append(files, f)
	})
	return rec, f, err
}

// RemoveFile takes file name out of dataset id and republishes it with a
// new version.
func (s *Service) RemoveFile(ctx context.Context, id, name string) (catalog.Record, error) {
	if s.files == nil {
		return catalog.Record{}, ErrNoFiles
	}
	rec, err := s.ownLive(id)
	if err != nil {
		return rec, err
	}
	if !slices.ContainsFunc(filesOf(rec.Dataset), func(f catalog.File) bool { return f.Name == name }) {
		return catalog.Record{}, fmt.Errorf("%w: dataset %s has no file %q", ErrNoSuchFile, id, name)
	}
	return s.changeFiles(ctx, id, func(files []catalog.File) []catalog.File {
		return slices.DeleteFunc(files, func(x catalog.File) bool { return x.Name == name })
	})
}

// ownLive returns this node's live dataset id.
func (s *Service) ownLive(id string) (catalog.Record, error) {
	s.pubMu.Lock()
	rec, ok := s.cat.Get(id)
	s.pubMu.Unlock()
	if !ok || rec.Retired {
		return catalog.Record{}, fmt.Errorf("%w: this node publishes no live dataset %s", ErrNotFound, id)
	}
	return rec, nil
}

func filesOf(d catalog.Dataset) []catalog.File {
	if d.Source == nil {
		return nil
	}
	return d.Source.Files
}

// changeFiles applies edit to dataset id's file list, builds the version
// and publishes the result, all under filesMu so that two changes of one
// dataset do not lose each other.
func (s *Service) changeFiles(ctx context.Context, id string, edit func([]catalog.File) []catalog.File) (catalog.Record, error) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	rec, err := s.ownLive(id)
	if err != nil {
		return rec, err
	}
	d := withFiles(rec.Dataset, edit(slices.Clone(filesOf(rec.Dataset))))
	if err := s.version(ctx, &d); err != nil {
		return catalog.Record{}, err
	}
	return s.Publish(ctx, d)
}

// withFiles returns d with files as its file list (sorted by name). A
// dataset that was a view of its entity types keeps that view explicitly
// beside its files; one left with neither has no source.
func withFiles(d catalog.Dataset, files []catalog.File) catalog.Dataset {
	slices.SortFunc(files, func(a, b catalog.File) int { return cmp.Compare(a.Name, b.Name) })
	var src catalog.Source
	if d.Source != nil {
		src = *d.Source
	} else if _, ok := d.EffectiveView(); ok {
		src.View = &catalog.View{} // the dataset's entity types
	}
	src.Files = files
	switch {
	case len(files) == 0 && src.View != nil && len(src.View.EntityTypes) == 0 && src.View.Q == "" && src.View.Area == nil:
		d.Source = nil // back to the plain view of its entity types
	case len(files) == 0 && src.View == nil:
		d.Source = nil
	default:
		d.Source = &src
	}
	return d
}

// version sets d.Version to the version of d's current data: built when
// it has files or a view, none otherwise.
func (s *Service) version(ctx context.Context, d *catalog.Dataset) error {
	_, view := d.EffectiveView()
	if !view && len(filesOf(*d)) == 0 {
		d.Version = ""
		return nil
	}
	v, err := s.files.Build(ctx, *d)
	if err != nil {
		return fmt.Errorf("building a version of %s: %w", d.ID, err)
	}
	d.Version = v
	return nil
}

// keepFiles carries the files of this node's dataset over into a newly
// authored description of it that lists none (a description file does not
// list the files added with add-file; rm-file removes them), and builds
// the version.
func (s *Service) keepFiles(ctx context.Context, d catalog.Dataset) (catalog.Dataset, error) {
	if len(filesOf(d)) > 0 || s.files == nil {
		return d, nil
	}
	s.pubMu.Lock()
	old, ok := s.cat.Get(d.ID)
	s.pubMu.Unlock()
	if !ok || old.Retired || len(filesOf(old.Dataset)) == 0 {
		return d, nil
	}
	d = withFiles(d, slices.Clone(filesOf(old.Dataset)))
	return d, s.version(ctx, &d)
}

// FileAdded is the answer to POST /api/v1/datasets/{id}/files.
type FileAdded struct {
	File   catalog.File   `json:"file"`
	Record catalog.Record `json:"record"`
}

// handleAddFile is POST /api/v1/datasets/{id}/files?name=NAME[&mediaType=T]:
// the body is the file's bytes, streamed (the CLI reads the file as the
// person running it; the daemon may run as another user, or elsewhere).
// Without mediaType, the request's Content-Type is the file's media type.
func (s *Service) handleAddFile(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, mt := q.Get("name"), q.Get("mediaType")
	if name == "" {
		writeErr(w, fmt.Errorf("%w: the name query parameter is required", ErrBadFile))
		return
	}
	if mt == "" {
		mt, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))
	}
	rec, f, err := s.AddFile(r.Context(), r.PathValue("id"), name, mt, r.Body)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, FileAdded{File: f, Record: rec})
}

// handleFiles is GET /api/v1/datasets/{id}/files: the files of any
// dataset this node knows (its own or the federation's).
func (s *Service) handleFiles(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Get(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	files := filesOf(rec.Dataset)
	if files == nil {
		files = []catalog.File{}
	}
	api.WriteJSON(w, http.StatusOK, files)
}

// handleRemoveFile is DELETE /api/v1/datasets/{id}/files/{name}.
func (s *Service) handleRemoveFile(w http.ResponseWriter, r *http.Request) {
	rec, err := s.RemoveFile(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, rec)
}
