package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/policy"
)

func TestFederationCommands(t *testing.T) {
	a, b := initDir(t), initDir(t)
	startDaemon(t, a)
	startDaemon(t, b)
	out, _, err := cli(t, "federation", "create", "Aarhus region", "--data", a, "--json")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var fed struct{ ID string }
	json.Unmarshal([]byte(out), &fed)
	bID := statusOf(t, b)["peerId"].(string)
	out, _, err = cli(t, "federation", "invite", bID, "--role", "researcher", "--name", "Lab", "--data", a, "--json")
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	var res struct {
		Applied bool
		Token   string
	}
	json.Unmarshal([]byte(out), &res)
	if !res.Applied || !strings.HasPrefix(res.Token, "mimfed1:") {
		t.Fatalf("invite answered %s", out)
	}
	if _, _, err := cli(t, "federation", "join", res.Token, "--data", b); err != nil {
		t.Fatalf("join: %v", err)
	}
	out, _, err = cli(t, "federation", "show", "Aarhus region", "--data", b)
	if err != nil || !strings.Contains(out, "researcher") || !strings.Contains(out, fed.ID) {
		t.Fatalf("show on b = %q, %v", out, err)
	}
	out, _, err = cli(t, "federation", "list", "--data", a)
	if err != nil || !strings.Contains(out, "Aarhus region") {
		t.Fatalf("list = %q, %v", out, err)
	}
	// A researcher is no admin: its change is refused with a reason.
	if _, _, err := cli(t, "federation", "revoke", statusOf(t, a)["peerId"].(string), "--data", b); err == nil || !strings.Contains(err.Error(), "not an admin") {
		t.Fatalf("revoke by non-admin: %v", err)
	}
	if out, _, err := cli(t, "federation", "revoke", bID, "--data", a); err != nil || strings.TrimSpace(out) != "revoke "+bID+": done" {
		// An applied revocation hands nobody a token.
		t.Fatalf("revoke: %q, %v; want only that it is done", out, err)
	}
	out, _, _ = cli(t, "federation", "show", fed.ID, "--data", a, "--json")
	if strings.Contains(out, bID) {
		t.Fatalf("revoked member still listed: %s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"federation", "join", "garbage"}, "token does not start"},
		{[]string{"federation", "invite", "notapeer"}, "peer ID"},
		{[]string{"federation", "invite", bID, "--role", "mayor"}, "want agency or researcher"},
		{[]string{"federation", "show", "nosuchfed"}, "unknown federation"},
	} {
		_, _, err := cli(t, append(tc.args, "--data", a)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mimnode %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestPolicyCheckAndTemplates(t *testing.T) {
	out, _, err := cli(t, "policy", "templates", "--json")
	if err != nil || !strings.Contains(out, "research-only") || !strings.Contains(out, "agency-internal") {
		t.Fatalf("templates = %q, %v", out, err)
	}
	// The list says how a dataset file gives a template what it needs.
	if out, _, err := cli(t, "policy", "templates"); err != nil || !strings.Contains(out, `"params": {"federation": "FEDERATION-ID"}`) {
		t.Errorf("templates = %q, %v; want how a dataset file gives params", out, err)
	}
	out, _, err = cli(t, "policy", "templates", "--show", "time-limited", "--days", "30")
	if err != nil || !strings.Contains(out, "elapsedTime") {
		t.Fatalf("templates --show time-limited = %q, %v", out, err)
	}
	if _, _, err := cli(t, "policy", "templates", "--show", "time-limited"); err == nil {
		t.Fatal("time-limited without --days accepted")
	}
	// A federation that is no federation ID, or a licence that is no IRI,
	// would make a policy that grants no one or attributes nothing.
	if _, _, err := cli(t, "policy", "templates", "--show", "agency-internal", "--federation", "garbage"); err == nil || !strings.Contains(err.Error(), "not a federation ID") {
		t.Errorf("agency-internal --federation garbage: %v", err)
	}
	if _, _, err := cli(t, "policy", "templates", "--show", "open-data", "--licence", "not an iri"); err == nil || !strings.Contains(err.Error(), "not an IRI") {
		t.Errorf("open-data --licence 'not an iri': %v", err)
	}
	if out, _, err := cli(t, "policy", "templates", "--show", "open-data", "--licence", "https://creativecommons.org/licenses/by/4.0/"); err != nil || !strings.Contains(out, "creativecommons") {
		t.Errorf("open-data with a licence IRI: %q, %v", out, err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonld")
	os.WriteFile(good, []byte(out), 0o644)
	if out, _, err := cli(t, "policy", "check", good); err != nil || !strings.HasPrefix(out, "valid") {
		t.Fatalf("check good = %q, %v", out, err)
	}
	bad := filepath.Join(dir, "bad.jsonld")
	os.WriteFile(bad, []byte(strings.Replace(out, `"elapsedTime"`, `"odrl:fooBar"`, 1)), 0o644)
	if out, _, err := cli(t, "policy", "check", bad); err == nil || !strings.Contains(out, "INVALID") {
		t.Fatalf("check bad = %q, %v; want INVALID and an error", out, err)
	}
	os.WriteFile(bad, []byte("{"), 0o644)
	if _, _, err := cli(t, "policy", "check", bad); err == nil {
		t.Fatal("check of malformed JSON succeeded")
	}
	// A JSON document with no policy in it says what one looks like.
	os.WriteFile(bad, []byte(`{"permission": [{"action": "use"}]}`), 0o644)
	if _, _, err := cli(t, "policy", "check", bad); err == nil || !strings.Contains(err.Error(), `"@type" Offer, Set or Agreement`) {
		t.Errorf("check of a document without @type: %v, want it to say what a policy is", err)
	}
}

func TestAgreementVerifyOffline(t *testing.T) {
	signer := func() *node.KeySigner {
		k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
		s, _ := node.NewKeySigner(k)
		return s
	}
	prov, cons, third := signer(), signer(), signer()
	tpl, _ := policy.LookupTemplate("research-only")
	offer, err := tpl.New(policy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := policy.NewAgreement(policy.Agreement{
		ID: "urn:uuid:6e0f5c7e-1111-4a8e-9b1a-000000000001", Dataset: "urn:mim:dataset:aarhus:air-quality",
		Provider: prov.PeerID(), Consumer: cons.PeerID(), Policy: offer,
		Created: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Sign(prov); err != nil {
		t.Fatal(err)
	}
	if err := a.Sign(cons); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(a)
	path := filepath.Join(t.TempDir(), "agreement.json")
	os.WriteFile(path, b, 0o644)
	out, _, err := cli(t, "agreement", "verify", path)
	if err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("verify = %q, %v", out, err)
	}
	tampered := strings.Replace(string(b), "air-quality", "noise", 1)
	os.WriteFile(path, []byte(tampered), 0o644)
	if _, _, err := cli(t, "agreement", "verify", path); err == nil {
		t.Fatal("tampered agreement verified")
	}
	forged := strings.ReplaceAll(string(b), cons.PeerID(), third.PeerID())
	os.WriteFile(path, []byte(forged), 0o644)
	if _, _, err := cli(t, "agreement", "verify", path); err == nil {
		t.Fatal("agreement naming another consumer verified")
	}
}

// Joining while no member answers (the inviter offline, or this node
// removed since its invitation) says so: the token alone cannot tell.
func TestJoinWithNoMemberAnsweringSaysSo(t *testing.T) {
	a, b := initDir(t), initDir(t)
	da := startDaemon(t, a)
	startDaemon(t, b)
	if _, _, err := cli(t, "federation", "create", "Aarhus region", "--data", a); err != nil {
		t.Fatalf("create: %v", err)
	}
	out, _, err := cli(t, "federation", "invite", statusOf(t, b)["peerId"].(string), "--role", "researcher", "--data", a, "--json")
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	var res struct{ Token string }
	json.Unmarshal([]byte(out), &res)
	da.kill()
	_, stderr, err := cli(t, "federation", "join", res.Token, "--data", b)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if !strings.Contains(stderr, "no member answered") {
		t.Errorf("join with the only other member offline said nothing of it on stderr: %q", stderr)
	}
}
