package protocol

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readDocs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "protocol.md"))
	if err != nil {
		t.Fatalf("docs/protocol.md: %v", err)
	}
	return string(b)
}

// TestCodeTableMatchesDocs keeps the error code table in docs/protocol.md
// section 4 in step with codeTable: same codes, names and retry flags.
func TestCodeTableMatchesDocs(t *testing.T) {
	doc := readDocs(t)
	rows := 0
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| `MIM-") {
			rows++
		}
	}
	if rows != len(codeTable) {
		t.Errorf("docs list %d codes, the table has %d", rows, len(codeTable))
	}
	for _, c := range codeTable {
		retry := "no"
		if c.Retryable {
			retry = "yes"
		}
		row := "| `" + string(c.Code) + "` | " + c.Name + " | " + c.Description + " | " + retry + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/protocol.md lacks the row\n%s", row)
		}
	}
}

// TestDocsExamplesAreValid decodes every JSON example in docs/protocol.md
// and validates it against its DSP schema, so the spec cannot drift from
// what the code sends.
func TestDocsExamplesAreValid(t *testing.T) {
	v := openSchemas(t)
	blocks := strings.Split(readDocs(t), "```json\n")[1:]
	if len(blocks) < 8 {
		t.Fatalf("found %d JSON examples in docs/protocol.md, expected at least 8", len(blocks))
	}
	for i, b := range blocks {
		body := b[:strings.Index(b, "```")]
		m, err := Decode([]byte(body))
		if err != nil {
			t.Errorf("example %d does not decode: %v\n%s", i+1, err, body)
			continue
		}
		if err := v.Validate(m.MessageType(), []byte(body)); err != nil {
			t.Errorf("example %d (%s) fails its DSP schema: %v", i+1, m.MessageType(), err)
		}
	}
}
