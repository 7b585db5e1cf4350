package archtest

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mimnode/mimnode"

// forbidden lists import path prefixes a pure package must not reach,
// directly or through another package.
var forbidden = []string{
	"github.com/libp2p/",
	"github.com/dgraph-io/badger",
	module + "/node",
	module + "/testnet",
}

func TestPurePackagesDoNotImportIOLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Deps", module+"/policy/...", module+"/catalog/...", module+"/protocol/...", module+"/content/...")
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		for _, d := range p.Deps {
			for _, f := range forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s; pure packages must not reach %s", p.ImportPath, d, f)
				}
			}
		}
	}
	if n < 4 {
		t.Fatalf("go list found %d packages, want policy, catalog, protocol and content at least", n)
	}
}
