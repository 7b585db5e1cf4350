package transfer

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mimnode/mimnode/protocol"
)

func TestNewRejectsIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  func() (*Process, error)
	}{
		{"consumer without callback", func() (*Process, error) { return NewConsumer(Config{Pid: "c", Peer: "P"}) }},
		{"consumer without peer", func() (*Process, error) { return NewConsumer(Config{Pid: "c", CallbackAddress: "/p2p/C"}) }},
		{"provider without pid", func() (*Process, error) { return NewProvider(Config{Peer: "C"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := tc.new(); !errors.Is(err, ErrBadConfig) {
				t.Fatalf("got %v, %v; want ErrBadConfig", p, err)
			}
		})
	}
}

func started(t *testing.T) *Process {
	t.Helper()
	p, err := NewProvider(Config{Pid: "urn:p", Peer: "C"})
	if err != nil {
		t.Fatal(err)
	}
	req := &protocol.TransferRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:c"}, AgreementID: "urn:agreement:1", Format: "mimnode-blocks", CallbackAddress: "/p2p/C"}
	if err := p.Step(Msg{Type: MsgReceive, Now: epoch, From: "C", Body: req}); err != nil {
		t.Fatal(err)
	}
	p.Advance()
	if err := p.Step(Msg{Type: MsgStart, Now: epoch}); err != nil {
		t.Fatal(err)
	}
	p.Advance()
	return p
}

func TestLocalInputErrors(t *testing.T) {
	consumer := func(t *testing.T) *Process {
		p, err := NewConsumer(Config{Pid: "urn:c", Peer: "P", CallbackAddress: "/p2p/C"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		p    func(*testing.T) *Process
		msg  Msg
		want error
	}{
		{"no time", consumer, Msg{Type: MsgRequest, AgreementID: "a", Format: "f"}, ErrBadInput},
		{"request without agreement", consumer, Msg{Type: MsgRequest, Now: epoch, Format: "f"}, ErrBadInput},
		{"consumer starts its own request", consumer, Msg{Type: MsgStart, Now: epoch}, ErrNotAllowed},
		{"complete before start", consumer, Msg{Type: MsgComplete, Now: epoch}, ErrNotAllowed},
		{"unknown input", consumer, Msg{Type: MsgType(42), Now: epoch}, ErrBadInput},
		{"start twice", started, Msg{Type: MsgStart, Now: epoch}, ErrNotAllowed},
		{"request as provider", started, Msg{Type: MsgRequest, Now: epoch, AgreementID: "a", Format: "f"}, ErrNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p(t)
			before, _ := p.Marshal()
			if err := p.Step(tc.msg); !errors.Is(err, tc.want) {
				t.Fatalf("Step(%s) = %v, want %v", tc.msg.Type, err, tc.want)
			}
			if after, _ := p.Marshal(); string(after) != string(before) || p.HasReady() {
				t.Fatalf("Step(%s) failed but changed the process", tc.msg.Type)
			}
		})
	}
}

func TestUnmarshalRejectsCorrupt(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"garbage", "{"},
		{"future version", `{"v":9,"role":"consumer","state":"REQUESTED","pids":{"consumerPid":"c"},"peer":"P"}`},
		{"unknown role", `{"v":1,"role":"broker","state":"REQUESTED","pids":{"consumerPid":"c"},"peer":"P"}`},
		{"unknown state", `{"v":1,"role":"consumer","state":"PAUSED","pids":{"consumerPid":"c"},"peer":"P"}`},
		{"no own pid", `{"v":1,"role":"consumer","state":"REQUESTED","pids":{"providerPid":"p"},"peer":"P"}`},
		{"bad pending message", `{"v":1,"role":"consumer","state":"REQUESTED","pids":{"consumerPid":"c"},"peer":"P","out":{"msg":{"@type":"X"},"expect":"REQUESTED","attempts":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Unmarshal([]byte(tc.body)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Unmarshal(%s) = %v, want ErrCorrupt", tc.body, err)
			}
		})
	}
}

// TestPairConverges drives a consumer and a provider against each other
// through request, start, suspend, resume and complete, losing messages
// and answers at random and restarting either side, and checks both end in
// the same state.
func TestPairConverges(t *testing.T) {
	const seeds = 400
	finished := 0
	for seed := uint64(0); seed < seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		loss := []float64{0, 0.2, 0.5}[seed%3]
		retry := RetryPolicy{Initial: time.Second, Max: 4 * time.Second, Timeout: 30 * time.Second}
		c, _ := NewConsumer(Config{Pid: "urn:c", Peer: "P", CallbackAddress: "/p2p/C", Retry: retry})
		var p *Process
		now := epoch
		lost := func() bool { return rng.Float64() < loss }
		var deliver func(fromConsumer bool, m protocol.Message)
		var act func(x *Process, rd Ready)
		deliver = func(fromConsumer bool, m protocol.Message) {
			if lost() {
				return
			}
			b, _ := protocol.Encode(m)
			m, _ = protocol.Decode(b)
			to, from, sender, responder := p, "C", c, "P"
			if !fromConsumer {
				to, from, sender, responder = c, "P", p, "C"
			}
			if to == nil {
				if _, isNew := Route(m); !isNew {
					return
				}
				p, _ = NewProvider(Config{Pid: "urn:p", Peer: "C", Retry: retry})
				to = p
			}
			_ = to.Step(Msg{Type: MsgReceive, Now: now, From: from, Body: m})
			rd := to.Ready()
			to.Advance()
			act(to, rd)
			if rd.Reply == nil || lost() {
				return
			}
			_ = sender.Step(Msg{Type: MsgReceive, Now: now, From: responder, Body: rd.Reply})
			srd := sender.Ready()
			sender.Advance()
			act(sender, srd)
		}
		// The drivers: the provider starts what is requested; the consumer
		// suspends once, resumes, then completes.
		suspended := false
		act = func(x *Process, rd Ready) {
			for _, m := range rd.Messages {
				deliver(x.Role() == Consumer, m)
			}
			var in Msg
			switch {
			case x.Todo() == TodoDecide:
				in = Msg{Type: MsgStart}
			case x.Role() == Consumer && x.State() == Started && !suspended:
				suspended = true
				in = Msg{Type: MsgSuspend}
			case x.Role() == Consumer && x.State() == Suspended:
				in = Msg{Type: MsgStart}
			case x.Role() == Consumer && x.State() == Started:
				in = Msg{Type: MsgComplete}
			default:
				return
			}
			in.Now = now
			if err := x.Step(in); err != nil {
				t.Fatalf("seed %d: %s %s: %v", seed, x.Role(), in.Type, err)
			}
			next := x.Ready()
			x.Advance()
			act(x, next)
		}
		if err := c.Step(Msg{Type: MsgRequest, Now: now, AgreementID: "urn:agreement:1", Format: "mimnode-blocks"}); err != nil {
			t.Fatal(err)
		}
		rd := c.Ready()
		c.Advance()
		act(c, rd)
		restart := func(x **Process) {
			if *x == nil || rng.Float64() >= 0.2 {
				return
			}
			b, err := (*x).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if *x, err = Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			act(*x, Ready{})
		}
		for round := 0; round < 10000; round++ {
			restart(&c)
			restart(&p)
			next := c.NextTick()
			if p != nil {
				if n := p.NextTick(); !n.IsZero() && (next.IsZero() || n.Before(next)) {
					next = n
				}
			}
			if next.IsZero() {
				break
			}
			now = next
			for _, x := range []*Process{c, p} {
				if x == nil {
					continue
				}
				_ = x.Step(Msg{Type: MsgTick, Now: now})
				rd := x.Ready()
				x.Advance()
				act(x, rd)
			}
		}
		if !c.State().Terminal() {
			t.Fatalf("seed %d (loss %.1f): consumer stuck in %s", seed, loss, c.State())
		}
		if p != nil && p.State() != c.State() {
			t.Fatalf("seed %d (loss %.1f): consumer ended %s, provider %s", seed, loss, c.State(), p.State())
		}
		if c.State() == Completed {
			finished++
		}
	}
	if finished < seeds/3 {
		t.Fatalf("only %d of %d runs completed; every lossless run must", finished, seeds)
	}
}

// FuzzStep hits a started provider process with arbitrary bodies: no
// panic, and a refused message changes nothing.
func FuzzStep(f *testing.F) {
	for _, s := range []string{
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"TransferSuspensionMessage","providerPid":"urn:p","consumerPid":"urn:c"}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"TransferCompletionMessage","providerPid":"urn:p","consumerPid":"urn:c"}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"TransferStartMessage","providerPid":"urn:p","consumerPid":"urn:c","urn:mimnode:seq":4}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"TransferProcess","providerPid":"urn:p","consumerPid":"urn:c","state":"STARTED"}`,
		`{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"TransferRequestMessage","consumerPid":"urn:c","agreementId":"a","format":"f","callbackAddress":"/p2p/C"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := protocol.Decode(body)
		if err != nil {
			return
		}
		p := started(t)
		before, _ := p.Marshal()
		err = p.Step(Msg{Type: MsgReceive, Now: epoch, From: "C", Body: m})
		rd := p.Ready()
		if err != nil {
			if after, _ := p.Marshal(); string(after) != string(before) || len(rd.Messages) > 0 || len(rd.Transitions) > 0 {
				t.Fatalf("refused %s changed the process", body)
			}
		}
		if rd.Reply != nil {
			if _, err := protocol.Encode(rd.Reply); err != nil {
				t.Fatalf("answer does not encode: %v", err)
			}
		}
	})
}
