package store

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/mimnode/mimnode/internal/osstat"
)

var floorEntities = flag.Int("store.floor.entities", 200_000, "entities of BenchmarkLandingFloor")

// BenchmarkLandingFloor: what badger alone costs to write the keys a
// transfer's landing writes for each received entity, with no NGSI-LD work
// at all (no decoding, no index computation, no packing): the floor under
// transfer.BenchmarkEndToEndEntities. Keys and values have the sizes a
// landing of the transfer benchmark's entities leaves in the store
// (measured by listing the consumer's keys after one), in batches of 1,000
// entities each made durable, as a landing commits them:
//
//	landed:     n/e (49 B key, 8 B value), n/T (53), n/G (61), n/f (12 + 788: the
//	            entity's state in its feed record), n/h (66 + 27: history), t/e
//	            (49 + 33: provenance)
//	referenced: the same with the feed record 40 bytes, as if the state
//	            stayed in the received block and the record pointed at it
//	bare:       n/e, n/T and n/G only, the least that lets a query by id,
//	            type or place find the entity: no state, history or provenance
//
// Run with -store.floor.entities 1000000 for the million of the transfer
// issue's target.
func BenchmarkLandingFloor(b *testing.B) {
	for _, v := range []struct {
		name       string
		state      int // bytes of the feed record; 0: none
		hist, prov bool
	}{
		{"landed", 788, true, true},
		{"referenced", 40, true, true},
		{"bare", 0, false, false},
	} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				floorRun(b, *floorEntities, v.state, v.hist, v.prov)
			}
		})
	}
}

func floorRun(b *testing.B, n, state int, hist, prov bool) {
	b.StopTimer()
	db, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	// Closing (a memtable flush) is not timed.
	defer func() {
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}()
	r := rand.New(rand.NewPCG(1, 2))
	// A state compresses in badger's tables as entity JSON does: field
	// names repeat, numbers vary.
	// The batch keeps the slices it is given until it commits: each key
	// and value is a new one.
	mkState := func(i int) []byte {
		var stateBuf []byte
		for len(stateBuf) < state {
			stateBuf = fmt.Appendf(stateBuf, `{"type":"Property","value":%.4f,"observedAt":"2026-11-%02dT10:%02d:00Z","unitCode":"GQ"},`, r.Float64()*100, i%28+1, i%60)
		}
		return stateBuf[:state]
	}
	key := func(parts ...string) []byte {
		var dst []byte
		for _, p := range parts {
			dst = append(dst, p...)
		}
		return dst
	}
	code := func(c uint32) string { return string(binary.BigEndian.AppendUint32(nil, c)) }
	typeCode, geoCode := code(7), code(9)
	zero8, hv, pv := make([]byte, 8), make([]byte, 27), make([]byte, 33)
	b.StartTimer()
	t0, c0 := time.Now(), osstat.ProcessCPU()
	seq := uint64(0)
	for i := 0; i < n; i += 1000 {
		wb := db.NewBatch()
		set := func(key, value []byte) {
			if err := wb.Set(key, value); err != nil {
				b.Fatal(err)
			}
		}
		for j := i; j < min(i+1000, n); j++ {
			id := "urn:ngsi-ld:AirQualityObserved:bench-" + fmt.Sprintf("%08d", j) // as the transfer benchmark's
			seq++
			set(key("n/e/", id), zero8)
			set(key("n/T/", typeCode, id), nil)
			set(key("n/G/", geoCode, string(binary.BigEndian.AppendUint64(nil, r.Uint64())), id), nil)
			if state > 0 {
				set(binary.BigEndian.AppendUint64(key("n/f/"), seq), mkState(j))
			}
			if hist {
				set(key("n/h/", id, "\x00", strconv.FormatUint(1<<62-seq, 16)), hv)
			}
			if prov {
				set(key("t/e/", id), pv)
			}
		}
		if err := wb.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	d, c := time.Since(t0), osstat.ProcessCPU()-c0
	b.ReportMetric(float64(n)/d.Seconds(), "entities/s")
	b.ReportMetric(float64(c.Nanoseconds())/1000/float64(n), "cpu-µs/entity")
}
