// Package negotiation is the pure Dataspace Protocol contract-negotiation
// state machine. It has no network, clock, goroutine or database.
package negotiation
