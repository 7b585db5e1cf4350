package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/mimnode/mimnode/protocol"
)

// Data requests travel on /mim/transfer/1.0.0 next to the DSP messages:
// the first frame of a stream is either a DSP transfer message (package
// protocol) or one of these, told apart by an "@type" starting with "mim:".
const (
	TypeManifestRequest = "mim:ManifestRequest" // answer: the manifest bytes
	TypeBlockRequest    = "mim:BlockRequest"    // answer: one frame per block, in order
	TypeReceiptRequest  = "mim:ReceiptRequest"  // answer: the provider's signed receipt
	TypeAcknowledgement = "mim:Acknowledgement" // answer: empty data frame
	TypeLiveRequest     = "mim:LiveRequest"     // answer: changes as they happen
	// TypeRevocation goes the other way, from an agreement's provider to
	// its consumer, outside any transfer: the provider revoked the
	// agreement (Agreement, Reasons). Answer: empty data frame.
	TypeRevocation = "mim:Revocation"
)

// MaxBlocksPerRequest bounds the CIDs of one block request.
const MaxBlocksPerRequest = 256

// EncodingS2 names S2 compression (github.com/klauspost/compress/s2, its
// block format) of block and manifest answers. An NGSI-LD block of entity
// lines shrinks to about a seventeenth in the benchmarks' AirQualityObserved
// data (names are IRIs, and attributes repeat from line to line), for
// about a third of a millisecond of CPU per MiB each way, less than
// encrypting and moving the bytes saved.
const EncodingS2 = "s2"

// maxEncodings bounds the encodings one data request may name.
const maxEncodings = 8

// ErrBadRequest: a data request or answer frame is malformed.
var ErrBadRequest = errors.New("malformed transfer data frame")

// DataRequest is one data request of a consumer under a started transfer.
type DataRequest struct {
	Type        string `json:"@type"`
	ProviderPid string `json:"providerPid"`
	ConsumerPid string `json:"consumerPid"`
	// CIDs: TypeBlockRequest, the blocks wanted.
	CIDs []string `json:"cids,omitempty"`
	// Bases: TypeBlockRequest, optional, one per CID: a block of an
	// earlier version that the consumer holds, received under the same
	// agreement ("" for none). The provider may then answer with a line
	// delta against it (statusDelta) instead of the whole block.
	Bases []string `json:"bases,omitempty"`
	// Encodings: TypeBlockRequest and TypeManifestRequest, optional: the
	// encodings the consumer reads besides plain bytes (EncodingS2). The
	// provider may then send a block, delta or manifest compressed
	// (statusS2, statusS2Delta). Names it does not know are ignored, so
	// either end may be older.
	Encodings []string `json:"encodings,omitempty"`
	// Usage: TypeReceiptRequest, what the consumer counted.
	Usage *Usage `json:"usage,omitempty"`
	// Ack: TypeAcknowledgement, the consumer's signed acknowledgement.
	Ack *Signed `json:"ack,omitempty"`
	// From: TypeLiveRequest, the first change sequence number wanted.
	From uint64 `json:"from,omitempty"`
	// Agreement and Reasons: TypeRevocation, the revoked agreement and
	// what its provider says of it.
	Agreement string   `json:"agreement,omitempty"`
	Reasons   []string `json:"reasons,omitempty"`
}

// maxRevocationReasons bounds the reasons of a revocation notice.
const maxRevocationReasons = 4

// dataFrameType returns the @type of a first frame that is a data
// request rather than a DSP message, and whether it is one.
func dataFrameType(body []byte) (string, bool) {
	var h struct {
		Type string `json:"@type"`
	}
	if json.Unmarshal(body, &h) != nil {
		return "", false
	}
	return h.Type, strings.HasPrefix(h.Type, "mim:")
}

// DecodeDataRequest reads and checks one data request frame body.
func DecodeDataRequest(body []byte) (*DataRequest, error) {
	var r DataRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if r.Type == TypeRevocation {
		if r.Agreement == "" || len(r.Reasons) > maxRevocationReasons {
			return nil, fmt.Errorf("%w: a revocation names its agreement, with at most %d reasons", ErrBadRequest, maxRevocationReasons)
		}
		return &r, nil
	}
	if r.ProviderPid == "" || r.ConsumerPid == "" {
		return nil, fmt.Errorf("%w: providerPid and consumerPid are required", ErrBadRequest)
	}
	if len(r.Encodings) > maxEncodings {
		return nil, fmt.Errorf("%w: %d encodings, want at most %d", ErrBadRequest, len(r.Encodings), maxEncodings)
	}
	switch r.Type {
	case TypeManifestRequest, TypeLiveRequest:
	case TypeBlockRequest:
		if len(r.CIDs) == 0 || len(r.CIDs) > MaxBlocksPerRequest {
			return nil, fmt.Errorf("%w: %d cids, want 1..%d", ErrBadRequest, len(r.CIDs), MaxBlocksPerRequest)
		}
		for _, c := range r.CIDs {
			if _, err := cid.Decode(c); err != nil {
				return nil, fmt.Errorf("%w: cid %q: %v", ErrBadRequest, c, err)
			}
		}
		if len(r.Bases) != 0 && len(r.Bases) != len(r.CIDs) {
			return nil, fmt.Errorf("%w: %d bases for %d cids, want one each or none", ErrBadRequest, len(r.Bases), len(r.CIDs))
		}
		for _, c := range r.Bases {
			if _, err := cid.Decode(c); c != "" && err != nil {
				return nil, fmt.Errorf("%w: base %q: %v", ErrBadRequest, c, err)
			}
		}
	case TypeReceiptRequest:
		if r.Usage == nil {
			return nil, fmt.Errorf("%w: usage is required", ErrBadRequest)
		}
	case TypeAcknowledgement:
		if r.Ack == nil {
			return nil, fmt.Errorf("%w: ack is required", ErrBadRequest)
		}
	default:
		return nil, fmt.Errorf("%w: unknown @type %q", ErrBadRequest, r.Type)
	}
	return &r, nil
}

// Answer frames to data requests start with one status byte.
const (
	statusData  = 0 // the rest is the payload
	statusError = 1 // the rest is a JSON wireError
	statusDelta = 2 // block answers only: the rest is a content.LineDelta against the base asked for
	// Answers to a block or manifest request naming EncodingS2 only: the
	// rest is an S2 block holding what statusData or (blocks only)
	// statusDelta would carry.
	statusS2      = 3
	statusS2Delta = 4
)

// blockAnswer is what a block answer frame carries.
type blockAnswer struct {
	payload []byte
	delta   bool // a content.LineDelta against the base asked for
	s2      bool // payload is S2-compressed
}

type wireError struct {
	Code   protocol.Code `json:"code"`
	Reason []string      `json:"reason"`
}

func dataFrame(payload []byte) []byte {
	out := make([]byte, 1+len(payload))
	out[0] = statusData
	copy(out[1:], payload)
	return out
}

func errorFrame(code protocol.Code, reasons ...string) []byte {
	b, _ := json.Marshal(wireError{Code: code, Reason: reasons})
	return append([]byte{statusError}, b...)
}

// DecodeAnswer splits an answer frame into its payload, or the refusal it
// carries (a *RefusedError).
func DecodeAnswer(frame []byte) ([]byte, error) {
	a, err := decodeBlockAnswer(frame)
	if err == nil && (a.delta || a.s2) {
		return nil, errBlockOnlyStatus
	}
	return a.payload, err
}

var errBlockOnlyStatus = fmt.Errorf("%w: a delta answers only a block request, compressed data only a block or manifest request", ErrBadRequest)

// decodeBlockAnswer is DecodeAnswer for block requests, whose answers may
// also be deltas, and compressed.
func decodeBlockAnswer(frame []byte) (blockAnswer, error) {
	if len(frame) == 0 {
		return blockAnswer{}, fmt.Errorf("%w: empty answer frame", ErrBadRequest)
	}
	p := frame[1:]
	switch frame[0] {
	case statusData:
		return blockAnswer{payload: p}, nil
	case statusDelta:
		return blockAnswer{payload: p, delta: true}, nil
	case statusS2:
		return blockAnswer{payload: p, s2: true}, nil
	case statusS2Delta:
		return blockAnswer{payload: p, delta: true, s2: true}, nil
	case statusError:
		var e wireError
		if err := json.Unmarshal(p, &e); err != nil || e.Code == "" {
			return blockAnswer{}, fmt.Errorf("%w: error answer is not {code, reason}", ErrBadRequest)
		}
		return blockAnswer{}, &RefusedError{Code: e.Code, Reasons: e.Reason}
	}
	return blockAnswer{}, fmt.Errorf("%w: status byte %d", ErrBadRequest, frame[0])
}
