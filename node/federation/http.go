package federation

import (
	"errors"
	"net/http"

	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
)

// ChangeRequest is the body of POST /api/v1/federations/{id}/changes.
type ChangeRequest struct {
	Op        string   `json:"op"` // add, role, revoke, add-admin, remove-admin, threshold, bootstrap
	PeerID    string   `json:"peerId,omitempty"`
	Name      string   `json:"name,omitempty"`
	Role      Role     `json:"role,omitempty"`
	Threshold int      `json:"threshold,omitempty"`
	Bootstrap []string `json:"bootstrap,omitempty"`
}

// ChangeResult answers a change or a signature: Applied is false while the
// proposal in Token still needs other admins' signatures.
type ChangeResult struct {
	Applied bool   `json:"applied"`
	Token   string `json:"token"`
	Info    *Info  `json:"federation,omitempty"`
}

// Register mounts the federation routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /api/v1/federations", s.handleList},
		{"POST /api/v1/federations", s.handleCreate},
		{"POST /api/v1/federations/join", s.handleJoin},
		{"POST /api/v1/federations/sign", s.handleSign},
		{"GET /api/v1/federations/{id}", s.handleShow},
		{"GET /api/v1/federations/{id}/token", s.handleToken},
		{"POST /api/v1/federations/{id}/changes", s.handleChange},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
}

// writeErr maps service errors to problem details.
func writeErr(w http.ResponseWriter, err error) {
	status, name := http.StatusBadRequest, "federation-invalid"
	switch {
	case errors.Is(err, ErrUnknownFed):
		status, name = http.StatusNotFound, "federation-unknown"
	case errors.Is(err, ErrNotAdmin):
		status, name = http.StatusForbidden, "federation-not-admin"
	case errors.Is(err, ErrMemberExists), errors.Is(err, ErrStale), errors.Is(err, ErrNoChange), errors.Is(err, ErrNameTaken):
		status, name = http.StatusConflict, "federation-conflict"
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrNotEnoughSigs), errors.Is(err, ErrNotNext),
		errors.Is(err, ErrChainIncomplete), errors.Is(err, ErrWrongFed):
		status, name = http.StatusUnprocessableEntity, "federation-rejected"
	}
	problem.Write(w, problem.New(status, name, "Federation request refused", err.Error()))
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, s.List())
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request) {
	in, err := s.Show(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	id, err := s.Resolve(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	tok, err := s.InviteToken(id)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name      string   `json:"name"`
		Bootstrap []string `json:"bootstrap,omitempty"`
	}
	if !api.ReadJSON(w, r, &req) {
		return
	}
	in, err := s.Create(r.Context(), req.Name, req.Bootstrap)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, in)
}

func (s *Service) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !api.ReadJSON(w, r, &req) {
		return
	}
	in, err := s.Join(r.Context(), req.Token)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}

func (s *Service) handleSign(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if !api.ReadJSON(w, r, &req) {
		return
	}
	tok, applied, err := s.Sign(r.Context(), req.Token)
	s.answerChange(w, tok, applied, err)
}

func (s *Service) handleChange(w http.ResponseWriter, r *http.Request) {
	var req ChangeRequest
	if !api.ReadJSON(w, r, &req) {
		return
	}
	tok, applied, err := s.Change(r.Context(), r.PathValue("id"), Change{
		Op: req.Op, PeerID: req.PeerID, Name: req.Name, Role: req.Role,
		Threshold: req.Threshold, Bootstrap: req.Bootstrap,
	})
	s.answerChange(w, tok, applied, err)
}

func (s *Service) answerChange(w http.ResponseWriter, tok string, applied bool, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	res := ChangeResult{Applied: applied, Token: tok}
	if t, err := DecodeToken(tok); err == nil {
		if in, err := s.Show(t.Chain[0].ID); err == nil {
			res.Info = &in
		}
	}
	api.WriteJSON(w, http.StatusOK, res)
}
