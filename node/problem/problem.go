// Package problem writes RFC 7807 problem details, the error body of every
// mimnode HTTP API (NGSI-LD errors use the same shape with their own type
// URIs).
package problem

import (
	"encoding/json"
	"net/http"
)

// Details is an RFC 7807 problem details object.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// NGSILDTypeBase prefixes the NGSI-LD error type URIs (ETSI GS CIM 009
// clause 5.5.2): the ngsild package's errors, and the answers the API
// server gives for paths under /ngsi-ld/ that no route takes.
const NGSILDTypeBase = "https://uri.etsi.org/ngsi-ld/errors/"

// TypeBase prefixes the type URIs of mimnode's own (non NGSI-LD) errors; the
// fragment names the error, and docs/api.md explains each one.
const TypeBase = "https://github.com/mimnode/mimnode/blob/main/docs/api.md#"

// Write sends d as application/problem+json with status d.Status.
func Write(w http.ResponseWriter, d Details) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(d)
}

// New builds a mimnode problem whose type is TypeBase+name.
func New(status int, name, title, detail string) Details {
	return Details{Type: TypeBase + name, Title: title, Status: status, Detail: detail}
}
