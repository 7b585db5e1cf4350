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
// returns its output; it gets the subtest the command runs in.
//
// Each scenario runs as a subtest named after the first line of the
// comment paragraph that opens it, up to its first ": " (so "# CN:01-03:
// contract request, ..." gives the subtest CN:01-03). Scenarios run in
// order and share exec's state.
func Run(t *testing.T, path string, rewrite bool, exec func(t *testing.T, line string) string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var out strings.Builder
	type block struct {
		line    int
		cmd     string
		want    []string
		comment []string // comment lines and blanks before the command
	}
	type section struct {
		name   string
		blocks []block
	}
	var sections []section
	var comment []string
	newParagraph := true
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			comment = append(comment, "")
			newParagraph = true
			continue
		case strings.HasPrefix(line, "#"):
			if newParagraph {
				name := strings.TrimSpace(strings.TrimPrefix(line, "#"))
				if head, _, ok := strings.Cut(name, ": "); ok {
					name = head
				}
				sections = append(sections, section{name: strings.TrimSuffix(name, ".")})
				newParagraph = false
			}
			comment = append(comment, line)
			continue
		}
		newParagraph = false
		if len(sections) == 0 {
			sections = append(sections, section{name: "transcript"})
		}
		b := block{line: i + 1, cmd: line, comment: comment}
		comment = nil
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			for ; i < len(lines) && lines[i] != ""; i++ {
				b.want = append(b.want, lines[i])
			}
			// lines[i] is the blank line that ends the block; the block
			// written below ends with one.
			newParagraph = true
		}
		sections[len(sections)-1].blocks = append(sections[len(sections)-1].blocks, b)
	}
	for _, sec := range sections {
		if len(sec.blocks) == 0 {
			continue
		}
		t.Run(sec.name, func(t *testing.T) {
			for _, b := range sec.blocks {
				for _, c := range b.comment {
					if c == "" {
						if !strings.HasSuffix(out.String(), "\n\n") && out.Len() > 0 {
							out.WriteString("\n")
						}
						continue
					}
					out.WriteString(c + "\n")
				}
				got := strings.TrimRight(exec(t, b.cmd), "\n")
				out.WriteString(b.cmd + "\n----\n" + got + "\n\n")
				if !rewrite && got != strings.Join(b.want, "\n") {
					t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, b.line, b.cmd, got, strings.Join(b.want, "\n"))
				}
			}
		})
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
