// Package api is the node's local HTTP API: /api/v1, /metrics and the routes
// other packages mount (such as /ngsi-ld/v1).
package api
