package protocol

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoForbiddenImports enforces DESIGN.md: the protocol packages do no
// networking or storage of their own, so they must not depend on libp2p,
// badger or the node.
func TestNoForbiddenImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/libp2p/", "github.com/dgraph-io/badger", "github.com/mimnode/mimnode/node"} {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("protocol packages depend on %s", dep)
			}
		}
	}
}
