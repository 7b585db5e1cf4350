package content

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Block sizes. Blocks aim at TargetBlockSize; no block is larger than
// MaxBlockSize (one transfer frame, protocol.MaxTransferFrame, carries a
// block plus its header), and none but the last is smaller than
// MinBlockSize unless MaxBlockSize forced it.
const (
	MinBlockSize    = 64 << 10
	TargetBlockSize = 256 << 10
	MaxBlockSize    = 1 << 20
)

// Sentinel errors.
var (
	// ErrBlockMismatch means a block's bytes do not hash to the CID it was
	// fetched as: it was corrupted or substituted on the way.
	ErrBlockMismatch = errors.New("content: block does not match its CID")

	// ErrUnsupportedCID means a CID is not a CIDv1 with the codec and hash
	// this package uses (raw/sha2-256 for blocks, dag-json/sha2-256 for
	// manifests); it cannot name a block of a version.
	ErrUnsupportedCID = errors.New("content: unsupported CID")

	// ErrMalformedManifest means manifest bytes are not a well-formed,
	// canonical manifest (DecodeManifest).
	ErrMalformedManifest = errors.New("content: malformed manifest")

	// ErrInput means the caller handed the builder something it cannot cut
	// into blocks: entities out of id order, an entity larger than a block,
	// an entity that is not single-line JSON.
	ErrInput = errors.New("content: bad input")
)

// Block is one content-addressed block of a version.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// BlockCID names data as a block: CIDv1, raw codec, SHA2-256.
func BlockCID(data []byte) cid.Cid {
	return sum(cid.Raw, data)
}

func sum(codec uint64, data []byte) cid.Cid {
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		// SHA2-256 is always registered; failing here is a build defect.
		panic(fmt.Sprintf("content: sha2-256 multihash: %v", err))
	}
	return cid.NewCidV1(codec, h)
}

// checkCID makes sure c is a CIDv1 with the given codec over SHA2-256.
func checkCID(c cid.Cid, codec uint64) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrUnsupportedCID)
	}
	p := c.Prefix()
	if p.Version != 1 || p.Codec != codec || p.MhType != multihash.SHA2_256 || p.MhLength != 32 {
		return fmt.Errorf("%w: %s (want CIDv1, codec 0x%x, sha2-256)", ErrUnsupportedCID, c, codec)
	}
	return nil
}

// VerifyBlock checks that data is the block c names. A consumer calls it on
// every block it receives, before storing or using it.
func VerifyBlock(c cid.Cid, data []byte) error {
	if err := checkCID(c, cid.Raw); err != nil {
		return fmt.Errorf("verifying block: %w", err)
	}
	if got := BlockCID(data); !got.Equals(c) {
		return fmt.Errorf("verifying block %s (%d bytes): %w: the bytes hash to %s", c, len(data), ErrBlockMismatch, got)
	}
	return nil
}
