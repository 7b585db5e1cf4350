package contract_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

func call(t *testing.T, n *node.Node, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, n.APIURL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHTTPRoutes drives the negotiation, agreement and offer routes of a
// running node the way the CLI does, including the errors a user sees.
func TestHTTPRoutes(t *testing.T) {
	prov := startAt(t, initDir(t, "Transport"))
	res := startAt(t, initDir(t, "University"))
	federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	code, offer := call(t, prov, "POST", "/api/v1/offers", `{"dataset":"`+dsNoise+`","template":"research-only","id":"urn:offer:r","manual":true}`)
	if code != http.StatusCreated || !bytes.Contains(offer, []byte(`"mim:manualApproval":true`)) {
		t.Fatalf("POST /api/v1/offers = %d %s", code, offer)
	}
	code, body := call(t, res, "POST", "/api/v1/negotiations", `{"dataset":"`+dsNoise+`","provider":"`+prov.ID().String()+`","offer":`+string(offer)+`,"purpose":"research"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/negotiations = %d %s", code, body)
	}
	var started contract.Info
	json.Unmarshal(body, &started)
	var pending []contract.Info
	eventually(t, 10*time.Second, "request pending on the provider", func() bool {
		_, b := call(t, prov, "GET", "/api/v1/negotiations/pending", "")
		pending = nil
		json.Unmarshal(b, &pending)
		return len(pending) == 1
	})
	if code, body := call(t, prov, "POST", "/api/v1/negotiations/"+pending[0].ID+"/approve", ""); code != http.StatusOK {
		t.Fatalf("approve = %d %s", code, body)
	}
	done := wait(t, res, started.ID)
	if done.State != negotiation.Finalized {
		t.Fatalf("ended %s", done.State)
	}
	code, file := call(t, res, "GET", "/api/v1/agreements/"+done.AgreementID, "")
	stored, _ := res.Contracts().Agreement(done.AgreementID)
	if code != http.StatusOK || !bytes.Equal(file, stored) {
		t.Errorf("GET agreement = %d, not the stored bytes:\n%s\n%s", code, file, stored)
	}

	for _, tc := range []struct {
		name, method, path, body string
		node                     *node.Node
		status                   int
	}{
		{"list", "GET", "/api/v1/negotiations", "", res, 200},
		{"show", "GET", "/api/v1/negotiations/" + started.ID, "", res, 200},
		{"agreements", "GET", "/api/v1/agreements", "", prov, 200},
		{"audit verified", "GET", "/api/v1/audit?verify=true", "", prov, 200},
		{"unknown negotiation", "GET", "/api/v1/negotiations/urn:uuid:none", "", res, 404},
		{"unknown agreement", "GET", "/api/v1/agreements/urn:uuid:none", "", res, 404},
		{"approve twice", "POST", "/api/v1/negotiations/" + pending[0].ID + "/approve", "", prov, 409},
		{"reject a finished one", "POST", "/api/v1/negotiations/" + pending[0].ID + "/reject", `{"reason":"no"}`, prov, 409},
		{"no provider", "POST", "/api/v1/negotiations", `{"dataset":"x"}`, res, 400},
		{"bad provider", "POST", "/api/v1/negotiations", `{"dataset":"x","provider":"nope"}`, res, 400},
		{"self as provider", "POST", "/api/v1/negotiations", `{"dataset":"x","provider":"` + res.ID().String() + `","offer":` + string(offer) + `}`, res, 400},
		{"offer for another dataset", "POST", "/api/v1/negotiations", `{"dataset":"urn:x","provider":"` + prov.ID().String() + `","offer":` + string(offer) + `}`, res, 400},
		{"no offer known", "POST", "/api/v1/negotiations", `{"dataset":"urn:x","provider":"` + prov.ID().String() + `"}`, res, 400},
		{"unknown field", "POST", "/api/v1/negotiations", `{"dataset":"x","bogus":1}`, res, 400},
		{"offer without template or odrl", "POST", "/api/v1/offers", `{"dataset":"x"}`, prov, 400},
		{"offer with unknown template", "POST", "/api/v1/offers", `{"dataset":"x","template":"nope"}`, prov, 400},
		{"offer that is no policy", "POST", "/api/v1/offers", `{"dataset":"x","odrl":{"a":1}}`, prov, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.node, tc.method, tc.path, tc.body)
			if code != tc.status {
				t.Errorf("%s %s = %d, want %d: %s", tc.method, tc.path, code, tc.status, body)
			}
		})
	}
}
