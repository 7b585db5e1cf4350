package ngsild

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

// A type (or scope) with more entities than the planner collects while it
// compares sources (candidateCap) is still answered in full: the count and
// the last page see every entity. (The type source used to report its
// first 4,096 ids as complete.)
func TestQueriesBeyondCandidateCap(t *testing.T) {
	n := newTestNode(t, func(o *Options) { o.SkipValidation = true })
	const total = candidateCap + 904
	for start := 0; start < total; start += 1000 {
		var batch []any
		for i := start; i < start+1000 && i < total; i++ {
			batch = append(batch, map[string]any{"id": fmt.Sprintf("urn:x:%05d", i), "type": "T", "scope": "/a/b"})
		}
		wantStatus(t, n.do("POST", "/ngsi-ld/v1/entityOperations/create", batch), http.StatusCreated)
	}
	for _, sel := range []string{"type=T", "scopeQ=/a/b", "scopeQ=/a/%2B", "type=T&scopeQ=/a/%23"} {
		rec := n.do("GET", "/ngsi-ld/v1/entities?"+sel+"&count=true&limit=1", nil)
		wantStatus(t, rec, http.StatusOK)
		if got := rec.Header().Get("NGSILD-Results-Count"); got != strconv.Itoa(total) {
			t.Errorf("%s: NGSILD-Results-Count %s, want %d", sel, got, total)
		}
		last := ids(t, n.do("GET", "/ngsi-ld/v1/entities?"+sel+"&limit=10&offset="+strconv.Itoa(total-10), nil))
		if len(last) != 10 || last[9] != fmt.Sprintf("urn:x:%05d", total-1) {
			t.Errorf("%s: last page %v, want the 10 last entities", sel, last)
		}
	}
}
