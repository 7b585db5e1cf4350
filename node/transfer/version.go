package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/mimnode/mimnode/catalog"
	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/ngsild/query"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
)

type builtVersion struct {
	seq     uint64
	version string
}

// feedPage is how many changes one read of the change feed takes.
const feedPage = 4096

// encodeChunk is how many entities Build encodes in parallel at a time.
const encodeChunk = 2048

// versionFor picks the version to serve under a: the one it names if this
// node still holds it, else the dataset's current version (built now),
// which must then be the one named.
func (s *Service) versionFor(a policy.Agreement) (string, error) {
	if a.Version != "" {
		if _, err := s.manifest(a.Version); err == nil {
			return a.Version, nil
		}
	}
	ds, err := s.o.Datasets.Dataset(a.Dataset)
	if err != nil {
		return "", fmt.Errorf("dataset %s is not served here: %w", a.Dataset, err)
	}
	v, err := s.Build(s.ctx, ds)
	if err != nil {
		return "", err
	}
	if a.Version != "" && v != a.Version {
		return "", fmt.Errorf("version %s named by the agreement is no longer available (current is %s)", a.Version, v)
	}
	return v, nil
}

// viewFilter decides which entities belong to a dataset's view.
type viewFilter struct {
	types map[string]bool
	q     *query.Q
}

func (s *Service) filterFor(ds catalog.Dataset) (*viewFilter, error) {
	v, ok := ds.EffectiveView()
	if !ok {
		return nil, fmt.Errorf("dataset %s is not an NGSI-LD view: %w", ds.ID, ErrUnknownDataset)
	}
	f := &viewFilter{types: map[string]bool{}}
	expand := func(t string) string {
		iri, err := s.o.NGSILD.Expand(nil, t)
		if err != nil {
			return t
		}
		return iri
	}
	for _, t := range v.EntityTypes {
		f.types[t] = true
		f.types[expand(t)] = true
	}
	if v.Q != "" {
		q, err := query.Parse(v.Q, expand)
		if err != nil {
			return nil, fmt.Errorf("dataset %s view q: %w", ds.ID, err)
		}
		f.q = q
	}
	return f, nil
}

func (f *viewFilter) match(types []string, e *ngsild.Entity) bool {
	for _, t := range types {
		if f.types[t] {
			return f.q == nil || e == nil || f.q.Match(e)
		}
	}
	return false
}

// Build makes the current version of dataset ds from the node's entities
// and stores its blocks and manifest; it returns the version id (manifest
// CID). A dataset whose entities did not change since the last build
// keeps its version without rebuilding.
func (s *Service) Build(ctx context.Context, ds catalog.Dataset) (string, error) {
	if hasFiles(ds) {
		return s.buildWithFiles(ctx, ds) // files.go
	}
	f, err := s.filterFor(ds)
	if err != nil {
		return "", err
	}
	last := s.o.NGSILD.LastSeq()
	s.mu.Lock()
	b, ok := s.built[ds.ID]
	s.mu.Unlock()
	if ok && b.seq == last {
		return b.version, nil
	}
	// The change feed is the one public way to read entities in bulk;
	// replaying it gives each entity's latest state.
	cur := map[string]*ngsild.Entity{}
	var seq uint64
	for from := uint64(0); ; {
		batch, err := s.o.NGSILD.Changes(ctx, from, feedPage)
		if err != nil {
			return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
		}
		for _, c := range batch {
			from, seq = c.Seq+1, c.Seq
			if c.Op == ngsild.OpDelete || !f.match(c.Types, c.Entity) {
				delete(cur, c.ID)
				continue
			}
			cur[c.ID] = c.Entity
		}
		if len(batch) < feedPage {
			break
		}
	}
	ids := make([]string, 0, len(cur))
	for id := range cur {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// Data received under an agreement that does not permit distribute is
	// never served onwards, whatever dataset view it falls into.
	ids, err = s.withoutUndistributable(ids)
	if err != nil {
		return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
	}
	wb := s.o.Store.NewBatch()
	defer wb.Cancel()
	eb := content.NewEntityBuilder(func(blk content.Block) error {
		return wb.Set(blockKey(blk.CID.String()), blk.Data)
	})
	// Encoding is the costly part and independent per entity: encode a
	// chunk on every core, then add it in order.
	workers := runtime.GOMAXPROCS(0)
	lines := make([][]byte, encodeChunk)
	errs := make([]error, workers)
	for chunk := range slices.Chunk(ids, encodeChunk) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(chunk); i += workers {
					lines[i], errs[w] = canonicalEntity(cur[chunk[i]])
					if errs[w] != nil {
						errs[w] = fmt.Errorf("encoding entity %s: %w", chunk[i], errs[w])
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		for i, id := range chunk {
			if err := eb.Add(id, lines[i]); err != nil {
				return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
			}
			lines[i] = nil
		}
	}
	m, err := eb.Finish()
	if err != nil {
		return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
	}
	enc, err := m.Encode()
	if err != nil {
		return "", fmt.Errorf("encoding the manifest of %s: %w", ds.ID, err)
	}
	c, err := m.CID()
	if err != nil {
		return "", fmt.Errorf("naming the manifest of %s: %w", ds.ID, err)
	}
	version := c.String()
	if err := wb.Set(manifestKey(version), enc); err != nil {
		return "", err
	}
	if err := wb.Flush(); err != nil {
		return "", fmt.Errorf("storing version %s of %s: %w", version, ds.ID, err)
	}
	s.mu.Lock()
	s.manifests[version] = m
	s.built[ds.ID] = builtVersion{seq: seq, version: version}
	s.mu.Unlock()
	return version, nil
}

// canonicalEntity is the one-line JSON an entity is put in a block as:
// the stored form (expanded names), with map keys sorted by encoding/json.
// Timestamps are the provider's; the consumer keeps its own on landing.
func canonicalEntity(e *ngsild.Entity) ([]byte, error) {
	return json.Marshal(e)
}

// withoutUndistributable drops the ids of entities this node received
// under an agreement whose policy does not permit distribute.
func (s *Service) withoutUndistributable(ids []string) ([]string, error) {
	out := ids[:0]
	err := s.o.Store.View(func(tx *store.Txn) error {
		for _, id := range ids {
			b, err := tx.Get(provenanceKey(id))
			if errors.Is(err, store.ErrNotFound) {
				out = append(out, id)
				continue
			}
			if err != nil {
				return err
			}
			var p Provenance
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("provenance of %s: %w", id, err)
			}
			if p.Distribute {
				out = append(out, id)
			}
		}
		return nil
	})
	return out, err
}
