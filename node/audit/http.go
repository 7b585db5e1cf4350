package audit

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
)

// Listing is the answer of GET /api/v1/audit.
type Listing struct {
	Entries []Entry `json:"entries"`
	// Verified is set when the request asked for verify=true and the
	// whole chain verified; Report says how far.
	Verified bool    `json:"verified,omitempty"`
	Report   *Report `json:"report,omitempty"`
	// Broken names the first broken entry when verification failed.
	Broken *BrokenError `json:"broken,omitempty"`
}

// Register mounts GET /api/v1/audit?from=&limit=&verify=true&anchor= on
// mux (anchor, repeatable: SEQ:HASH, as Report.Anchor).
func (l *Log) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/audit", l.handleList)
}

func (l *Log) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var from uint64
	limit := 0
	if s := q.Get("from"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Invalid query", "from must be a sequence number"))
			return
		}
		from = v
	}
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Invalid query", "limit must be a non-negative number"))
			return
		}
		limit = v
	}
	var anchors []Anchor
	for _, s := range q["anchor"] {
		a, err := ParseAnchor(s)
		if err != nil {
			problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Invalid query", err.Error()))
			return
		}
		anchors = append(anchors, a)
	}
	if len(anchors) > 0 && q.Get("verify") != "true" {
		problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Invalid query", "anchor is checked by verify=true; add it"))
		return
	}
	out, err := l.Read(from, limit, q.Get("verify") == "true", anchors)
	if err != nil {
		problem.Write(w, problem.New(http.StatusInternalServerError, "audit-failed", "Audit log unreadable", err.Error()))
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// Read lists entries from from (limit 0: all) and, with verify, checks the
// chain against anchors: a broken chain is reported in Listing.Broken
// (the entries before it are still listed), an error only when the log
// cannot be read.
func (l *Log) Read(from uint64, limit int, verify bool, anchors []Anchor) (Listing, error) {
	var out Listing
	if verify {
		rep, err := l.Verify(anchors...)
		var be *BrokenError
		switch {
		case errors.As(err, &be):
			out.Broken = be
		case err != nil:
			return Listing{}, err
		default:
			out.Verified, out.Report = true, &rep
		}
	}
	entries, err := l.List(from, limit)
	if err != nil && out.Broken == nil {
		return Listing{}, err
	}
	out.Entries = entries
	if out.Entries == nil {
		out.Entries = []Entry{}
	}
	return out, nil
}
