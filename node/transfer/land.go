package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/internal/ordered"
	"github.com/mimnode/mimnode/node/ngsild"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
)

// Landing puts a version's entities into the consumer's entity store.
//
// The first version under an agreement lands every entity. A later one
// lands only what changed since the version landed last under the same
// agreement: a block both versions share holds the same entities, so only
// the blocks new to this version are read, each entity in them is compared
// with the same id's line in the blocks the previous version had and this
// one has not (both runs are in id order, so one merge finds them), and
// only new or changed entities are written; ids that were in the previous
// version and are not in this one are deleted. The consumer's copy of
// unchanged entities is left as it is.
//
// Entities are decoded on every core, in chunks of landBatch, and written
// with ngsild.Service.Land (no schema validation: the provider validated
// them, and each block matched the agreed version's CID), each chunk with
// its provenance.

// landBatch is how many entities one ngsild.Land writes.
const landBatch = 1000

// landEntities lands the entities of m (a KindEntities manifest whose
// blocks are all stored) and records version as landed under a. It
// returns how many entities it wrote and deleted, and how many it refused
// to write because their ids are not the dataset's to write here
// (ownership) or their types are not the dataset's (declared.go).
//
// With full, every entity of m is written, changed or not: a received
// entity changed or deleted on this node since is put back as the
// version has it. Ids that left the dataset are deleted as always.
func (s *Service) landEntities(ctx context.Context, a policy.Agreement, version string, m content.Manifest, full bool, progress func(int64)) (written, refused int64, err error) {
	prov := provenanceFor(a, version)
	dt := s.declaredFor(a)
	// The last landing left entities out under another description of
	// the dataset: this one lands them all (declared.go).
	if was, err := s.getBytes(misfitKey(a.ID)); err == nil && string(was) != dt.signature() {
		full = true
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, 0, err
	}
	fresh, gone, kept, err := s.landDiff(a.ID, m)
	if err != nil {
		return 0, 0, err
	}
	var deletes []string
	drop := func(id string) { deletes = append(deletes, id) }
	lines := func(emit func([]byte) error) error { return s.changedLines(fresh, gone, emit, drop) }
	if full {
		// The ids that left are what the usual merge drops; then every
		// line of m lands, compared with nothing.
		if err := s.changedLines(fresh, gone, func([]byte) error { return nil }, drop); err != nil {
			return 0, 0, err
		}
		kept = 0
		lines = func(emit func([]byte) error) error { return s.changedLines(m.Blocks, nil, emit, nil) }
	}
	n := kept
	progress(n)
	var lastID string
	var misfits int64
	err = ordered.Map(ctx, landBatch, lines, func(lines [][]byte) ([]*ngsild.Entity, error) {
		ents := make([]*ngsild.Entity, len(lines))
		for i, line := range lines {
			ents[i] = new(ngsild.Entity)
			if err := ngsild.DecodeLine(line, ents[i]); err != nil {
				return nil, fmt.Errorf("decoding a received entity: %w", err)
			}
		}
		return ents, nil
	}, func(ents []*ngsild.Entity) error {
		if err := inOrder(ents, &lastID); err != nil {
			return err
		}
		all := len(ents)
		ents, left := dt.split(ents)
		s.noteMisfits(a, left)
		misfits += int64(len(left))
		r, err := s.landChunk(ctx, ents, a, prov)
		if err != nil {
			return err
		}
		written += int64(len(ents)) - r
		refused += r
		n += int64(all)
		progress(n)
		return nil
	})
	if err != nil {
		return written, refused, err
	}
	deleted, err := s.deleteLanded(ctx, a, deletes)
	if err != nil {
		return written, refused, err
	}
	// What was left out stays recorded until a landing that read every
	// entity of its version (full) leaves none out: one that read only
	// the changed blocks did not look at those left out before.
	if err := s.o.Store.Update(func(tx *store.Txn) error {
		switch {
		case misfits > 0:
			if err := tx.Set(misfitKey(a.ID), []byte(dt.signature())); err != nil {
				return err
			}
		case full || len(gone) == 0 && kept == 0:
			if err := tx.Delete(misfitKey(a.ID)); err != nil {
				return err
			}
		}
		return tx.Set(landedKey(a.ID), []byte(version))
	}); err != nil {
		return written, refused + misfits, fmt.Errorf("recording the landed version: %w", err)
	}
	return written + deleted, refused + misfits, nil
}

// landChunk writes entities and their provenance, and returns how many
// it left out because their ids are not this dataset's to write
// (ownership). The provenance is committed first, without a sync: Land's
// own sync, which covers every write committed before it, makes both
// durable at once (one sync per chunk, not two), and a crash of the
// machine can leave provenance without its entity (the id is then served
// as received, not as local: the cautious side) but not an entity without
// its provenance, which this node would serve as its own. A chunk in
// which Land writes nothing is made durable by the synced write of the
// landed version at the end.
//
// The chunk's entities share one provenance record (sharedProvenance),
// written again with each chunk (the same key and bytes) so that it is in
// the same durable write as the entities that point at it.
func (s *Service) landChunk(ctx context.Context, ents []*ngsild.Entity, a policy.Agreement, prov []byte) (int64, error) {
	// From the ownership check to the landing, no other landing may
	// write these ids (two datasets holding one id, fetched at once).
	s.landMu.Lock()
	defer s.landMu.Unlock()
	owned, fresh, refused, err := s.ownership(a, ents)
	if err != nil {
		return 0, err
	}
	if len(owned)+len(fresh) == 0 {
		s.noteRefused(a, refused)
		return int64(len(refused)), nil
	}
	wb := s.o.Store.NewBatch()
	defer wb.Cancel()
	key, ref := sharedProvenance(prov)
	if err := wb.Set(key, prov); err != nil {
		return 0, err
	}
	for _, group := range [][]*ngsild.Entity{owned, fresh} {
		for _, e := range group {
			if err := wb.Set(provenanceKey(e.ID), ref); err != nil {
				return 0, err
			}
		}
	}
	if err := s.provenanceWrite(wb.FlushNoSync); err != nil {
		return 0, fmt.Errorf("storing provenance: %w", err)
	}
	// Land owns the entities from here on: their ids are kept apart.
	ownedIDs, freshIDs := entityIDs(owned), entityIDs(fresh)
	if len(owned) > 0 {
		errs, err := s.o.NGSILD.Land(ctx, owned)
		if err != nil {
			return 0, fmt.Errorf("landing entities: %w", err)
		}
		for i, id := range ownedIDs {
			if errs[i] != nil {
				return 0, fmt.Errorf("landing entity %s: %w", id, errs[i])
			}
		}
	}
	if len(fresh) > 0 {
		errs, err := s.o.NGSILD.LandNew(ctx, fresh)
		if err != nil {
			return 0, fmt.Errorf("landing entities: %w", err)
		}
		// An id not created keeps no provenance of ours: one created
		// here meanwhile is this node's, and one the store refused would
		// otherwise pass as ours when this node later creates it.
		var raced, failed []string
		var firstErr error
		for i, id := range freshIDs {
			var ne *ngsild.Error
			switch {
			case errs[i] == nil:
			case errors.As(errs[i], &ne) && ne.Type == ngsild.AlreadyExists:
				raced = append(raced, id)
			default:
				failed = append(failed, id)
				if firstErr == nil {
					firstErr = fmt.Errorf("landing entity %s: %w", id, errs[i])
				}
			}
		}
		if err := s.dropProvenance(append(slices.Clone(raced), failed...)); err != nil {
			return 0, err
		}
		if firstErr != nil {
			return 0, firstErr
		}
		refused = append(refused, raced...)
	}
	s.noteRefused(a, refused)
	return int64(len(refused)), nil
}

// inOrder checks that ents continue a landing in strictly increasing id
// order after *last, as a version lists its entities (content.EntityBuilder),
// and moves *last on. A version that repeats an id is not landed: within
// one chunk, the second copy would fail as created here by someone else,
// and the first would lose its provenance with it.
func inOrder(ents []*ngsild.Entity, last *string) error {
	for _, e := range ents {
		if e.ID <= *last {
			return fmt.Errorf("the received version lists entity %s out of order or twice: %w", e.ID, ErrBadRequest)
		}
		*last = e.ID
	}
	return nil
}

func entityIDs(ents []*ngsild.Entity) []string {
	ids := make([]string, len(ents))
	for i, e := range ents {
		ids[i] = e.ID
	}
	return ids
}

// ownership sorts received entities by whether agreement a may write
// them. An id this node received before from the same provider and
// dataset (under a or an earlier agreement) is owned: it is replaced. An
// id it has no provenance for and does not hold is fresh: it is created.
// Any other id is refused and left as it is: an entity of this node's own
// (two agencies may use one id), or one received from another provider
// or dataset. A provider cannot overwrite, relabel or delete what it did
// not send.
func (s *Service) ownership(a policy.Agreement, ents []*ngsild.Entity) (owned, fresh []*ngsild.Entity, refused []string, err error) {
	const (
		unknown = iota
		mine
		theirs
	)
	whose := make([]int8, len(ents))
	err = s.eachProvenance(len(ents), func(i int) string { return ents[i].ID }, func(i int, p Provenance) error {
		whose[i] = theirs
		if sameSource(p, a) {
			whose[i] = mine
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	var rest []*ngsild.Entity
	for i, e := range ents {
		switch whose[i] {
		case mine:
			owned = append(owned, e)
		case theirs:
			refused = append(refused, e.ID)
		default:
			rest = append(rest, e)
		}
	}
	if len(rest) == 0 {
		return owned, nil, refused, nil
	}
	held, err := s.o.NGSILD.Held(entityIDs(rest))
	if err != nil {
		return nil, nil, nil, err
	}
	for i, e := range rest {
		if held[i] {
			refused = append(refused, e.ID)
		} else {
			fresh = append(fresh, e)
		}
	}
	return owned, fresh, refused, nil
}

// sameSource reports whether provenance p came from a's provider and
// dataset.
func sameSource(p Provenance, a policy.Agreement) bool {
	return p.Provider == a.Provider && p.Dataset == a.Dataset
}

// dropProvenance deletes the provenance records of ids.
func (s *Service) dropProvenance(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	wb := s.o.Store.NewBatch()
	for _, id := range ids {
		if err := wb.Delete(provenanceKey(id)); err != nil {
			wb.Cancel()
			return err
		}
	}
	if err := s.provenanceWrite(wb.Flush); err != nil {
		return fmt.Errorf("deleting provenance: %w", err)
	}
	return nil
}

// noteRefused logs entities a provider sent that this node did not land
// (ownership), naming a few.
func (s *Service) noteRefused(a policy.Agreement, ids []string) {
	if len(ids) == 0 {
		return
	}
	s.log.Warn("received entities not landed: this node holds entities with these ids that are its own or came from another provider or dataset, and a transfer never replaces or deletes those",
		"agreement", a.ID, "provider", a.Provider, "dataset", a.Dataset, "count", len(ids), "ids", ids[:min(len(ids), 5)])
}

// provenanceWrite runs write, which writes provenance records, between
// two moves of provEpoch, so that a version build that may have read a
// record before the write sees the epoch moved (rebuild.go).
func (s *Service) provenanceWrite(write func() error) error {
	s.provEpoch.Add(1)
	defer s.provEpoch.Add(1)
	return write()
}

// deleteLanded deletes entities that left the dataset, with their
// provenance, and returns how many it deleted. One already gone from the
// store (deleted locally) is fine; one whose provenance no longer names
// a's provider and dataset is not a's to delete (ownership) and stays.
func (s *Service) deleteLanded(ctx context.Context, a policy.Agreement, ids []string) (int64, error) {
	ids, err := s.ownedIDs(a, ids)
	if err != nil {
		return 0, err
	}
	n := int64(len(ids))
	for len(ids) > 0 {
		batch := ids[:min(len(ids), landBatch)]
		ids = ids[len(batch):]
		errs, err := s.o.NGSILD.Delete(ctx, batch)
		if err != nil {
			return 0, fmt.Errorf("deleting entities that left the dataset: %w", err)
		}
		for i, id := range batch {
			var ne *ngsild.Error
			if errs[i] != nil && !(errors.As(errs[i], &ne) && ne.Type == ngsild.ResourceNotFound) {
				return 0, fmt.Errorf("deleting entity %s that left the dataset: %w", id, errs[i])
			}
		}
		if err := s.dropProvenance(batch); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// ownedIDs returns those of ids whose provenance names a's provider and
// dataset (ownership).
func (s *Service) ownedIDs(a policy.Agreement, ids []string) ([]string, error) {
	var own []string
	err := s.eachProvenance(len(ids), func(i int) string { return ids[i] }, func(i int, p Provenance) error {
		if sameSource(p, a) {
			own = append(own, ids[i])
		}
		return nil
	})
	return own, err
}

// landDiff splits m against the version landed last under agreement:
// fresh are m's blocks that version did not have, gone the blocks it had
// that m has not, kept how many entities the shared blocks hold. With no
// version landed before (or its manifest gone), everything is fresh.
func (s *Service) landDiff(agreement string, m content.Manifest) (fresh, gone []content.BlockRef, kept int64, err error) {
	prev, err := s.getBytes(landedKey(agreement))
	if errors.Is(err, store.ErrNotFound) {
		return m.Blocks, nil, 0, nil
	}
	if err != nil {
		return nil, nil, 0, err
	}
	pm, err := s.manifest(string(prev))
	if err != nil {
		return m.Blocks, nil, 0, nil
	}
	pm = pm.EntitiesPart()
	in := make(map[cid.Cid]bool, len(m.Blocks))
	for _, b := range m.Blocks {
		in[b.CID] = true
	}
	had := make(map[cid.Cid]bool, len(pm.Blocks))
	for _, b := range pm.Blocks {
		had[b.CID] = true
		if !in[b.CID] {
			gone = append(gone, b)
		}
	}
	for _, b := range m.Blocks {
		if had[b.CID] {
			kept += b.Count
		} else {
			fresh = append(fresh, b)
		}
	}
	return fresh, gone, kept, nil
}

// changedLines merges the entities of fresh and gone (each run in id
// order) by id: it calls land with the line of every entity of fresh that
// gone does not hold byte for byte, and drop with every id of gone that
// fresh does not hold.
func (s *Service) changedLines(fresh, gone []content.BlockRef, land func(line []byte) error, drop func(id string)) error {
	next := s.blockLines(fresh)
	old := s.blockLines(gone)
	nl, nid, err := next()
	if err != nil {
		return err
	}
	ol, oid, err := old()
	if err != nil {
		return err
	}
	for nl != nil || ol != nil {
		switch {
		case ol == nil || (nl != nil && nid < oid):
			if err := land(nl); err != nil {
				return err
			}
			if nl, nid, err = next(); err != nil {
				return err
			}
		case nl == nil || oid < nid:
			drop(oid)
			if ol, oid, err = old(); err != nil {
				return err
			}
		default: // same id
			if !bytes.Equal(nl, ol) {
				if err := land(nl); err != nil {
					return err
				}
			}
			if nl, nid, err = next(); err != nil {
				return err
			}
			if ol, oid, err = old(); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockLines returns an iterator over the entity lines of blocks (stored
// on this node), with each line's entity id; it returns a nil line at the
// end.
func (s *Service) blockLines(blocks []content.BlockRef) func() ([]byte, string, error) {
	var rest []byte
	return func() ([]byte, string, error) {
		for len(rest) == 0 {
			if len(blocks) == 0 {
				return nil, "", nil
			}
			data, err := s.heldBlock(blocks[0])
			if err != nil {
				return nil, "", err
			}
			blocks, rest = blocks[1:], data
		}
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		id, err := lineID(line)
		if err != nil {
			return nil, "", err
		}
		return line, id, nil
	}
}

// heldBlock reads a block this node holds and checks it against its CID.
// One that fails is dropped, so that the next fetch fetches it again: a
// block written but not yet synced when the machine crashed may have kept
// its name and lost its bytes (a rename can reach the disk before the
// data), and then reads short or as other bytes; one kept in the database
// by an earlier node may read as an error or, where later writes reused
// its place in the value log, as other bytes (blocks.go).
//
// A block fetched and verified earlier in this same process run is
// checked again too, on purpose. No crash can come between its check and
// this read, but a fault of the disk or a writer outside this node can,
// and landing writes entities without schema validation because each
// block matched the agreed version's CID. The check is cheap next to the
// rest of landing: SHA-256 of 100,000 entities is 0.33-0.38 cpu-s of the
// landing phase's 10.6-13 cpu-s (EndToEndEntities -transfer.phaseprofile),
// run on the goroutine that reads blocks ahead of the decoders.
func (s *Service) heldBlock(ref content.BlockRef) ([]byte, error) {
	c := ref.CID.String()
	data, err := s.getBlock(c)
	if err == nil {
		if err = content.VerifyBlock(ref.CID, data); err == nil {
			return data, nil
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if derr := s.dropBlock(c); derr != nil {
		return nil, fmt.Errorf("dropping unreadable block %s: %w (reading it: %w)", ref.CID, derr, err)
	}
	s.log.Warn("held block unreadable; dropped it, a new fetch fetches it again", "cid", ref.CID, "err", err)
	return nil, fmt.Errorf("held block %s was unreadable and is dropped, fetch again: %w: %w", ref.CID, ErrCorruptBlock, err)
}

// lineID reads the id of an entity line. Canonical entity JSON starts with
// its id member ({"id":"...), so the common case is a scan to the closing
// quote; an id with escapes is decoded properly.
func lineID(line []byte) (string, error) {
	const pre = `{"id":"`
	if bytes.HasPrefix(line, []byte(pre)) {
		rest := line[len(pre):]
		if i := bytes.IndexAny(rest, "\"\\"); i >= 0 && rest[i] == '"' {
			return string(rest[:i]), nil
		}
	}
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(line, &e); err != nil || e.ID == "" {
		return "", fmt.Errorf("%w: a block line is not an entity with an id", ErrBadRequest)
	}
	return e.ID, nil
}
