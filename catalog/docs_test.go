package catalog

import (
	"os"
	"strings"
	"testing"
)

// TestDocsRequestExamplesDecode keeps section 5.2 of docs/protocol.md in
// step with the decoder: every request example there must decode.
func TestDocsRequestExamplesDecode(t *testing.T) {
	b, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "### 5.2 Requests")
	if i < 0 {
		t.Fatal("docs/protocol.md has no section 5.2 Requests")
	}
	block := doc[i:]
	block = block[strings.Index(block, "```jsonc\n")+len("```jsonc\n"):]
	block = block[:strings.Index(block, "```")]
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		if _, err := DecodeMessage([]byte(line)); err != nil {
			t.Errorf("docs example does not decode: %v\n%s", err, line)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("found %d request examples, want 3", n)
	}
}
