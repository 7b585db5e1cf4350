package contract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mimnode/mimnode/node"
	"github.com/mimnode/mimnode/node/contract"
	"github.com/mimnode/mimnode/node/federation"
	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol/negotiation"
)

// wireRecorder is a slog handler that keeps the bodies of the wire
// messages the contract service traces at debug level.
type wireRecorder struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (w *wireRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (w *wireRecorder) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *wireRecorder) WithGroup(string) slog.Handler            { return w }
func (w *wireRecorder) Handle(_ context.Context, r slog.Record) error {
	if !strings.HasPrefix(r.Message, "negotiation ") {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "body" {
			if raw, ok := a.Value.Any().(json.RawMessage); ok {
				w.mu.Lock()
				w.bodies = append(w.bodies, bytes.Clone(raw))
				w.mu.Unlock()
			}
		}
		return true
	})
	return nil
}

const dspBase = "https://w3id.org/dspace/2025/1/"

var schemaFiles = map[string]string{
	"ContractRequestMessage":                "negotiation/contract-request-message-schema.json",
	"ContractOfferMessage":                  "negotiation/contract-offer-message-schema.json",
	"ContractAgreementMessage":              "negotiation/contract-agreement-message-schema.json",
	"ContractAgreementVerificationMessage":  "negotiation/contract-agreement-verification-message-schema.json",
	"ContractNegotiationEventMessage":       "negotiation/contract-negotiation-event-message-schema.json",
	"ContractNegotiationTerminationMessage": "negotiation/contract-negotiation-termination-message-schema.json",
	"ContractNegotiation":                   "negotiation/contract-negotiation-schema.json",
	"ContractNegotiationError":              "negotiation/contract-negotiation-error-schema.json",
}

type schemaLoader struct{}

func (schemaLoader) Load(url string) (any, error) {
	rel, _ := strings.CutPrefix(url, dspBase)
	f, err := os.Open(filepath.Join("testdata", "dsp", filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// TestWireMessagesMatchDSPSchemas records every message and answer two
// real nodes exchange in an agreed and in a refused negotiation and
// validates each against the official DSP 2025-1 JSON Schema of its @type.
func TestWireMessagesMatchDSPSchemas(t *testing.T) {
	rec := &wireRecorder{}
	log := slog.New(rec)
	start := func(name string) *node.Node {
		n, err := node.New(ctx, initDir(t, name), log)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	prov, res := start("Environment"), start("University")
	fed := federate(t, []*node.Node{prov, res}, []federation.Role{federation.RoleResearcher})
	research := addOffer(t, prov, contract.OfferRequest{Dataset: dsNoise, Template: "research-only"})
	internal := addOffer(t, prov, contract.OfferRequest{Dataset: dsIncident, Template: "agency-internal", Federation: fed})
	if got := request(t, res, prov, dsNoise, research, policy.PurposeResearch); got.State != negotiation.Finalized {
		t.Fatalf("agreed negotiation ended %s", got.State)
	}
	if got := request(t, res, prov, dsIncident, internal, policy.PurposeResearch); got.State != negotiation.Terminated {
		t.Fatalf("refused negotiation ended %s", got.State)
	}
	waitProvider(t, prov, mustLast(t, res).ID)

	c := jsonschema.NewCompiler()
	c.UseLoader(schemaLoader{})
	seen := map[string]int{}
	rec.mu.Lock()
	bodies := rec.bodies
	rec.mu.Unlock()
	for _, b := range bodies {
		var h struct {
			Type string `json:"@type"`
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("traced body is not JSON: %s", b)
		}
		file, ok := schemaFiles[h.Type]
		if !ok {
			t.Errorf("message of unexpected type %q: %s", h.Type, b)
			continue
		}
		sch, err := c.Compile(dspBase + file)
		if err != nil {
			t.Fatal(err)
		}
		inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s does not validate: %v\n%s", h.Type, err, b)
		}
		seen[h.Type]++
	}
	for typ := range schemaFiles {
		if typ == "ContractOfferMessage" || typ == "ContractNegotiationError" {
			continue // no counter-offers and no errors in these two runs
		}
		if seen[typ] == 0 {
			t.Errorf("no %s was exchanged (seen %v)", typ, seen)
		}
	}
}

func mustLast(t *testing.T, n *node.Node) contract.Info {
	t.Helper()
	list, err := n.Contracts().List()
	if err != nil || len(list) == 0 {
		t.Fatalf("List: %v %v", list, err)
	}
	return list[0]
}
