package transfer

import (
	"errors"
	"testing"

	"github.com/mimnode/mimnode/node/ngsild"
)

// TestInOrderRefusesRepeatsAcrossChunks: a landing takes ids in strictly
// increasing order, chunk after chunk; a repeat or a step back, in one
// chunk or across two, is refused as a bad version.
func TestInOrderRefusesRepeatsAcrossChunks(t *testing.T) {
	chunk := func(ids ...string) []*ngsild.Entity {
		out := make([]*ngsild.Entity, len(ids))
		for i, id := range ids {
			out[i] = &ngsild.Entity{ID: id}
		}
		return out
	}
	var last string
	if err := inOrder(chunk("urn:x:1", "urn:x:2"), &last); err != nil {
		t.Fatal(err)
	}
	if err := inOrder(chunk("urn:x:3"), &last); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][]*ngsild.Entity{
		"a repeat in one chunk":  chunk("urn:x:4", "urn:x:4"),
		"a repeat across chunks": chunk("urn:x:3"),
		"a step back":            chunk("urn:x:2"),
	} {
		l := last
		if err := inOrder(c, &l); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
}
