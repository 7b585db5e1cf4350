package problem

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// errorNames finds the names of mimnode problem types in the repository's
// Go sources: the name argument of New, and the names the packages' error
// mappers choose (status, name[, title] = ..., "name"[, "title"]).
var errorNames = []*regexp.Regexp{
	regexp.MustCompile(`problem\.New\([^,]+,\s*"([a-z-]+)"`),
	regexp.MustCompile(`status, name(?:, title)? :?= [^,]+, "([a-z-]+)"`),
}

// TestEveryErrorIsDocumented checks that each problem type the node can
// send has its section in docs/api.md, which its type URI points at.
func TestEveryErrorIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "### "); ok {
			documented[strings.TrimSpace(name)] = true
		}
	}
	used := map[string]string{}
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, re := range errorNames {
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				used[m[1]] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 10 {
		t.Fatalf("found only %d error names in the sources (%v): the patterns no longer match the code", len(used), used)
	}
	for name, path := range used {
		if !documented[name] {
			t.Errorf("%s sends problem type %q, which docs/api.md does not document (### %s)", path, name, name)
		}
	}
}
