package catalog

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with %w and say what they were doing;
// test with errors.Is.
var (
	// ErrInvalidDataset means a dataset description breaks a rule: a required
	// field missing, a value out of range, an unknown field. The error is a
	// *FieldError (errors.As) naming the field.
	ErrInvalidDataset = errors.New("catalog: invalid dataset description")

	// ErrUnknownDataset means the catalogue has no dataset with that id.
	ErrUnknownDataset = errors.New("catalog: unknown dataset")

	// ErrRetired means the dataset was retired; it cannot be updated again
	// under the same id.
	ErrRetired = errors.New("catalog: dataset is retired")

	// ErrBadSignature means a catalogue record's signature is missing, does
	// not verify, or was not made by the record's publisher.
	ErrBadSignature = errors.New("catalog: record signature invalid")

	// ErrNotCanonical means a signed record's body is not exactly the
	// canonical form of what this node reads from it, or an offer does not
	// match the digest the publisher signed. Accepting it would let bytes
	// nobody signed pass as signed.
	ErrNotCanonical = errors.New("catalog: record is not in canonical form")

	// ErrMalformedMessage means a catalogue message is not well formed:
	// not JSON, no DSP @context, a required property missing or mistyped.
	ErrMalformedMessage = errors.New("catalog: malformed catalogue message")

	// ErrUnknownMessageType means the message's @type is not a catalogue
	// message this package knows.
	ErrUnknownMessageType = errors.New("catalog: unknown catalogue message type")
)

// FieldError names the field of a dataset description that is wrong.
// It wraps ErrInvalidDataset.
type FieldError struct {
	Field string // JSON path, e.g. "keywords[2]" or "spatial.coordinates"
	Msg   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s: %s", ErrInvalidDataset.Error(), e.Field, e.Msg)
}

// Unwrap lets errors.Is(err, ErrInvalidDataset) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidDataset }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
