package transfer_test

import "testing"

// BenchmarkBareStream: the CPU one bare libp2p stream between the two
// hosts of BenchmarkBlockThroughput spends per MiB (both ends, this
// process), copying -transfer.mib MiB: the floor the block phase's
// cpu-ms/MiB is measured against (BlockThroughput reports the bare
// stream's rate, not its CPU).
func BenchmarkBareStream(b *testing.B) {
	prov, cons, _ := benchPair(b)
	total := int64(*benchMiB) << 20
	b.ResetTimer()
	for b.Loop() {
		_, cpu := bareCopy(b, prov, cons, total)
		b.ReportMetric(float64(cpu.Milliseconds())/float64(*benchMiB), "cpu-ms/MiB")
	}
}
