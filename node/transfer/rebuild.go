package transfer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/mimnode/mimnode/content"
)

// Building a version from the last one.
//
// A full build reads, encodes and hashes every entity of the view: about
// 26 s for a million entities on two cores. When few entities changed
// since the last build of the same view, Build starts from that version
// instead. The change feed since its position names the entities that may
// have changed; a block of the last version whose id range (up to and
// including the next block's first id: a block can end because the next
// entity did not fit) holds none of them keeps its place, bytes and CID;
// the others are read back (checked against their CIDs), merged by id with
// the changed entities' current lines, and cut again by the same builder,
// which goes on through the next blocks until it ends a block where the
// last version ended one and the next block is untouched. Where a block
// ends depends only on its entities and the next one, so the manifest is
// the one a full build would make, byte for byte
// (TestRebuildMatchesFullBuild), and only the re-cut blocks are encoded,
// hashed and written.
//
// Build goes back to a full build when the view changed, when this node
// wrote any provenance since the last build started (an entity's
// servability can change without an entity change: provEpoch), when more
// changes came than rebuildShare of the version's entities, when the feed
// since the last build is trimmed, or when a block of the last version is
// missing or unreadable.

// rebuildShare: a build starts from the last version only if at most one
// change per rebuildShare entities of it came since (each change costs a
// feed read, an entity read and an encoding; a full build costs about as
// much per entity as a few changes).
const rebuildShare = 8

// changedLine is an entity that may have changed since the last build:
// its current line in the view, or nil when it is not in the view (now).
type changedLine struct {
	id   string
	line []byte
}

// rebuild builds the version of view f from the version base, built at
// feed position base.seq, with every change up to last. ok is false when
// it cannot (the caller builds the version whole); an error is logged by
// the caller, which then builds whole too.
func (s *Service) rebuild(ctx context.Context, f *viewFilter, base builtVersion, last uint64) (m content.Manifest, recut int, ok bool, err error) {
	pm, err := s.manifest(base.version)
	if err != nil || pm.Kind != content.KindEntities || len(pm.Blocks) == 0 {
		return content.Manifest{}, 0, false, nil
	}
	if last < base.seq || last-base.seq > uint64(max(1024, pm.Entities()/rebuildShare)) {
		return content.Manifest{}, 0, false, nil
	}
	ids, ok, err := s.changedSince(ctx, f, base.seq, last, pm.Blocks)
	if err != nil || !ok {
		return content.Manifest{}, 0, false, err
	}
	if len(ids) == 0 {
		return pm, 0, true, nil
	}
	changed, err := s.currentLines(ctx, f, ids)
	if err != nil {
		return content.Manifest{}, 0, false, err
	}
	blocks := pm.Blocks
	dirty := make([]bool, len(blocks))
	for _, c := range changed {
		i := blockAt(blocks, c.id)
		dirty[i] = true
		if c.id == blocks[i].First && i > 0 {
			dirty[i-1] = true
		}
	}
	m, recut, err = s.writeVersion(func(eb *content.EntityBuilder) error {
		next := 0 // in changed
		// addChanged adds the changed entities with ids below before ("":
		// all that are left).
		addChanged := func(before string) error {
			for ; next < len(changed) && (before == "" || changed[next].id < before); next++ {
				if c := changed[next]; c.line != nil {
					if err := eb.Add(c.id, c.line); err != nil {
						return err
					}
				}
			}
			return nil
		}
		for i, r := range blocks {
			if !dirty[i] && !eb.Pending() {
				if held, err := s.hasBlock(r.CID.String()); err != nil || !held {
					return fmt.Errorf("block %s of the last version: held %v: %w", r.CID, held, err)
				}
				if err := eb.AddBlock(r); err != nil {
					return err
				}
				continue
			}
			lines := s.blockLines([]content.BlockRef{r})
			for {
				line, id, err := lines()
				if err != nil {
					return err
				}
				if line == nil {
					break
				}
				if err := addChanged(id); err != nil {
					return err
				}
				if next < len(changed) && changed[next].id == id {
					continue // its current line, if any, is added with the next
				}
				if err := eb.Add(id, line); err != nil {
					return err
				}
			}
			before := ""
			if i+1 < len(blocks) {
				before = blocks[i+1].First
			}
			if err := addChanged(before); err != nil {
				return err
			}
		}
		return addChanged("")
	})
	if err != nil {
		return content.Manifest{}, 0, false, err
	}
	return m, recut, true, nil
}

// blockAt returns the index of the block whose place in id order holds id:
// the last block whose first id is at most id, or the first block.
func blockAt(blocks []content.BlockRef, id string) int {
	i := sort.Search(len(blocks), func(i int) bool { return blocks[i].First > id })
	return max(i-1, 0)
}

// changedSince returns, in id order, the ids of the changes after seq up
// to last that may concern view f: those whose types are the view's, and
// any other that falls inside a block of the last version (blocks) (its
// types may have left the view). ok is false when the feed no longer
// holds every one of those changes.
func (s *Service) changedSince(ctx context.Context, f *viewFilter, seq, last uint64, blocks []content.BlockRef) (ids []string, ok bool, err error) {
	seen := map[string]bool{}
	for from := seq + 1; from <= last; {
		batch, err := s.o.NGSILD.Changes(ctx, from, 1024)
		if err != nil {
			return nil, false, err
		}
		if len(batch) == 0 || batch[0].Seq != from {
			return nil, false, nil // trimmed
		}
		for _, c := range batch {
			if c.Seq > last {
				break
			}
			from = c.Seq + 1
			if seen[c.ID] {
				continue
			}
			if f.match(c.Types, nil) || inBlock(blocks, c.ID) {
				seen[c.ID] = true
				ids = append(ids, c.ID)
			}
		}
		if batch[len(batch)-1].Seq >= last {
			break
		}
	}
	slices.Sort(ids)
	return ids, true, nil
}

// inBlock reports whether id falls within the first and last id of one of
// blocks.
func inBlock(blocks []content.BlockRef, id string) bool {
	r := blocks[blockAt(blocks, id)]
	return r.First <= id && id <= r.Last
}

// currentLines reads the current state of the entities ids (sorted) on
// every core and returns each with its line in view f, or a nil line for
// one gone, out of the view, or not servable.
func (s *Service) currentLines(ctx context.Context, f *viewFilter, ids []string) ([]changedLine, error) {
	out := make([]changedLine, len(ids))
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ids); i += workers {
				if errs[w] = ctx.Err(); errs[w] != nil {
					return
				}
				out[i].id = ids[i]
				e, err := s.o.NGSILD.Entity(ids[i])
				if err != nil {
					errs[w] = fmt.Errorf("reading entity %s: %w", ids[i], err)
					return
				}
				if e == nil || !f.match(e.Types, e) {
					continue
				}
				if out[i].line, err = canonicalEntity(e); err != nil {
					errs[w] = fmt.Errorf("encoding entity %s: %w", ids[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	keep, err := s.servable(len(out), func(i int) string { return out[i].id })
	if err != nil {
		return nil, err
	}
	for i := range out {
		if !keep[i] {
			out[i].line = nil
		}
	}
	return out, nil
}
