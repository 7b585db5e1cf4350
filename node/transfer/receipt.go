package transfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/protocol"
)

// Receipt is what a delivery receipt states (MIM3 accounting): the
// version delivered under an agreement and its size. The provider signs
// it; the consumer counter-signs it as its acknowledgement.
type Receipt struct {
	ProviderPid string    `json:"providerPid"`
	ConsumerPid string    `json:"consumerPid"`
	Agreement   string    `json:"agreement"`
	Dataset     string    `json:"dataset"`
	Version     string    `json:"version"`
	Provider    string    `json:"provider"`
	Consumer    string    `json:"consumer"`
	Blocks      int64     `json:"blocks"`   // blocks of the version
	Bytes       int64     `json:"bytes"`    // bytes of the version
	Entities    int64     `json:"entities"` // entities of the version
	Consumed    Usage     `json:"consumed"` // what the consumer says moved this time
	Time        time.Time `json:"time"`
}

// Signed is a receipt with the provider's signature and, once
// acknowledged, the consumer's over the receipt and the provider's
// signature.
type Signed struct {
	Receipt           Receipt `json:"receipt"`
	ProviderSignature []byte  `json:"providerSignature"`
	ConsumerSignature []byte  `json:"consumerSignature,omitempty"`
}

// ErrReceipt: a receipt or acknowledgement does not verify.
var ErrReceipt = errors.New("receipt does not verify")

func receiptMsg(r Receipt) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte("mimnode transfer receipt\n"), b...), nil
}

func ackMsg(sg Signed) ([]byte, error) {
	m, err := receiptMsg(sg.Receipt)
	if err != nil {
		return nil, err
	}
	return append(append([]byte("mimnode transfer acknowledgement\n"), m...), sg.ProviderSignature...), nil
}

// serveReceipt signs a delivery receipt for a started transfer.
func (s *Service) serveReceipt(st network.Stream, remote peer.ID, info Info, r *DataRequest) {
	m, err := s.manifest(info.Version)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeInternal, err.Error()))
		return
	}
	rc := Receipt{ProviderPid: r.ProviderPid, ConsumerPid: r.ConsumerPid, Agreement: info.Agreement, Dataset: info.Dataset,
		Version: info.Version, Provider: info.Provider, Consumer: info.Consumer, Blocks: int64(len(m.Blocks)),
		Bytes: m.Size, Entities: m.Entities(), Consumed: *r.Usage, Time: s.o.Now().UTC().Truncate(time.Millisecond)}
	msg, err := receiptMsg(rc)
	if err == nil {
		var sig []byte
		if sig, err = s.o.Signer.Sign(msg); err == nil {
			sg := Signed{Receipt: rc, ProviderSignature: sig}
			b, _ := json.Marshal(sg)
			s.auditf(KindReceipt, r.ProviderPid, remote.String(), sg)
			s.writeFrame(st, dataFrame(b))
			return
		}
	}
	s.writeFrame(st, errorFrame(protocol.CodeInternal, fmt.Sprintf("signing the receipt: %v", err)))
}

// takeAck checks and logs the consumer's acknowledgement.
func (s *Service) takeAck(st network.Stream, remote peer.ID, info Info, r *DataRequest) {
	// Only a receipt this node signed for this transfer can be
	// acknowledged: its provider is this node (whose signature then
	// verifies against its own key), and it names this transfer's
	// process, agreement, dataset, version and consumer.
	rc := r.Ack.Receipt
	if rc.Provider != info.Provider || rc.ProviderPid != info.ID || rc.Consumer != info.Consumer || rc.Consumer != remote.String() ||
		rc.Agreement != info.Agreement || rc.Dataset != info.Dataset || rc.Version != info.Version {
		s.writeFrame(st, errorFrame(protocol.CodeMalformedMessage, fmt.Sprintf("acknowledgement: %v: it is not of a receipt this node signed for transfer %s", ErrReceipt, info.ID)))
		return
	}
	if err := s.verifySigned(*r.Ack, true); err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeMalformedMessage, fmt.Sprintf("acknowledgement: %v", err)))
		return
	}
	// One acknowledgement per transfer: a second one would replace the
	// usage record with whatever a later receipt request said. Decided
	// under the process's lock, so two at once cannot both be taken.
	unlock := s.lockProc(info.Role, info.ID)
	e, err := s.load(info.Role, info.ID)
	if err == nil && e.info.Receipt {
		unlock()
		s.writeFrame(st, errorFrame(protocol.CodeMalformedMessage, fmt.Sprintf("acknowledgement: transfer %s is acknowledged already", info.ID)))
		return
	}
	if err == nil {
		e.info.Receipt = true
		e.info.Usage = r.Ack.Receipt.Consumed
		s.save(e, nil)
	}
	unlock()
	s.auditf(KindAck, info.ID, remote.String(), r.Ack)
	s.writeFrame(st, dataFrame(nil))
}

func (s *Service) verifySigned(sg Signed, withAck bool) error {
	msg, err := receiptMsg(sg.Receipt)
	if err != nil {
		return err
	}
	if err := s.o.Verifier.Verify(sg.Receipt.Provider, msg, sg.ProviderSignature); err != nil {
		return fmt.Errorf("provider signature: %w: %w", ErrReceipt, err)
	}
	if !withAck {
		return nil
	}
	am, err := ackMsg(sg)
	if err != nil {
		return err
	}
	if err := s.o.Verifier.Verify(sg.Receipt.Consumer, am, sg.ConsumerSignature); err != nil {
		return fmt.Errorf("consumer signature: %w: %w", ErrReceipt, err)
	}
	return nil
}

// exchangeReceipt asks the provider for a signed receipt, checks it
// against what was received, counter-signs it and sends it back; both
// documents go into this node's log. Called with the process locked.
func (s *Service) exchangeReceipt(ctx context.Context, provider peer.ID, e *entry) error {
	pids := e.p.Pids()
	base := DataRequest{ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid}
	cctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req := base
	req.Type, req.Usage = TypeReceiptRequest, &e.info.Usage
	st, br, err := s.dataStream(cctx, provider, req, true)
	if err != nil {
		return err
	}
	b, err := s.readAnswer(st, br)
	st.Close()
	if err != nil {
		return fmt.Errorf("receipt: %w", err)
	}
	var sg Signed
	if err := json.Unmarshal(b, &sg); err != nil {
		return fmt.Errorf("receipt: %w: %v", ErrReceipt, err)
	}
	rc := sg.Receipt
	if rc.Provider != e.info.Provider || rc.Consumer != s.self.String() || rc.Version != e.info.Version || rc.Agreement != e.info.Agreement {
		return fmt.Errorf("receipt names other parties, agreement or version: %w", ErrReceipt)
	}
	if err := s.verifySigned(sg, false); err != nil {
		return err
	}
	s.auditf(KindReceipt, e.info.ID, provider.String(), sg)
	am, err := ackMsg(sg)
	if err != nil {
		return err
	}
	if sg.ConsumerSignature, err = s.o.Signer.Sign(am); err != nil {
		return fmt.Errorf("signing the acknowledgement: %w", err)
	}
	req = base
	req.Type, req.Ack = TypeAcknowledgement, &sg
	st, br, err = s.dataStream(cctx, provider, req, true)
	if err != nil {
		return err
	}
	_, err = s.readAnswer(st, br)
	st.Close()
	if err != nil {
		return fmt.Errorf("acknowledgement: %w", err)
	}
	s.auditf(KindAck, e.info.ID, provider.String(), sg)
	e.info.Receipt = true
	return s.save(e, nil)
}

func sortNewest(l []Info) {
	slices.SortStableFunc(l, func(a, b Info) int { return b.Created.Compare(a.Created) })
}
