package catalogsvc

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
)

// maxDatasetBytes caps a dataset description upload.
const maxDatasetBytes = 1 << 20

// SearchResult is the body of GET /api/v1/catalog.
type SearchResult struct {
	Total int       `json:"total"`
	Hits  []HitJSON `json:"hits"`
}

// HitJSON is one search hit.
type HitJSON struct {
	Score  float64        `json:"score"`
	Record catalog.Record `json:"record"`
}

// Register mounts the dataset and catalogue routes.
func (s *Service) Register(mux *http.ServeMux) {
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"POST /api/v1/datasets", s.handlePublish},
		{"GET /api/v1/datasets", s.handleList},
		{"GET /api/v1/datasets/{id}", s.handleShow},
		{"POST /api/v1/datasets/{id}/retire", s.handleRetire},
		{"DELETE /api/v1/datasets/{id}", s.handleRetire},
		{"POST /api/v1/datasets/{id}/files", s.handleAddFile},
		{"GET /api/v1/datasets/{id}/files", s.handleFiles},
		{"DELETE /api/v1/datasets/{id}/files/{name}", s.handleRemoveFile},
		{"GET /api/v1/catalog", s.handleSearch},
		{"GET /api/v1/catalog.jsonld", s.handleJSONLD},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
}

func writeErr(w http.ResponseWriter, err error) {
	var fe *catalog.FieldError
	switch {
	case errors.As(err, &fe):
		problem.Write(w, problem.New(http.StatusBadRequest, "dataset-invalid", "Invalid dataset description", err.Error()))
	case errors.Is(err, catalog.ErrInvalidDataset), errors.Is(err, catalog.ErrBadQuery):
		problem.Write(w, problem.New(http.StatusBadRequest, "dataset-invalid", "Invalid request", err.Error()))
	case errors.Is(err, ErrResearcher):
		problem.Write(w, problem.New(http.StatusForbidden, "researcher", "Researchers cannot publish", err.Error()))
	case errors.Is(err, ErrNoSuchFile):
		problem.Write(w, problem.New(http.StatusNotFound, "file-unknown", "No such file", err.Error()))
	case errors.Is(err, ErrNotFound):
		// The error starts with what the title says; the detail is the
		// rest, which names the dataset.
		detail := strings.TrimPrefix(err.Error(), ErrNotFound.Error()+": ")
		problem.Write(w, problem.New(http.StatusNotFound, "dataset-unknown", "No such dataset", detail))
	case errors.Is(err, catalog.ErrRetired):
		problem.Write(w, problem.New(http.StatusConflict, "dataset-retired", "Dataset retired", err.Error()))
	case errors.Is(err, ErrAmbiguous):
		problem.Write(w, problem.New(http.StatusConflict, "dataset-ambiguous", "Several publishers use this dataset id", err.Error()))
	case errors.Is(err, ErrBadFile):
		problem.Write(w, problem.New(http.StatusBadRequest, "file-invalid", "Invalid file", err.Error()))
	case errors.Is(err, ErrNotDistributable):
		problem.Write(w, problem.New(http.StatusForbidden, "not-distributable", "File may not be distributed", err.Error()))
	case errors.Is(err, ErrNoFiles):
		problem.Write(w, problem.New(http.StatusNotImplemented, "no-files", "No file store", err.Error()))
	default:
		problem.Write(w, problem.New(http.StatusInternalServerError, "internal", "Internal error", err.Error()))
	}
}

func (s *Service) handlePublish(w http.ResponseWriter, r *http.Request) {
	format := "json"
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/toml" || mt == "text/toml" {
		format = "toml"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDatasetBytes))
	if err != nil {
		problem.Write(w, problem.New(http.StatusRequestEntityTooLarge, "too-large", "Description too large", err.Error()))
		return
	}
	d, err := catalog.ParseDataset(body, format)
	if err != nil {
		writeErr(w, err)
		return
	}
	if d, err = s.keepFiles(r.Context(), d); err != nil {
		writeErr(w, err)
		return
	}
	rec, err := s.Publish(r.Context(), d)
	if err != nil {
		writeErr(w, err)
		return
	}
	if s.o.Warn != nil {
		for _, warning := range s.o.Warn(rec.Dataset) {
			w.Header().Add(WarningHeader, warning)
		}
	}
	api.WriteJSON(w, http.StatusCreated, rec)
}

// WarningHeader carries, on the answer of POST /api/v1/datasets, each
// thing the node noticed that may not be what the publisher meant (one
// field per warning); the body is the signed record, as ever.
const WarningHeader = "Mimnode-Warning"

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	recs := s.Own()
	if recs == nil {
		recs = []catalog.Record{}
	}
	api.WriteJSON(w, http.StatusOK, recs)
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := s.Get(id)
	if errors.Is(err, ErrNotFound) {
		// Most often a mistyped id: say where the node looked and how to
		// see what it has.
		writeErr(w, fmt.Errorf("%w: %s is not in this node's catalogue (check the spelling; 'mimnode catalog search' lists the datasets this node knows)", ErrNotFound, id))
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, rec)
}

func (s *Service) handleRetire(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, err := s.Retire(r.Context(), id)
	if errors.Is(err, ErrNotFound) {
		writeErr(w, fmt.Errorf("%w: this node publishes no dataset %s (check the spelling; 'mimnode dataset list' lists its datasets)", ErrNotFound, id))
		return
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, rec)
}

func (s *Service) handleSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := catalog.Query{Text: v.Get("q"), Type: v.Get("type"), Theme: v.Get("theme"),
		Publisher: v.Get("publisher"), License: v.Get("license")}
	for name, dst := range map[string]*int{"limit": &q.Limit, "offset": &q.Offset} {
		if s := v.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Bad query", name+" must be a whole number"))
				return
			}
			*dst = n
		}
	}
	if b := v.Get("bbox"); b != "" {
		bb, err := catalog.ParseBBox(b)
		if err != nil {
			writeErr(w, err)
			return
		}
		q.BBox = &bb
	}
	res, err := s.Search(q)
	if err != nil {
		writeErr(w, err)
		return
	}
	out := SearchResult{Total: res.Total, Hits: make([]HitJSON, len(res.Hits))}
	for i, h := range res.Hits {
		out.Hits[i] = HitJSON{Score: h.Score, Record: h.Record}
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// handleJSONLD serves the node's own catalogue as DCAT-AP JSON-LD: the
// datasets every federation member may see (restricted and private ones are
// left out, as they are for a harvester).
func (s *Service) handleJSONLD(w http.ResponseWriter, r *http.Request) {
	var pub []catalog.Record
	for _, rec := range s.Own() {
		if rec.Dataset.Dissemination == catalog.Federation {
			pub = append(pub, rec)
		}
	}
	b, err := catalog.CatalogJSONLD(pub, "http://"+r.Host)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/ld+json")
	w.Write(b)
}
