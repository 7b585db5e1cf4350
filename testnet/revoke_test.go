package testnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mimnode/mimnode/content"
	"github.com/mimnode/mimnode/internal/syncbuf"
	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/audit"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/transfer"
	"github.com/mimnode/mimnode/protocol"
	"github.com/mimnode/mimnode/protocol/negotiation"
	dsp "github.com/mimnode/mimnode/protocol/transfer"
)

// revoke posts a revocation to n's API and decodes the answer.
func revoke(t *testing.T, n *node.Node, id, reason string) (int, contract.RevokeResult) {
	t.Helper()
	body, _ := json.Marshal(contract.RevokeRequest{Reason: reason})
	resp, err := http.Post(n.APIURL()+"/api/v1/agreements/"+url.PathEscape(id)+"/revoke", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out contract.RevokeResult
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, out
}

// agreed starts an agency and a researcher, publishes the agency's
// datasets and gets the researcher an agreement for its air quality; it
// returns the net, the agency, the two nodes and the agreement id.
func agreed(t *testing.T, ctx context.Context, o Options) (net *Net, holder *Member, env, lab *node.Node, agreement string) {
	t.Helper()
	net = New(t, Shape{Cities: 1, AgenciesPerCity: 1, Researchers: 1}, o).Federate().Seed().Publish()
	holder = net.Agencies()[0]
	env, lab = holder.Node(), net.Researchers()[0].Node()
	dataset := DatasetID(holder, "AirQualityObserved")
	net.WaitFor(10*time.Second, "the researcher sees the dataset", func() bool {
		_, err := lab.Catalog().Get(dataset)
		return err == nil
	})
	nid, err := lab.Contracts().Request(ctx, contract.RequestOptions{Provider: env.ID(), Dataset: dataset, Purpose: "research"})
	if err != nil {
		t.Fatal(err)
	}
	neg, err := lab.Contracts().Wait(ctx, nid)
	if err != nil || neg.State != negotiation.Finalized {
		t.Fatalf("negotiation ended %s (%v): %v", neg.State, neg.Reasons, err)
	}
	return net, holder, env, lab, neg.AgreementID
}

// TestRevokedAgreementStopsEveryTransfer: the provider revokes an
// agreement while the consumer follows its live feed. The feed ends at
// once with the provider's reason, a change written after the revocation
// never reaches the consumer, both sides' transfer records end
// TERMINATED, a new fetch under the agreement is refused, and the
// revocation is in the provider's verified log. Only the provider can
// revoke, and a second revocation changes nothing.
func TestRevokedAgreementStopsEveryTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, holder, env, lab, agreement := agreed(t, ctx, Options{EntitiesPerModel: 5})
	dataset := DatasetID(holder, "AirQualityObserved")

	started := make(chan transfer.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- lab.Transfers().Live(ctx, agreement, transfer.LiveOptions{Started: func(in transfer.Info) { started <- in }})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("live feed ended before it started: %v", err)
	}

	// Only the provider's word marks the consumer's agreement revoked.
	if err := lab.Contracts().Told(agreement, lab.ID(), []string{"revoked, says someone"}); !errors.Is(err, contract.ErrNotProvider) {
		t.Errorf("a revocation told by another peer: %v, want ErrNotProvider", err)
	}

	// The consumer cannot revoke what it does not enforce.
	if code, _ := revoke(t, lab, agreement, "no longer needed"); code != http.StatusForbidden {
		t.Errorf("revoke on the consumer answered %d, want 403", code)
	}
	if code, _ := revoke(t, env, "urn:uuid:no-such-agreement", ""); code != http.StatusNotFound {
		t.Errorf("revoke of an unknown agreement answered %d, want 404", code)
	}

	// A body that is not JSON is refused even when empty, as a form a
	// web page could post would be.
	resp, err := http.Post(env.APIURL()+"/api/v1/agreements/"+url.PathEscape(agreement)+"/revoke", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("revoke with an empty text/plain body answered %d, want 415", resp.StatusCode)
	}

	code, res := revoke(t, env, agreement, "the readings hold personal data")
	if code != http.StatusOK || res.AlreadyRevoked || res.Agreement != agreement || res.Consumer != lab.ID().String() {
		t.Fatalf("revoke answered %d %+v", code, res)
	}
	if len(res.EndedTransfers) != 1 {
		t.Errorf("revoke ended transfers %v, want the live one", res.EndedTransfers)
	}
	// A reading written once the revocation is answered stays with its
	// holder: the feed stopped before the answer.
	ents, err := net.Entities(holder, "AirQualityObserved", 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := Upsert(ctx, env.APIURL(), ents[5:]); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var re *transfer.RefusedError
		if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Reasons, " "), "the readings hold personal data") {
			t.Fatalf("live feed ended with %v, want a refusal naming the revocation's reason", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live feed still open 10 s after the revocation")
	}
	if got := getEntity(t, lab, EntityID("AirQualityObserved", holder, 5)); got != "" {
		t.Errorf("a reading written after the revocation reached the consumer: %s", got)
	}
	// The consumer's node, told by the provider, marks the agreement
	// revoked, with the provider's reason, and logs it.
	if list, err := lab.Contracts().Agreements(); err != nil || len(list) != 1 || list[0].Revoked == nil || !list[0].Revoked.Told ||
		!strings.Contains(list[0].Revoked.Reason, "the readings hold personal data") {
		t.Errorf("consumer's agreements: %+v, %v; want the one, marked revoked as its provider said", list, err)
	}

	// Both sides' records of the transfer end TERMINATED, with the reason.
	for _, side := range []struct {
		name string
		n    *node.Node
		role dsp.Role
	}{{"provider", env, dsp.Provider}, {"consumer", lab, dsp.Consumer}} {
		net.WaitFor(10*time.Second, side.name+"'s transfer TERMINATED", func() bool {
			list, err := side.n.Transfers().List()
			if err != nil {
				return false
			}
			for _, in := range list {
				if in.Role == side.role && in.Agreement == agreement {
					return in.State == dsp.Terminated && strings.Contains(strings.Join(in.Reasons, " "), "revoked")
				}
			}
			return false
		})
	}

	// Asking again is refused, with the reason.
	_, err = lab.Transfers().Fetch(ctx, agreement, transfer.FetchOptions{})
	var re *transfer.RefusedError
	if !errors.As(err, &re) || re.Code != protocol.CodeAgreementRevoked || !strings.Contains(strings.Join(re.Reasons, " "), "revoked by its provider") {
		t.Fatalf("fetch after the revocation: %v, want a refusal saying it was revoked", err)
	}

	// A second revocation keeps the first one's reason and time.
	code, again := revoke(t, env, agreement, "another reason")
	if code != http.StatusOK || !again.AlreadyRevoked || again.Reason != res.Reason || !again.Time.Equal(res.Time) {
		t.Errorf("second revoke answered %d %+v, want the first revocation %+v", code, again, res.Revocation)
	}
	list, err := env.Contracts().Agreements()
	if err != nil || len(list) != 1 || list[0].Revoked == nil || list[0].Revoked.Reason != res.Reason {
		t.Errorf("provider's agreements: %+v, %v; want the one, marked revoked", list, err)
	}

	// Asking again does not get a new agreement by itself: the request
	// waits for a person, who is told why; approved, it gets one.
	nid, err := lab.Contracts().Request(ctx, contract.RequestOptions{Provider: env.ID(), Dataset: dataset, Purpose: "research"})
	if err != nil {
		t.Fatal(err)
	}
	var held contract.Info
	net.WaitFor(10*time.Second, "the new request waits for a person on the provider", func() bool {
		pending, err := env.Contracts().Pending()
		if err != nil || len(pending) != 1 {
			return false
		}
		held = pending[0]
		return true
	})
	if !strings.Contains(held.Held, "was revoked") || !strings.Contains(held.Held, "the readings hold personal data") {
		t.Errorf("the held request says %q, want the revocation", held.Held)
	}
	if _, err := env.Contracts().Approve(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	if neg, err := lab.Contracts().Wait(ctx, nid); err != nil || neg.State != negotiation.Finalized || neg.AgreementID == agreement {
		t.Errorf("the approved request ended %s with agreement %s (%v), want a new agreement", neg.State, neg.AgreementID, err)
	}

	// The revocation is in the provider's log, which verifies.
	if _, err := env.Audit().Verify(); err != nil {
		t.Errorf("provider's audit log: %v", err)
	}
	if revoked := revokedEntries(t, env); len(revoked) != 1 || revoked[0].Subject != agreement {
		t.Errorf("provider's log holds agreement.revoked entries %+v, want one for %s", revoked, agreement)
	}
	// The consumer's log holds one notice, though the provider said it
	// more than once (the feed's end, the process's termination, the
	// refused fetch).
	if _, err := lab.Audit().Verify(); err != nil {
		t.Errorf("consumer's audit log: %v", err)
	}
	if revoked := revokedEntries(t, lab); len(revoked) != 1 || revoked[0].Subject != agreement || revoked[0].Peer != env.ID().String() {
		t.Errorf("consumer's log holds agreement.revoked entries %+v, want one for %s from its provider", revoked, agreement)
	}
}

// revokedEntries returns the agreement.revoked entries of n's log.
func revokedEntries(t *testing.T, n *node.Node) []audit.Entry {
	t.Helper()
	entries, err := n.Audit().List(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, e := range entries {
		if e.Kind == audit.KindAgreementRevoked {
			out = append(out, e)
		}
	}
	return out
}

// TestConsumerToldOfARevocationAtOnce: a consumer that runs no transfer
// under the agreement learns of its revocation when it happens: its
// agreement list marks it and its log holds it. A node that says it
// revoked an agreement it is not the provider of is not believed.
func TestConsumerToldOfARevocationAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net, _, env, lab, agreement := agreed(t, ctx, Options{EntitiesPerModel: 1})

	// The consumer tells the provider the agreement was revoked.
	st, err := lab.Host().NewStream(ctx, env.ID(), p2pproto.ID(protocol.TransferProtocol))
	if err != nil {
		t.Fatal(err)
	}
	notice, _ := json.Marshal(transfer.DataRequest{Type: transfer.TypeRevocation, Agreement: agreement, Reasons: []string{"revoked, honest"}})
	if err := protocol.WriteFrame(st, notice); err != nil {
		t.Fatal(err)
	}
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxTransferFrame)
	st.Reset()
	if err != nil {
		t.Fatal(err)
	}
	var re *transfer.RefusedError
	if _, err := transfer.DecodeAnswer(answer); !errors.As(err, &re) || re.Code != protocol.CodeWrongParty {
		t.Errorf("a revocation notice from the consumer: %v, want %s", err, protocol.CodeWrongParty)
	}
	if list, err := env.Contracts().Agreements(); err != nil || len(list) != 1 || list[0].Revoked != nil {
		t.Errorf("provider's agreements after a notice from its consumer: %+v, %v; want it not revoked", list, err)
	}

	if code, _ := revoke(t, env, agreement, "the study ended"); code != http.StatusOK {
		t.Fatalf("revoke answered %d", code)
	}
	net.WaitFor(10*time.Second, "the consumer marks the agreement revoked", func() bool {
		list, err := lab.Contracts().Agreements()
		return err == nil && len(list) == 1 && list[0].Revoked != nil && list[0].Revoked.Told &&
			strings.Contains(list[0].Revoked.Reason, "the study ended")
	})
	if ts, err := lab.Transfers().List(); err != nil || len(ts) != 0 {
		t.Errorf("consumer's transfers: %+v, %v; want none (it was told outside any)", ts, err)
	}
	// What the transfer service asks before passing received data on.
	if r, ok, err := lab.Contracts().ToldRevoked(agreement); err != nil || !ok || !r.Told {
		t.Errorf("ToldRevoked on the consumer = %+v, %v, %v; want the revocation it was told of", r, ok, err)
	}
	if revoked := revokedEntries(t, lab); len(revoked) != 1 || revoked[0].Peer != env.ID().String() {
		t.Errorf("consumer's log holds agreement.revoked entries %+v, want one from its provider", revoked)
	}
}

// TestResearcherServesNoTransfer: a researcher node takes the transfer
// protocol's messages about its own transfers (a provider ending one),
// but an agency asking it for data, or for a new transfer, gets its
// stream reset: researchers never serve.
func TestResearcherServesNoTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net := New(t, Shape{Cities: 1, AgenciesPerCity: 1, Researchers: 1}, Options{EntitiesPerModel: 1}).Federate()
	agency, lab := net.Agencies()[0].Node(), net.Researchers()[0].Node()
	request, err := protocol.Encode(&protocol.TransferRequestMessage{Pids: protocol.Pids{ConsumerPid: "urn:uuid:3b6a9e0e-1c5e-4a0e-9d43-7d1f0c1e2a11"},
		AgreementID: "urn:uuid:any", Format: transfer.FormatBlocks, CallbackAddress: "/p2p/" + agency.ID().String()})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(transfer.DataRequest{Type: transfer.TypeManifestRequest, ProviderPid: "urn:uuid:p", ConsumerPid: "urn:uuid:c"})
	for name, body := range map[string][]byte{"a transfer request": request, "a manifest request": data} {
		st, err := agency.Host().NewStream(ctx, lab.ID(), p2pproto.ID(protocol.TransferProtocol))
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.WriteFrame(st, body); err != nil {
			t.Fatal(err)
		}
		_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
		answer, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxTransferFrame)
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s to a researcher: answered %q (%v), want the stream reset", name, answer, err)
		}
		st.Reset()
	}
}

// TestRevokeStopsABlockRequestInFlight: a block request the provider is
// answering when the agreement is revoked ends there, on a slow link
// where the rest would take many seconds; it is not answered to the end.
func TestRevokeStopsABlockRequestInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, _, env, lab, agreement := agreed(t, ctx, Options{EntitiesPerModel: 1500, Shaping: true})
	// A live fetch makes the transfer process, STARTED on both sides
	// (and lands the snapshot); the test then asks for the blocks
	// itself, as a consumer would, to hold a block request open.
	started := make(chan transfer.Info, 1)
	go lab.Transfers().Live(ctx, agreement, transfer.LiveOptions{Started: func(in transfer.Info) { started <- in }})
	in := <-started
	pids := protocol.Pids{ConsumerPid: in.ID}
	provList, err := env.Transfers().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range provList {
		if p.Agreement == agreement {
			pids.ProviderPid = p.ID
		}
	}
	ask := func(r transfer.DataRequest) *bufio.Reader {
		b, _ := json.Marshal(r)
		st, err := lab.Host().NewStream(ctx, env.ID(), p2pproto.ID(protocol.TransferProtocol))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Reset() })
		if err := protocol.WriteFrame(st, b); err != nil {
			t.Fatal(err)
		}
		return bufio.NewReader(st)
	}
	f, err := protocol.ReadFrame(ask(transfer.DataRequest{Type: transfer.TypeManifestRequest, ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid}), protocol.MaxTransferFrame)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := transfer.DecodeAnswer(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := content.DecodeManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	var cids []string
	for _, b := range m.Blocks {
		cids = append(cids, b.CID.String())
	}
	if len(cids) < 8 {
		t.Fatalf("the version has %d blocks; the test needs a request that takes long", len(cids))
	}
	// 256 KiB/s: the blocks take many seconds to arrive whole.
	net.Shape(net.Index(env.ID()), net.Index(lab.ID()), Link{Bandwidth: 256 << 10})
	br := ask(transfer.DataRequest{Type: transfer.TypeBlockRequest, ProviderPid: pids.ProviderPid, ConsumerPid: pids.ConsumerPid, CIDs: cids})
	if _, err := protocol.ReadFrame(br, protocol.MaxTransferFrame); err != nil {
		t.Fatal(err)
	}
	if code, _ := revoke(t, env, agreement, "stop now"); code != http.StatusOK {
		t.Fatalf("revoke answered %d", code)
	}
	after := 0
	for ; after < len(cids)-1; after++ {
		if _, err := protocol.ReadFrame(br, protocol.MaxTransferFrame); err != nil {
			break
		}
	}
	if after == len(cids)-1 {
		t.Errorf("every one of the %d blocks asked for arrived after the revocation", len(cids))
	}
}

// TestTransfersOfARevocationCutShortEndAtRestart: a node that stopped
// after storing a revocation and before ending the agreement's transfers
// (here: it had no transfers to end then) ends them when it starts again.
func TestTransfersOfARevocationCutShortEndAtRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	net, holder, env, lab, agreement := agreed(t, ctx, Options{EntitiesPerModel: 5})
	if _, err := lab.Transfers().Fetch(ctx, agreement, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	started := make(chan transfer.Info, 1)
	liveCtx, stopLive := context.WithCancel(ctx)
	defer stopLive()
	go lab.Transfers().Live(liveCtx, agreement, transfer.LiveOptions{Started: func(in transfer.Info) { started <- in }})
	<-started
	env.Contracts().UseTransfers(nil) // the revocation is stored, its transfers are not ended
	if res, err := env.Contracts().Revoke(agreement, "cut short"); err != nil || len(res.EndedTransfers) != 0 {
		t.Fatalf("Revoke: %+v, %v", res, err)
	}
	liveState := func() dsp.State {
		list, err := holder.Node().Transfers().List()
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range list {
			if in.Agreement == agreement && in.Format == transfer.FormatLive {
				return in.State
			}
		}
		return ""
	}
	if st := liveState(); st != dsp.Started {
		t.Fatalf("provider's live transfer is %s before the restart, want STARTED", st)
	}
	i := net.Index(env.ID())
	net.Stop(i).Restart(i)
	net.WaitFor(10*time.Second, "the live transfer TERMINATED after the restart", func() bool { return liveState() == dsp.Terminated })
}

// TestOperatorLogTellsOutcomes: what an operator acts on or asks about
// is in the nodes' own log at the default level, not only in the
// transaction log: agreements made, transfers started and completed, a
// revocation on both sides, and a request that waits for a person.
func TestOperatorLogTellsOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lines syncbuf.Buffer
	net, holder, env, lab, agreement := agreed(t, ctx, Options{EntitiesPerModel: 2,
		Logger: slog.New(slog.NewTextHandler(&lines, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if _, err := lab.Transfers().Fetch(ctx, agreement, transfer.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, _ := revoke(t, env, agreement, "the study ended"); code != http.StatusOK {
		t.Fatalf("revoke answered %d", code)
	}
	if _, err := lab.Contracts().Request(ctx, contract.RequestOptions{Provider: env.ID(), Dataset: DatasetID(holder, "AirQualityObserved"), Purpose: "research"}); err != nil {
		t.Fatal(err)
	}
	// Each outcome is a line with its message and what it names.
	want := [][2]string{
		{`msg="contract agreed"`, "role=provider"},
		{`msg="contract agreed"`, "role=consumer"},
		{`msg="transfer started"`, "role=provider"},
		{`msg="transfer completed"`, "entities=2"},
		{`msg="agreement revoked"`, "agreement=" + agreement},
		{`msg="the provider revoked an agreement this node holds"`, "agreement=" + agreement},
		{`msg="a contract request waits for approval`, "why="},
	}
	logged := func(w [2]string) bool {
		for _, l := range strings.Split(lines.String(), "\n") {
			if strings.Contains(l, w[0]) && strings.Contains(l, w[1]) {
				return true
			}
		}
		return false
	}
	defer func() {
		if t.Failed() {
			t.Log(lines.String())
		}
	}()
	net.WaitFor(10*time.Second, "every outcome in the log", func() bool {
		for _, w := range want {
			if !logged(w) {
				return false
			}
		}
		return true
	})
	// And in each node's metrics, for a dashboard.
	for n, lines := range map[*node.Node][]string{
		env: {`mimnode_negotiations_total{outcome="agreed",role="provider"} 1`, `mimnode_transfers_total{outcome="completed",role="provider"} 1`},
		lab: {`mimnode_negotiations_total{outcome="agreed",role="consumer"} 1`, `mimnode_transfers_total{outcome="completed",role="consumer"} 1`,
			`mimnode_transfer_entities_total{role="consumer"} 2`},
	} {
		resp, err := http.Get(n.APIURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range lines {
			if !strings.Contains(string(body), l) {
				t.Errorf("%s's metrics lack %s", n.Config().Name, l)
			}
		}
	}
}
