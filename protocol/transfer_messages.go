package protocol

import (
	"encoding/json"
	"errors"
)

// DSP @type values of the transfer-process protocol.
const (
	TypeTransferRequest     = "TransferRequestMessage"
	TypeTransferStart       = "TransferStartMessage"
	TypeTransferSuspension  = "TransferSuspensionMessage"
	TypeTransferCompletion  = "TransferCompletionMessage"
	TypeTransferTermination = "TransferTerminationMessage"
	TypeTransferProcess     = "TransferProcess"
	TypeTransferError       = "TransferError"
)

// TransferStates are the DSP transfer-process states.
var TransferStates = []string{"REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"}

// TransferRequestMessage is sent by the consumer to start a transfer under
// an agreement. Only ConsumerPid is set; the provider answers with its own
// pid.
type TransferRequestMessage struct {
	Pids
	Seq
	AgreementID string `json:"agreementId"`
	// Format names the distribution, e.g. "mimnode-blocks" for a snapshot
	// pull or "mimnode-live" for a live feed.
	Format string `json:"format"`
	// DataAddress is only used by push transfers; mimnode pulls.
	DataAddress     json.RawMessage `json:"dataAddress,omitempty"`
	CallbackAddress string          `json:"callbackAddress"`
}

func (*TransferRequestMessage) MessageType() string { return TypeTransferRequest }

func (m *TransferRequestMessage) validate() error {
	for _, f := range []struct{ name, v string }{
		{"consumerPid", m.ConsumerPid}, {"agreementId", m.AgreementID},
		{"format", m.Format}, {"callbackAddress", m.CallbackAddress},
	} {
		if err := requireString(f.name, f.v); err != nil {
			return err
		}
	}
	return dataAddress(m.DataAddress)
}

// MarshalJSON adds @context and @type.
func (m TransferRequestMessage) MarshalJSON() ([]byte, error) {
	type plain TransferRequestMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferRequest), plain(m)})
}

// TransferStartMessage starts (or resumes) a transfer.
type TransferStartMessage struct {
	Pids
	Seq
	DataAddress json.RawMessage `json:"dataAddress,omitempty"`
}

func (*TransferStartMessage) MessageType() string { return TypeTransferStart }

func (m *TransferStartMessage) validate() error {
	if err := bothPids(m.Pids); err != nil {
		return err
	}
	return dataAddress(m.DataAddress)
}

// MarshalJSON adds @context and @type.
func (m TransferStartMessage) MarshalJSON() ([]byte, error) {
	type plain TransferStartMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferStart), plain(m)})
}

// TransferSuspensionMessage pauses a started transfer.
type TransferSuspensionMessage struct {
	Pids
	Seq
	Code   Code    `json:"code,omitempty"`
	Reason Reasons `json:"reason,omitempty"`
}

func (*TransferSuspensionMessage) MessageType() string { return TypeTransferSuspension }
func (m *TransferSuspensionMessage) validate() error   { return bothPids(m.Pids) }

// MarshalJSON adds @context and @type.
func (m TransferSuspensionMessage) MarshalJSON() ([]byte, error) {
	type plain TransferSuspensionMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferSuspension), plain(m)})
}

// TransferCompletionMessage ends a transfer successfully.
type TransferCompletionMessage struct {
	Pids
	Seq
}

func (*TransferCompletionMessage) MessageType() string { return TypeTransferCompletion }
func (m *TransferCompletionMessage) validate() error   { return bothPids(m.Pids) }

// MarshalJSON adds @context and @type.
func (m TransferCompletionMessage) MarshalJSON() ([]byte, error) {
	type plain TransferCompletionMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferCompletion), plain(m)})
}

// TransferTerminationMessage ends a transfer unsuccessfully.
type TransferTerminationMessage struct {
	Pids
	Seq
	Code   Code    `json:"code,omitempty"`
	Reason Reasons `json:"reason,omitempty"`
}

func (*TransferTerminationMessage) MessageType() string { return TypeTransferTermination }
func (m *TransferTerminationMessage) validate() error   { return bothPids(m.Pids) }

// MarshalJSON adds @context and @type.
func (m TransferTerminationMessage) MarshalJSON() ([]byte, error) {
	type plain TransferTerminationMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferTermination), plain(m)})
}

// TransferProcess is the answer to a processed transfer message: the
// process state right after processing it.
type TransferProcess struct {
	Pids
	State string `json:"state"`
}

func (*TransferProcess) MessageType() string { return TypeTransferProcess }

func (m *TransferProcess) validate() error {
	if err := bothPids(m.Pids); err != nil {
		return err
	}
	return oneOf("state", m.State, TransferStates)
}

// MarshalJSON adds @context and @type.
func (m TransferProcess) MarshalJSON() ([]byte, error) {
	type plain TransferProcess
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferProcess), plain(m)})
}

// TransferError is the answer to a transfer message that was not processed.
type TransferError struct {
	Pids
	Code   Code    `json:"code,omitempty"`
	Reason Reasons `json:"reason,omitempty"`
}

func (*TransferError) MessageType() string { return TypeTransferError }
func (m *TransferError) validate() error   { return bothPids(m.Pids) }

// MarshalJSON adds @context and @type.
func (m TransferError) MarshalJSON() ([]byte, error) {
	type plain TransferError
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeTransferError), plain(m)})
}

// TransferErrorFor builds the TransferError answering m with err, like
// NegotiationErrorFor.
func TransferErrorFor(m Message, err error) *TransferError {
	n := NegotiationErrorFor(m, err)
	if n.Code == CodeUnknownNegotiation {
		n.Code = CodeUnknownTransfer
	}
	return &TransferError{Pids: n.Pids, Code: n.Code, Reason: n.Reason}
}

func dataAddress(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var da struct {
		Type         string `json:"@type"`
		EndpointType string `json:"endpointType"`
	}
	if err := json.Unmarshal(raw, &da); err != nil {
		return errors.New("dataAddress must be an object")
	}
	if da.Type != "DataAddress" || da.EndpointType == "" {
		return errors.New("dataAddress needs \"@type\": \"DataAddress\" and an endpointType")
	}
	return nil
}

func asError(err error, target **Error) bool { return errors.As(err, target) }

func isMalformed(err error) bool {
	if errors.Is(err, ErrFrameTooLarge) {
		return false
	}
	return errors.Is(err, ErrMalformedMessage) || errors.Is(err, ErrUnknownMessageType) ||
		errors.Is(err, ErrMalformedFrame) || errors.Is(err, ErrTruncatedFrame)
}
