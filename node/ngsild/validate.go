package ngsild

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mimnode/mimnode/node/ngsild/model"
	"github.com/mimnode/mimnode/node/store"
)

// validator checks entities of types bound to a Smart Data Models schema
// (MIM2) before they are written. Bindings an admin adds are kept in badger
// under n/m/<typeIRI> and bound again at start.
type validator struct {
	s   *Service
	reg *model.Registry

	mu       sync.RWMutex
	contexts map[string]string // type IRI -> context URL of admin bindings; guarded by mu

	// gen counts the bindings made since start (BindModel, under the
	// write lock): a verdict worked out ahead of the lock holds only
	// while it is unchanged.
	gen atomic.Uint64
}

// binding is an admin's schema binding as stored at n/m/<typeIRI>.
type binding struct {
	Context string          `json:"context,omitempty"`
	Schema  json.RawMessage `json:"schema"`
}

func newValidator(s *Service, reg *model.Registry) (*validator, error) {
	if reg == nil {
		var err error
		if reg, err = model.NewRegistry(); err != nil {
			return nil, fmt.Errorf("load data models: %w", err)
		}
	}
	v := &validator{s: s, reg: reg, contexts: map[string]string{}}
	err := s.db.View(func(tx *store.Txn) error {
		return tx.Iterate(store.IterOptions{Prefix: []byte(keyModel)}, func(k, val []byte) error {
			typ := string(k[len(keyModel):])
			var b binding
			if err := json.Unmarshal(val, &b); err != nil {
				return fmt.Errorf("decode stored schema binding for %s: %w", typ, err)
			}
			if err := reg.Bind(typ, b.Schema); err != nil {
				return fmt.Errorf("bind stored schema for %s: %w", typ, err)
			}
			v.contexts[typ] = b.Context
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load data model bindings: %w", err)
	}
	return v, nil
}

// check returns a BadRequestData error naming the attribute when e breaks
// the schema bound to one of its types. The entity is compacted with the
// model's own @context, so the schema's short names apply whatever context
// the client wrote with.
func (v *validator) check(e *Entity) error {
	if v.s.opts.SkipValidation {
		return nil
	}
	for _, typ := range e.Types {
		m, bound := v.reg.Lookup(typ)
		if !bound {
			continue
		}
		var ctxVal any
		v.mu.RLock()
		adminCtx, isBound := v.contexts[typ]
		v.mu.RUnlock()
		switch {
		case isBound && adminCtx != "":
			ctxVal = adminCtx
		case !isBound && m.ContextURL != "":
			ctxVal = m.ContextURL
		}
		tc, err := v.s.ctx.resolve(ctxVal)
		if err != nil {
			return fmt.Errorf("load context of data model %s: %w", m.ShortName, err)
		}
		kv := validationMaps.Get().(map[string]any)
		validationFormInto(kv, e, tc) // made for this check: ValidateOwned may change it
		if err := v.reg.ValidateOwned(typ, kv); err != nil {
			// The map is not reused: the error may hold what it holds.
			var ve *model.ValidationError
			if errors.As(err, &ve) {
				return &Error{Type: BadRequestData, Title: "entity does not match its data model",
					Detail: validationDetail(m.ShortName, ve), Err: err}
			}
			return fmt.Errorf("validate %s against %s: %w", e.ID, m.ShortName, err)
		}
		clear(kv)
		validationMaps.Put(kv)
	}
	return nil
}

// validationMaps hold the maps validator.check builds the validation form
// in: one per entity written, each about 1.2 KB for an AirQualityObserved.
var validationMaps = sync.Pool{New: func() any { return make(map[string]any, 32) }}

// validationFormInto fills kv (empty) with the keyValues form
// model.KeyValues would make of the normalized rendering, built directly
// since it runs on every write.
func validationFormInto(kv map[string]any, e *Entity, tc *termContext) {
	e.renderInto(kv, tc, renderOpts{format: keyValues, defaultOnly: true})
	for k, v := range kv {
		if m, ok := v.(map[string]any); ok {
			if inner, ok := m["@value"]; ok {
				kv[k] = inner
			}
		}
	}
}

func validationDetail(model string, ve *model.ValidationError) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", model)
	write := func(attr, reason string) {
		if attr == "" {
			attr = "(entity)"
		}
		fmt.Fprintf(&b, "attribute %q: %s", attr, reason)
	}
	write(ve.Attribute, ve.Reason)
	for _, more := range ve.More {
		b.WriteString("; ")
		write(more.Attribute, more.Reason)
	}
	return b.String()
}

// BindModel binds an entity type (expanded IRI) to a JSON Schema of its
// keyValues form; entities of that type written afterwards are validated
// against it. contextURL is the @context whose terms are the schema's
// attribute names ("" for the core context, whose @vocab gives plain
// names). The binding is stored and survives restarts.
func (s *Service) BindModel(typeIRI, contextURL string, schemaJSON []byte) error {
	if !isURI(typeIRI) {
		return newError(BadRequestData, "invalid type", "%q is not an expanded type IRI", typeIRI)
	}
	if contextURL != "" {
		if _, err := s.ctx.resolve(contextURL); err != nil {
			return err
		}
	}
	rec, err := json.Marshal(binding{Context: contextURL, Schema: schemaJSON})
	if err != nil {
		return newError(BadRequestData, "unusable schema", "the schema is not JSON: %v", err)
	}
	s.wmu.Lock() // no write validates against a half-made binding
	defer s.wmu.Unlock()
	if err := s.val.reg.Bind(typeIRI, schemaJSON); err != nil {
		return &Error{Type: BadRequestData, Title: "unusable schema", Detail: err.Error(), Err: err}
	}
	s.val.mu.Lock()
	s.val.contexts[typeIRI] = contextURL
	s.val.mu.Unlock()
	s.val.gen.Add(1)
	if err := s.db.Update(func(tx *store.Txn) error { return tx.Set([]byte(keyModel+typeIRI), rec) }); err != nil {
		return fmt.Errorf("store schema binding for %s: %w", typeIRI, err)
	}
	return nil
}

// Models lists the data models entities are validated against.
func (s *Service) Models() []model.Model { return s.val.reg.Models() }
