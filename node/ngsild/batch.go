package ngsild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimnode/mimnode/node/store"
)

// BatchOperationResult is the 207 body of a batch operation (clause 5.2.16).
type BatchOperationResult struct {
	Success []string           `json:"success"`
	Errors  []BatchEntityError `json:"errors"`
}

// BatchEntityError is one failed entity of a batch (clause 5.2.17).
type BatchEntityError struct {
	EntityID string         `json:"entityId"`
	Error    ProblemDetails `json:"error"`
}

// maxBatchEntities caps one batch request.
const maxBatchEntities = 10000

// batchItem is one entity of a batch body: decoded, or the reason it could
// not be.
type batchItem struct {
	id     string
	entity *Entity
	err    error
}

// readBatch decodes a batch body (an array of entities) entity by entity, so
// one bad entity fails alone.
func (s *Service) readBatch(r *http.Request, needType bool) ([]batchItem, error) {
	body, ldJSON, err := readBody(r)
	if err != nil {
		return nil, err
	}
	elems, err := splitArray(body)
	if err != nil {
		// splitArray only finds the elements; parseJSON says what is wrong.
		if _, perr := parseJSON(body); perr != nil {
			err = perr
		}
		return nil, newError(InvalidRequest, "invalid batch", "the body is not JSON: %v", err)
	}
	if elems == nil {
		return nil, newError(InvalidRequest, "invalid batch", "the body must be a JSON array of entities")
	}
	if len(elems) == 0 {
		return nil, newError(BadRequestData, "empty batch", "the batch holds no entities")
	}
	if len(elems) > maxBatchEntities {
		return nil, newError(TooManyResults, "batch too large", "a batch may hold at most %d entities", maxBatchEntities)
	}
	now := s.now()
	items := make([]batchItem, len(elems))
	// Entities of the plain shape are read straight into the model
	// (bodydecode.go) with the context of the request; an application/json
	// body's entities have none of their own.
	var plainTC *termContext
	if !ldJSON {
		plainTC, _ = s.bodyContext(r, nil, false)
	}
	// Parsing and decoding are pure CPU work per entity; spread them over
	// the cores so a big batch is not bound by one.
	workers := min(runtime.GOMAXPROCS(0), (len(elems)+63)/64)
	var wg sync.WaitGroup
	var bad atomic.Pointer[error]
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(elems); i += workers {
				if plainTC != nil {
					if e, err := decodeBodyEntity(elems[i], plainTC, now); err == nil {
						items[i] = batchItem{id: e.ID, entity: e}
						continue
					}
				}
				v, err := parseJSON(elems[i])
				if err != nil {
					bad.CompareAndSwap(nil, &err)
					return
				}
				items[i] = s.decodeBatchItem(r, v, plainTC, ldJSON, needType, now)
			}
		}(w)
	}
	wg.Wait()
	if err := bad.Load(); err != nil {
		return nil, newError(InvalidRequest, "invalid batch", "the body is not JSON: %v", *err)
	}
	return items, nil
}

// splitArray returns the raw elements of a top-level JSON array, or nil
// (and no error) when body is some other JSON value. It checks only the
// structure (brackets, strings, commas); each element is parsed on its own,
// so a 1,000-entity batch is parsed on every core instead of one.
func splitArray(body []byte) ([][]byte, error) {
	i := 0
	skip := func() {
		for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
			i++
		}
	}
	skip()
	if i >= len(body) {
		return nil, errors.New("empty body")
	}
	if body[i] != '[' {
		if _, err := parseJSON(body); err != nil {
			return nil, err
		}
		return nil, nil
	}
	i++
	elems := [][]byte{}
	skip()
	if i < len(body) && body[i] == ']' {
		i++
		if skip(); i != len(body) {
			return nil, errors.New("data after the array")
		}
		return elems, nil
	}
	for {
		skip()
		start, depth := i, 0
	elem:
		for ; i < len(body); i++ {
			switch body[i] {
			case '"':
				for i++; i < len(body) && body[i] != '"'; i++ {
					if body[i] == '\\' {
						i++
					}
				}
				if i >= len(body) {
					return nil, errors.New("unterminated string")
				}
			case '[', '{':
				depth++
			case ']', '}':
				if depth == 0 {
					break elem
				}
				depth--
			case ',':
				if depth == 0 {
					break elem
				}
			}
		}
		if i >= len(body) {
			return nil, errors.New("unterminated array")
		}
		if i == start {
			return nil, errors.New("missing array element")
		}
		elems = append(elems, body[start:i])
		if body[i] == ']' {
			i++
			if skip(); i != len(body) {
				return nil, errors.New("data after the array")
			}
			return elems, nil
		}
		if body[i] == '}' {
			return nil, errors.New("unbalanced brackets")
		}
		i++ // ,
	}
}

// decodeBatchItem decodes one batch entry; requestTC, when not nil, is the
// request's context already resolved for application/json bodies.
func (s *Service) decodeBatchItem(r *http.Request, v any, requestTC *termContext, ldJSON, needType bool, now time.Time) (it batchItem) {
	m, ok := v.(map[string]any)
	if !ok {
		it.err = newError(BadRequestData, "invalid entity", "a batch entry must be a JSON object")
		return it
	}
	if id, ok := m["id"].(string); ok {
		it.id = id
	}
	tc := requestTC
	if _, own := m["@context"]; tc == nil || own {
		var err error // an entry's own @context is refused or resolved by bodyContext
		if tc, err = s.bodyContext(r, m, ldJSON); err != nil {
			it.err = err
			return it
		}
	}
	it.entity, it.err = decodeEntity(m, tc, now, needType)
	if it.err == nil && it.entity.ID == "" {
		it.err = newError(BadRequestData, "invalid entity", "an entity in a batch needs an id")
	}
	return it
}

// runBatch commits one change per decoded item and sorts out the results.
func (s *Service) runBatch(items []batchItem, mk func(*Entity) change) (BatchOperationResult, []outcome, error) {
	res := BatchOperationResult{Success: []string{}, Errors: []BatchEntityError{}}
	var chs []change
	var idx []int
	for i, it := range items {
		if it.err != nil {
			res.Errors = append(res.Errors, BatchEntityError{EntityID: it.id, Error: asError(it.err).problem()})
			continue
		}
		chs = append(chs, mk(it.entity))
		idx = append(idx, i)
	}
	outs, err := s.commit(chs)
	if err != nil {
		return res, nil, err
	}
	full := make([]outcome, len(items))
	for j, o := range outs {
		i := idx[j]
		full[i] = o
		if o.err != nil {
			res.Errors = append(res.Errors, BatchEntityError{EntityID: items[i].id, Error: asError(o.err).problem()})
			continue
		}
		res.Success = append(res.Success, items[i].entity.ID)
	}
	for i, it := range items {
		if it.err != nil {
			full[i].err = it.err
		}
	}
	return res, full, nil
}

func writeBatchResult(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// batchCreate is POST /entityOperations/create (clause 6.14.3.1).
func (s *Service) batchCreate(w http.ResponseWriter, r *http.Request) error {
	items, err := s.readBatch(r, true)
	if err != nil {
		return err
	}
	res, _, err := s.runBatch(items, s.createChange)
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		writeBatchResult(w, http.StatusMultiStatus, res)
		return nil
	}
	writeBatchResult(w, http.StatusCreated, res.Success)
	return nil
}

// upsert writes entities the way POST /entityOperations/upsert does: each
// is created, or replaced (update false) or merged (update true) when it
// exists.
func (s *Service) upsert(items []batchItem, update bool) (BatchOperationResult, []outcome, error) {
	mk := func(e *Entity) change { return s.replaceChange(e, false) }
	if update {
		mk = func(e *Entity) change { return s.mergeChange(e, mergeAppend, true, nil) }
	}
	return s.runBatch(items, mk)
}

// batchUpsert is POST /entityOperations/upsert (clause 6.15.3.1).
func (s *Service) batchUpsert(w http.ResponseWriter, r *http.Request) error {
	update := false
	for _, o := range splitList(queryParams(r).Get("options")) {
		switch o {
		case "update":
			update = true
		case "replace":
		default:
			return newError(BadRequestData, "invalid options", "upsert takes options=update or options=replace, not %q", o)
		}
	}
	items, err := s.readBatch(r, true)
	if err != nil {
		return err
	}
	res, outs, err := s.upsert(items, update)
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		writeBatchResult(w, http.StatusMultiStatus, res)
		return nil
	}
	created := []string{}
	for i, o := range outs {
		if o.created {
			created = append(created, items[i].entity.ID)
		}
	}
	if len(created) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeBatchResult(w, http.StatusCreated, created)
	return nil
}

// batchUpdate is POST /entityOperations/update (clause 6.16.3.1): append
// attributes to existing entities (options=noOverwrite keeps existing ones).
func (s *Service) batchUpdate(w http.ResponseWriter, r *http.Request) error {
	mode := mergeAppend
	for _, o := range splitList(queryParams(r).Get("options")) {
		if o != "noOverwrite" {
			return newError(BadRequestData, "invalid options", "update takes options=noOverwrite, not %q", o)
		}
		mode = mergeNoOverwrite
	}
	return s.mergeBatch(w, r, mode)
}

// mergeBatch merges each entity of a batch body into the stored one in
// mode (one that is not there is a per-entity ResourceNotFound) and
// answers 204 when every one succeeded, 207 with the successes and errors
// otherwise: batch update and batch merge.
func (s *Service) mergeBatch(w http.ResponseWriter, r *http.Request, mode mergeMode) error {
	items, err := s.readBatch(r, false)
	if err != nil {
		return err
	}
	res, _, err := s.runBatch(items, func(e *Entity) change { return s.mergeChange(e, mode, false, nil) })
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		writeBatchResult(w, http.StatusMultiStatus, res)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// batchMerge is POST /entityOperations/merge (NGSI-LD 1.7 and later): each
// entity of the body is merged into the stored one as PATCH
// /entities/{id} merges it (attributes replaced or added, sub-attributes
// merged, urn:ngsi-ld:null deletes); an entity that is not there is a
// per-entity ResourceNotFound. 204 when every merge succeeded, 207 with
// the successes and errors otherwise.
func (s *Service) batchMerge(w http.ResponseWriter, r *http.Request) error {
	if o := queryParams(r).Get("options"); o != "" {
		return newError(BadRequestData, "invalid options", "merge takes no options, got %q", o)
	}
	return s.mergeBatch(w, r, mergePatch)
}

// batchDelete is POST /entityOperations/delete (clause 6.17.3.1); the body
// is an array of entity ids.
func (s *Service) batchDelete(w http.ResponseWriter, r *http.Request) error {
	body, _, err := readBody(r)
	if err != nil {
		return err
	}
	var ids []any
	if err := json.Unmarshal(body, &ids); err != nil {
		return newError(InvalidRequest, "invalid batch", "the body must be a JSON array of entity ids: %v", err)
	}
	if len(ids) == 0 {
		return newError(BadRequestData, "empty batch", "the batch holds no entity ids")
	}
	if len(ids) > maxBatchEntities {
		return newError(TooManyResults, "batch too large", "a batch may hold at most %d entities", maxBatchEntities)
	}
	items := make([]batchItem, len(ids))
	for i, v := range ids {
		id, ok := v.(string)
		if !ok || !isURI(id) {
			// The error names the string it refuses, so a client can tell
			// which element of its array failed (only a non-string has
			// no entityId).
			items[i] = batchItem{id: id, err: newError(BadRequestData, "invalid id", "%v is not an entity id", v)}
			continue
		}
		items[i] = batchItem{id: id, entity: &Entity{ID: id}}
	}
	res, _, err := s.runBatch(items, func(e *Entity) change { return deleteChange(e.ID) })
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		writeBatchResult(w, http.StatusMultiStatus, res)
		return nil
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Put creates or replaces entities given in stored form (expanded names, as
// Change.Entity and Service.Entity return them), for callers inside the node.
// Each is validated like an API write; errs[i] is entity i's failure (nil
// when written), err a storage failure. Timestamps are the node's own:
// createdAt is kept for entities that exist. Put takes ownership of the
// entities: the caller must not use or change them afterwards.
func (s *Service) Put(entities []*Entity) (errs []error, err error) {
	return s.put(entities, true, false)
}

// Land writes entities received in a transfer, as Put does but without MIM2
// schema validation: they come from a provider that validated them against
// the model when they were written there, and a transfer only lands blocks
// verified against the agreed version's CIDs, so checking each entity again
// would only repeat the provider's work (it was most of Put's cost). Indexes,
// history and the change feed are kept as for any write, and subscriptions
// fire. Entities without an id URI or a type still fail alone, in errs.
// Everything written is durable when Land returns. ctx is checked before
// the write starts; a write once started completes. Land takes ownership of
// the entities, as Put does.
func (s *Service) Land(ctx context.Context, entities []*Entity) (errs []error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.put(entities, false, false)
}

// LandNew is Land for entities the caller believes absent: each is
// created, and one whose id the store holds by the time it is written
// fails alone with AlreadyExists, so a received entity never replaces one
// this node did not get from the same source.
func (s *Service) LandNew(ctx context.Context, entities []*Entity) (errs []error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.put(entities, false, true)
}

// Held reports which of ids name an entity the store holds now
// (store.Txn.Present: one keys-only pass for a chunk of ids in order).
func (s *Service) Held(ids []string) ([]bool, error) {
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = entityKey(id)
	}
	var held []bool
	err := s.db.View(func(tx *store.Txn) error {
		held = tx.Present([]byte(keyEntity), keys)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading which entities are held: %w", err)
	}
	return held, nil
}

// put writes entities in stored form for Put, Land and LandNew; with
// createOnly, an entity that exists is not replaced but fails with
// AlreadyExists.
func (s *Service) put(entities []*Entity, validate, createOnly bool) ([]error, error) {
	now := s.now()
	chs := make([]change, len(entities))
	for i, e := range entities {
		if err := storable(e); err != nil {
			chs[i] = change{id: "", apply: func(*Entity) (*Entity, error) { return nil, err }}
			continue
		}
		stampNew(e, now, now)
		chs[i] = s.putChange(e, validate, createOnly)
	}
	return s.commitErrs(chs)
}

// putChange creates e or replaces the stored entity with it, keeping
// createdAt of what survives; with createOnly it only creates.
func (s *Service) putChange(e *Entity, validate, createOnly bool) change {
	a := &ahead{e: e, validate: validate}
	return change{id: e.ID, summary: true, ahead: a, apply: func(old *Entity) (*Entity, error) {
		if createOnly && old != nil {
			return nil, newError(AlreadyExists, "entity exists", "entity %q exists already and is not replaced", e.ID)
		}
		// Put and Land own e (their callers hand it over), so it becomes
		// the new state without a copy.
		ne := e
		if old != nil {
			ne.CreatedAt = old.CreatedAt
			keepCreated(old, ne)
		}
		if validate {
			if err := a.check(s, ne); err != nil {
				return nil, err
			}
		}
		return ne, nil
	}}
}

// Delete removes entities by id, with their indexes; each delete is a
// change in the feed (OpDelete), so live transfers carry it. errs[i] is a
// ResourceNotFound error when ids[i] names no entity, nil when it was
// deleted; err is a storage failure. Deletes are durable when Delete
// returns; ctx is checked before they start.
func (s *Service) Delete(ctx context.Context, ids []string) (errs []error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	chs := make([]change, len(ids))
	for i, id := range ids {
		chs[i] = deleteChange(id)
	}
	return s.commitErrs(chs)
}

// commitErrs commits chs and returns each change's error.
func (s *Service) commitErrs(chs []change) ([]error, error) {
	outs, err := s.commit(chs)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(outs))
	for i, o := range outs {
		errs[i] = o.err
	}
	return errs, nil
}

// storable refuses an entity given in stored form without an id URI and a
// type, or with a missing attribute instance (JSON null in an instance
// list) at any depth: Put and Land take entities from other parts of the
// node and from other nodes, whose decoders may let one through.
func storable(e *Entity) error {
	if e == nil || !isURI(e.ID) || len(e.Types) == 0 {
		return newError(BadRequestData, "invalid entity", "an entity needs an id URI and a type")
	}
	var walk func(attrs map[string][]*Attribute) error
	walk = func(attrs map[string][]*Attribute) error {
		for name, insts := range attrs {
			for _, a := range insts {
				if a == nil {
					return newError(BadRequestData, "invalid entity", "entity %q has an empty instance of attribute %q", e.ID, name)
				}
				if err := walk(a.Sub); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(e.Attrs)
}
