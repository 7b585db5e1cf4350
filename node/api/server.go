package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mimnode/mimnode/node/problem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is the body of GET /api/v1/status.
type Status struct {
	PeerID string `json:"peerId"`
	Name   string `json:"name"`
	// Role is "agency" or "researcher" (its role in its federations; an
	// agency in any is an agency), "stand-alone" in none.
	Role           string   `json:"role"`
	API            string   `json:"api"`
	Addresses      []string `json:"addresses"`
	Version        string   `json:"version"`
	UptimeSeconds  float64  `json:"uptimeSeconds"`
	StoreBytes     int64    `json:"storeBytes"`
	ConnectedPeers int      `json:"connectedPeers"`
	DataDir        string   `json:"dataDir"`
}

// Peer is one entry of GET /api/v1/peers.
type Peer struct {
	PeerID    string   `json:"peerId"`
	Addresses []string `json:"addresses"`
	Direction string   `json:"direction"` // inbound or outbound
	Transport string   `json:"transport"` // tcp or quic
	Latency   string   `json:"latency,omitempty"`
	Agent     string   `json:"agent,omitempty"`
}

// ConnectRequest is the body of POST /api/v1/peers/connect.
type ConnectRequest struct {
	Addr string `json:"addr"`
}

// ConnectResult is the answer to a successful connect.
type ConnectResult struct {
	PeerID  string `json:"peerId"`
	Latency string `json:"latency"`
	// AlreadyConnected says the peer was connected before: the address
	// given was not dialled, so whether it works is not known.
	AlreadyConnected bool `json:"alreadyConnected,omitempty"`
}

// Backend is what the API needs from a node.
type Backend interface {
	// Status describes the node now.
	Status() Status
	// Peers lists the connected peers.
	Peers() []Peer
	// Connect dials the multiaddr (which must end in /p2p/PEERID) and pings
	// the peer. A malformed address returns a BadRequest error.
	Connect(ctx context.Context, addr string) (ConnectResult, error)
}

// BadRequest marks a Backend error as caused by the caller's input; the
// server answers it with 400 instead of 502.
func BadRequest(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// IsBadRequest reports whether err was made by BadRequest.
func IsBadRequest(err error) bool {
	var b *badRequest
	return errors.As(err, &b)
}

// Options configures a Server.
type Options struct {
	Backend Backend
	// Token is the API token; RequireToken makes it mandatory on every
	// request (set when the API listens beyond loopback).
	Token        string
	RequireToken bool
	// Metrics is the registry /metrics serves.
	Metrics *prometheus.Registry
	Logger  *slog.Logger
}

// Server is the local HTTP API.
type Server struct {
	o        Options
	mux      *http.ServeMux
	http     *http.Server
	requests *prometheus.CounterVec
}

// New builds a server with the node's routes.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mimnode_api_requests_total",
		Help: "HTTP API requests by route pattern and status code.",
	}, []string{"route", "code"})
	if o.Metrics != nil {
		o.Metrics.MustRegister(s.requests)
	}
	for _, r := range s.routes() {
		s.mux.HandleFunc(r.pattern, r.handler)
	}
	s.http = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

// routes is the whole /api/v1 surface of this package, in one table.
func (s *Server) routes() []route {
	return []route{
		{"GET /api/v1/status", s.handleStatus},
		{"GET /api/v1/peers", s.handlePeers},
		{"POST /api/v1/peers/connect", s.handleConnect},
		{"GET /metrics", s.handleMetrics},
		{"GET /{$}", s.handleIndex},
	}
}

// Mount lets another package add its routes (Go 1.22 patterns).
func (s *Server) Mount(register func(*http.ServeMux)) { register(s.mux) }

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests and waits for the ones in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// ServeHTTP checks the token, then routes the request and counts it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if why := s.browserRefusal(r); why != "" {
		problem.Write(w, problem.New(http.StatusForbidden, "forbidden", "Request refused", why))
		s.requests.WithLabelValues("forbidden", "403").Inc()
		return
	}
	if s.o.RequireToken && !s.tokenOK(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mimnode"`)
		problem.Write(w, problem.New(http.StatusUnauthorized, "unauthorized", "API token required",
			"this API listens beyond loopback: send 'Authorization: Bearer TOKEN' with the token from DATA/api.token"))
		s.requests.WithLabelValues("unauthorized", "401").Inc()
		return
	}
	if want := r.Header.Get(NodeTokenHeader); want != "" && !s.sameToken(want) {
		problem.Write(w, problem.New(http.StatusMisdirectedRequest, "wrong-node", "Another node's daemon",
			"this daemon is not the one of the data directory the request was made for (its API token differs): "+
				"that node's daemon stopped without removing DATA/api, and another daemon took its address since; start that node with 'mimnode run'"))
		s.requests.WithLabelValues("wrong-node", "421").Inc()
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux answers unknown paths and methods in plain text; find out
		// which it is and answer with a problem instead.
		probe := &statusRecorder{ResponseWriter: discardWriter{}, code: http.StatusOK}
		h.ServeHTTP(probe, r)
		s.notRouted(w, r, probe.code)
		s.requests.WithLabelValues("unmatched", strconv.Itoa(probe.code)).Inc()
		return
	}
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	// Serve through the mux, not h: only ServeMux.ServeHTTP sets the
	// request's path values ({id} in a pattern).
	s.mux.ServeHTTP(rec, r)
	s.requests.WithLabelValues(pattern, strconv.Itoa(rec.code)).Inc()
}

// browserRefusal says why r is refused as something a web page the user
// visits could make the browser send, or "" when it is not. A loopback
// API asks for no token, so without this any page could drive the node:
//   - DNS rebinding: a page whose own name the attacker then resolves to
//     127.0.0.1 is same-origin with the API as the browser sees it, and
//     may read its answers (the join token, say); its requests carry that
//     name as Host, which a loopback API refuses unless it is a loopback
//     name or address.
//   - Cross-site requests: a form, or a fetch with a simple body, may
//     POST to the API from any page without the browser asking first;
//     such requests carry the page's Origin, and a request that changes
//     anything is refused from an origin other than the API's own.
//
// Clients that are not browsers (the CLI, curl, NGSI-LD tools) send no
// Origin and name the address they connect to.
func (s *Server) browserRefusal(r *http.Request) string {
	if !s.o.RequireToken {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Sprintf("this API listens on loopback and answers only requests addressed to it there (Host 127.0.0.1, ::1 or localhost), not Host %q", r.Host)
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			return fmt.Sprintf("a %s from the web page at %s is refused: only clients of this node change it", r.Method, origin)
		}
	}
	return ""
}

func (s *Server) tokenOK(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && s.sameToken(got)
}

// sameToken reports whether got is this daemon's API token.
func (s *Server) sameToken(got string) bool {
	if s.o.Token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.o.Token)) == 1
}

// NodeTokenHeader carries the API token of the data directory a mimnode
// command was run for. A daemon whose token differs refuses the request
// (wrong-node): the command found its address in a DATA/api file that a
// daemon killed without cleaning up left behind, and another node's daemon
// listens there now. Other clients need not send it.
const NodeTokenHeader = "Mimnode-Node-Token"

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (notifications, live feeds) flush through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.o.Backend.Status())
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, s.o.Backend.Peers())
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var req ConnectRequest
	if !ReadJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Addr) == "" {
		problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Bad request", `body needs "addr": a multiaddr ending in /p2p/PEERID`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res, err := s.o.Backend.Connect(ctx, req.Addr)
	if IsBadRequest(err) {
		problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Bad request", err.Error()))
		return
	}
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadGateway, "peer-unreachable", "Peer unreachable", err.Error()))
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	if s.o.Metrics == nil {
		problem.Write(w, problem.New(http.StatusNotFound, "not-found", "Not found", "metrics are not enabled"))
		return
	}
	promhttp.HandlerFor(s.o.Metrics, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *Server) notRouted(w http.ResponseWriter, r *http.Request, code int) {
	// NGSI-LD clients get NGSI-LD problem types (ETSI GS CIM 009 clause
	// 5.5.2) for paths under /ngsi-ld/ as for everything else there.
	ngsi := strings.HasPrefix(r.URL.Path, "/ngsi-ld/")
	if code == http.StatusMethodNotAllowed {
		allow := strings.Join(s.allowed(r), ", ")
		w.Header().Set("Allow", allow)
		d := problem.New(code, "method-not-allowed", "Method not allowed",
			fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
		if ngsi {
			d.Type = problem.NGSILDTypeBase + "OperationNotSupported"
		}
		problem.Write(w, d)
		return
	}
	d := problem.New(http.StatusNotFound, "not-found", "Not found", fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	if ngsi {
		d.Type = problem.NGSILDTypeBase + "ResourceNotFound"
		d.Detail = fmt.Sprintf("this node has no NGSI-LD operation %s %s", r.Method, r.URL.Path)
	}
	problem.Write(w, d)
}

// allowed returns the methods the mux routes for r's path, for the Allow
// header of a 405 (RFC 9110 section 15.5.6).
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// discardWriter swallows the mux's own plain-text error page.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	st := s.o.Backend.Status()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "mimnode %s\nagency: %s\npeer ID: %s\n\nAPI: /api/v1/status, /api/v1/peers, /ngsi-ld/v1/entities, /metrics\n",
		st.Version, st.Name, st.PeerID)
}

// maxBody caps JSON request bodies of the /api/v1 routes.
const maxBody = 1 << 20

// ReadJSON decodes the request body into v, answering 400 (and returning
// false) when it is not a single JSON value of the right shape.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !jsonContentType(w, r) {
		return false
	}
	return decodeJSON(w, http.MaxBytesReader(w, r.Body, maxBody), v)
}

// decodeJSON decodes one JSON value from body into v, answering 400 when
// it is not one value of the right shape.
func decodeJSON(w http.ResponseWriter, body io.Reader, v any) bool {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Malformed JSON body", err.Error()))
		return false
	}
	if dec.More() {
		problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Malformed JSON body", "trailing data after the JSON value"))
		return false
	}
	return true
}

// jsonContentType answers 415 (and returns false) when the request's
// Content-Type is given and is not JSON. A body a browser may send without
// asking (text/plain, a form) is not taken for JSON: such a request could
// come from any web page.
func jsonContentType(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		problem.Write(w, problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			fmt.Sprintf("send the body as application/json, not %q", ct)))
		return false
	}
	return true
}

// ReadOptionalJSON is ReadJSON for a body that may be left out (a reason,
// say): an empty body leaves v as it is. A body of another content type is
// refused all the same, empty or not.
func ReadOptionalJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if !jsonContentType(w, r) {
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		problem.Write(w, problem.New(http.StatusBadRequest, "bad-request", "Malformed JSON body", err.Error()))
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	return decodeJSON(w, bytes.NewReader(body), v)
}

// WriteJSON sends v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
