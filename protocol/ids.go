package protocol

// Stream protocol IDs. They are plain strings so that this package needs no
// libp2p import; the driver converts them to libp2p's protocol.ID. The major
// version is part of the ID: an incompatible wire change gets a new ID and
// both are served side by side while federations upgrade.
const (
	// CatalogProtocol carries catalogue requests, dataset requests and
	// "changes since sequence N" between federation members.
	CatalogProtocol = "/mim/catalog/1.0.0"
	// NegotiationProtocol carries contract-negotiation messages (package
	// negotiation).
	NegotiationProtocol = "/mim/negotiation/1.0.0"
	// NegotiationConversationProtocol carries the same messages as
	// NegotiationProtocol, but a stream stays open for the whole exchange
	// a message starts: its answer, the messages it leads the receiver to
	// send back, their answers, and so on (docs/protocol.md 6.8). Nodes
	// serve both; a sender uses it with peers that announce it.
	NegotiationConversationProtocol = "/mim/negotiation/1.1.0"
	// TransferProtocol carries transfer-process messages, manifests and
	// blocks (package transfer).
	TransferProtocol = "/mim/transfer/1.0.0"
)

// Size caps for one frame, per protocol. A peer that announces a longer frame
// gets ErrFrameTooLarge before any of the body is read, so a hostile length
// prefix never makes the node allocate.
const (
	// MaxFrameSize is the absolute ceiling: WriteFrame refuses anything
	// larger, whatever protocol it is used for.
	MaxFrameSize = 8 << 20
	// MaxNegotiationFrame bounds one negotiation message. ODRL policies and
	// signed agreements are a few KiB; 256 KiB leaves room for large
	// constraint lists without letting a peer waste memory.
	MaxNegotiationFrame = 256 << 10
	// MaxCatalogFrame bounds one catalogue response page.
	MaxCatalogFrame = 4 << 20
	// MaxTransferFrame bounds one transfer frame: a block of up to 1 MiB
	// plus its header, or a manifest page.
	MaxTransferFrame = 2 << 20
)
