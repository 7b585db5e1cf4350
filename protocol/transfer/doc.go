// Package transfer is the pure Dataspace Protocol transfer-process state
// machine, manifests and block verification.
package transfer
