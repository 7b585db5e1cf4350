package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
)

// EntityBuilder cuts a sequence of NGSI-LD entities into blocks.
//
// Entities come in strictly increasing id order (byte order, as the node's
// store iterates them), each as single-line canonical JSON. A block holds
// consecutive entities, one per line. Where a block ends depends only on
// the entities themselves, never on their position: after an entity whose
// id hash falls below a threshold proportional to its size (so blocks
// average TargetBlockSize whatever the entity size), provided the block has
// reached MinBlockSize; and before an entity that would push it past
// MaxBlockSize. So changing one entity rewrites one block (two, rarely,
// when its new size moves a boundary), and inserting or deleting one
// changes the block it lands in and at most a block or two after it until
// the boundaries fall in step again.
type EntityBuilder struct {
	emit func(Block) error

	cur         bytes.Buffer
	first, last string
	count       int64
	prev        string
	started     bool
	m           Manifest
	err         error
}

// MaxEntitySize bounds one entity's JSON; a larger entity could not fit in
// a block.
const MaxEntitySize = MaxBlockSize - 1

// NewEntityBuilder returns a builder that hands every finished block to
// emit (the node stores it); emit's error stops the build.
func NewEntityBuilder(emit func(Block) error) *EntityBuilder {
	return &EntityBuilder{emit: emit, m: Manifest{Kind: KindEntities}}
}

// boundarySpan is the average number of bytes past MinBlockSize before an
// entity ends a block: an entity of n bytes ends one with probability
// n / boundarySpan once the block has MinBlockSize bytes, so blocks average
// about TargetBlockSize.
const boundarySpan = TargetBlockSize - MinBlockSize

// isBoundary decides from the id's hash alone (integer arithmetic, the same
// on every platform) whether an entity of size bytes ends a block.
func isBoundary(id string, size int) bool {
	if size >= boundarySpan {
		return true
	}
	h := sha256.Sum256([]byte(id))
	u := binary.BigEndian.Uint64(h[:8])
	return u < uint64(size)*(math.MaxUint64/boundarySpan)
}

// Add appends one entity. id is the entity's id; entity its canonical JSON
// (one line: no newline byte).
func (b *EntityBuilder) Add(id string, entity []byte) error {
	if b.err != nil {
		return b.err
	}
	switch {
	case id == "":
		return fmt.Errorf("adding entity: %w: empty id", ErrInput)
	case b.started && id <= b.prev:
		return fmt.Errorf("adding entity %q: %w: ids must be strictly increasing (after %q)", id, ErrInput, b.prev)
	case len(entity) == 0 || len(entity) > MaxEntitySize:
		return fmt.Errorf("adding entity %q: %w: %d bytes, want 1..%d", id, ErrInput, len(entity), MaxEntitySize)
	case bytes.IndexByte(entity, '\n') >= 0:
		return fmt.Errorf("adding entity %q: %w: entity JSON contains a newline; give it compact", id, ErrInput)
	}
	b.prev, b.started = id, true
	line := len(entity) + 1
	if b.cur.Len() > 0 && b.cur.Len()+line > MaxBlockSize {
		if err := b.flush(); err != nil {
			return err
		}
	}
	if b.count == 0 {
		b.first = id
	}
	b.last = id
	b.count++
	b.cur.Write(entity)
	b.cur.WriteByte('\n')
	if b.cur.Len() >= MinBlockSize && isBoundary(id, line) {
		return b.flush()
	}
	return nil
}

// Pending reports whether entities were added since the last block
// ended: a block is being filled, and AddBlock cannot be called.
func (b *EntityBuilder) Pending() bool { return b.cur.Len() > 0 }

// AddBlock appends a block an earlier build made, without its bytes: the
// caller vouches that the entities it holds come next in this build too,
// unchanged, and that the entity after its last is unchanged as well
// (a block can end because that one did not fit). A build that reaches
// a block's start with nothing pending would cut the same entities the
// same way (where a block ends depends only on its own entities and the
// next one), so the block, its CID and the manifest come out as a full
// build would make them. The block is not emitted: its holder has it.
func (b *EntityBuilder) AddBlock(ref BlockRef) error {
	if b.err != nil {
		return b.err
	}
	switch {
	case b.Pending():
		return fmt.Errorf("adding block %s: %w: a block is being filled", ref.CID, ErrInput)
	case ref.Count <= 0 || ref.First == "" || ref.Last < ref.First || ref.Size <= 0:
		return fmt.Errorf("adding block %s: %w: not a block of entities", ref.CID, ErrInput)
	case b.started && ref.First <= b.prev:
		return fmt.Errorf("adding block %s: %w: ids must be strictly increasing (%q after %q)", ref.CID, ErrInput, ref.First, b.prev)
	}
	b.prev, b.started = ref.Last, true
	b.m.Blocks = append(b.m.Blocks, ref)
	b.m.Size += ref.Size
	return nil
}

func (b *EntityBuilder) flush() error {
	if b.cur.Len() == 0 {
		return nil
	}
	data := bytes.Clone(b.cur.Bytes())
	c := BlockCID(data)
	b.m.Blocks = append(b.m.Blocks, BlockRef{CID: c, Size: int64(len(data)), Count: b.count, First: b.first, Last: b.last})
	b.m.Size += int64(len(data))
	b.cur.Reset()
	b.count = 0
	if err := b.emit(Block{CID: c, Data: data}); err != nil {
		b.err = fmt.Errorf("storing block %s: %w", c, err)
		return b.err
	}
	return nil
}

// Finish emits the last block and returns the manifest. The builder cannot
// be used afterwards.
func (b *EntityBuilder) Finish() (Manifest, error) {
	if b.err != nil {
		return Manifest{}, b.err
	}
	if err := b.flush(); err != nil {
		return Manifest{}, err
	}
	b.err = fmt.Errorf("%w: builder already finished", ErrInput)
	return b.m, nil
}
