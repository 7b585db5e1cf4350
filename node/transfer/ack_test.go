package transfer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"testing"
	"time"

	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/protocol"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// TestForgedAcknowledgementIsRefused: a consumer acknowledges a receipt it
// made and signed itself, naming itself as the provider, with a usage of
// one byte. The provider refuses it, and its usage record and log keep
// the receipt it signed and the acknowledgement of that one.
func TestForgedAcknowledgementIsRefused(t *testing.T) {
	prov, cons := pair(t)
	upsert(t, prov.n, entities(t, 20, 0))
	a := agreePermissions(t, prov, cons, `{"action": "read"}`)
	started := make(chan transfer.Info, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Live exchanges the snapshot's receipt before it calls Started.
	go cons.svc.Live(lctx, a, transfer.LiveOptions{Started: func(in transfer.Info) { started <- in }})
	cin := <-started
	var before transfer.Info
	list, err := prov.svc.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.Role == dsp.Provider && in.State == dsp.Started {
			before = in
		}
	}
	if !before.Receipt || before.Usage.Entities != 20 {
		t.Fatalf("provider's record before: receipt %v, usage %+v; want the snapshot's acknowledged", before.Receipt, before.Usage)
	}
	// exchange sends one data request as the consumer and reads the answer.
	exchange := func(req transfer.DataRequest) ([]byte, error) {
		st, err := cons.n.Host().NewStream(ctx, prov.n.ID(), p2pproto.ID(protocol.TransferProtocol))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		b, _ := json.Marshal(req)
		if err := protocol.WriteFrame(st, b); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseWrite()
		f, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		return transfer.DecodeAnswer(f)
	}
	// sign signs as the consumer: msg, after the receipt text prefix.
	sign := func(prefix string, sg transfer.Signed, more ...byte) []byte {
		rb, _ := json.Marshal(sg.Receipt)
		sig, err := cons.n.Signer().Sign(append(append([]byte(prefix+"mimnode transfer receipt\n"), rb...), more...))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	acknowledge := func(sg transfer.Signed) error {
		sg.ConsumerSignature = sign("mimnode transfer acknowledgement\n", sg, sg.ProviderSignature...)
		_, err := exchange(transfer.DataRequest{Type: transfer.TypeAcknowledgement, ProviderPid: before.ID, ConsumerPid: cin.ID, Ack: &sg})
		return err
	}

	forged := transfer.Signed{Receipt: transfer.Receipt{ProviderPid: before.ID, ConsumerPid: cin.ID, Agreement: "urn:uuid:some-other-agreement",
		Dataset: "urn:mim:dataset:fake", Version: "fake", Provider: cons.id(), Consumer: cons.id(), Consumed: transfer.Usage{Bytes: 1}, Time: time.Now().UTC()}}
	forged.ProviderSignature = sign("", forged)
	if err := acknowledge(forged); err == nil {
		t.Error("the provider took an acknowledgement of a receipt it never signed")
	}
	// A receipt the provider does sign, for a usage of one byte, asked
	// for after the transfer's own was acknowledged: its acknowledgement
	// is refused too.
	b, err := exchange(transfer.DataRequest{Type: transfer.TypeReceiptRequest, ProviderPid: before.ID, ConsumerPid: cin.ID, Usage: &transfer.Usage{Bytes: 1}})
	if err != nil {
		t.Fatalf("a second receipt request: %v", err)
	}
	var sg transfer.Signed
	if err := json.Unmarshal(b, &sg); err != nil {
		t.Fatal(err)
	}
	if err := acknowledge(sg); err == nil {
		t.Error("the provider took a second acknowledgement of the transfer")
	}
	after, err := prov.svc.Get(before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Usage != before.Usage {
		t.Errorf("provider's usage record became %+v, was %+v", after.Usage, before.Usage)
	}
}
