// Package testnet starts many real mimnode nodes in one process on loopback,
// for integration tests, the demo federation and benchmarks.
package testnet
