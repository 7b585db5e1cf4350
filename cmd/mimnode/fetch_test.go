package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node/transfer"
)

// TestFetchRendererPlainLines: without a terminal, fetch prints a line per
// phase and per tenth of the blocks, then the outcome; a refusal becomes
// an error listing the reasons.
func TestFetchRendererPlainLines(t *testing.T) {
	cases := []struct {
		name      string
		events    string
		wantLines []string
		wantErr   string
	}{
		{"completed", `{"progress":{"phase":"manifest"}}
{"progress":{"phase":"blocks","blocks":1,"totalBlocks":2,"bytes":500000,"totalBytes":1000000,"totalEntities":10}}
{"progress":{"phase":"blocks","blocks":2,"totalBlocks":2,"bytes":1000000,"totalBytes":1000000,"totalEntities":10}}
{"progress":{"phase":"landing","blocks":2,"totalBlocks":2,"bytes":1000000,"totalBytes":1000000,"entities":10,"totalEntities":10}}
{"done":{"id":"urn:uuid:1","state":"COMPLETED","version":"bafy","usage":{"bytes":1000000,"blocks":2,"entities":10,"duration":1000000}}}
`, []string{"manifest", "blocks   500.0 kB/1.0 MB  blocks 1/2  entities 0/10", "blocks   1.0 MB/1.0 MB  blocks 2/2",
			"landing", "transfer urn:uuid:1 COMPLETED: version bafy, 10 entities, 2 blocks fetched (0 already held), 1.0 MB moved in 1ms"}, ""},
		{"files", `{"done":{"id":"urn:uuid:2","state":"COMPLETED","version":"bafy","filesDir":"/data/received/x/bafy","usage":{"blocks":1}}}
`, []string{"transfer urn:uuid:2 COMPLETED", "files in /data/received/x/bafy"}, ""},
		{"refused", `{"error":{"message":"refused","code":"MIM-605","reasons":["count: at most 1","expired"]}}
`, nil, "refused [MIM-605]:\n  count: at most 1\n  expired"},
		{"live", `{"progress":{"phase":"manifest"}}
{"progress":{"phase":"live","transfer":"urn:uuid:7"}}
{"change":{"seq":7,"op":"update","id":"urn:ngsi-ld:x:1"}}
{"error":{"message":"transfer refused","code":"MIM-605","reasons":["transfer is SUSPENDED, not STARTED"]}}
`, []string{"manifest", "snapshot landed; receiving changes as they happen on transfer urn:uuid:7", "change 7: update urn:ngsi-ld:x:1"}, "SUSPENDED"},
		{"cut short", `{"progress":{"phase":"manifest"}}
`, []string{"manifest"}, "start it again ('mimnode run') and fetch again"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			r := &fetchRenderer{out: &out, start: time.Now()}
			err := r.run(strings.NewReader(c.events))
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("run = %v, want error containing %q", err, c.wantErr)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(c.wantLines) == 0 {
				return
			}
			if len(lines) != len(c.wantLines) {
				t.Fatalf("printed %d lines, want %d:\n%s", len(lines), len(c.wantLines), out.String())
			}
			for i, w := range c.wantLines {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestPlainLineRateAndETA(t *testing.T) {
	got := plainLine(transfer.Progress{Phase: "blocks", Bytes: 2_000_000, TotalBytes: 6_000_000, Blocks: 1, TotalBlocks: 3}, 2*time.Second)
	if !strings.Contains(got, "1.0 MB/s") || !strings.Contains(got, "eta 4s") {
		t.Errorf("plainLine = %q, want a rate of 1.0 MB/s and eta 4s", got)
	}
}
