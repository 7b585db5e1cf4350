package content

import (
	"crypto/sha256"
	"encoding/binary"
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
	// this package uses (raw with BLAKE3-256, or SHA2-256 from before, for
	// blocks; dag-json/sha2-256 for manifests); it cannot name a block of
	// a version.
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

// BlockCID names data as a block: CIDv1, raw codec, BLAKE3-256 (multihash
// 0x1e, 32 bytes). Blocks built before were named with SHA2-256; they
// still verify (VerifyBlock follows the hash each CID names), and a
// manifest listing only such blocks keeps its format (ManifestFormat).
// BLAKE3 costs under half the CPU of SHA2-256 (with SHA-NI) per byte
// here, which a consumer pays on every block it receives (BenchmarkBlockHash).
func BlockCID(data []byte) cid.Cid {
	return blockCID(multihash.BLAKE3, data)
}

// blockCID names data as a block with the given hash.
func blockCID(code uint64, data []byte) cid.Cid {
	return rawCID(code, blockSum(code, data))
}

// rawCID is the block CID of a digest by hash code.
func rawCID(code uint64, d [32]byte) cid.Cid {
	return cid.NewCidV1(cid.Raw, multihash.Multihash(append(multihashHead(code), d[:]...)))
}

// blockSum is the 32-byte digest of data by hash code, one of
// blockHashes.
func blockSum(code uint64, data []byte) [32]byte {
	if code == multihash.BLAKE3 {
		return blake3Sum256(data)
	}
	return sha256.Sum256(data)
}

// multihashHead is a 32-byte multihash's prefix: its code and length,
// uvarints.
func multihashHead(code uint64) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(make([]byte, 0, 36), code), 32)
}

// sum names data as CIDv1 with codec over SHA2-256 (manifests).
func sum(codec uint64, data []byte) cid.Cid {
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		// SHA2-256 is always registered; failing here is a build defect.
		panic(fmt.Sprintf("content: sha2-256 multihash: %v", err))
	}
	return cid.NewCidV1(codec, h)
}

// checkCID makes sure c is a CIDv1 with the given codec over SHA2-256 or,
// for a block (raw codec), BLAKE3-256.
func checkCID(c cid.Cid, codec uint64) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined CID", ErrUnsupportedCID)
	}
	p := c.Prefix()
	hashOK := p.MhType == multihash.SHA2_256 || codec == cid.Raw && p.MhType == multihash.BLAKE3
	if p.Version != 1 || p.Codec != codec || !hashOK || p.MhLength != 32 {
		want := "sha2-256"
		if codec == cid.Raw {
			want = "blake3 or sha2-256"
		}
		return fmt.Errorf("%w: %s (want CIDv1, codec 0x%x, %s)", ErrUnsupportedCID, c, codec, want)
	}
	return nil
}

// VerifyBlock checks that data is the block c names, by the hash c names.
// A consumer calls it on every block it receives, before storing or using
// it.
func VerifyBlock(c cid.Cid, data []byte) error {
	if err := checkCID(c, cid.Raw); err != nil {
		return fmt.Errorf("verifying block: %w", err)
	}
	code := c.Prefix().MhType
	d := blockSum(code, data)
	// c is CIDv1 (one byte), raw (one byte), then the multihash, whose
	// last 32 bytes are the digest.
	if k := c.KeyString(); k[len(k)-32:] != string(d[:]) {
		return fmt.Errorf("verifying block %s (%d bytes): %w: the bytes hash to %s", c, len(data), ErrBlockMismatch, rawCID(code, d))
	}
	return nil
}
