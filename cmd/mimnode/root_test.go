package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestEmptyIDIsRefusedBeforeAnyRequest checks that an empty or blank ID
// argument (a script's $A left empty by a command that failed) is refused
// with what is missing, before the command looks for a daemon: sent to the
// API it only gave "no API route GET /api/v1/agreements/".
func TestEmptyIDIsRefusedBeforeAnyRequest(t *testing.T) {
	dir := initDir(t) // no daemon: a request would fail differently
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agreement", "export", ""}, "missing agreement ID (the first argument is empty"},
		{[]string{"contract", "show", ""}, "missing negotiation ID"},
		{[]string{"contract", "approve", " "}, "missing negotiation ID"},
		{[]string{"contract", "request", ""}, "missing dataset ID"},
		{[]string{"contract", "offer", "rm", "urn:mim:dataset:x", ""}, "missing offer ID (the second argument is empty"},
		{[]string{"dataset", "show", ""}, "missing dataset ID"},
		{[]string{"dataset", "files", "\t"}, "missing dataset ID"},
		{[]string{"transfer", "show", ""}, "missing transfer ID"},
		{[]string{"transfer", "terminate", ""}, "missing transfer ID"},
		{[]string{"federation", "show", ""}, "missing federation ID"},
		{[]string{"federation", "revoke", ""}, "missing peer ID"},
		{[]string{"fetch", ""}, "missing agreement ID"},
	} {
		_, _, err := cli(t, append(tc.args, "--data", dir)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "did a previous command fail to print one?") {
			t.Errorf("mimnode %q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

// TestArgumentErrorsNameTheUsage checks that a wrong number of arguments
// names the command's usage and points to --help, as a flag error does, and
// that an ID given where a subcommand belongs says what is expected.
func TestArgumentErrorsNameTheUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"fetch without an agreement", []string{"fetch"},
			[]string{"received 0", "usage: mimnode fetch AGREEMENT-ID", "(see 'mimnode fetch --help')"}},
		{"request without a dataset", []string{"contract", "request"},
			[]string{"usage: mimnode contract request DATASET-ID", "(see 'mimnode contract request --help')"}},
		{"publish without a file", []string{"dataset", "publish"},
			[]string{"usage: mimnode dataset publish FILE", "(see 'mimnode dataset publish --help')"}},
		{"offer list with an ID", []string{"contract", "offer", "list", "urn:mim:dataset:x"},
			[]string{`'mimnode contract offer list' takes no arguments, got "urn:mim:dataset:x"`, "(see 'mimnode contract offer list --help')"}},
		{"offer group with an ID", []string{"contract", "offer", "urn:mim:dataset:x"},
			[]string{"takes a subcommand before the ID", "'mimnode contract offer rm DATASET-ID OFFER-ID'"}},
		{"transfer group with an ID", []string{"transfer", "urn:uuid:7c1e"},
			[]string{"takes a subcommand before the ID", "'mimnode transfer show ID'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := cli(t, append(tc.args, "--data", dir)...)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("mimnode %q: %v, want it to say %q", tc.args, err, w)
				}
			}
		})
	}
}
