package ngsild

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mimnode/mimnode/node/problem"
	"github.com/mimnode/mimnode/node/store"
)

// ErrorType is an NGSI-LD error type (ETSI GS CIM 009 clause 5.5.2). Its
// problem-details URI is ErrorTypeBase + the name.
type ErrorType string

// ErrorTypeBase prefixes every NGSI-LD error type URI.
const ErrorTypeBase = problem.NGSILDTypeBase

// The NGSI-LD error types this package returns, with the HTTP status each maps
// to in the table below.
const (
	InvalidRequest        ErrorType = "InvalidRequest"
	BadRequestData        ErrorType = "BadRequestData"
	AlreadyExists         ErrorType = "AlreadyExists"
	OperationNotSupported ErrorType = "OperationNotSupported"
	ResourceNotFound      ErrorType = "ResourceNotFound"
	InternalError         ErrorType = "InternalError"
	TooManyResults        ErrorType = "TooManyResults"
	LdContextNotAvailable ErrorType = "LdContextNotAvailable"
	NotAcceptable         ErrorType = "NotAcceptable"
	UnsupportedMediaType  ErrorType = "UnsupportedMediaType"
	NoMultiTenantSupport  ErrorType = "NoMultiTenantSupport"
)

// errorStatus is the one table from error type to HTTP status (clause 6.3.2).
var errorStatus = map[ErrorType]int{
	InvalidRequest:        http.StatusBadRequest,
	BadRequestData:        http.StatusBadRequest,
	AlreadyExists:         http.StatusConflict,
	OperationNotSupported: http.StatusUnprocessableEntity,
	ResourceNotFound:      http.StatusNotFound,
	InternalError:         http.StatusInternalServerError,
	TooManyResults:        http.StatusForbidden,
	LdContextNotAvailable: http.StatusServiceUnavailable,
	NotAcceptable:         http.StatusNotAcceptable,
	UnsupportedMediaType:  http.StatusUnsupportedMediaType,
	NoMultiTenantSupport:  http.StatusNotImplemented,
}

// Error is an NGSI-LD failure: an error type, a human-readable title and
// detail, and the wrapped cause (never shown to clients for InternalError).
type Error struct {
	Type   ErrorType
	Title  string
	Detail string
	Err    error
	// HTTPStatus, when set, replaces the status of the type (clause 5.13.5
	// answers a failed reload of a cached @context with 504).
	HTTPStatus int
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return string(e.Type) + ": " + e.Title + ": " + e.Detail
	}
	return string(e.Type) + ": " + e.Title
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status code for the error's type.
func (e *Error) Status() int {
	if e.HTTPStatus != 0 {
		return e.HTTPStatus
	}
	if s, ok := errorStatus[e.Type]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// newError builds an *Error; detail is formatted like fmt.Sprintf.
func newError(t ErrorType, title, detail string, args ...any) *Error {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &Error{Type: t, Title: title, Detail: detail}
}

// asError turns any error into an *Error; errors that are not NGSI-LD errors
// become InternalError, keeping the cause for the log.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, store.ErrDiskFull) {
		// Nothing was written; the client may send it again once the
		// node's administrator has freed space (store/room.go).
		return &Error{Type: InternalError, Title: "disk nearly full", Detail: err.Error(), HTTPStatus: http.StatusInsufficientStorage, Err: err}
	}
	return &Error{Type: InternalError, Title: "internal error", Detail: "the node failed to handle the request", Err: err}
}

// ProblemDetails is the RFC 7807 body of an error response, also used for the
// per-entity errors of a batch operation.
type ProblemDetails = problem.Details

func (e *Error) problem() ProblemDetails {
	return ProblemDetails{Type: ErrorTypeBase + string(e.Type), Title: e.Title, Status: e.Status(), Detail: e.Detail}
}

// writeError sends err as problem details (clause 6.3.2).
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	if e.Type == InternalError {
		s.log.Error("ngsi-ld request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	problem.Write(w, e.problem())
}
