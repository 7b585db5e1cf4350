package contract

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/api"
)

// NegotiationRequest is the body of POST /api/v1/negotiations.
type NegotiationRequest struct {
	Dataset  string          `json:"dataset"`
	Provider string          `json:"provider"`
	OfferID  string          `json:"offerId,omitempty"`
	Offer    json.RawMessage `json:"offer,omitempty"`
	Purpose  string          `json:"purpose,omitempty"`
	// Wait holds the answer until the negotiation is FINALIZED or
	// TERMINATED (at most WaitSeconds, default 30).
	Wait        bool `json:"wait,omitempty"`
	WaitSeconds int  `json:"waitSeconds,omitempty"`
}

// RejectRequest is the body of POST /api/v1/negotiations/{id}/reject.
type RejectRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Register mounts the negotiation and agreement routes on mux.
func (s *Service) Register(mux *http.ServeMux) {
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"POST /api/v1/negotiations", s.handleRequest},
		{"GET /api/v1/negotiations", s.handleList},
		{"GET /api/v1/negotiations/pending", s.handlePending},
		{"GET /api/v1/negotiations/{id}", s.handleShow},
		{"POST /api/v1/negotiations/{id}/approve", s.handleApprove},
		{"POST /api/v1/negotiations/{id}/reject", s.handleReject},
		{"GET /api/v1/agreements", s.handleAgreements},
		{"GET /api/v1/agreements/{id}", s.handleAgreement},
		{"POST /api/v1/agreements/{id}/revoke", s.handleRevoke},
	} {
		mux.HandleFunc(r.pattern, r.h)
	}
}

func (s *Service) handleRequest(w http.ResponseWriter, r *http.Request) {
	var req NegotiationRequest
	if !api.ReadJSON(w, r, &req) {
		return
	}
	p, err := peer.Decode(req.Provider)
	if err != nil {
		writeErr(w, api.BadRequest("provider %q is not a peer ID: %v", req.Provider, err))
		return
	}
	id, err := s.Request(r.Context(), RequestOptions{Provider: p, Dataset: req.Dataset, OfferID: req.OfferID,
		Offer: req.Offer, Purpose: req.Purpose})
	if err != nil {
		writeErr(w, err)
		return
	}
	in, err := s.Get(id)
	if req.Wait && err == nil {
		d := 30 * time.Second
		if req.WaitSeconds > 0 {
			d = time.Duration(req.WaitSeconds) * time.Second
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		in, err = s.Wait(ctx, id)
		cancel()
		if err != nil && in.ID != "" {
			// Still running: say where it is rather than fail.
			err = nil
		}
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, in)
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) {
	list, err := s.List()
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, list)
}

func (s *Service) handlePending(w http.ResponseWriter, r *http.Request) {
	list, err := s.Pending()
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, list)
}

func (s *Service) handleShow(w http.ResponseWriter, r *http.Request) {
	in, err := s.Get(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}

func (s *Service) handleApprove(w http.ResponseWriter, r *http.Request) {
	in, err := s.Approve(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}

func (s *Service) handleReject(w http.ResponseWriter, r *http.Request) {
	var req RejectRequest
	if !api.ReadOptionalJSON(w, r, &req) {
		return
	}
	in, err := s.Reject(r.Context(), r.PathValue("id"), req.Reason)
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, in)
}

func (s *Service) handleAgreements(w http.ResponseWriter, r *http.Request) {
	list, err := s.Agreements()
	if err != nil {
		writeErr(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, list)
}

// handleAgreement sends the agreement file byte for byte: it is canonical
// JSON, and re-encoding would break `mimnode agreement verify`.
func (s *Service) handleAgreement(w http.ResponseWriter, r *http.Request) {
	b, err := s.Agreement(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
