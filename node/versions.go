package node

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/node/api"
	"github.com/mimnode/mimnode/node/problem"
)

// UpdateVersions builds the current version (manifest CID) of each of this
// node's live datasets that is a view of its entity store, and republishes
// the ones whose version changed, so the federation sees the new version id.
// It returns the records it republished.
func (n *Node) UpdateVersions(ctx context.Context) ([]catalog.Record, error) {
	var out []catalog.Record
	for _, rec := range n.catalog.Own() {
		if rec.Retired {
			continue
		}
		if _, ok := rec.Dataset.EffectiveView(); !ok {
			continue // a file dataset: its version changes when its files do
		}
		r, changed, err := n.updateVersion(ctx, rec.Dataset)
		if err != nil {
			return out, err
		}
		if changed {
			out = append(out, r)
		}
	}
	return out, nil
}

// updateVersion builds dataset d's version and republishes d if it changed.
func (n *Node) updateVersion(ctx context.Context, d catalog.Dataset) (catalog.Record, bool, error) {
	v, err := n.transfers.Build(ctx, d)
	if err != nil {
		return catalog.Record{}, false, fmt.Errorf("version of %s: %w", d.ID, err)
	}
	if v == d.Version {
		r, err := n.catalog.Get(d.ID)
		return r, false, err
	}
	d.Version = v
	r, err := n.catalog.Publish(ctx, d)
	return r, err == nil, err
}

// versionLoop rebuilds versions every interval while the entity store has
// changed since the last pass.
func (n *Node) versionLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var seen uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last := n.ngsi.LastSeq()
		if last == seen {
			continue
		}
		if _, err := n.UpdateVersions(ctx); err != nil {
			n.log.Warn("updating dataset versions", "err", err)
			continue
		}
		seen = last
	}
}

// handleVersion is POST /api/v1/datasets/{id}/version: build the dataset's
// version now and republish it if it changed.
func (n *Node) handleVersion(w http.ResponseWriter, r *http.Request) {
	rec, err := n.catalog.Get(r.PathValue("id"))
	if err != nil || rec.Publisher != n.host.ID().String() || rec.Retired {
		problem.Write(w, problem.New(http.StatusNotFound, "dataset-unknown", "No such dataset", "this node publishes no live dataset "+r.PathValue("id")))
		return
	}
	if _, ok := rec.Dataset.EffectiveView(); !ok && (rec.Dataset.Source == nil || len(rec.Dataset.Source.Files) == 0) {
		problem.Write(w, problem.New(http.StatusBadRequest, "dataset-invalid", "No data", "the dataset is neither a view of the entity store nor has files added with mimnode dataset add-file"))
		return
	}
	out, _, err := n.updateVersion(r.Context(), rec.Dataset)
	if err != nil {
		problem.Write(w, problem.New(http.StatusInternalServerError, "internal", "Version not built", err.Error()))
		return
	}
	api.WriteJSON(w, http.StatusOK, out)
}
