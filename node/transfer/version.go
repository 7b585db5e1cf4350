package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

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
	// view is the viewFilter's key the version was built for, prov the
	// provenance epoch (Service.provEpoch) when its build started: a later
	// build may start from this one only if both are the same (rebuild.go).
	view string
	prov uint64
	// whole says the build read every entity; recut is how many blocks
	// it encoded and wrote (the others it kept from the version before).
	whole bool
	recut int
	// expires is when the first agreement ends under which the version
	// holds entities this node received (zero: none ends): from then on
	// the version is built whole again, without them (passable).
	expires time.Time
}

// encodeChunk is how many entities a build encodes in parallel at a time.
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
	// iris are the view's types as expanded IRIs (and as written, when
	// they do not expand), sorted: what the entity store is asked for.
	iris []string
	q    *query.Q
	// key names the view: its types and q.
	key string
}

func (s *Service) filterFor(ds catalog.Dataset) (*viewFilter, error) {
	v, ok := ds.EffectiveView()
	if !ok {
		return nil, fmt.Errorf("dataset %s is not an NGSI-LD view: %w", ds.ID, ErrUnknownDataset)
	}
	m := s.typesOf(v.EntityTypes)
	f := &viewFilter{types: maps.Clone(m.iris)}
	// The stored types a short name stands for are read only when the
	// view names one.
	if len(m.short) > 0 {
		stored, err := s.o.NGSILD.StoredTypes()
		if err != nil {
			return nil, fmt.Errorf("dataset %s: reading the stored entity types: %w", ds.ID, err)
		}
		for _, st := range stored {
			if m.has(st) {
				f.types[st] = true
			}
		}
	}
	for t := range f.types {
		f.iris = append(f.iris, t)
	}
	slices.Sort(f.iris)
	f.key = strings.Join(f.iris, " ") + "\x00" + v.Q
	if v.Q != "" {
		expand := func(t string) string {
			iri, err := s.o.NGSILD.Expand(nil, t)
			if err != nil {
				return t
			}
			return iri
		}
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
	// Builds take turns: a request that comes during a build waits for it
	// and then finds the version built, or starts from it.
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	// The version holds at least every change up to last: the entities
	// are read from a snapshot taken after it. A live feed started from
	// last+1 may then repeat a change the version already has (landing it
	// again changes nothing), but never misses one. epoch is read after
	// last and before any provenance (rebuild.go).
	last := s.o.NGSILD.LastSeq()
	epoch := s.provEpoch.Load()
	s.mu.Lock()
	b, ok := s.built[ds.ID]
	s.mu.Unlock()
	now := s.o.Now()
	current := ok && b.view == f.key && b.prov == epoch && (b.expires.IsZero() || now.Before(b.expires))
	if current && b.seq == last {
		return b.version, nil
	}
	var m content.Manifest
	var recut int
	done := false
	s.expires = time.Time{} // servable notes the first end of what it keeps
	if current {
		m, recut, done, err = s.rebuild(ctx, f, b, last) // rebuild.go
		if err != nil {
			if ctx.Err() != nil {
				return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
			}
			s.log.Warn("building a version from the last one failed; building it whole", "dataset", ds.ID, "err", err)
			done = false
		}
	}
	if !done {
		m, recut, err = s.writeVersion(func(eb *content.EntityBuilder) error {
			return s.eachInView(ctx, f, eb.Add)
		})
		if err != nil {
			return "", fmt.Errorf("building a version of %s: %w", ds.ID, err)
		}
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
	if !ok || version != b.version {
		if err := s.o.Store.Update(func(tx *store.Txn) error { return tx.Set(manifestKey(version), enc) }); err != nil {
			return "", fmt.Errorf("storing version %s of %s: %w", version, ds.ID, err)
		}
	}
	s.mu.Lock()
	if ok && b.version != version {
		// A version loop may build every minute; the versions it
		// replaced are read back from the store when asked for.
		delete(s.manifests, b.version)
	}
	s.manifests[version] = m
	expires := s.expires
	if done && !b.expires.IsZero() && (expires.IsZero() || b.expires.Before(expires)) {
		expires = b.expires // the blocks kept from b keep its entities
	}
	s.built[ds.ID] = builtVersion{seq: last, version: version, view: f.key, prov: epoch, whole: !done, recut: recut, expires: expires}
	s.mu.Unlock()
	return version, nil
}

// writeVersion runs fill with a builder whose blocks are written behind
// it, and returns the manifest and how many blocks it wrote once every
// one is written and synced: the blocks are durable before the manifest
// that names them.
func (s *Service) writeVersion(fill func(eb *content.EntityBuilder) error) (content.Manifest, int, error) {
	bw := s.newBlockWriter()
	defer bw.cancel()
	// Block files are written behind the build, which the entity walk,
	// encoding and hashing keep busy.
	put, wait := bw.behind()
	defer wait()
	written := 0
	eb := content.NewEntityBuilder(func(blk content.Block) error {
		written++
		return put(blk.CID.String(), blk.Data)
	})
	if err := fill(eb); err != nil {
		return content.Manifest{}, 0, err
	}
	m, err := eb.Finish()
	if err == nil {
		err = wait()
	}
	if err != nil {
		return content.Manifest{}, 0, err
	}
	if err := bw.finish(); err != nil {
		return content.Manifest{}, 0, fmt.Errorf("storing the blocks: %w", err)
	}
	return m, written, nil
}

// canonicalEntity is the one-line JSON an entity is put in a block as:
// the stored form (expanded names), with map keys sorted by encoding/json.
// Timestamps are the provider's; the consumer keeps its own on landing.
func canonicalEntity(e *ngsild.Entity) ([]byte, error) {
	return json.Marshal(e)
}

// eachInView calls emit with the id and canonical JSON of every current
// entity of the view f, in id order, read straight from the entity store,
// without the entities this node received under an agreement that does not
// permit distribute. A view without q takes each entity's line as the
// store gives it (ngsild.Service.EachLineOfType, the same bytes
// canonicalEntity gives, without building an Entity); a view with q needs
// the entities to filter them (eachEntityInView).
func (s *Service) eachInView(ctx context.Context, f *viewFilter, emit func(id string, line []byte) error) error {
	if len(f.iris) == 0 {
		return nil
	}
	if f.q != nil {
		return s.eachEntityInView(ctx, f, emit)
	}
	each := func(fn func(ngsild.EntityLine) error) error { return s.o.NGSILD.EachLineOfType(ctx, f.iris, fn) }
	return inChunks(each, func(l ngsild.EntityLine) bool { return f.match(l.Types, nil) }, func(chunk []ngsild.EntityLine) error {
		keep, err := s.servable(len(chunk), func(i int) string { return chunk[i].ID })
		if err != nil {
			return err
		}
		for i, l := range chunk {
			if keep[i] {
				if err := emit(l.ID, l.JSON); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// eachEntityInView is eachInView for a view with q: entities from
// ngsild.Service.EachOfType (decoded ahead on the other cores), filtered
// by q, encoded a chunk at a time on every core.
func (s *Service) eachEntityInView(ctx context.Context, f *viewFilter, emit func(id string, line []byte) error) error {
	workers := runtime.GOMAXPROCS(0)
	lines := make([][]byte, encodeChunk)
	errs := make([]error, workers)
	each := func(fn func(*ngsild.Entity) error) error { return s.o.NGSILD.EachOfType(ctx, f.iris, fn) }
	return inChunks(each, func(e *ngsild.Entity) bool { return f.match(e.Types, e) }, func(chunk []*ngsild.Entity) error {
		keep, err := s.servable(len(chunk), func(i int) string { return chunk[i].ID })
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < len(chunk); i += workers {
					if !keep[i] {
						continue
					}
					if lines[i], errs[w] = canonicalEntity(chunk[i]); errs[w] != nil {
						errs[w] = fmt.Errorf("encoding entity %s: %w", chunk[i].ID, errs[w])
						return
					}
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for i, e := range chunk {
			if keep[i] {
				if err := emit(e.ID, lines[i]); err != nil {
					return err
				}
			}
			lines[i] = nil
		}
		return nil
	})
}

// inChunks calls each (a walk over the entity store) and hands what it
// gives and keep accepts to flush, encodeChunk at a time, in order.
func inChunks[T any](each func(fn func(T) error) error, keep func(T) bool, flush func([]T) error) error {
	chunk := make([]T, 0, encodeChunk)
	next := func() error {
		err := flush(chunk)
		clear(chunk)
		chunk = chunk[:0]
		return err
	}
	err := each(func(x T) error {
		if !keep(x) {
			return nil
		}
		chunk = append(chunk, x)
		if len(chunk) == encodeChunk {
			return next()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return next()
}

// servable reports which of n entities (entity i has id id(i)) this node
// may serve: all but those it received under an agreement that does not
// let it pass them on now (passable). Called by builds, under buildMu: it
// notes in s.expires the first end of an agreement whose entities it
// keeps.
func (s *Service) servable(n int, id func(int) string) ([]bool, error) {
	keep := make([]bool, n)
	for i := range keep {
		keep[i] = true
	}
	now := s.o.Now()
	revoked := map[string]bool{}
	err := s.eachProvenance(n, id, func(i int, p Provenance) error {
		var err error
		if keep[i], err = s.passable(p, now, revoked); err != nil {
			return err
		}
		if keep[i] && !p.Until.IsZero() && (s.expires.IsZero() || p.Until.Before(s.expires)) {
			s.expires = p.Until
		}
		return nil
	})
	return keep, err
}

// eachProvenance calls fn, in the order of i, with the provenance of each
// of n entities (entity i has id id(i)) that this node received. Which
// have a provenance key is found in one keys-only pass (Txn.Present), and
// only those are read: a node's own entities have none (a build of
// 1,000,000 spent 1.1 of 53 cpu-s in lookups one by one).
func (s *Service) eachProvenance(n int, id func(int) string, fn func(i int, p Provenance) error) error {
	if n == 0 {
		return nil
	}
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = provenanceKey(id(i))
	}
	return s.o.Store.View(func(tx *store.Txn) error {
		r := provenanceReader{tx: tx}
		for i, held := range tx.Present(provenanceKey(""), keys) {
			if !held {
				continue
			}
			p, ok, err := r.read(id(i))
			if err != nil {
				return err
			}
			if ok {
				if err := fn(i, p); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// passable reports whether this node may pass on, at now, an entity it
// received with provenance p: the agreement permits distribute outright,
// is still valid, and is not revoked. revoked caches the last by
// agreement id for one caller's run.
func (s *Service) passable(p Provenance, now time.Time, revoked map[string]bool) (bool, error) {
	if !p.Distribute || (!p.Until.IsZero() && !now.Before(p.Until)) {
		return false, nil
	}
	if s.o.Revocations == nil {
		return true, nil
	}
	gone, seen := revoked[p.Agreement]
	if !seen {
		// Data is received as the agreement's consumer: its provider's
		// word is what says the agreement was revoked.
		_, r, err := s.o.Revocations.ToldRevoked(p.Agreement)
		if err != nil {
			return false, fmt.Errorf("reading whether agreement %s was revoked: %w", p.Agreement, err)
		}
		gone, revoked[p.Agreement] = r, r
	}
	return !gone, nil
}
