package contract

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// SignedAgreementKey is the property of a DSP agreement object (in
// ContractAgreementMessage and ContractAgreementVerificationMessage) that
// carries mimnode's signed agreement file (policy.Agreement.MarshalJSON):
// the ODRL agreement around it is what DSP peers read, the file is what
// both parties sign and store. The mim: prefix is policy.MimNS.
const SignedAgreementKey = "mim:signedAgreement"

// act performs the local steps negotiation k waits for, if the node can
// take them on its own (see autoLocked), and sends what they produce. A
// request queued for a person stays as it is until Approve or Reject.
func (s *Service) act(k negotiation.Key) {
	e := s.lockLive(k)
	if e == nil {
		return
	}
	if _, ok := s.localInputLocked(e, s.o.Now()); !ok {
		e.mu.Unlock()
		return
	}
	peerID := e.n.Peer()
	_, out, err := s.stepLocked(e, negotiation.Msg{Now: s.o.Now()})
	e.mu.Unlock()
	if err != nil {
		s.log.Error("local negotiation step", "pid", k.Pid, "err", err)
		return
	}
	s.sendAll(k, peerID, out)
}

// autoLocked steps in the local inputs the negotiation waits for and the
// node decides alone: the provider's decision, the consumer's check and
// countersignature, the provider's check before FINALIZED. They are
// stepped before the Ready they follow is persisted, so that a received
// message and the decision it calls for cost one durable write and the
// decision leaves with the answer. A person's approval is not automatic.
func (s *Service) autoLocked(e *entry, now time.Time) {
	// Each automatic input moves the state on, so a handful is the most
	// a negotiation can take in a row; the bound guards against a bug
	// looping for ever.
	for range 4 {
		m, ok := s.localInputLocked(e, now)
		if !ok {
			return
		}
		m.Now = now
		if err := e.n.Step(m); err != nil {
			s.log.Error("local negotiation step", "pid", e.key.Pid, "input", m.Type, "err", err)
			return
		}
	}
}

// localInputLocked returns the local input the negotiation waits for, if
// the node takes it without a person.
func (s *Service) localInputLocked(e *entry, now time.Time) (negotiation.Msg, bool) {
	switch e.n.Todo() {
	case negotiation.TodoDecide:
		return s.decideLocked(e, now), true
	case negotiation.TodoVerify:
		return s.verifyLocked(e, now), true
	case negotiation.TodoFinalize:
		return s.finalizeLocked(e, now), true
	case negotiation.TodoChoose:
		// Counter-offers are not taken automatically: the consumer asked
		// for terms it had read, and a person would have to judge
		// different ones. Ending cleanly tells the provider.
		return negotiation.Msg{Type: negotiation.MsgTerminate, Code: protocol.CodeCancelled,
			Reasons: []string{"this node does not accept counter-offers; request the offer you want instead"}}, true
	}
	return negotiation.Msg{}, false
}

// refuse is a provider decision to terminate with reasons.
func refuse(code protocol.Code, reasons ...string) negotiation.Msg {
	return negotiation.Msg{Type: negotiation.MsgDecide, Verdict: negotiation.Refuse, Code: code, Reasons: reasons}
}

// decideLocked is the provider's decision on the request in e: its own
// offer (looked up, never the consumer's copy) evaluated in the
// negotiation scope for the consumer's peer ID, role, federations and
// stated purpose; then a person's approval if the offer asks for one;
// then a signed agreement.
func (s *Service) decideLocked(e *entry, now time.Time) negotiation.Msg {
	read, err := s.offers.read(e.n.Offer())
	if err != nil {
		return refuse(protocol.CodeRefused, "the requested offer is not a policy this node reads: "+err.Error())
	}
	asked := read.p
	own, err := s.o.Offers.Offer(asked.Target, asked.ID)
	if err != nil {
		return refuse(protocol.CodeRefused, fmt.Sprintf("dataset %s has no offer %s here", asked.Target, asked.ID))
	}
	if !sameTermsAs(own, read) {
		return refuse(protocol.CodeRefused, fmt.Sprintf("the requested terms differ from offer %s as this node offers it", own.ID))
	}
	e.meta.Dataset, e.meta.OfferID = own.Target, own.ID
	consumer, err := s.names.id(e.n.Peer())
	if err != nil {
		return refuse(protocol.CodeRefused, "the consumer's peer ID does not parse: "+err.Error())
	}
	if s.o.OpenTo != nil && !s.o.OpenTo(own.Target, s.names.of(consumer)) {
		return refuse(protocol.CodeRefused, fmt.Sprintf("dataset %s is not open to this peer: its publisher keeps it private or restricted to others", own.Target))
	}
	feds := s.o.Members.SharedFederations(consumer)
	req := policy.Request{Now: now, Action: policy.ActionUse, PeerID: s.names.of(consumer),
		Role: s.roleOf(consumer, feds), Federations: feds, Purpose: e.n.Purpose()}
	d := policy.Evaluate(own, req, policy.ScopeNegotiation)
	if dj, data, err := d.JSONForms(); err == nil && !e.meta.Approved {
		e.meta.Decision, e.meta.plainDecision = dj, marshalledJSON(dj)
		// The log gets the same members with sorted keys (data): canonical
		// already, so hashing the entry does not canonicalise it again
		// (the hash is that of the canonical form either way).
		e.staged = append(e.staged, staged{audit: &audit.Entry{Time: now, Kind: audit.KindDecision,
			Subject: e.key.Pid, Peer: s.names.of(consumer), Data: data}})
	}
	if !d.Permit {
		var reasons []string
		for _, r := range d.Why() {
			reasons = append(reasons, r.String())
		}
		if len(reasons) == 0 {
			reasons = []string{"the policy does not permit this use"}
		}
		return refuse(protocol.CodeRefused, reasons...)
	}
	if IsManual(own) && !e.meta.Approved {
		return negotiation.Msg{Type: negotiation.MsgDecide, Verdict: negotiation.Queue}
	}
	if !e.meta.Approved {
		// A consumer whose agreement for the dataset was revoked does not
		// get a new one by asking again: a person decides.
		held, err := s.heldFor(s.names.of(consumer), own.Target)
		if err != nil {
			return refuse(protocol.CodeInternal, err.Error())
		}
		if held != "" {
			e.meta.Held = held
			return negotiation.Msg{Type: negotiation.MsgDecide, Verdict: negotiation.Queue}
		}
	}
	return s.agreeLocked(e, own, consumer, now)
}

// agreeLocked makes and signs the agreement for offer own.
func (s *Service) agreeLocked(e *entry, own policy.Policy, consumer peer.ID, now time.Time) negotiation.Msg {
	terms := own.Clone()
	// Manual approval is about how the agreement was reached, not about
	// its use; it does not belong in the signed terms.
	delete(terms.Extra, ManualApproval)
	a := policy.Agreement{ID: newAgreementID(), Dataset: own.Target, Provider: s.names.of(s.self), Consumer: s.names.of(consumer),
		Policy: terms, Created: now}
	if s.o.Validity > 0 {
		a.NotAfter = now.Add(s.o.Validity)
	}
	a, err := policy.NewAgreement(a)
	var canon, file []byte
	if err == nil {
		canon, file, err = a.Seal(nil, nil, s.o.Signer)
	}
	var raw json.RawMessage
	if err == nil {
		raw, err = agreementObject(a, file)
	}
	if err != nil {
		return refuse(protocol.CodeRefused, "this node could not make the agreement: "+err.Error())
	}
	sum := sha256.Sum256(canon)
	e.meta.AgreementID, e.meta.TermsSum, e.meta.Signature = a.ID, sum[:], signatureOf(a, policy.RoleProvider)
	e.signed, e.canon = &a, canon
	e.staged = append(e.staged, staged{audit: s.signedEntry(e, a, sum, policy.RoleProvider, now)})
	return negotiation.Msg{Type: negotiation.MsgDecide, Verdict: negotiation.Agree, Agreement: raw}
}

// verifyLocked is the consumer's check of the provider's agreement: the
// right parties and dataset, the terms it asked for, and the provider's
// signature; then it countersigns.
func (s *Service) verifyLocked(e *entry, now time.Time) negotiation.Msg {
	bad := func(why string) negotiation.Msg {
		return negotiation.Msg{Type: negotiation.MsgTerminate, Code: protocol.CodeInvalidAgreement, Reasons: []string{why}}
	}
	a, err := parseAgreementJSON(e.n.Agreement())
	if err != nil {
		return bad(err.Error())
	}
	switch {
	case a.Provider != e.n.Peer():
		return bad(fmt.Sprintf("the agreement names provider %s, not %s", a.Provider, e.n.Peer()))
	case a.Consumer != s.names.of(s.self):
		return bad(fmt.Sprintf("the agreement names consumer %s, not this node", a.Consumer))
	case a.Dataset != e.meta.Dataset:
		return bad(fmt.Sprintf("the agreement is for dataset %s, not %s", a.Dataset, e.meta.Dataset))
	}
	// The provider picks the id. One this node holds already (from any
	// provider) would replace that agreement and what is keyed by it, and
	// one another negotiation in flight countersigned would do so when
	// both are stored: neither agreement is stored before its negotiation
	// ends. The id is reserved before the stored ones are looked at, so
	// that an agreement stored (and its reservation dropped) in between
	// is found there.
	if !s.reserveAgreementID(a.ID, e.key) {
		return bad(fmt.Sprintf("another negotiation of this node is countersigning an agreement %s; the provider must give a new agreement a new id", a.ID))
	}
	// Refused from here on, the id is not this negotiation's to keep
	// (unless it countersigned it before).
	if e.meta.AgreementID != a.ID {
		terminate := bad
		bad = func(why string) negotiation.Msg {
			s.releaseAgreementID(a.ID, e.key)
			return terminate(why)
		}
	}
	if _, err := s.Agreement(a.ID); err == nil {
		return bad(fmt.Sprintf("this node holds an agreement %s already; the provider must give a new agreement a new id", a.ID))
	} else if !errors.Is(err, ErrUnknownAgreement) {
		return bad(err.Error())
	}
	asked, err := s.offers.read(e.n.Offer())
	if err != nil || !sameTermsAs(a.Policy, asked) {
		return bad("the agreed terms are not the terms requested")
	}
	// The provider's signature is checked before countersigning; this
	// node's own needs no check.
	canon, file, err := a.Seal(s.o.Verifier, []string{policy.RoleProvider}, s.o.Signer)
	if err != nil {
		return bad(err.Error())
	}
	raw, err := agreementObject(a, file)
	if err != nil {
		return bad(err.Error())
	}
	e.meta.AgreementID, e.file = a.ID, file
	e.staged = append(e.staged, staged{audit: s.signedEntry(e, a, sha256.Sum256(canon), policy.RoleConsumer, now)})
	return negotiation.Msg{Type: negotiation.MsgVerify, Agreement: raw}
}

// testHookFinalize, when set by a test, runs as a provider starts to
// check a consumer's countersignature.
var testHookFinalize func()

// finalizeLocked is the provider's check of the consumer's
// countersignature over the very terms the provider signed.
func (s *Service) finalizeLocked(e *entry, now time.Time) negotiation.Msg {
	if testHookFinalize != nil {
		testHookFinalize()
	}
	if file, ok := s.finalizeKnown(e); ok {
		e.file = file
		return negotiation.Msg{Type: negotiation.MsgFinalize}
	}
	bad := func(why string) negotiation.Msg {
		return negotiation.Msg{Type: negotiation.MsgTerminate, Code: protocol.CodeInvalidAgreement, Reasons: []string{why}}
	}
	a, err := parseAgreementJSON(e.n.Agreement())
	if err != nil {
		return bad("the verification carries no readable agreement: " + err.Error())
	}
	// Once the terms are the ones this node signed, its own signature is
	// checked by comparing it with the one it made; only the consumer's
	// needs verifying. Negotiations stored before the signature was kept
	// verify both. The consumer's signature is verified first, with the
	// canonical form Seal makes anyway, and the terms compared after.
	verify := []string{policy.RoleProvider, policy.RoleConsumer}
	if len(e.meta.Signature) > 0 {
		verify = verify[1:]
	}
	canon, file, err := a.Seal(s.o.Verifier, verify, nil)
	if err != nil {
		return bad(err.Error())
	}
	if sum := sha256.Sum256(canon); a.ID != e.meta.AgreementID || !bytes.Equal(sum[:], e.meta.TermsSum) {
		return bad("the countersigned agreement is not the one this node signed")
	}
	if len(e.meta.Signature) > 0 && !bytes.Equal(signatureOf(a, policy.RoleProvider), e.meta.Signature) {
		return bad("the countersigned agreement does not carry this node's signature")
	}
	e.file = file
	return negotiation.Msg{Type: negotiation.MsgFinalize}
}

// finalizeKnown is finalizeLocked's check for the common case, with the
// agreement this node signed still in memory (e.signed): the
// countersigned file must be exactly the canonical file of those very
// terms (e.canon) with this node's signature unchanged and the
// consumer's, which is verified, each named for the peer of its role
// (signatureOf, Seal), and the ODRL around it must name the
// agreement. The terms are then not read again: they are this node's
// own. It returns the file, or false for anything else, which
// finalizeLocked then checks in full, accepting or refusing as before.
func (s *Service) finalizeKnown(e *entry) ([]byte, bool) {
	// Without the signature this node made there is nothing to compare
	// its signature with (only the consumer's is verified here).
	if e.signed == nil || len(e.canon) == 0 || len(e.meta.Signature) == 0 {
		return nil, false
	}
	file, names, err := agreementMembers(e.n.Agreement())
	if err != nil {
		return nil, false
	}
	a := *e.signed
	if names != [4]string{a.ID, a.Dataset, a.Provider, a.Consumer} || a.ID != e.meta.AgreementID {
		return nil, false
	}
	// The signatures, read leniently: the file made from them below must
	// be the file received, byte for byte.
	sigs, ok := bytes.CutPrefix(file, []byte(`{"agreement":`))
	if ok {
		sigs, ok = bytes.CutPrefix(sigs, e.canon)
	}
	if ok {
		sigs, ok = bytes.CutPrefix(sigs, []byte(`,"signatures":`))
	}
	if ok {
		sigs, ok = bytes.CutSuffix(sigs, []byte(`}`))
	}
	var read []struct {
		Role string `json:"role"`
		Peer string `json:"peer"`
		Sig  string `json:"sig"`
	}
	if !ok || json.Unmarshal(sigs, &read) != nil {
		return nil, false
	}
	a.Signatures = make([]policy.Signature, 0, len(read))
	for _, r := range read {
		v, err := base64.StdEncoding.Strict().DecodeString(r.Sig)
		if err != nil {
			return nil, false
		}
		a.Signatures = append(a.Signatures, policy.Signature{Role: r.Role, Peer: r.Peer, Value: v})
	}
	if !bytes.Equal(signatureOf(a, policy.RoleProvider), e.meta.Signature) {
		return nil, false
	}
	canon, made, err := a.Seal(s.o.Verifier, []string{policy.RoleConsumer}, nil)
	if err != nil || !bytes.Equal(canon, e.canon) || !bytes.Equal(made, file) {
		return nil, false
	}
	return made, true
}

// agreementFile is the doubly signed agreement file of e, to store at
// FINALIZED: the one this side made in memory, or, if the negotiation was
// reloaded since, the one stored with it by an older version, or the one
// the negotiation's agreement carries, read and written again in
// canonical form. nil if there is none to store.
func (s *Service) agreementFile(e *entry) []byte {
	switch {
	case len(e.file) > 0:
		return e.file
	case len(e.meta.File) > 0:
		return e.meta.File
	}
	a, err := parseAgreementJSON(e.n.Agreement())
	if err == nil && a.ID == e.meta.AgreementID {
		var file []byte
		if file, err = a.MarshalJSON(); err == nil {
			return file
		}
	}
	s.log.Error("finalized negotiation without a readable agreement", "pid", e.key.Pid, "err", err)
	return nil
}

// signatureOf returns a's signature by role, nil if it has none, two, or
// one named for a peer other than the party in that role: the provider
// compares its own signature by value instead of verifying it, and a file
// naming another peer for it would not verify once stored.
func signatureOf(a policy.Agreement, role string) []byte {
	party := a.Provider
	if role == policy.RoleConsumer {
		party = a.Consumer
	}
	var sig []byte
	for _, x := range a.Signatures {
		if x.Role == role {
			if sig != nil || x.Peer != party {
				return nil
			}
			sig = x.Value
		}
	}
	return sig
}

// signedEntry is the audit entry for this node's signature on a.
func (s *Service) signedEntry(e *entry, a policy.Agreement, sum [sha256.Size]byte, role string, now time.Time) *audit.Entry {
	// The members json.Marshal wrote from a map, in its (sorted) order: a
	// struct spares building and sorting the map.
	data, _ := json.Marshal(struct {
		Consumer    string `json:"consumer"`
		Dataset     string `json:"dataset"`
		Negotiation string `json:"negotiation"`
		Provider    string `json:"provider"`
		SignedAs    string `json:"signedAs"`
		Terms       string `json:"terms"`
	}{a.Consumer, a.Dataset, e.key.Pid, a.Provider, role, hex.EncodeToString(sum[:])})
	return &audit.Entry{Time: now, Kind: audit.KindAgreementSigned, Subject: a.ID, Peer: e.n.Peer(), Data: data}
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

// offerRef reads the dataset (target) and offer id of a DSP offer.
func offerRef(raw json.RawMessage) (dataset, id string, err error) {
	var o struct {
		ID     string `json:"@id"`
		Target string `json:"target"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", "", err
	}
	return o.Target, o.ID, nil
}

// agreementJSON is the DSP agreement object: the agreed ODRL policy, with
// the signed agreement file under SignedAgreementKey.
func agreementJSON(a policy.Agreement) (json.RawMessage, error) {
	file, err := a.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return agreementObject(a, file)
}

// agreementObject is agreementJSON with the agreement file already made.
func agreementObject(a policy.Agreement, file []byte) (json.RawMessage, error) {
	pb, err := policy.Marshal(a.Policy)
	if err != nil {
		return nil, err
	}
	// policy.Marshal writes one JSON object; the file goes in as its last
	// member without decoding and re-encoding either (the file's bytes
	// stay exactly as signed).
	pb = bytes.TrimRight(pb, " \n")
	if len(pb) < 2 || pb[len(pb)-1] != '}' {
		return nil, fmt.Errorf("encoding agreement %s: policy is not a JSON object", a.ID)
	}
	key, _ := json.Marshal(SignedAgreementKey)
	out := make([]byte, 0, len(pb)+len(key)+len(file)+2)
	out = append(out, pb[:len(pb)-1]...)
	if len(pb) > 2 {
		out = append(out, ',')
	}
	out = append(append(append(out, key...), ':'), file...)
	return append(out, '}'), nil
}

// agreementMembers returns the signed agreement in raw, a DSP agreement
// object, and the strings its @id, target, assigner and assignee name
// ("" for any absent or not a string). Agreements as nodes write them
// are read without encoding/json (protocol.ObjectMembers), which would
// decode every member, the signed agreement included, into a map.
func agreementMembers(raw json.RawMessage) (file json.RawMessage, names [4]string, err error) {
	keys := [5]string{"@id", "target", "assigner", "assignee", SignedAgreementKey}
	var vals [len(keys)][]byte
	quick := protocol.ObjectMembers(raw, keys[:], vals[:])
	for i := range names {
		if !quick {
			break
		}
		if vals[i] != nil {
			names[i], quick = protocol.PlainString(vals[i])
		}
	}
	if !quick {
		names = [4]string{}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, names, fmt.Errorf("agreement is not a JSON object: %w", err)
		}
		for i := range names {
			if v, ok := m[keys[i]]; ok {
				_ = json.Unmarshal(v, &names[i])
			}
		}
		vals[4] = m[SignedAgreementKey]
	}
	if vals[4] == nil {
		return nil, names, fmt.Errorf("agreement carries no %s", SignedAgreementKey)
	}
	return vals[4], names, nil
}

// parseAgreementJSON reads the signed agreement out of a DSP agreement
// object and checks that the ODRL around it names the same agreement.
func parseAgreementJSON(raw json.RawMessage) (policy.Agreement, error) {
	// Members are looked up by their exact names: a case-insensitive match
	// would let "Target" stand in for "target".
	file, names, err := agreementMembers(raw)
	if err != nil {
		return policy.Agreement{}, err
	}
	var a policy.Agreement
	if err := a.UnmarshalJSON(file); err != nil {
		return policy.Agreement{}, err
	}
	if names != [4]string{a.ID, a.Dataset, a.Provider, a.Consumer} {
		return policy.Agreement{}, fmt.Errorf("the ODRL agreement and the signed agreement name different terms")
	}
	// Verify would refuse this too; refusing it here keeps a file whose
	// policy names other parties out of everything that reads one.
	if p := a.Policy; p.ID != a.ID || p.Target != a.Dataset || p.Assigner != a.Provider || p.Assignee != a.Consumer {
		return policy.Agreement{}, fmt.Errorf("the signed agreement's policy names other parties or another dataset than the agreement")
	}
	return a, nil
}
