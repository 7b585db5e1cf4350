package transfer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/transfer"
)

// TestBlocksOfMixedSizesInOneRequest: blocks from a few bytes to
// content.MaxBlockSize, asked for in one request on one stream, arrive
// whole: the provider serves them all from one pooled frame buffer and
// the consumer reads them into pooled frame buffers it puts back after
// each block's write, so a block overwritten by the next one before it
// was written, or served from a buffer still in use, would show as a
// refetch, a failed fetch or a file that differs.
func TestBlocksOfMixedSizesInOneRequest(t *testing.T) {
	dir := func(o *transfer.Options) { o.FilesDir = filepath.Join(t.TempDir(), "received") }
	prov := &peer{cfg: initDir(t, "Provider"), tune: dir}
	cons := &peer{cfg: initDir(t, "Consumer"), tune: func(o *transfer.Options) {
		dir(o)
		o.Streams, o.BatchBlocks = 1, transfer.MaxBlocksPerRequest
	}}
	prov.start(t)
	cons.start(t)
	federate(t, []*node.Node{prov.n, cons.n})

	// Random runs cut where their content says (64 KiB to 1 MiB), runs
	// of one byte repeated cut only at MaxBlockSize, each in turn.
	var mixed []byte
	for i, n := range []int{3 << 20, 70 << 10, 2<<20 + 5, 300 << 10, 1 << 20, 65 << 10, 1500 << 10} {
		if i%2 == 0 {
			mixed = append(mixed, bytes.Repeat([]byte{byte('a' + i)}, n)...)
		} else {
			mixed = append(mixed, randomFile(n, uint64(i))...)
		}
	}
	files := map[string][]byte{"mixed.bin": mixed, "tiny.csv": []byte("a,b\n1,2\n")}
	ds := publishFiles(t, prov, &catalog.View{}, files)
	refs, err := transfer.ManifestRefs(prov.svc, ds.Version)
	if err != nil {
		t.Fatal(err)
	}
	small, large := int64(content.MaxBlockSize), int64(0)
	for _, r := range refs {
		small, large = min(small, r.Size), max(large, r.Size)
	}
	if len(refs) > transfer.MaxBlocksPerRequest || small > 100 || large != content.MaxBlockSize {
		t.Fatalf("%d blocks of %d to %d bytes, want blocks from a few bytes to %d in one request", len(refs), small, large, content.MaxBlockSize)
	}
	agreement := negotiate(t, prov, cons)
	got, err := cons.svc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got.Usage.Refetched != 0 || got.Usage.Blocks != int64(len(refs)) {
		t.Errorf("usage %+v, want %d blocks and none fetched again", got.Usage, len(refs))
	}
	for name, want := range files {
		b, err := os.ReadFile(filepath.Join(cons.svc.ReceivedDir(datasetID, got.Version), name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("received %s differs from the published file (%d bytes, want %d)", name, len(b), len(want))
		}
	}
	for _, r := range refs {
		if b, err := transfer.BlockBytes(cons.svc, r.CID.String()); err != nil || content.VerifyBlock(r.CID, b) != nil {
			t.Errorf("consumer's block %s (%d bytes): %d bytes, %v", r.CID, r.Size, len(b), err)
		}
	}
}
