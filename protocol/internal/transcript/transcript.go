// Package transcript runs the transcript tests of the protocol state
// machines (testdata/*.txt), in the style of etcd raft's interaction tests.
// It is imported by tests only.
//
// A transcript is a sequence of blocks:
//
//	# comments, kept as they are
//	command args...
//	----
//	expected output, up to a blank line
//
// Run executes each command with the given function and compares its output
// with the expected one; with rewrite set it writes the actual output back
// into the file instead, for review in the diff.
package transcript

import (
	"os"
	"strings"
	"testing"
)

// Run executes the transcript at path. exec runs one command line and
// returns its output.
func Run(t *testing.T, path string, rewrite bool, exec func(line string) string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			if !strings.HasSuffix(out.String(), "\n\n") {
				out.WriteString("\n")
			}
			continue
		case strings.HasPrefix(line, "#"):
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := i + 1
		var want []string
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			for ; i < len(lines) && lines[i] != ""; i++ {
				want = append(want, lines[i])
			}
			// lines[i] is the blank line that ends the block; the block
			// written below ends with one.
		}
		got := strings.TrimRight(exec(line), "\n")
		out.WriteString(line + "\n----\n" + got + "\n\n")
		if !rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, cmdLine, line, got, strings.Join(want, "\n"))
		}
	}
	if rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Args splits a command line into words (double quotes group words) and
// sorts them into positional words and key=value pairs; quotes around a
// value are removed.
func Args(line string) (cmd string, pos []string, kv map[string]string) {
	var words []string
	var cur strings.Builder
	quoted := false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	kv = map[string]string{}
	if len(words) == 0 {
		return "", nil, kv
	}
	for _, w := range words[1:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			kv[k] = strings.Trim(v, `"`)
		} else {
			pos = append(pos, w)
		}
	}
	return words[0], pos, kv
}
