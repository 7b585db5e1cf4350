// Package protocol defines what mimnode nodes put on the wire to each other:
// the stream protocol IDs, the framing, the Dataspace Protocol (DSP) message
// types and the one table of protocol error codes. It does no I/O of its own
// beyond reading and writing frames on an io.Reader/io.Writer it is given,
// reads no clock and starts no goroutines; libp2p, badger and node are
// never imported (TestNoForbiddenImports checks it).
//
// # Framing
//
// Every message on a stream is one frame: an unsigned varint length prefix
// (LEB128, minimal encoding, at most 9 bytes) followed by that many bytes of
// body. A driver reads a frame under a deadline with a cap that fits the
// protocol:
//
//	br := bufio.NewReader(stream)                       // once per stream
//	stream.SetReadDeadline(now.Add(5 * time.Second))  // docs/protocol.md 1.2
//	body, err := protocol.ReadFrame(br, protocol.MaxNegotiationFrame)
//	if err != nil { stream.Reset(); return }             // ErrFrameTooLarge, ErrMalformedFrame, ...
//
// ReadFrame never reads past the frame it returns: given a plain io.Reader
// it reads the prefix one byte at a time; given an io.ByteReader (such as a
// bufio.Reader, which the driver then keeps using) it calls ReadByte.
//
// # Messages
//
// Bodies are DSP 2025-1 messages in JSON-LD compacted against Context
// ("@context": ["https://w3id.org/dspace/2025/1/context.jsonld"]). Decode
// turns a body into one of the message types (*ContractRequestMessage,
// *TransferStartMessage, ...), checking what the DSP JSON Schema of that
// type requires; Encode does the reverse and fills in @context and @type:
//
//	m, err := protocol.Decode(body)
//	if err != nil {
//		reply := protocol.NegotiationErrorFor(nil, err)    // code MIM-400
//		b, _ := protocol.Encode(reply)
//		protocol.WriteFrame(stream, b)
//		return
//	}
//
// Policies (offers, agreements) are carried as json.RawMessage: their
// meaning belongs to package policy.
//
// # Errors
//
// Every error a node sends to a peer carries a Code from one table (Codes,
// Lookup). State machines return *Error, which names the code and reasons;
// NegotiationErrorFor and TransferErrorFor turn any error into the answer
// message. docs/protocol.md is the full wire specification.
package protocol
