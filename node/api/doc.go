// Package api is the node's local HTTP API: /api/v1 (status, peers, and the
// routes later features add), /metrics (Prometheus) and whatever other
// packages mount, such as the NGSI-LD API under /ngsi-ld/v1.
//
// The server does not know the node: it asks a Backend, an interface it owns,
// so handlers are tested with httptest and a small fake. node.New builds the
// real one:
//
//	srv := api.New(api.Options{Backend: n, Token: tok, RequireToken: !loopback, Metrics: reg})
//	srv.Mount(ngsi.Register)     // extra routes from other packages
//	go srv.Serve(listener)
//
// Every request to a server that was bound to a non-loopback address must
// carry "Authorization: Bearer TOKEN" (the token is DATA/api.token); a server
// on loopback trusts the machine, as a database on localhost does. Errors are
// RFC 7807 problem details.
package api
