package transfer

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
)

// FetchRequest is the body of POST /api/v1/transfers.
type FetchRequest struct {
	Agreement string `json:"agreement"`
	// Live keeps the feed open after the snapshot until the client
	// disconnects or the provider ends it.
	Live bool `json:"live,omitempty"`
	// Full lands every entity of the version (FetchOptions.Full).
	Full bool `json:"full,omitempty"`
}

// ControlRequest is the body of POST /api/v1/transfers/{id}/suspend and
// /terminate.
type ControlRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Event is one line of the application/x-ndjson answer of POST
// /api/v1/transfers: progress while the snapshot moves, then each live
// change, then the outcome (Done with the transfer, or Error).
type Event struct {
	Progress *Progress   `json:"progress,omitempty"`
	Change   *LiveChange `json:"change,omitempty"`
	Done     *Info       `json:"done,omitempty"`
	Error    *EventError `json:"error,omitempty"`
}

// EventError is the outcome of a failed fetch.
type EventError struct {
	Message string   `json:"message"`
	Code    string   `json:"code,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
}

// Register mounts the transfer routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"POST /api/v1/transfers", s.handleFetch},
		{"GET /api/v1/transfers", s.handleList},
		{"GET /api/v1/transfers/{id}", s.handleShow},
		{"POST /api/v1/transfers/{id}/suspend", s.handleSuspend},
		{"POST /api/v1/transfers/{id}/resume", s.handleResume},
		{"POST /api/v1/transfers/{id}/terminate", s.handleTerminate},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
}

func writeErr(w http.ResponseWriter, err error) {
	status, name, title := http.StatusInternalServerError, "transfer-failed", "Transfer failed"
	var re *RefusedError
	switch {
	case api.IsBadRequest(err):
		status, name, title = http.StatusBadRequest, "transfer-invalid", "Invalid transfer request"
	case errors.Is(err, ErrUnknownTransfer):
		status, name, title = http.StatusNotFound, "transfer-unknown", "No such transfer"
	case errors.Is(err, ErrBadState):
		status, name, title = http.StatusConflict, "transfer-state", "Transfer is not in a state that allows this"
	case errors.As(err, &re):
		status, name, title = http.StatusForbidden, "transfer-refused", "The provider refused the transfer"
	}
	problem.Write(w, problem.New(status, name, title, err.Error()))
}

// handleFetch runs a fetch and streams its events as NDJSON, so the CLI
// can draw progress; the answer's status is 200 once streaming started,
// and the last line says how it ended.
func (s *Service) handleFetch(w http.ResponseWriter, r *http.Request) {
	var req FetchRequest
	if !api.ReadJSON(w, r, &req) {
		return
	}
	if req.Agreement == "" {
		writeErr(w, api.BadRequest("agreement is required"))
		return
	}
	if req.Live && req.Full {
		writeErr(w, api.BadRequest("full and live do not go together: a live feed lands every change as it comes"))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex // events come from several fetching goroutines
	enc := json.NewEncoder(w)
	emit := func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
	var (
		in  Info
		err error
	)
	progress := func(p Progress) { emit(Event{Progress: &p}) }
	if req.Live {
		err = s.Live(r.Context(), req.Agreement, LiveOptions{
			Progress: progress,
			Started:  func(in Info) { emit(Event{Progress: &Progress{Phase: "live", Transfer: in.ID}}) },
			OnChange: func(c LiveChange) { emit(Event{Change: &c}) },
			Interrupted: func(err error) {
				emit(Event{Progress: &Progress{Phase: "interrupted", Note: err.Error()}})
			},
			Resumed: func() { emit(Event{Progress: &Progress{Phase: "resumed"}}) },
		})
	} else {
		in, err = s.Fetch(r.Context(), req.Agreement, FetchOptions{Progress: progress, Full: req.Full})
	}
	if err != nil {
		ee := &EventError{Message: err.Error()}
		var re *RefusedError
		if errors.As(err, &re) {
			ee.Code, ee.Reasons = string(re.Code), re.Reasons
		}
		emit(Event{Error: ee})
		return
	}
	emit(Event{Done: &in})
}

func (s *Service) handleList(w http.ResponseWriter, _ *http.Request) {
	l, err := s.List()
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, l)
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request) {
	in, err := s.Get(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}

func (s *Service) readReason(w http.ResponseWriter, r *http.Request) (string, bool) {
	var c ControlRequest
	if !api.ReadOptionalJSON(w, r, &c) {
		return "", false
	}
	return c.Reason, true
}

func (s *Service) handleSuspend(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.readReason(w, r)
	if !ok {
		return
	}
	in, err := s.Suspend(r.Context(), r.PathValue("id"), reason)
	s.answerControl(w, in, err)
}

func (s *Service) handleResume(w http.ResponseWriter, r *http.Request) {
	in, err := s.Resume(r.Context(), r.PathValue("id"))
	s.answerControl(w, in, err)
}

func (s *Service) handleTerminate(w http.ResponseWriter, r *http.Request) {
	reason, ok := s.readReason(w, r)
	if !ok {
		return
	}
	in, err := s.Terminate(r.Context(), r.PathValue("id"), reason)
	s.answerControl(w, in, err)
}

func (s *Service) answerControl(w http.ResponseWriter, in Info, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}
