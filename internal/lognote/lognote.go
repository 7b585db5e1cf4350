// Package lognote decides when a node's log says a condition that lasts:
// a failure a loop meets on every try (a full disk), a state that holds
// for hours (no federation member reachable). Said every tick, such a
// line floods the log; said once, a reader of the last hour misses it.
// A Note says it when it starts or changes, again hourly while it lasts,
// and once when it ends.
package lognote

import "time"

// Every is how often a lasting condition is said again.
const Every = time.Hour

// Note tracks one condition. The zero Note holds none.
type Note struct {
	on   string    // the condition held, "" for none
	said time.Time // when it was last said
}

// Hold records that condition kind holds at now and reports whether to
// say so: it is new (or another kind than before), or it was last said
// Every ago.
func (n *Note) Hold(kind string, now time.Time) bool {
	if kind == n.on && now.Sub(n.said) < Every {
		return false
	}
	n.on, n.said = kind, now
	return true
}

// End records that no condition holds and reports whether one did (to say
// that it ended).
func (n *Note) End() bool {
	was := n.on != ""
	*n = Note{}
	return was
}
