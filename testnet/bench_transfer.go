package testnet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// benchTransfer negotiates a researcher's agreement for an environment
// agency's open air quality dataset holding Transfer entities, then
// measures a snapshot pull (block phase against one bare libp2p stream
// moving the same bytes between the same hosts; end-to-end entities/s),
// the next version after 1% of the entities changed, and the live feed.
func benchTransfer(ctx context.Context, b *bench, net *Net) error {
	var prov *Member
	for _, m := range net.Agencies() {
		if m.Kind == "environment" {
			prov = m
			break
		}
	}
	if prov == nil || len(net.Researchers()) == 0 {
		return fmt.Errorf("the shape needs an environment agency and a researcher")
	}
	cons := net.Researchers()[len(net.Researchers())-1]
	// The view names the type by its full IRI: the transfer service
	// expands a short name with the core context only, which would miss
	// entities written under the Smart Data Models context.
	const aqoType = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
	dataset := "urn:mim:dataset:bench:air-quality"
	if _, err := prov.Node().Catalog().Publish(ctx, catalog.Dataset{ID: dataset, Title: "Air quality (benchmark)",
		Description: "AirQualityObserved entities written by the benchmark.", License: "CC-BY-4.0",
		EntityTypes: []string{aqoType}, Offers: []catalog.Offer{{Template: "open-data"}}, Dissemination: catalog.Federation,
		Source: &catalog.Source{View: &catalog.View{EntityTypes: []string{aqoType}}}}); err != nil {
		return fmt.Errorf("publish %s: %w", dataset, err)
	}
	c := newNGSIClient(prov.Node().APIURL())
	bodies, err := upsertBodies(0, b.sz.Transfer, 31)
	if err != nil {
		return err
	}
	if err := c.upsert(ctx, bodies); err != nil {
		return fmt.Errorf("load the provider: %w", err)
	}
	// The provider's version loop builds a dataset's version after its
	// entities change, ahead of any request; do now what it would do
	// within its interval, and time it apart.
	tb := time.Now()
	if _, err := prov.Node().UpdateVersions(ctx); err != nil {
		return fmt.Errorf("build the version: %w", err)
	}
	build := time.Since(tb)
	if err := net.WaitFor(20*time.Second, cons.Name+" indexes "+dataset, func() bool {
		_, err := cons.Node().Catalog().Offer(dataset, "")
		return err == nil
	}); err != nil {
		return err
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nid, err := cons.Node().Contracts().Request(nctx, contract.RequestOptions{Provider: prov.Node().ID(), Dataset: dataset, Purpose: "research"})
	if err != nil {
		return fmt.Errorf("negotiate: %w", err)
	}
	in, err := cons.Node().Contracts().Wait(nctx, nid)
	if err != nil || in.State != negotiation.Finalized || in.AgreementID == "" {
		return fmt.Errorf("negotiate: ended %s %v: %v", in.State, in.Reasons, err)
	}
	agreement := in.AgreementID

	csvc := cons.Node().Transfers()

	var tManifest, tBlocks time.Time
	var blockBytes int64
	t0 := time.Now()
	first, err := csvc.Fetch(ctx, agreement, transfer.FetchOptions{Progress: func(p transfer.Progress) {
		switch {
		case p.Phase == "manifest" && tManifest.IsZero():
			tManifest = time.Now()
		case p.Phase == "blocks" && p.Blocks == p.TotalBlocks:
			tBlocks, blockBytes = time.Now(), p.TotalBytes
		}
	}})
	total := time.Since(t0)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if tManifest.IsZero() || tBlocks.IsZero() || blockBytes == 0 {
		return fmt.Errorf("fetch reported no block phase (usage %+v)", first.Usage)
	}
	bare, err := bareCopy(ctx, prov.Node(), cons.Node(), blockBytes)
	if err != nil {
		return err
	}
	blockRate := float64(blockBytes) / tBlocks.Sub(tManifest).Seconds() / 1e6
	b.set("transfer.blocks", blockRate, bare, "one bare libp2p stream, same bytes and hosts",
		fmt.Sprintf("%.1f MB in %d blocks, %.1f MB of it on the wire, compressed, with the manifest (the target names 1 GiB)",
			float64(blockBytes)/1e6, first.Usage.Blocks, float64(first.Usage.Bytes)/1e6))
	b.set("transfer.entities", float64(first.Usage.Entities)/total.Seconds(), 0, "",
		fmt.Sprintf("%d entities, request to receipt, the version built ahead as the provider's version loop does (%.2f s; %.0f entities/s counting it; the target names 1,000,000)",
			first.Usage.Entities, build.Seconds(), float64(first.Usage.Entities)/(total+build).Seconds()))

	// 1% of the entities change, scattered over the dataset (every
	// hundredth station), so that nearly every block holds one.
	n := b.sz.Transfer
	var ids []int
	for i := 37; i < n; i += 100 {
		ids = append(ids, i)
	}
	changed, err := upsertBodiesOf(ids, 32)
	if err != nil {
		return err
	}
	if err := c.upsert(ctx, changed); err != nil {
		return err
	}
	second, err := csvc.Fetch(ctx, agreement, transfer.FetchOptions{})
	if err != nil {
		return fmt.Errorf("fetch the next version: %w", err)
	}
	b.set("transfer.delta", float64(second.Usage.Bytes), float64(first.Usage.Bytes), "full snapshot",
		fmt.Sprintf("%d of %d entities changed, every hundredth (about one per block of %d)", len(ids), n, n/max(1, int(first.Usage.Blocks))))

	landed := make(chan struct{}, 1)
	started := make(chan struct{})
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	liveDone := make(chan error, 1)
	go func() {
		liveDone <- csvc.Live(lctx, agreement, transfer.LiveOptions{
			Started: func(transfer.Info) { close(started) },
			OnChange: func(transfer.LiveChange) {
				select {
				case landed <- struct{}{}:
				default:
				}
			},
		})
	}()
	select {
	case <-started:
	case err := <-liveDone:
		return fmt.Errorf("live feed: %w", err)
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("live feed did not start within 2 minutes")
	}
	var lat []time.Duration
	id := fmt.Sprintf("urn:ngsi-ld:AirQualityObserved:Bench-%07d", 0)
	for i := 1; i <= b.sz.Live; i++ {
		t0 := time.Now()
		code, out, err := c.do(ctx, "PATCH", "/ngsi-ld/v1/entities/"+url.PathEscape(id)+"/attrs",
			map[string]any{"no2": map[string]any{"type": "Property", "value": 1000 + i}})
		if err := want(code, out, err, "provider write", http.StatusNoContent); err != nil {
			return err
		}
		select {
		case <-landed:
			lat = append(lat, time.Since(t0))
		case err := <-liveDone:
			return fmt.Errorf("live feed ended: %w", err)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("change %d not landed within 10 s", i)
		}
	}
	b.set("transfer.live", percentile(lat, 0.5), 0, "",
		fmt.Sprintf("%d writes through the provider's API (PATCH, synced) until landed in the consumer's store", len(lat)))
	return nil
}

const bareProto = "/mim/bench/bare/1.0.0"

// bareCopy streams total bytes from provider to consumer over one libp2p
// stream (the consumer opens it, as a researcher accepts none) and returns
// MB/s.
func bareCopy(ctx context.Context, prov, cons *node.Node, total int64) (float64, error) {
	chunk := make([]byte, 1<<20)
	prov.Host().SetStreamHandler(p2pproto.ID(bareProto), func(st network.Stream) {
		defer st.Close()
		for left := total; left > 0; left -= int64(len(chunk)) {
			if _, err := st.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				st.Reset()
				return
			}
		}
	})
	defer prov.Host().RemoveStreamHandler(p2pproto.ID(bareProto))
	st, err := cons.Host().NewStream(ctx, prov.ID(), p2pproto.ID(bareProto))
	if err != nil {
		return 0, fmt.Errorf("open a bare stream: %w", err)
	}
	defer st.Close()
	t0 := time.Now()
	got, err := io.Copy(io.Discard, st)
	if err != nil || got != total {
		return 0, fmt.Errorf("bare stream copied %d of %d bytes: %v", got, total, err)
	}
	return float64(got) / time.Since(t0).Seconds() / 1e6, nil
}
