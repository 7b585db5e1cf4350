package transfer_test

import (
	"context"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"
)

// BenchmarkBareStream: the CPU one bare libp2p stream between the two
// hosts of BenchmarkBlockThroughput spends per MiB (both ends, this
// process), copying -transfer.mib MiB: the floor the block phase's
// cpu-ms/MiB is measured against (BlockThroughput reports the bare
// stream's rate, not its CPU).
func BenchmarkBareStream(b *testing.B) {
	prov, cons, _ := benchPair(b)
	const bare = "/mim/bench/bare-cpu/1.0.0"
	total := int64(*benchMiB) << 20
	chunk := make([]byte, 1<<20)
	prov.n.Host().SetStreamHandler(p2pproto.ID(bare), func(st network.Stream) {
		defer st.Close()
		for left := total; left > 0; left -= int64(len(chunk)) {
			if _, err := st.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				st.Reset()
				return
			}
		}
	})
	b.ResetTimer()
	for b.Loop() {
		st, err := cons.n.Host().NewStream(context.Background(), prov.n.ID(), bare)
		if err != nil {
			b.Fatal(err)
		}
		c0 := cpuTime()
		got, err := io.Copy(io.Discard, st)
		c1 := cpuTime()
		if err != nil || got != total {
			b.Fatalf("bare stream copied %d of %d bytes: %v", got, total, err)
		}
		b.ReportMetric(float64((c1-c0).Milliseconds())/float64(*benchMiB), "cpu-ms/MiB")
	}
}
