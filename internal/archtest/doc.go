// Package archtest holds the architecture tests: the pure packages (policy,
// catalog, protocol/...) must not depend on libp2p, badger or node, so they
// stay testable without a network or a database (DESIGN.md, Layout).
package archtest
