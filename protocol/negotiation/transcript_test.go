package negotiation

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/internal/dspschema"
	"github.com/mimnode/mimnode/protocol/internal/transcript"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt transcripts with the actual output")

// Transcript files (testdata/*.txt) script one side of a negotiation: the
// side under test is a Negotiation driven by a minimal driver (this
// harness), and the script plays the peer and the local decisions. Format:
//
//	# comment
//	command args...
//	----
//	expected output, up to a blank line
//
// Commands:
//
//	new consumer|provider pid=P peer=X [initial=D] [max=D] [timeout=D] [final=D] [idle=D]
//	request offer=O [purpose=P] | counter offer=O [purpose=P] | accept | verify agreement=A
//	decide agree agreement=A | decide offer offer=O | decide refuse|reject [reason=R] | decide queue
//	finalize | terminate [code=C] [reason=R]
//	tick +D              advance the clock by D, then step a MsgTick
//	restart              marshal, drop, unmarshal (a node restart)
//	ack                  the peer answers our last sent message with the state it leads to
//	recv TYPE [from=X] [cpid=P] [ppid=P] [offer=O] [agreement=A] [event=E] [state=S] [code=C] [reason=R] [callback=U] [purpose=P] [seq=N]
//	                     a peer message; pids default to the negotiation's, "-" omits one;
//	                     route=no skips the driver's routing and steps it in directly
//	resend               the peer sends its last message again
//	raw JSON             a raw frame body from the peer
//
// Offers O1, O2, O3 and agreements A1 (provider-signed) and A1c
// (countersigned) are fixtures below. Every message the side under test
// emits is validated against the DSP JSON Schemas.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	v, err := dspschema.Open(filepath.Join("..", "testdata", "dsp"))
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) { runTranscript(t, f, v, covered) })
	}
	if t.Failed() || *rewrite {
		return
	}
	// Every transition of both roles must appear in some transcript.
	var missing []string
	for _, tr := range allTransitions {
		if !covered[tr] {
			missing = append(missing, tr)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("transitions no transcript exercises:\n  %s", strings.Join(missing, "\n  "))
	}
}

// allTransitions lists every (role, from, to, cause) the state machine can
// take; TestTranscripts checks each is exercised.
var allTransitions = func() []string {
	var out []string
	add := func(role Role, from, to State, cause string) {
		out = append(out, fmt.Sprintf("%s %s -> %s: %s", role, from, to, cause))
	}
	add(Consumer, Initial, Requested, "consumer requested offer")
	add(Consumer, Requested, Offered, "provider offered")
	add(Consumer, Requested, Agreed, "provider agreed")
	add(Consumer, Offered, Requested, "consumer counter-offered")
	add(Consumer, Offered, Accepted, "consumer accepted offer")
	add(Consumer, Accepted, Agreed, "provider agreed")
	add(Consumer, Agreed, Verified, "consumer verified agreement")
	add(Consumer, Verified, Finalized, "provider finalized")
	add(Provider, Initial, Requested, "consumer requested offer")
	add(Provider, Requested, Offered, "provider offered")
	add(Provider, Requested, Agreed, "provider agreed")
	add(Provider, Requested, Terminated, "provider refused")
	add(Provider, Requested, Requested, "queued for manual approval")
	add(Provider, Offered, Requested, "consumer counter-offered")
	add(Provider, Offered, Accepted, "consumer accepted offer")
	add(Provider, Accepted, Agreed, "provider agreed")
	add(Provider, Accepted, Terminated, "provider refused")
	add(Provider, Agreed, Verified, "consumer verified agreement")
	add(Provider, Verified, Finalized, "provider finalized")
	for _, role := range []Role{Consumer, Provider} {
		for _, s := range []State{Requested, Offered, Accepted, Agreed, Verified} {
			add(role, s, Terminated, "terminated here")
			add(role, s, Terminated, "terminated by peer")
		}
		add(role, Terminated, Terminated, "gave up resending")
	}
	add(Consumer, Requested, Terminated, "peer unreachable")
	add(Provider, Agreed, Terminated, "peer unreachable")
	add(Consumer, Requested, Terminated, "peer refused our message")
	add(Consumer, Requested, Terminated, "peer idle")
	return out
}()

var fixtures = map[string]string{
	"O1":  `{"@id":"urn:offer:O1","@type":"Offer","target":"urn:dataset:air-quality","permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":"research"}]}]}`,
	"O2":  `{"@id":"urn:offer:O2","@type":"Offer","target":"urn:dataset:air-quality","permission":[{"action":"use","constraint":[{"leftOperand":"elapsedTime","operator":"lteq","rightOperand":"P30D"}]}]}`,
	"O3":  `{"@id":"urn:offer:O3","@type":"Offer","target":"urn:dataset:air-quality","permission":[{"action":"use"}]}`,
	"A1":  `{"@id":"urn:agreement:A1","@type":"Agreement","target":"urn:dataset:air-quality","assigner":"peerP","assignee":"peerC","timestamp":"2026-01-01T00:00:00Z","permission":[{"action":"use"}],"providerSignature":"sig-P"}`,
	"A1c": `{"@id":"urn:agreement:A1","@type":"Agreement","target":"urn:dataset:air-quality","assigner":"peerP","assignee":"peerC","timestamp":"2026-01-01T00:00:00Z","permission":[{"action":"use"}],"providerSignature":"sig-P","consumerSignature":"sig-C"}`,
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness is a minimal driver for one node's side of a negotiation.
type harness struct {
	t       *testing.T
	v       *dspschema.Validator
	covered map[string]bool
	now     time.Time
	cfg     Config
	n       *Negotiation // nil until created (provider: by the first request)
	lastIn  protocol.Message
	lastOut protocol.Message
	peerSeq uint64 // numbers the peer's messages as a mimnode peer would
	out     *strings.Builder
}

func (h *harness) printf(format string, args ...any) { fmt.Fprintf(h.out, format+"\n", args...) }

func runTranscript(t *testing.T, path string, v *dspschema.Validator, covered map[string]bool) {
	h := &harness{t: t, v: v, covered: covered, now: epoch}
	transcript.Run(t, path, *rewrite, func(t *testing.T, line string) string {
		h.t = t
		h.out = new(strings.Builder)
		h.run(line)
		return h.out.String()
	})
}

func fixture(name string) json.RawMessage {
	if name == "" {
		return nil
	}
	if f, ok := fixtures[name]; ok {
		return json.RawMessage(f)
	}
	return json.RawMessage(name) // literal JSON
}

func (h *harness) run(line string) {
	if cmd, rest, ok := strings.Cut(line, " "); ok && cmd == "raw" {
		body, err := protocol.Decode([]byte(rest))
		if err != nil {
			reply := protocol.NegotiationErrorFor(nil, err)
			h.printf("decode error: %v", err)
			h.printMsg("reply", reply)
			return
		}
		h.deliver(h.cfg.Peer, body)
		return
	}
	cmd, pos, kv := transcript.Args(line)
	m := Msg{Now: h.now}
	switch cmd {
	case "new":
		h.newNegotiation(pos, kv)
		return
	case "request":
		m.Type, m.Offer, m.Purpose = MsgRequest, fixture(kv["offer"]), kv["purpose"]
	case "counter":
		m.Type, m.Offer, m.Purpose = MsgCounter, fixture(kv["offer"]), kv["purpose"]
	case "accept":
		m.Type = MsgAccept
	case "verify":
		m.Type, m.Agreement = MsgVerify, fixture(kv["agreement"])
	case "finalize":
		m.Type = MsgFinalize
	case "terminate":
		m.Type, m.Code = MsgTerminate, protocol.Code(kv["code"])
		if r, ok := kv["reason"]; ok {
			m.Reasons = []string{r}
		}
	case "decide":
		m.Type = MsgDecide
		switch pos[0] {
		case "agree":
			m.Verdict, m.Agreement = Agree, fixture(kv["agreement"])
		case "offer":
			m.Verdict, m.Offer = CounterOffer, fixture(kv["offer"])
		case "refuse", "reject":
			m.Verdict = Refuse
			if pos[0] == "reject" {
				m.Code = protocol.CodeRejected
			}
			if r, ok := kv["reason"]; ok {
				m.Reasons = []string{r}
			}
		case "queue":
			m.Verdict = Queue
		default:
			h.t.Fatalf("unknown verdict %q", pos[0])
		}
	case "tick":
		d, err := time.ParseDuration(strings.TrimPrefix(pos[0], "+"))
		if err != nil {
			h.t.Fatalf("tick %q: %v", pos[0], err)
		}
		h.now = h.now.Add(d)
		m.Type, m.Now = MsgTick, h.now
	case "restart":
		h.restart()
		return
	case "ack":
		h.ack()
		return
	case "resend":
		if h.lastIn == nil {
			h.t.Fatal("resend before any recv")
		}
		h.deliver(h.cfg.Peer, h.lastIn)
		return
	case "recv":
		h.recv(pos, kv)
		return
	default:
		h.t.Fatalf("unknown command %q", cmd)
	}
	if h.n == nil {
		h.t.Fatalf("%s before the negotiation exists", cmd)
	}
	if err := h.n.Step(m); err != nil {
		h.printf("error: %v", err)
	}
	h.drain()
}

func (h *harness) newNegotiation(pos []string, kv map[string]string) {
	dur := func(k string) time.Duration {
		if kv[k] == "" {
			return 0
		}
		d, err := time.ParseDuration(kv[k])
		if err != nil {
			h.t.Fatalf("new %s=%q: %v", k, kv[k], err)
		}
		return d
	}
	h.cfg = Config{Role: Role(pos[0]), Pid: kv["pid"], Peer: kv["peer"], CallbackAddress: "/p2p/self",
		Retry: RetryPolicy{Initial: dur("initial"), Max: dur("max"), Timeout: dur("timeout"), Idle: dur("idle"), FinalTimeout: dur("final")}}
	h.n, h.lastIn, h.lastOut, h.peerSeq = nil, nil, nil, 0
	h.now = epoch
	if h.cfg.Role == Consumer {
		n, err := NewConsumer(h.cfg)
		if err != nil {
			h.t.Fatal(err)
		}
		h.n = n
	}
	h.printf("ok")
}

func (h *harness) recv(pos []string, kv map[string]string) {
	typ := pos[0]
	pids := protocol.Pids{}
	if h.n != nil {
		pids = h.n.Pids()
	}
	if h.cfg.Role == Provider && pids.ProviderPid == "" && typ != protocol.TypeContractRequest {
		pids.ProviderPid = h.cfg.Pid
	}
	set := func(key string, dst *string) {
		if v, ok := kv[key]; ok {
			if v == "-" {
				v = ""
			}
			*dst = v
		}
	}
	set("cpid", &pids.ConsumerPid)
	set("ppid", &pids.ProviderPid)
	var reasons protocol.Reasons
	if r, ok := kv["reason"]; ok {
		reasons = protocol.Reasons{r}
	}
	var body protocol.Message
	switch typ {
	case protocol.TypeContractRequest:
		cb := ""
		if pids.ProviderPid == "" {
			cb = "/p2p/" + h.cfg.Peer
		}
		set("callback", &cb)
		body = &protocol.ContractRequestMessage{Pids: pids, Offer: fixture(kv["offer"]), CallbackAddress: cb, Purpose: kv["purpose"]}
	case protocol.TypeContractOffer:
		body = &protocol.ContractOfferMessage{Pids: pids, Offer: fixture(kv["offer"])}
	case protocol.TypeContractAgreement:
		body = &protocol.ContractAgreementMessage{Pids: pids, Agreement: fixture(kv["agreement"])}
	case protocol.TypeContractAgreementVerification:
		body = &protocol.ContractAgreementVerificationMessage{Pids: pids, Agreement: fixture(kv["agreement"])}
	case protocol.TypeContractNegotiationEvent:
		body = &protocol.ContractNegotiationEventMessage{Pids: pids, EventType: kv["event"]}
	case protocol.TypeContractNegotiationTermination:
		body = &protocol.ContractNegotiationTerminationMessage{Pids: pids, Code: protocol.Code(kv["code"]), Reason: reasons}
	case protocol.TypeContractNegotiation:
		body = &protocol.ContractNegotiation{Pids: pids, State: kv["state"]}
	case protocol.TypeContractNegotiationError:
		body = &protocol.ContractNegotiationError{Pids: pids, Code: protocol.Code(kv["code"]), Reason: reasons}
	default:
		h.t.Fatalf("recv: unknown type %q", typ)
	}
	h.numberPeerMessage(body, kv)
	// The peer's message goes through the wire format, as it would.
	b, err := protocol.Encode(body)
	if err != nil {
		h.t.Fatalf("recv: the script built an invalid message: %v", err)
	}
	decoded, err := protocol.Decode(b)
	if err != nil {
		h.t.Fatalf("recv: %v", err)
	}
	from := h.cfg.Peer
	if f, ok := kv["from"]; ok {
		from = f
	}
	if kv["route"] == "no" {
		h.deliverDirect(from, decoded)
		return
	}
	h.deliver(from, decoded)
}

// deliver plays the driver's stream handler: route, create or look up,
// step, answer.
func (h *harness) deliver(from string, body protocol.Message) {
	if _, isAnswer := body.(*protocol.ContractNegotiation); !isAnswer {
		if _, isErr := body.(*protocol.ContractNegotiationError); !isErr {
			h.lastIn = body
		}
	}
	candidates, isNew := Route(body)
	switch {
	case isNew && h.cfg.Role == Provider && h.n != nil && h.n.Peer() == from && h.n.Pids().ConsumerPid == body.PIDs().ConsumerPid:
		// A resent first request: same sender, same consumerPid.
	case isNew && h.cfg.Role == Provider && h.n == nil:
		n, err := NewProvider(h.cfg)
		if err != nil {
			h.t.Fatal(err)
		}
		h.n = n
	case isNew:
		h.printMsg("reply", UnknownNegotiation(body))
		return
	default:
		found := false
		for _, k := range candidates {
			found = found || (h.n != nil && k.Role == h.n.Role() && k.Pid == h.n.Pid())
		}
		if !found {
			h.printMsg("reply", UnknownNegotiation(body))
			return
		}
	}
	h.deliverDirect(from, body)
}

// deliverDirect steps body into the negotiation without routing, the way a
// driver with a bug (or a pid collision) would: the state machine must
// still refuse what is not for it.
func (h *harness) deliverDirect(from string, body protocol.Message) {
	err := h.n.Step(Msg{Type: MsgReceive, Now: h.now, From: from, Body: body})
	if err != nil {
		h.printf("error: %v", err)
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			h.t.Fatalf("a refused peer message must give a *protocol.Error, got %v", err)
		}
		if rd := h.n.Ready(); rd.MustPersist || len(rd.Transitions) > 0 || len(rd.Messages) > 0 {
			h.t.Fatalf("a refused message changed the negotiation: %+v", rd)
		}
	}
	h.drain()
}

func (h *harness) ack() {
	if h.lastOut == nil {
		h.t.Fatal("ack before anything was sent")
	}
	state := map[string]State{
		protocol.TypeContractRequest: Requested, protocol.TypeContractOffer: Offered,
		protocol.TypeContractAgreement: Agreed, protocol.TypeContractAgreementVerification: Verified,
		protocol.TypeContractNegotiationTermination: Terminated,
	}[h.lastOut.MessageType()]
	if e, ok := h.lastOut.(*protocol.ContractNegotiationEventMessage); ok {
		state = map[string]State{protocol.EventAccepted: Accepted, protocol.EventFinalized: Finalized}[e.EventType]
	}
	pids := h.lastOut.PIDs()
	if pids.ProviderPid == "" {
		pids.ProviderPid = "urn:peer-pid"
	}
	h.deliver(h.cfg.Peer, &protocol.ContractNegotiation{Pids: pids, State: string(state)})
}

func (h *harness) restart() {
	b, err := h.n.Marshal()
	if err != nil {
		h.t.Fatalf("Marshal: %v", err)
	}
	n, err := Unmarshal(b)
	if err != nil {
		h.t.Fatalf("Unmarshal: %v", err)
	}
	b2, err := n.Marshal()
	if err != nil || string(b2) != string(b) {
		h.t.Fatalf("Marshal(Unmarshal(b)) differs:\n%s\n%s", b, b2)
	}
	h.n = n
	h.printf("restarted")
	h.printState()
}

// drain plays the rest of the driver: take Ready, check and print it,
// Advance.
func (h *harness) drain() {
	rd := h.n.Ready()
	for _, tr := range rd.Transitions {
		h.printf("transition: %s", tr)
		h.covered[fmt.Sprintf("%s %s -> %s: %s", h.n.Role(), tr.From, tr.To, tr.Cause)] = true
	}
	for _, m := range rd.Messages {
		h.printMsg("send", m)
		h.lastOut = m
	}
	if rd.Reply != nil {
		h.printMsg("reply", rd.Reply)
	}
	if (len(rd.Transitions) > 0 || len(rd.Messages) > 0) && !rd.MustPersist {
		h.t.Fatal("Ready has transitions or messages but MustPersist is false")
	}
	h.n.Advance()
	h.printState()
}

func (h *harness) printState() {
	s := fmt.Sprintf("state: %s", h.n.State())
	if todo := h.n.Todo(); todo != TodoNone {
		s += " todo=" + string(todo)
	}
	if p := h.n.Purpose(); p != "" {
		s += " purpose=" + p
	}
	if next := h.n.NextTick(); !next.IsZero() {
		s += " next-tick=+" + next.Sub(h.now).String()
	}
	h.printf("%s", s)
}

// printMsg prints a one-line summary of m after checking it against its
// DSP schema.
// numberPeerMessage gives the peer's protocol message its sequence
// number: the next one, or seq=N from the script (seq=0 plays a peer that
// sends none).
func (h *harness) numberPeerMessage(body protocol.Message, kv map[string]string) {
	s, ok := body.(protocol.Sequenced)
	if !ok {
		return
	}
	if v, given := kv["seq"]; given {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			h.t.Fatalf("seq=%q: %v", v, err)
		}
		s.SetSeqNo(n)
		return
	}
	h.peerSeq++
	s.SetSeqNo(h.peerSeq)
}

func (h *harness) printMsg(label string, m protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		h.t.Fatalf("%s %s does not encode: %v", label, m.MessageType(), err)
	}
	if err := h.v.Validate(m.MessageType(), b); err != nil {
		h.t.Fatalf("%s %s fails the DSP schema: %v\n%s", label, m.MessageType(), err, b)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(b, &f); err != nil {
		h.t.Fatal(err)
	}
	parts := []string{label + ": " + m.MessageType()}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(f[k], &s)
		return s
	}
	id := func(k string) string {
		var o struct {
			ID string `json:"@id"`
		}
		_ = json.Unmarshal(f[k], &o)
		return o.ID
	}
	for _, k := range []string{"consumerPid", "providerPid", "eventType", "state", "code", "callbackAddress"} {
		if _, ok := f[k]; ok {
			parts = append(parts, k+"="+str(k))
		}
	}
	for _, k := range []string{"offer", "agreement"} {
		if _, ok := f[k]; ok {
			parts = append(parts, k+"="+id(k))
		}
	}
	if raw, ok := f["urn:mimnode:seq"]; ok {
		parts = append(parts, "seq="+string(raw))
	}
	if _, ok := f["urn:mimnode:purpose"]; ok {
		parts = append(parts, "purpose="+str("urn:mimnode:purpose"))
	}
	if _, ok := f["reason"]; ok {
		var r []string
		_ = json.Unmarshal(f["reason"], &r)
		for _, x := range r {
			parts = append(parts, fmt.Sprintf("reason=%q", x))
		}
	}
	h.printf("%s", strings.Join(parts, " "))
}
