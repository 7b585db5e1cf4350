// Package spawn runs a service's background goroutines and stops taking
// new ones once the service is closing.
//
// libp2p may deliver a connection event, or a pubsub message, while a
// service's Close is already waiting for its goroutines; starting one then
// would race the WaitGroup (Add after Wait began) and outlive Close.
package spawn

import "sync"

// Group is a set of background goroutines. The zero value is ready to use.
type Group struct {
	mu      sync.Mutex // guards closing, and orders Go before Wait
	closing bool
	wg      sync.WaitGroup
}

// Go runs fn in a new goroutine unless Stop was called. It reports whether
// fn was started.
func (g *Group) Go(fn func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return false
	}
	g.wg.Go(fn)
	return true
}

// Stop makes Go refuse new work; goroutines already started keep running.
func (g *Group) Stop() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
}

// Wait waits for every goroutine Go started. Call Stop first, or new work
// may keep arriving.
func (g *Group) Wait() { g.wg.Wait() }
