//go:build race

package testnet

// raceEnabled: the race detector slows libp2p handshakes several times over,
// so the harness waits longer for a federation to form.
const raceEnabled = true
