package testnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	p2pproto "github.com/libp2p/go-libp2p/core/protocol"

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
	net := New(t, Shape{Cities: 1, AgenciesPerCity: 1, Researchers: 1}, Options{EntitiesPerModel: 5}).Federate().Seed().Publish()
	holder := net.Agencies()[0]
	env, lab := holder.Node(), net.Researchers()[0].Node()
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
	agreement := neg.AgreementID

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

	// The consumer cannot revoke what it does not enforce.
	if code, _ := revoke(t, lab, agreement, "no longer needed"); code != http.StatusForbidden {
		t.Errorf("revoke on the consumer answered %d, want 403", code)
	}
	if code, _ := revoke(t, env, "urn:uuid:no-such-agreement", ""); code != http.StatusNotFound {
		t.Errorf("revoke of an unknown agreement answered %d, want 404", code)
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
	if !errors.As(err, &re) || !strings.Contains(strings.Join(re.Reasons, " "), "revoked by its provider") {
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

	// The revocation is in the provider's log, which verifies.
	if _, err := env.Audit().Verify(); err != nil {
		t.Errorf("provider's audit log: %v", err)
	}
	entries, err := env.Audit().List(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var revoked []audit.Entry
	for _, e := range entries {
		if e.Kind == audit.KindAgreementRevoked {
			revoked = append(revoked, e)
		}
	}
	if len(revoked) != 1 || revoked[0].Subject != agreement {
		t.Errorf("provider's log holds agreement.revoked entries %+v, want one for %s", revoked, agreement)
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
