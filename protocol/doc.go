// Package protocol defines the wire framing, message types and protocol IDs
// that mimnode nodes speak to each other. It does no I/O of its own beyond
// reading and writing frames on a given io.Reader/io.Writer.
package protocol
