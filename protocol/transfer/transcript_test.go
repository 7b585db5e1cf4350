package transfer

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

// Transcript files (testdata/*.txt) script one side of a transfer process,
// in the format of package negotiation's transcripts. Commands:
//
//	new consumer|provider pid=P peer=X [initial=D] [max=D] [timeout=D] [final=D]
//	request agreement=A format=F | start [address=yes] | suspend [code=C] [reason=R]
//	complete | terminate [code=C] [reason=R]
//	tick +D | restart | ack | resend | raw JSON
//	recv TYPE [from=X] [cpid=P] [ppid=P] [agreement=A] [format=F] [state=S] [code=C] [reason=R] [route=no]
//
// Every message the side under test emits is validated against the DSP
// JSON Schemas.
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
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			h := &harness{t: t, v: v, covered: covered, now: epoch}
			transcript.Run(t, f, *rewrite, func(t *testing.T, line string) string {
				h.t = t
				h.out = new(strings.Builder)
				h.run(line)
				return h.out.String()
			})
		})
	}
	if t.Failed() || *rewrite {
		return
	}
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

var allTransitions = func() []string {
	var out []string
	add := func(role Role, from, to State, cause string) {
		out = append(out, fmt.Sprintf("%s %s -> %s: %s", role, from, to, cause))
	}
	for _, r := range []Role{Consumer, Provider} {
		add(r, Initial, Requested, "consumer requested transfer")
		add(r, Requested, Started, "provider started transfer")
		for _, by := range []string{"here", "by peer"} {
			add(r, Started, Suspended, "suspended "+by)
			add(r, Suspended, Started, "resumed "+by)
			add(r, Started, Completed, "completed "+by)
			for _, s := range []State{Requested, Started, Suspended} {
				add(r, s, Terminated, "terminated "+by)
			}
		}
		add(r, Terminated, Terminated, "gave up resending")
	}
	add(Consumer, Requested, Terminated, "peer unreachable")
	add(Provider, Started, Terminated, "peer unreachable")
	add(Consumer, Requested, Terminated, "peer refused our message")
	return out
}()

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const dataAddressJSON = `{"@type":"DataAddress","endpointType":"https://mimnode.org/endpoint/libp2p","endpoint":"/p2p/peerP"}`

type harness struct {
	t       *testing.T
	v       *dspschema.Validator
	covered map[string]bool
	now     time.Time
	cfg     Config
	role    Role
	p       *Process
	lastIn  protocol.Message
	lastOut protocol.Message
	peerSeq uint64 // numbers the peer's messages as a mimnode peer would
	out     *strings.Builder
}

func (h *harness) printf(format string, args ...any) { fmt.Fprintf(h.out, format+"\n", args...) }

func (h *harness) run(line string) {
	if rest, ok := strings.CutPrefix(line, "raw "); ok {
		body, err := protocol.Decode([]byte(rest))
		if err != nil {
			h.printf("decode error: %v", err)
			h.printMsg("reply", protocol.TransferErrorFor(nil, err))
			return
		}
		h.deliver(h.cfg.Peer, body, true)
		return
	}
	cmd, pos, kv := transcript.Args(line)
	m := Msg{Now: h.now}
	reasons := func() []string {
		if r, ok := kv["reason"]; ok {
			return []string{r}
		}
		return nil
	}
	switch cmd {
	case "new":
		h.newProcess(pos, kv)
		return
	case "request":
		m.Type, m.AgreementID, m.Format = MsgRequest, kv["agreement"], kv["format"]
	case "start":
		m.Type = MsgStart
		if kv["address"] == "yes" {
			m.DataAddress = json.RawMessage(dataAddressJSON)
		}
	case "suspend":
		m.Type, m.Code, m.Reasons = MsgSuspend, protocol.Code(kv["code"]), reasons()
	case "complete":
		m.Type = MsgComplete
	case "terminate":
		m.Type, m.Code, m.Reasons = MsgTerminate, protocol.Code(kv["code"]), reasons()
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
		h.deliver(h.cfg.Peer, h.lastIn, true)
		return
	case "recv":
		h.recv(pos, kv)
		return
	default:
		h.t.Fatalf("unknown command %q", cmd)
	}
	if h.p == nil {
		h.t.Fatalf("%s before the process exists", cmd)
	}
	if err := h.p.Step(m); err != nil {
		h.printf("error: %v", err)
	}
	h.drain()
}

func (h *harness) newProcess(pos []string, kv map[string]string) {
	dur := func(k string) time.Duration {
		d, _ := time.ParseDuration(kv[k])
		return d
	}
	h.role = Role(pos[0])
	h.cfg = Config{Pid: kv["pid"], Peer: kv["peer"], CallbackAddress: "/p2p/self",
		Retry: RetryPolicy{Initial: dur("initial"), Max: dur("max"), Timeout: dur("timeout"), FinalTimeout: dur("final")}}
	h.p, h.lastIn, h.lastOut, h.now, h.peerSeq = nil, nil, nil, epoch, 0
	if h.role == Consumer {
		p, err := NewConsumer(h.cfg)
		if err != nil {
			h.t.Fatal(err)
		}
		h.p = p
	}
	h.printf("ok")
}

func (h *harness) recv(pos []string, kv map[string]string) {
	pids := protocol.Pids{}
	if h.p != nil {
		pids = h.p.Pids()
	}
	if h.role == Provider && pids.ProviderPid == "" && pos[0] != protocol.TypeTransferRequest {
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
	code := protocol.Code(kv["code"])
	var body protocol.Message
	switch pos[0] {
	case protocol.TypeTransferRequest:
		body = &protocol.TransferRequestMessage{Pids: protocol.Pids{ConsumerPid: pids.ConsumerPid}, AgreementID: kv["agreement"], Format: kv["format"], CallbackAddress: "/p2p/" + h.cfg.Peer}
	case protocol.TypeTransferStart:
		msg := &protocol.TransferStartMessage{Pids: pids}
		if kv["address"] == "yes" {
			msg.DataAddress = json.RawMessage(dataAddressJSON)
		}
		body = msg
	case protocol.TypeTransferSuspension:
		body = &protocol.TransferSuspensionMessage{Pids: pids, Code: code, Reason: reasons}
	case protocol.TypeTransferCompletion:
		body = &protocol.TransferCompletionMessage{Pids: pids}
	case protocol.TypeTransferTermination:
		body = &protocol.TransferTerminationMessage{Pids: pids, Code: code, Reason: reasons}
	case protocol.TypeTransferProcess:
		body = &protocol.TransferProcess{Pids: pids, State: kv["state"]}
	case protocol.TypeTransferError:
		body = &protocol.TransferError{Pids: pids, Code: code, Reason: reasons}
	default:
		h.t.Fatalf("recv: unknown type %q", pos[0])
	}
	h.numberPeerMessage(body, kv)
	b, err := protocol.Encode(body)
	if err != nil {
		h.t.Fatalf("recv: the script built an invalid message: %v", err)
	}
	decoded, err := protocol.Decode(b)
	if err != nil {
		h.t.Fatal(err)
	}
	from := h.cfg.Peer
	if f, ok := kv["from"]; ok {
		from = f
	}
	h.deliver(from, decoded, kv["route"] != "no")
}

func (h *harness) deliver(from string, body protocol.Message, route bool) {
	if !isAnswer(body) {
		h.lastIn = body
	}
	if route {
		candidates, isNew := Route(body)
		switch {
		case isNew && h.p != nil && h.p.Role() == Provider && h.p.Peer() == from && h.p.Pids().ConsumerPid == body.PIDs().ConsumerPid:
		case isNew && h.role == Provider && h.p == nil:
			p, err := NewProvider(h.cfg)
			if err != nil {
				h.t.Fatal(err)
			}
			h.p = p
		case isNew:
			h.printMsg("reply", UnknownTransfer(body))
			return
		default:
			found := false
			for _, k := range candidates {
				found = found || (h.p != nil && k.Role == h.p.Role() && k.Pid == h.p.Pid())
			}
			if !found {
				h.printMsg("reply", UnknownTransfer(body))
				return
			}
		}
	}
	if err := h.p.Step(Msg{Type: MsgReceive, Now: h.now, From: from, Body: body}); err != nil {
		h.printf("error: %v", err)
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			h.t.Fatalf("a refused peer message must give a *protocol.Error, got %v", err)
		}
		if rd := h.p.Ready(); rd.MustPersist || len(rd.Transitions) > 0 || len(rd.Messages) > 0 {
			h.t.Fatalf("a refused message changed the process: %+v", rd)
		}
	}
	h.drain()
}

func (h *harness) ack() {
	state := map[string]State{
		protocol.TypeTransferRequest: Requested, protocol.TypeTransferStart: Started,
		protocol.TypeTransferSuspension: Suspended, protocol.TypeTransferCompletion: Completed,
		protocol.TypeTransferTermination: Terminated,
	}[h.lastOut.MessageType()]
	pids := h.lastOut.PIDs()
	if pids.ProviderPid == "" {
		pids.ProviderPid = "urn:peer-pid"
	}
	h.deliver(h.cfg.Peer, &protocol.TransferProcess{Pids: pids, State: string(state)}, true)
}

func (h *harness) restart() {
	b, err := h.p.Marshal()
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := Unmarshal(b)
	if err != nil {
		h.t.Fatal(err)
	}
	if b2, _ := p.Marshal(); string(b2) != string(b) {
		h.t.Fatalf("Marshal(Unmarshal(b)) differs:\n%s\n%s", b, b2)
	}
	h.p = p
	h.printf("restarted")
	h.printState()
}

func (h *harness) drain() {
	rd := h.p.Ready()
	for _, tr := range rd.Transitions {
		h.printf("transition: %s", tr)
		h.covered[fmt.Sprintf("%s %s -> %s: %s", h.p.Role(), tr.From, tr.To, tr.Cause)] = true
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
	h.p.Advance()
	h.printState()
}

func (h *harness) printState() {
	s := "state: " + string(h.p.State())
	if todo := h.p.Todo(); todo != TodoNone {
		s += " todo=" + string(todo)
	}
	if next := h.p.NextTick(); !next.IsZero() {
		s += " next-tick=+" + next.Sub(h.now).String()
	}
	h.printf("%s", s)
}

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
	for _, k := range []string{"consumerPid", "providerPid", "agreementId", "format", "state", "code", "callbackAddress"} {
		if raw, ok := f[k]; ok {
			var s string
			_ = json.Unmarshal(raw, &s)
			parts = append(parts, k+"="+s)
		}
	}
	if _, ok := f["dataAddress"]; ok {
		parts = append(parts, "dataAddress=yes")
	}
	if raw, ok := f["urn:mimnode:seq"]; ok {
		parts = append(parts, "seq="+string(raw))
	}
	if raw, ok := f["reason"]; ok {
		var r []string
		_ = json.Unmarshal(raw, &r)
		for _, x := range r {
			parts = append(parts, fmt.Sprintf("reason=%q", x))
		}
	}
	h.printf("%s", strings.Join(parts, " "))
}
