package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
)

// DSP @type values of the contract-negotiation protocol.
const (
	TypeContractRequest                = "ContractRequestMessage"
	TypeContractOffer                  = "ContractOfferMessage"
	TypeContractAgreement              = "ContractAgreementMessage"
	TypeContractAgreementVerification  = "ContractAgreementVerificationMessage"
	TypeContractNegotiationEvent       = "ContractNegotiationEventMessage"
	TypeContractNegotiationTermination = "ContractNegotiationTerminationMessage"
	TypeContractNegotiation            = "ContractNegotiation"
	TypeContractNegotiationError       = "ContractNegotiationError"
)

// Event types of ContractNegotiationEventMessage.
const (
	EventAccepted  = "ACCEPTED"
	EventFinalized = "FINALIZED"
)

// NegotiationStates are the DSP contract-negotiation states, in protocol
// order. The "state" of a ContractNegotiation must be one of them.
var NegotiationStates = []string{"REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED", "FINALIZED", "TERMINATED"}

func oneOf(name, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q is not one of %v", name, v, allowed)
}

// ContractRequestMessage is sent by the consumer: the first one (no
// ProviderPid, with CallbackAddress) starts a negotiation, later ones (with
// ProviderPid, without CallbackAddress) are counter-offers.
type ContractRequestMessage struct {
	Pids
	Seq
	// Offer is the ODRL offer (a JSON object with "@type": "Offer") the
	// consumer asks for, produced and interpreted by package policy.
	Offer json.RawMessage `json:"offer"`
	// CallbackAddress is where the provider reaches the consumer. Over
	// libp2p it is the consumer's "/p2p/<peer-id>" address; the driver
	// never dials it blindly, it checks it names the stream's peer.
	CallbackAddress string `json:"callbackAddress,omitempty"`
	// Purpose is a mimnode extension: the purpose the consumer states for
	// its use of the data (e.g. "research"), which the provider's policy
	// evaluates in the negotiation scope. Optional; an absolute IRI key so
	// the message stays valid JSON-LD.
	Purpose string `json:"urn:mimnode:purpose,omitempty"`
}

func (*ContractRequestMessage) MessageType() string { return TypeContractRequest }

func (m *ContractRequestMessage) validate() error {
	if err := requireString("consumerPid", m.ConsumerPid); err != nil {
		return err
	}
	if err := exactlyOne("callbackAddress", m.CallbackAddress, "providerPid", m.ProviderPid); err != nil {
		return err
	}
	return policyObject("offer", m.Offer, offerKind)
}

// MarshalJSON adds @context and @type.
func (m ContractRequestMessage) MarshalJSON() ([]byte, error) {
	type plain ContractRequestMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractRequest), plain(m)})
}

// ContractOfferMessage is sent by the provider: a (counter-)offer.
type ContractOfferMessage struct {
	Pids
	Seq
	// Offer must have "@id" and "target" (the dataset).
	Offer           json.RawMessage `json:"offer"`
	CallbackAddress string          `json:"callbackAddress,omitempty"`
}

func (*ContractOfferMessage) MessageType() string { return TypeContractOffer }

func (m *ContractOfferMessage) validate() error {
	if err := requireString("providerPid", m.ProviderPid); err != nil {
		return err
	}
	if err := exactlyOne("callbackAddress", m.CallbackAddress, "consumerPid", m.ConsumerPid); err != nil {
		return err
	}
	return policyObject("offer", m.Offer, targetedOfferKind)
}

// MarshalJSON adds @context and @type.
func (m ContractOfferMessage) MarshalJSON() ([]byte, error) {
	type plain ContractOfferMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractOffer), plain(m)})
}

// ContractAgreementMessage is sent by the provider at AGREED.
type ContractAgreementMessage struct {
	Pids
	Seq
	// Agreement is the ODRL agreement ("@type": "Agreement" with target,
	// assigner, assignee), signed by the provider (package policy).
	Agreement json.RawMessage `json:"agreement"`
}

func (*ContractAgreementMessage) MessageType() string { return TypeContractAgreement }

func (m *ContractAgreementMessage) validate() error {
	if err := bothPids(m.Pids); err != nil {
		return err
	}
	return policyObject("agreement", m.Agreement, agreementKind)
}

// MarshalJSON adds @context and @type.
func (m ContractAgreementMessage) MarshalJSON() ([]byte, error) {
	type plain ContractAgreementMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractAgreement), plain(m)})
}

// ContractAgreementVerificationMessage is sent by the consumer at VERIFIED.
type ContractAgreementVerificationMessage struct {
	Pids
	Seq
	// Agreement is a mimnode extension (DSP leaves the message open): the
	// agreement with the consumer's signature added, so that the provider
	// stores the same doubly signed document. Optional for other peers.
	Agreement json.RawMessage `json:"agreement,omitempty"`
}

func (*ContractAgreementVerificationMessage) MessageType() string {
	return TypeContractAgreementVerification
}

func (m *ContractAgreementVerificationMessage) validate() error {
	if err := bothPids(m.Pids); err != nil {
		return err
	}
	if len(m.Agreement) > 0 {
		return policyObject("agreement", m.Agreement, agreementKind)
	}
	return nil
}

// MarshalJSON adds @context and @type.
func (m ContractAgreementVerificationMessage) MarshalJSON() ([]byte, error) {
	type plain ContractAgreementVerificationMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractAgreementVerification), plain(m)})
}

// ContractNegotiationEventMessage announces ACCEPTED (consumer) or
// FINALIZED (provider).
type ContractNegotiationEventMessage struct {
	Pids
	Seq
	EventType string `json:"eventType"`
}

func (*ContractNegotiationEventMessage) MessageType() string { return TypeContractNegotiationEvent }

func (m *ContractNegotiationEventMessage) validate() error {
	if err := bothPids(m.Pids); err != nil {
		return err
	}
	return oneOf("eventType", m.EventType, []string{EventAccepted, EventFinalized})
}

// MarshalJSON adds @context and @type.
func (m ContractNegotiationEventMessage) MarshalJSON() ([]byte, error) {
	type plain ContractNegotiationEventMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractNegotiationEvent), plain(m)})
}

// ContractNegotiationTerminationMessage ends a negotiation; either side may
// send it from any non-terminal state.
type ContractNegotiationTerminationMessage struct {
	Pids
	Seq
	Code   Code    `json:"code,omitempty"`
	Reason Reasons `json:"reason,omitempty"`
}

func (*ContractNegotiationTerminationMessage) MessageType() string {
	return TypeContractNegotiationTermination
}

func (m *ContractNegotiationTerminationMessage) validate() error {
	return bothPids(m.Pids)
}

// MarshalJSON adds @context and @type.
func (m ContractNegotiationTerminationMessage) MarshalJSON() ([]byte, error) {
	type plain ContractNegotiationTerminationMessage
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractNegotiationTermination), plain(m)})
}

// ContractNegotiation is the answer to a message that was processed: the
// negotiation's state right after processing it.
type ContractNegotiation struct {
	Pids
	State string `json:"state"`
}

func (*ContractNegotiation) MessageType() string { return TypeContractNegotiation }

func (m *ContractNegotiation) validate() error {
	if err := bothPids(m.Pids); err != nil {
		return err
	}
	return oneOf("state", m.State, NegotiationStates)
}

// MarshalJSON adds @context and @type.
func (m ContractNegotiation) MarshalJSON() ([]byte, error) {
	type plain ContractNegotiation
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractNegotiation), plain(m)})
}

// ContractNegotiationError is the answer to a message that was not
// processed; nothing changed on the answering side.
type ContractNegotiationError struct {
	Pids
	Code   Code    `json:"code,omitempty"`
	Reason Reasons `json:"reason,omitempty"`
}

func (*ContractNegotiationError) MessageType() string { return TypeContractNegotiationError }

// validate lets a pid be missing: an error about an unknown or malformed
// message may not know one. The DSP schema requires both, so Encode fills
// a missing one with "unknown" (see NegotiationErrorFor).
func (m *ContractNegotiationError) validate() error { return bothPids(m.Pids) }

// MarshalJSON adds @context and @type.
func (m ContractNegotiationError) MarshalJSON() ([]byte, error) {
	type plain ContractNegotiationError
	return json.Marshal(struct {
		header
		plain
	}{hdr(TypeContractNegotiationError), plain(m)})
}

// UnknownPid stands in for a pid the answering side does not know, so that
// error messages still carry both pids as the DSP schema requires.
const UnknownPid = "urn:mimnode:unknown"

// NegotiationErrorFor builds the ContractNegotiationError answering a
// message with err. Pids are taken from the message when there is one;
// missing ones become UnknownPid. A plain error (not *Error) is reported as
// CodeInternal.
func NegotiationErrorFor(m Message, err error) *ContractNegotiationError {
	out := &ContractNegotiationError{Pids: Pids{ProviderPid: UnknownPid, ConsumerPid: UnknownPid}}
	if m != nil {
		p := m.PIDs()
		if p.ProviderPid != "" {
			out.ProviderPid = p.ProviderPid
		}
		if p.ConsumerPid != "" {
			out.ConsumerPid = p.ConsumerPid
		}
	}
	out.Code, out.Reason = codeAndReasons(err)
	return out
}

func codeAndReasons(err error) (Code, Reasons) {
	var pe *Error
	switch {
	case err == nil:
		return CodeInternal, Reasons{"unknown error"}
	case asError(err, &pe):
		r := Reasons(append([]string(nil), pe.Reasons...))
		if len(r) == 0 {
			r = Reasons{err.Error()}
		}
		return pe.Code, r
	case errors.Is(err, ErrFrameTooLarge):
		return CodeFrameTooLarge, Reasons{err.Error()}
	case isMalformed(err):
		return CodeMalformedMessage, Reasons{err.Error()}
	}
	return CodeInternal, Reasons{err.Error()}
}

func bothPids(p Pids) error {
	if err := requireString("providerPid", p.ProviderPid); err != nil {
		return err
	}
	return requireString("consumerPid", p.ConsumerPid)
}
