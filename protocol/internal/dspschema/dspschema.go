// Package dspschema validates JSON documents against the official Dataspace
// Protocol 2025-1 JSON Schemas kept in protocol/testdata/dsp. It exists for
// tests of the protocol packages only: nothing outside them imports it, so
// the JSON Schema library never ends up in the mimnode binary.
//
// The schemas refer to each other by absolute URL under
// https://w3id.org/dspace/2025/1/; Open maps that prefix to the local copy,
// so validation never touches the network. Three upstream transfer schemas
// use the fragment "#definitions/..." (no "/" after "#"), which is not a JSON
// Pointer; the loader rewrites it to "#/definitions/..." instead of failing.
package dspschema

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// BaseURL is the prefix of every DSP schema $id.
const BaseURL = "https://w3id.org/dspace/2025/1/"

// ErrNoSchema means there is no schema file for a message type.
var ErrNoSchema = errors.New("no DSP schema for this message type")

// Validator compiles schemas on first use and caches them.
type Validator struct {
	dir string

	mu       sync.Mutex
	compiler *jsonschema.Compiler          // guarded by mu
	schemas  map[string]*jsonschema.Schema // guarded by mu
}

// Open returns a validator reading schemas from dir (the folder holding
// negotiation/, transfer/, common/).
func Open(dir string) (*Validator, error) {
	if _, err := os.Stat(filepath.Join(dir, "common", "context-schema.json")); err != nil {
		return nil, fmt.Errorf("opening DSP schemas in %s: %w", dir, err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(loader{dir: dir})
	return &Validator{dir: dir, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
}

type loader struct{ dir string }

func (l loader) Load(url string) (any, error) {
	rel, ok := strings.CutPrefix(url, BaseURL)
	if !ok {
		return nil, fmt.Errorf("loading schema %s: only %s is mapped locally", url, BaseURL)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("loading schema %s: %w", url, err)
	}
	// Tolerate the upstream "#definitions/" fragment bug.
	b = bytes.ReplaceAll(b, []byte(`.json#definitions/`), []byte(`.json#/definitions/`))
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// SchemaFile returns the schema path (relative to the DSP folder) for a DSP
// message @type, e.g. "negotiation/contract-request-message-schema.json".
func SchemaFile(typ string) (string, error) {
	files := map[string]string{
		"ContractRequestMessage":                "negotiation/contract-request-message-schema.json",
		"ContractOfferMessage":                  "negotiation/contract-offer-message-schema.json",
		"ContractAgreementMessage":              "negotiation/contract-agreement-message-schema.json",
		"ContractAgreementVerificationMessage":  "negotiation/contract-agreement-verification-message-schema.json",
		"ContractNegotiationEventMessage":       "negotiation/contract-negotiation-event-message-schema.json",
		"ContractNegotiationTerminationMessage": "negotiation/contract-negotiation-termination-message-schema.json",
		"ContractNegotiation":                   "negotiation/contract-negotiation-schema.json",
		"ContractNegotiationError":              "negotiation/contract-negotiation-error-schema.json",
		"TransferRequestMessage":                "transfer/transfer-request-message-schema.json",
		"TransferStartMessage":                  "transfer/transfer-start-message-schema.json",
		"TransferSuspensionMessage":             "transfer/transfer-suspension-message-schema.json",
		"TransferCompletionMessage":             "transfer/transfer-completion-message-schema.json",
		"TransferTerminationMessage":            "transfer/transfer-termination-message-schema.json",
		"TransferProcess":                       "transfer/transfer-process-schema.json",
		"TransferError":                         "transfer/transfer-error-schema.json",
	}
	f, ok := files[typ]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrNoSchema, typ)
	}
	return f, nil
}

// ValidateFile validates doc against the schema at rel (relative to the DSP
// folder).
func (v *Validator) ValidateFile(rel string, doc []byte) error {
	v.mu.Lock()
	sch, ok := v.schemas[rel]
	if !ok {
		var err error
		sch, err = v.compiler.Compile(BaseURL + rel)
		if err != nil {
			v.mu.Unlock()
			return fmt.Errorf("compiling %s: %w", rel, err)
		}
		v.schemas[rel] = sch
	}
	v.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parsing document: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("validating against %s: %w", rel, err)
	}
	return nil
}

// Validate validates an encoded DSP message against the schema of its @type.
func (v *Validator) Validate(typ string, doc []byte) error {
	rel, err := SchemaFile(typ)
	if err != nil {
		return err
	}
	return v.ValidateFile(rel, doc)
}
