package transfer

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/node/store"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

func newPid() string { return "urn:uuid:" + uuid.NewString() }

// handleStream serves one incoming stream: a DSP transfer message (with,
// for a request, the start or termination that follows on the same
// stream), or a data request under a started transfer. Every read and
// write has a deadline; bad input is answered and never stalls the node.
func (s *Service) handleStream(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	remote := st.Conn().RemotePeer()
	br := bufio.NewReader(st)
	_ = st.SetReadDeadline(s.o.Now().Add(s.o.Timeout))
	body, err := protocol.ReadFrame(br, protocol.MaxTransferFrame)
	if err != nil {
		if errors.Is(err, protocol.ErrFrameTooLarge) {
			s.writeMsg(st, protocol.TransferErrorFor(nil, err))
			st.Close()
			return
		}
		st.Reset()
		return
	}
	// A researcher node serves no data and grants no transfer; it takes
	// the messages of the transfers it asked for (a provider ending one).
	serves := s.o.Members.IsAgency()
	if typ, ok := dataFrameType(body); ok {
		if typ == TypeRevocation {
			s.serveRevocation(st, remote, body)
			return
		}
		if !serves {
			st.Reset()
			return
		}
		s.serveData(st, remote, body)
		return
	}
	msg, err := protocol.Decode(body)
	if err != nil {
		s.writeMsg(st, protocol.TransferErrorFor(nil, err))
		st.Close()
		return
	}
	if _, isNew := dsp.Route(msg); isNew && !serves {
		st.Reset()
		return
	}
	s.serveDSP(st, br, remote, msg)
}

func (s *Service) writeMsg(st network.Stream, m protocol.Message) error {
	b, err := protocol.Encode(m)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", m.MessageType(), err)
	}
	_ = st.SetWriteDeadline(s.o.Now().Add(s.o.Timeout))
	return protocol.WriteFrame(st, b)
}

func (s *Service) writeFrame(st network.Stream, b []byte) error {
	_ = st.SetWriteDeadline(s.o.Now().Add(s.o.Timeout))
	return protocol.WriteFrame(st, b)
}

// serveDSP steps one DSP message into the process it belongs to
// (docs/protocol.md 7.2) and answers it. A new request is decided at once
// and the start or termination is written on the same stream, so that a
// researcher, who accepts no streams, still hears it; the consumer's
// answer to it is read back and stepped in.
func (s *Service) serveDSP(st network.Stream, br *bufio.Reader, remote peer.ID, msg protocol.Message) {
	defer st.Close()
	cands, isNew := dsp.Route(msg)
	if isNew {
		s.serveRequest(st, br, remote, msg.(*protocol.TransferRequestMessage))
		return
	}
	for _, k := range cands {
		if k.Pid == "" {
			continue
		}
		unlock := s.lockProc(k.Role, k.Pid)
		e, err := s.load(k.Role, k.Pid)
		if errors.Is(err, ErrUnknownTransfer) {
			unlock()
			continue
		}
		if err != nil {
			unlock()
			s.writeMsg(st, protocol.TransferErrorFor(msg, protocol.Errorf(protocol.CodeInternal, err, "%v", err)))
			return
		}
		rd, err := s.step(e, dsp.Msg{Type: dsp.MsgReceive, From: remote.String(), Body: msg})
		unlock()
		if err != nil {
			s.log.Debug("transfer message refused", "peer", remote, "err", err)
		}
		if rd.Reply != nil {
			s.writeMsg(st, rd.Reply)
		}
		return
	}
	s.writeMsg(st, dsp.UnknownTransfer(msg))
}

func (s *Service) serveRequest(st network.Stream, br *bufio.Reader, remote peer.ID, req *protocol.TransferRequestMessage) {
	s.countMu.Lock()
	var pid string
	err := s.o.Store.View(func(tx *store.Txn) error {
		b, err := tx.Get(firstKey(remote.String(), req.ConsumerPid))
		if err == nil {
			pid = string(b)
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		s.countMu.Unlock()
		s.writeMsg(st, protocol.TransferErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "%v", err)))
		return
	}
	if pid != "" {
		// A resend: the state machine gives it the answer it got first.
		s.countMu.Unlock()
		unlock := s.lockProc(dsp.Provider, pid)
		defer unlock()
		e, err := s.load(dsp.Provider, pid)
		if err != nil {
			s.writeMsg(st, protocol.TransferErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "%v", err)))
			return
		}
		rd, _ := s.step(e, dsp.Msg{Type: dsp.MsgReceive, From: remote.String(), Body: req})
		if rd.Reply != nil {
			s.writeMsg(st, rd.Reply)
		}
		return
	}
	pid = newPid()
	unlock := s.lockProc(dsp.Provider, pid)
	defer unlock()
	p, err := dsp.NewProvider(dsp.Config{Pid: pid, Peer: remote.String()})
	if err != nil {
		s.countMu.Unlock()
		s.writeMsg(st, protocol.TransferErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "%v", err)))
		return
	}
	now := s.o.Now().UTC()
	e := &entry{p: p, info: Info{ID: pid, Role: dsp.Provider, Agreement: req.AgreementID, Format: req.Format,
		Provider: s.self.String(), Consumer: remote.String(), Created: now}}
	if err := e.p.Step(dsp.Msg{Type: dsp.MsgReceive, Now: now, From: remote.String(), Body: req}); err != nil {
		s.countMu.Unlock()
		rd := e.p.Ready()
		if rd.Reply != nil {
			s.writeMsg(st, rd.Reply)
		}
		return
	}
	rd := e.p.Ready()
	if err := s.save(e, func(tx *store.Txn) error { return tx.Set(firstKey(remote.String(), req.ConsumerPid), []byte(pid)) }); err != nil {
		s.countMu.Unlock()
		s.writeMsg(st, protocol.TransferErrorFor(req, protocol.Errorf(protocol.CodeInternal, err, "%v", err)))
		return
	}
	for _, t := range rd.Transitions {
		s.auditf(KindTransition, pid, remote.String(), map[string]any{"role": dsp.Provider, "agreement": req.AgreementID,
			"from": t.From, "to": t.To, "cause": t.Cause})
	}
	e.p.Advance()
	// Answer first: deciding may build a version of a large dataset,
	// which the consumer waits for under its BuildTimeout.
	if err := s.writeMsg(st, rd.Reply); err != nil {
		s.log.Debug("writing answer to transfer request", "peer", remote, "err", err)
	}
	decision := s.decide(remote, e)
	s.countMu.Unlock()
	if decision.Type == dsp.MsgTerminate {
		s.auditf(KindRefused, pid, remote.String(), map[string]any{"agreement": req.AgreementID, "code": decision.Code, "reasons": decision.Reasons})
	}
	rd2, err := s.step(e, decision)
	if err != nil {
		s.log.Error("stepping the transfer decision", "transfer", pid, "err", err)
		return
	}
	for _, m := range rd2.Messages {
		if err := s.writeMsg(st, m); err != nil {
			return
		}
		_ = st.SetReadDeadline(s.o.Now().Add(s.o.Timeout))
		body, err := protocol.ReadFrame(br, protocol.MaxTransferFrame)
		if err != nil {
			return
		}
		ans, err := protocol.Decode(body)
		if err != nil {
			return
		}
		s.step(e, dsp.Msg{Type: dsp.MsgReceive, From: remote.String(), Body: ans})
	}
}

// decide checks a new request: the agreement's two signatures, that this
// node is its provider and the caller its consumer, and the policy in the
// transfer scope now, with the count of transfers granted so far. It picks
// the version to serve and counts the transfer. Called with countMu held.
func (s *Service) decide(remote peer.ID, e *entry) dsp.Msg {
	refuse := func(code protocol.Code, reasons ...string) dsp.Msg {
		return dsp.Msg{Type: dsp.MsgTerminate, Code: code, Reasons: reasons}
	}
	a, err := s.agreement(e.info.Agreement)
	if errors.Is(err, contract.ErrUnknownAgreement) || errors.Is(err, store.ErrNotFound) {
		return refuse(protocol.CodeAgreementNotValid, fmt.Sprintf("no agreement %s on the provider", e.info.Agreement))
	}
	if err != nil {
		return refuse(protocol.CodeInvalidAgreement, err.Error())
	}
	e.info.Dataset = a.Dataset
	if a.Provider != s.self.String() {
		return refuse(protocol.CodeInvalidAgreement, fmt.Sprintf("agreement %s names provider %s, not this node", a.ID, a.Provider))
	}
	var count uint64
	if err := s.o.Store.View(func(tx *store.Txn) error {
		var err error
		count, err = readCount(tx, a.ID)
		return err
	}); err != nil {
		return refuse(protocol.CodeInternal, err.Error())
	}
	if code, reasons := s.evaluate(remote, a, int(count)); reasons != nil {
		return refuse(code, reasons...)
	}
	version, err := s.versionFor(a)
	if err != nil {
		return refuse(protocol.CodeAgreementNotValid, err.Error())
	}
	if err := s.o.Store.Update(func(tx *store.Txn) error {
		return tx.Set(countKey(a.ID), binary.BigEndian.AppendUint64(nil, count+1))
	}); err != nil {
		return refuse(protocol.CodeInternal, fmt.Sprintf("counting the transfer: %v", err))
	}
	e.info.Version = version
	// A live feed starts after the change the version was built at.
	s.mu.Lock()
	var seq uint64
	if b := s.built[a.Dataset]; b.version == version {
		seq = b.seq
	}
	s.mu.Unlock()
	da, _ := json.Marshal(map[string]any{"@type": "DataAddress", "endpointType": "urn:mimnode:libp2p:" + e.info.Format,
		"endpoint": "/p2p/" + s.self.String(), "urn:mimnode:version": version, "urn:mimnode:feedSeq": seq})
	return dsp.Msg{Type: dsp.MsgStart, DataAddress: da}
}

// evaluate returns nil when the agreement allows remote a transfer now
// after count earlier ones, else the reasons it does not.
func (s *Service) evaluate(remote peer.ID, a policy.Agreement, count int) (protocol.Code, []string) {
	if code, reasons := s.revokedReasons(a.ID); reasons != nil {
		return code, reasons
	}
	// Whom the dataset is open to is the publisher's to change at any
	// time; an agreement made before (or for a private dataset, whose
	// offer reached the consumer some other way) does not outlast it.
	if ds, err := s.o.Datasets.Dataset(a.Dataset); err == nil && !ds.OpenTo(remote.String()) {
		return protocol.CodeAgreementNotValid, []string{fmt.Sprintf("dataset %s is %s: its publisher does not open it to this peer", a.Dataset, ds.Dissemination)}
	}
	feds := s.o.Members.SharedFederations(remote)
	d := a.Evaluate(policy.Request{Now: s.o.Now(), Action: policy.ActionRead, PeerID: remote.String(), Purpose: s.agreedPurpose(a.ID),
		Role: s.roleOf(remote, feds), Federations: feds, Usage: policy.Usage{Count: count}})
	if d.Permit {
		return "", nil
	}
	var out []string
	for _, r := range d.Why() {
		out = append(out, r.String())
	}
	if len(out) == 0 {
		out = []string{"the agreement's policy does not permit read now"}
	}
	return protocol.CodeAgreementNotValid, out
}

// agreedPurpose is the purpose agreement id was negotiated for ("" when
// unknown). Only a found purpose is cached: an agreement this node has not
// finished storing may be looked up again.
func (s *Service) agreedPurpose(id string) string {
	if v, ok := s.purposes.Load(id); ok {
		return v.(string)
	}
	if s.o.Purposes == nil {
		return ""
	}
	p := s.o.Purposes.AgreedPurpose(id)
	if p != "" {
		s.purposes.Store(id, p)
	}
	return p
}

// roleOf is the consumer's role for policy evaluation: agency if it is an
// agency in any federation both share, else researcher.
func (s *Service) roleOf(p peer.ID, feds []string) string {
	role := ""
	for _, f := range feds {
		r, ok := s.o.Members.RoleOf(f, p)
		if !ok {
			continue
		}
		if r == federation.RoleAgency {
			return policy.RoleAgency
		}
		if r == federation.RoleResearcher {
			role = policy.RoleResearcher
		}
	}
	return role
}

// checkData checks a data request on every call: the process is the
// caller's and STARTED, and the agreement still verifies and allows the
// transfer now (counting the transfers before this one, which is already
// counted). It returns the process's Info.
func (s *Service) checkData(remote peer.ID, r *DataRequest, wantFormat string) (Info, *RefusedError) {
	e, err := s.load(dsp.Provider, r.ProviderPid)
	if err != nil {
		return Info{}, &RefusedError{Code: protocol.CodeUnknownTransfer, Reasons: []string{err.Error()}}
	}
	if e.p.Peer() != remote.String() || e.p.Pids().ConsumerPid != r.ConsumerPid {
		return Info{}, &RefusedError{Code: protocol.CodeWrongParty, Reasons: []string{"the transfer is not this peer's"}}
	}
	if e.p.State() != dsp.Started {
		why := fmt.Sprintf("transfer is %s, not STARTED", e.p.State())
		if len(e.info.Reasons) > 0 {
			why += " (" + strings.Join(e.info.Reasons, "; ") + ")"
		}
		return Info{}, &RefusedError{Code: protocol.CodeInvalidTransition, Reasons: []string{why}}
	}
	if wantFormat != "" && e.info.Format != wantFormat {
		return Info{}, &RefusedError{Code: protocol.CodeInvalidTransition, Reasons: []string{fmt.Sprintf("transfer format is %s", e.info.Format)}}
	}
	a, err := s.agreement(e.info.Agreement)
	if err != nil {
		return Info{}, &RefusedError{Code: protocol.CodeInvalidAgreement, Reasons: []string{err.Error()}}
	}
	var count uint64
	_ = s.o.Store.View(func(tx *store.Txn) error { count, err = readCount(tx, a.ID); return err })
	if count > 0 {
		count--
	}
	if code, reasons := s.evaluate(remote, a, int(count)); reasons != nil {
		return Info{}, &RefusedError{Code: code, Reasons: reasons}
	}
	return e.info, nil
}

// serveData answers one data request.
func (s *Service) serveData(st network.Stream, remote peer.ID, body []byte) {
	defer st.Close()
	r, err := DecodeDataRequest(body)
	if err != nil {
		s.writeFrame(st, errorFrame(protocol.CodeMalformedMessage, err.Error()))
		return
	}
	format := ""
	if r.Type == TypeLiveRequest {
		format = FormatLive
	}
	info, refused := s.checkData(remote, r, format)
	if refused != nil {
		s.auditf(KindRefused, r.ProviderPid, remote.String(), map[string]any{"request": r.Type, "code": refused.Code, "reasons": refused.Reasons})
		s.writeFrame(st, errorFrame(refused.Code, refused.Reasons...))
		return
	}
	if r.Type != TypeLiveRequest {
		// A revocation ends the answer where it is (EndAgreements): a
		// block request may run long on a slow link.
		done, refused := s.serve(info.Agreement, func(*RefusedError) { st.Reset() })
		defer done()
		if refused != nil {
			s.writeFrame(st, errorFrame(refused.Code, refused.Reasons...))
			return
		}
	}
	switch r.Type {
	case TypeManifestRequest:
		b, err := s.getBytes(manifestKey(info.Version))
		if err == nil {
			err = s.o.Store.Update(func(tx *store.Txn) error { // written once, not per request
				k := servedKey(info.Agreement, info.Version)
				if ok, err := tx.Has(k); ok || err != nil {
					return err
				}
				return tx.Set(k, nil)
			})
		}
		if err != nil {
			s.writeFrame(st, errorFrame(protocol.CodeInternal, err.Error()))
			return
		}
		s.writeFrame(st, answerFrame(b, r.Encodings))
	case TypeBlockRequest:
		s.serveBlocks(st, info, r.CIDs, r.Bases, r.Encodings)
	case TypeReceiptRequest:
		s.serveReceipt(st, remote, info, r)
	case TypeAcknowledgement:
		s.takeAck(st, remote, info, r)
	case TypeLiveRequest:
		s.serveLive(st, remote, info, r)
	}
}

func (s *Service) getBytes(k []byte) ([]byte, error) {
	var b []byte
	err := s.o.Store.View(func(tx *store.Txn) error {
		var err error
		b, err = tx.Get(k)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", k, err)
	}
	return b, nil
}

// manifest returns the stored manifest of version, verified.
func (s *Service) manifest(version string) (content.Manifest, error) {
	s.mu.Lock()
	m, ok := s.manifests[version]
	s.mu.Unlock()
	if ok {
		return m, nil
	}
	b, err := s.getBytes(manifestKey(version))
	if err != nil {
		return content.Manifest{}, err
	}
	m, err = content.DecodeManifest(b)
	if err != nil {
		return content.Manifest{}, fmt.Errorf("stored manifest %s: %w", version, err)
	}
	s.mu.Lock()
	s.manifests[version] = m
	s.mu.Unlock()
	return m, nil
}
