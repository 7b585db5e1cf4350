package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// providerAndResearcher starts two daemons, an agency that creates a
// federation and a researcher it invites; it returns their data
// directories and the agency's peer ID.
func providerAndResearcher(t *testing.T) (prov, res, provID string) {
	t.Helper()
	prov, res = initDir(t), initDir(t)
	startDaemon(t, prov)
	startDaemon(t, res)
	if _, _, err := cli(t, "federation", "create", "Region", "--data", prov); err != nil {
		t.Fatalf("create: %v", err)
	}
	resID := statusOf(t, res)["peerId"].(string)
	provID = statusOf(t, prov)["peerId"].(string)
	out, _, err := cli(t, "federation", "invite", resID, "--role", "researcher", "--name", "Lab", "--data", prov, "--json")
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	var inv struct{ Token string }
	json.Unmarshal([]byte(out), &inv)
	if _, _, err := cli(t, "federation", "join", inv.Token, "--data", res); err != nil {
		t.Fatalf("join: %v", err)
	}
	return prov, res, provID
}

// TestContractRequestWaitExportVerify runs the CLI story against
// two daemons: a provider records a research-only offer, a researcher
// requests it with --wait and gets an agreement id, exports the agreement
// and verifies it offline; a request with the wrong purpose prints the
// refusal reasons and fails; both audit logs verify.
func TestContractRequestWaitExportVerify(t *testing.T) {
	prov, res, provID := providerAndResearcher(t)

	const ds = "urn:ngsi-ld:Dataset:noise-levels-2025"
	offer, _, err := cli(t, "contract", "offer", "add", ds, "--template", "research-only", "--id", "urn:offer:noise-research", "--data", prov)
	if err != nil {
		t.Fatalf("offer add: %v", err)
	}
	offerFile := filepath.Join(t.TempDir(), "offer.json")
	os.WriteFile(offerFile, []byte(offer), 0o644)

	out, _, err := cli(t, "contract", "request", ds, "--provider", provID, "--offer-file", offerFile, "--purpose", "research", "--wait", "--data", res)
	if err != nil {
		t.Fatalf("request --wait: %v\n%s", err, out)
	}
	agreementID, ok := strings.CutPrefix(strings.TrimSpace(out), "agreement ")
	if !ok || !strings.HasPrefix(agreementID, "urn:uuid:") {
		t.Fatalf("request --wait printed %q, want the agreement id", out)
	}
	file := filepath.Join(t.TempDir(), "agreement.json")
	if _, _, err := cli(t, "agreement", "export", agreementID, "--out", file, "--data", res); err != nil {
		t.Fatalf("export: %v", err)
	}
	out, _, err = cli(t, "agreement", "verify", file)
	if err != nil || !strings.Contains(out, "valid") || !strings.Contains(out, provID) || strings.Contains(out, "reformatted") {
		t.Fatalf("verify exported agreement: %q, %v", out, err)
	}
	// Pretty-printed by another tool, it still verifies, and says so;
	// with a term changed, it does not.
	raw, _ := os.ReadFile(file)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	prettyFile := filepath.Join(t.TempDir(), "pretty.json")
	os.WriteFile(prettyFile, pretty.Bytes(), 0o644)
	if out, _, err := cli(t, "agreement", "verify", prettyFile); err != nil || !strings.Contains(out, "valid") || !strings.Contains(out, "reformatted") {
		t.Errorf("verify a pretty-printed agreement: %q, %v", out, err)
	}
	edited := bytes.Replace(pretty.Bytes(), []byte(`"research"`), []byte(`"commercial"`), 1)
	if bytes.Equal(edited, pretty.Bytes()) {
		t.Fatalf("no purpose to edit in %s", pretty.Bytes())
	}
	os.WriteFile(prettyFile, edited, 0o644)
	if out, _, err := cli(t, "agreement", "verify", prettyFile); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("verify an edited, pretty-printed agreement: %q, %v; want it refused", out, err)
	}
	// The provider holds the same agreement.
	provFile := filepath.Join(t.TempDir(), "provider.json")
	if _, _, err := cli(t, "agreement", "export", agreementID, "--out", provFile, "--data", prov); err != nil {
		t.Fatalf("export on provider: %v", err)
	}
	a, _ := os.ReadFile(file)
	b, _ := os.ReadFile(provFile)
	if string(a) != string(b) {
		t.Errorf("consumer and provider export different agreement files")
	}

	// The reasons are in the error (stderr), not on stdout, where a
	// script reading the agreement id would swallow them.
	out, _, err = cli(t, "contract", "request", ds, "--provider", provID, "--offer-file", offerFile, "--purpose", "advertising", "--wait", "--data", res)
	if err == nil || !strings.Contains(err.Error(), "refused (MIM-601)") || !strings.Contains(err.Error(), "\n  - ") || !strings.Contains(err.Error(), "purpose") || out != "" {
		t.Fatalf("request with the wrong purpose: %v\nstdout: %q", err, out)
	}

	// Manual approval: the request waits in the provider's pending list
	// until a person rejects it; the consumer sees the reason.
	const ds2 = "urn:ngsi-ld:Dataset:parking-sensors"
	manual, _, err := cli(t, "contract", "offer", "add", ds2, "--template", "research-only", "--manual", "--data", prov)
	if err != nil {
		t.Fatalf("offer add --manual: %v", err)
	}
	manualFile := filepath.Join(t.TempDir(), "manual.json")
	os.WriteFile(manualFile, []byte(manual), 0o644)
	out, _, err = cli(t, "contract", "request", ds2, "--provider", provID, "--offer-file", manualFile, "--purpose", "research", "--data", res, "--json")
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	var started struct{ ID string }
	json.Unmarshal([]byte(out), &started)
	var pending []struct{ ID, ConsumerPid string }
	for i := 0; i < 200 && len(pending) == 0; i++ {
		out, _, _ = cli(t, "contract", "pending", "--json", "--data", prov)
		json.Unmarshal([]byte(out), &pending)
		if len(pending) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(pending) != 1 || pending[0].ConsumerPid != started.ID {
		t.Fatalf("pending on the provider = %s, want the request %s", out, started.ID)
	}
	// The person deciding sees who asks, not only a peer ID.
	if out, _, err := cli(t, "contract", "pending", "--data", prov); err != nil || !strings.Contains(out, "(Lab, researcher in Region)") {
		t.Errorf("contract pending = %q, %v; want the requester named as the federation names it", out, err)
	}
	if out, _, err = cli(t, "contract", "reject", pending[0].ID, "--reason", "send a research plan first", "--data", prov); err != nil || !strings.Contains(out, "MIM-602") {
		t.Fatalf("reject: %v\n%s", err, out)
	}
	for i := 0; i < 200; i++ {
		out, _, err = cli(t, "contract", "show", started.ID, "--data", res)
		if strings.Contains(out, "TERMINATED") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !strings.Contains(out, "MIM-602") || !strings.Contains(out, "send a research plan first") {
		t.Fatalf("show on the consumer after rejection: %v\n%s", err, out)
	}

	out, _, err = cli(t, "contract", "list", "--data", res)
	if err != nil || strings.Count(out, "consumer") != 3 || !strings.Contains(out, "FINALIZED") || !strings.Contains(out, "TERMINATED") {
		t.Fatalf("contract list: %v\n%s", err, out)
	}
	offline := map[string]string{} // the anchors, for the check with the daemons stopped
	for _, dir := range []string{prov, res} {
		out, _, err = cli(t, "audit", "--verify", "--data", dir)
		if err != nil || !strings.Contains(out, "chain verified") || !strings.Contains(out, "agreement.signed") {
			t.Fatalf("audit --verify: %v\n%s", err, out)
		}
		const says = "anchor for a later check (keep it outside this node): "
		i := strings.Index(out, says)
		if i < 0 {
			t.Fatalf("audit --verify prints no anchor:\n%s", out)
		}
		anchor := strings.TrimSpace(out[i+len(says):])
		if out, _, err := cli(t, "audit", "--anchor", anchor, "--data", dir); err != nil || !strings.Contains(out, "anchors found unchanged: "+anchor) {
			t.Errorf("audit --anchor %s: %v\n%s", anchor, err, out)
		}
		if _, _, err := cli(t, "audit", "--anchor", "1:"+strings.Repeat("0", 64), "--data", dir); err == nil || !strings.Contains(err.Error(), "not the one anchored") {
			t.Errorf("audit --anchor of an entry the log does not hold: %v, want it to say the entry is not the one anchored", err)
		}
		if _, _, err := cli(t, "audit", "--anchor", "12", "--data", dir); err == nil || !strings.Contains(err.Error(), "SEQ:HASH") {
			t.Errorf("audit --anchor 12: %v, want it to say the form", err)
		}
		offline[dir] = anchor
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"contract", "request", ds}, "is not in this node's catalogue (check the spelling; 'mimnode catalog search'"},
		{[]string{"contract", "request", ds, "--offer-file", offerFile}, "name the peer that made the offer with --provider"},
		{[]string{"dataset", "show", ds}, "No such dataset: " + ds + " is not in this node's catalogue"},
		{[]string{"dataset", "retire", ds}, "No such dataset: this node publishes no dataset " + ds},
		{[]string{"contract", "request", ds, "--provider", "nope"}, "not a peer ID"},
		{[]string{"contract", "show", "urn:uuid:none"}, "unknown negotiation"},
		{[]string{"contract", "approve", "urn:uuid:none"}, "unknown negotiation"},
		{[]string{"agreement", "export", "urn:uuid:none"}, "unknown agreement"},
		{[]string{"fetch", ds}, "first ask for an agreement with 'mimnode contract request DATASET-ID --wait'"},
		{[]string{"contract", "offer", "add", ds, "--template", "nosuch"}, "unknown template"},
		{[]string{"contract", "offer", "add", "not a dataset", "--template", "open-data"}, "is not a dataset id"},
		{[]string{"contract", "offer", "add", ds, "--template", "open-data", "--id", "not a urn"}, "is not a URN or URL"},
		{[]string{"contract", "offer", "rm", ds, "urn:offer:none"}, "No such offer"},
	} {
		_, _, err := cli(t, append(tc.args, "--data", res)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mimnode %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	// A mistyped dataset id is not helped by --provider.
	if _, _, err := cli(t, "contract", "request", ds+"x", "--data", res); err == nil || strings.Contains(err.Error(), "--provider") {
		t.Errorf("request for a mistyped dataset id: %v, want no advice to give --provider", err)
	}
	// An offer can be removed; the agreement made under it stays.
	if _, _, err := cli(t, "contract", "offer", "rm", ds, "urn:offer:noise-research", "--data", prov); err != nil {
		t.Fatalf("offer rm: %v", err)
	}
	if out, _, err := cli(t, "contract", "offer", "list", "--data", prov); err != nil || strings.Contains(out, "urn:offer:noise-research") {
		t.Errorf("offer list after rm: %q, %v", out, err)
	}
	if out, _, err := cli(t, "agreement", "list", "--data", prov); err != nil || !strings.Contains(out, agreementID) {
		t.Errorf("agreement list after the offer was removed: %q, %v", out, err)
	}
	// With the daemons stopped, the logs are read and checked from the
	// stores themselves (a stopped node, a backup), anchors included.
	for dir, anchor := range offline {
		stopDaemon(t, dir)
		out, errOut, err := cli(t, "audit", "--anchor", anchor, "--data", dir)
		if err != nil || !strings.Contains(out, "chain verified") || !strings.Contains(out, "anchors found unchanged: "+anchor) ||
			!strings.Contains(out, "agreement.signed") || !strings.Contains(errOut, "no daemon runs for") {
			t.Errorf("audit --anchor with the daemon stopped: %v\n%s\n%s", err, out, errOut)
		}
	}
}

// TestAgreementRevoke: the provider revokes an agreement from the CLI;
// the consumer's fetch is then refused with the reason, the consumer
// cannot revoke, and the provider's list and log show the revocation.
func TestAgreementRevoke(t *testing.T) {
	prov, res, provID := providerAndResearcher(t)
	const ds = "urn:ngsi-ld:Dataset:noise-levels-2025"
	offer, _, err := cli(t, "contract", "offer", "add", ds, "--template", "research-only", "--data", prov)
	if err != nil {
		t.Fatalf("offer add: %v", err)
	}
	offerFile := filepath.Join(t.TempDir(), "offer.json")
	os.WriteFile(offerFile, []byte(offer), 0o644)
	out, _, err := cli(t, "contract", "request", ds, "--provider", provID, "--offer-file", offerFile, "--purpose", "research", "--wait", "--data", res)
	agreementID, ok := strings.CutPrefix(strings.TrimSpace(out), "agreement ")
	if err != nil || !ok {
		t.Fatalf("request --wait: %v\n%s", err, out)
	}

	// Each says what it is.
	for dir, role := range map[string]string{prov: "agency", res: "researcher"} {
		if out, _, err := cli(t, "status", "--data", dir); err != nil || !strings.Contains(out, "role:     "+role) || !strings.Contains(out, "API:      http://127.0.0.1:") {
			t.Errorf("status of the %s: %q, %v", role, out, err)
		}
	}
	if _, _, err := cli(t, "agreement", "revoke", agreementID, "--data", res); err == nil || !strings.Contains(err.Error(), "its provider "+provID+" can revoke it") {
		t.Errorf("revoke on the consumer: %v, want it to name the provider", err)
	}
	out, _, err = cli(t, "agreement", "revoke", agreementID, "--reason", "consent withdrawn", "--data", prov)
	if err != nil || !strings.Contains(out, "revoked agreement "+agreementID) {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	out, _, err = cli(t, "agreement", "revoke", agreementID, "--data", prov)
	if err != nil || !strings.Contains(out, "already revoked") || !strings.Contains(out, "consent withdrawn") {
		t.Errorf("second revoke: %v\n%s", err, out)
	}
	if out, _, err := cli(t, "agreement", "list", "--data", prov); err != nil || !strings.Contains(out, "REVOKED") {
		t.Errorf("agreement list on the provider: %q, %v", out, err)
	}
	_, _, err = cli(t, "fetch", agreementID, "--data", res)
	if err == nil || !strings.Contains(err.Error(), "revoked by its provider") || !strings.Contains(err.Error(), "consent withdrawn") {
		t.Errorf("fetch after the revocation: %v, want the refusal with the reason", err)
	}
	if out, _, err := cli(t, "audit", "--verify", "--data", prov); err != nil || !strings.Contains(out, "agreement.revoked") {
		t.Errorf("audit --verify on the provider: %v\n%s", err, out)
	}
	// The refusal told the researcher's node, which now marks the
	// agreement and logs the revocation too.
	if out, _, err := cli(t, "agreement", "list", "--data", res); err != nil || !strings.Contains(out, "REVOKED (its provider said so") {
		t.Errorf("agreement list on the consumer: %q, %v", out, err)
	}
	if out, _, err := cli(t, "audit", "--verify", "--data", res); err != nil || !strings.Contains(out, "agreement.revoked") {
		t.Errorf("audit --verify on the consumer: %v\n%s", err, out)
	}
}
