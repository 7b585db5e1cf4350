package ngsild

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
)

// entityBody reads and decodes the entity (or fragment) of a write request.
func (s *Service) entityBody(r *http.Request, needIDType bool) (*Entity, *termContext, error) {
	body, ldJSON, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	m, err := ParseEntity(body)
	if err != nil {
		return nil, nil, err
	}
	tc, err := s.bodyContext(r, m, ldJSON)
	if err != nil {
		return nil, nil, err
	}
	e, err := decodeEntity(m, tc, s.now(), needIDType)
	if err != nil {
		return nil, nil, err
	}
	return e, tc, nil
}

// commitOne commits a single change and returns its outcome's error, or the
// commit error.
func (s *Service) commitOne(ch change) (outcome, error) {
	outs, err := s.commit([]change{ch})
	if err != nil {
		return outcome{}, err
	}
	return outs[0], outs[0].err
}

func entityLocation(id string) string { return "/ngsi-ld/v1/entities/" + url.PathEscape(id) }

// createEntity is POST /entities (clause 6.4.3.1).
func (s *Service) createEntity(w http.ResponseWriter, r *http.Request) error {
	e, _, err := s.entityBody(r, true)
	if err != nil {
		return err
	}
	if _, err := s.commitOne(s.createChange(e)); err != nil {
		return err
	}
	w.Header().Set("Location", entityLocation(e.ID))
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) createChange(e *Entity) change {
	a := &ahead{e: e, validate: true}
	return change{id: e.ID, ahead: a, apply: func(old *Entity) (*Entity, error) {
		if old != nil {
			return nil, newError(AlreadyExists, "entity already exists", "an entity with id %q exists", e.ID)
		}
		if err := a.check(s, e); err != nil {
			return nil, err
		}
		return e, nil
	}}
}

// pathTypes reads the type query parameter of a request on one entity
// (GET or DELETE /entities/{id}): a type selection the entity must match,
// as the type of a query; nil without one. tc is the request's context,
// nil when the caller has not resolved it.
func (s *Service) pathTypes(r *http.Request, tc *termContext) (*query.TypeSelection, error) {
	t := queryParams(r).Get("type")
	if t == "" {
		return nil, nil
	}
	if tc == nil {
		var err error
		if tc, err = s.queryContext(r); err != nil {
			return nil, err
		}
	}
	return parseTypeSelection(t, tc)
}

// errNotOfType is the answer for an entity that the type parameter does
// not select: as for one that is not there.
func errNotOfType(id string, ts *query.TypeSelection) error {
	return newError(ResourceNotFound, "entity not found", "no entity with id %q and type %s", id, ts)
}

// retrieveEntity is GET /entities/{id} (clause 6.5.3.1).
func (s *Service) retrieveEntity(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	acc, err := negotiate(r, true)
	if err != nil {
		return err
	}
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	ro, err := parseRenderOpts(queryParams(r), tc)
	if err != nil {
		return err
	}
	ts, err := s.pathTypes(r, tc)
	if err != nil {
		return err
	}
	e, err := s.Entity(id)
	if err != nil {
		return err
	}
	if e == nil {
		return errNotFound(id)
	}
	if ts != nil && !ts.Match(e.Types) {
		return errNotOfType(id, ts)
	}
	if acc == acceptGeo {
		geoIRI := tc.expand(geometryProperty(queryParams(r)))
		writeJSON(w, http.StatusOK, e.renderFeature(tc, ro, geoIRI), acc, tc)
		return nil
	}
	writeJSON(w, http.StatusOK, e.render(tc, ro), acc, tc)
	return nil
}

func geometryProperty(q url.Values) string {
	if g := q.Get("geometryProperty"); g != "" {
		return g
	}
	return "location"
}

// parseRenderOpts reads options= and attrs= (clause 6.3.7 and 5.7.1).
func parseRenderOpts(q url.Values, tc *termContext) (renderOpts, error) {
	var ro renderOpts
	for _, o := range splitList(q.Get("options")) {
		switch o {
		case "keyValues", "simplified":
			ro.format = keyValues
		case "concise":
			ro.format = concise
		case "normalized":
			ro.format = normalized
		case "sysAttrs":
			ro.sysAttrs = true
		case "count", "noOverwrite", "update", "replace":
		default:
			return ro, newError(BadRequestData, "invalid options", "unknown option %q", o)
		}
	}
	if f := q.Get("format"); f != "" {
		switch f {
		case "keyValues", "simplified":
			ro.format = keyValues
		case "concise":
			ro.format = concise
		case "normalized":
			ro.format = normalized
		default:
			return ro, newError(BadRequestData, "invalid format", "unknown format %q", f)
		}
	}
	ro.lang = q.Get("lang")
	if q.Has("pick") && q.Has("omit") {
		return ro, newError(BadRequestData, "invalid projection", "pick and omit cannot be used together")
	}
	for _, param := range []string{"pick", "omit"} {
		if !q.Has(param) {
			continue
		}
		p, err := parseProjection(param, q.Get(param), tc.expand)
		if err != nil {
			return ro, err
		}
		if param == "pick" {
			ro.pick = p
		} else {
			ro.omit = p
		}
	}
	if a := q.Get("attrs"); a != "" {
		ro.attrs = map[string]bool{}
		for _, name := range splitList(a) {
			if err := checkName(name); err != nil {
				return ro, err
			}
			ro.attrs[tc.expand(name)] = true
		}
	}
	return ro, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// deleteEntity is DELETE /entities/{id} (clause 6.5.3.2). With a type
// parameter it deletes the entity only if the type selects it, checked in
// the write itself.
func (s *Service) deleteEntity(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	ts, err := s.pathTypes(r, nil)
	if err != nil {
		return err
	}
	ch := deleteChange(id)
	if ts != nil {
		del := ch.apply
		ch.apply = func(old *Entity) (*Entity, error) {
			if old != nil && !ts.Match(old.Types) {
				return nil, errNotOfType(id, ts)
			}
			return del(old)
		}
	}
	if _, err := s.commitOne(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func deleteChange(id string) change {
	return change{id: id, apply: func(old *Entity) (*Entity, error) {
		if old == nil {
			return nil, errNotFound(id)
		}
		return nil, nil
	}}
}

// replaceEntity is PUT /entities/{id} (clause 6.5.3.3): the new body
// replaces every attribute; the entity keeps its createdAt.
func (s *Service) replaceEntity(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	e, _, err := s.entityBody(r, false)
	if err != nil {
		return err
	}
	if e.ID != "" && e.ID != id {
		return newError(BadRequestData, "id mismatch", "the body's id %q differs from the URL's %q", e.ID, id)
	}
	e.ID = id
	if _, err := s.commitOne(s.replaceChange(e, true)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// replaceChange replaces an entity; mustExist makes a missing one
// ResourceNotFound, otherwise it is created (upsert).
func (s *Service) replaceChange(e *Entity, mustExist bool) change {
	a := &ahead{e: e, validate: true}
	return change{id: e.ID, summary: true, ahead: a, apply: func(old *Entity) (*Entity, error) {
		if old == nil {
			if mustExist {
				return nil, errNotFound(e.ID)
			}
			if len(e.Types) == 0 {
				return nil, newError(BadRequestData, "invalid entity", "an entity needs a type")
			}
			if err := a.check(s, e); err != nil {
				return nil, err
			}
			return e, nil
		}
		// e is this change's own (decoded from the request; its caller
		// reads only its id afterwards), so it becomes the new state as
		// it does when created, without a copy.
		ne := e
		if len(ne.Types) == 0 {
			ne.Types = append([]string(nil), old.Types...)
		}
		ne.CreatedAt = old.CreatedAt
		keepCreated(old, ne)
		// Neither createdAt is part of the form checked (validationFormInto).
		if err := a.check(s, ne); err != nil {
			return nil, err
		}
		return ne, nil
	}}
}

// mergeChange applies a fragment to an existing entity (or creates it when
// create is set, as upsert does).
func (s *Service) mergeChange(frag *Entity, mode mergeMode, create bool, skipped *[]string) change {
	return change{id: frag.ID, apply: func(old *Entity) (*Entity, error) {
		if skipped != nil {
			*skipped = nil
		}
		if old == nil {
			if !create {
				return nil, errNotFound(frag.ID)
			}
			if len(frag.Types) == 0 {
				return nil, newError(BadRequestData, "invalid entity", "an entity needs a type")
			}
			if err := s.val.check(frag); err != nil {
				return nil, err
			}
			return frag, nil
		}
		ne := old.clone()
		changed := false
		for _, t := range frag.Types {
			if !contains(ne.Types, t) {
				ne.Types = append(ne.Types, t)
				ne.ModifiedAt, changed = frag.ModifiedAt, true
			}
		}
		if frag.Scope != nil {
			// POST .../attrs adds scopes; PATCH replaces them (clause 4.18).
			if mode == mergeAppend || mode == mergeNoOverwrite {
				ne.Scope = addScopes(ne.Scope, frag.Scope)
			} else {
				ne.Scope = frag.Scope
			}
			ne.ModifiedAt, changed = frag.ModifiedAt, true
		}
		sk := mergeAttrs(ne, frag.Attrs, mode, frag.ModifiedAt)
		if skipped != nil {
			*skipped = sk
		}
		if !changed && len(sk) == len(frag.Attrs) {
			// Every attribute was skipped (noOverwrite, or none there to
			// update) and no type or scope was given: the write changes
			// nothing (clauses 5.6.2, 5.6.3). Storing ne would leave the
			// attributes last written stamped with the entity's
			// modifiedAt, which is how history and subscriptions tell
			// what a write touched: they would be recorded and notified
			// again.
			return old, nil
		}
		if err := s.val.check(ne); err != nil {
			return nil, err
		}
		return ne, nil
	}}
}

// mergeEntity is PATCH /entities/{id} (merge entity, clause 6.5.3.4).
func (s *Service) mergeEntity(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	e, _, err := s.entityBody(r, false)
	if err != nil {
		return err
	}
	if e.ID != "" && e.ID != id {
		return newError(BadRequestData, "id mismatch", "the body's id %q differs from the URL's %q", e.ID, id)
	}
	e.ID = id
	if _, err := s.commitOne(s.mergeChange(e, mergePatch, false, nil)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateResult is the 207 body of attribute updates (clause 5.2.18).
type updateResult struct {
	Updated    []string     `json:"updated"`
	NotUpdated []notUpdated `json:"notUpdated"`
}

type notUpdated struct {
	AttributeName string `json:"attributeName"`
	Reason        string `json:"reason"`
}

// writeAttrResult answers 204 when every attribute was applied, 207 with the
// list otherwise.
func writeAttrResult(w http.ResponseWriter, tc *termContext, frag *Entity, skipped []string, reason string) {
	if len(skipped) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	res := updateResult{Updated: []string{}, NotUpdated: []notUpdated{}}
	for name := range frag.Attrs {
		if !contains(skipped, name) {
			res.Updated = append(res.Updated, tc.compact(name))
		}
	}
	for _, name := range skipped {
		res.NotUpdated = append(res.NotUpdated, notUpdated{AttributeName: tc.compact(name), Reason: reason})
	}
	b, _ := json.Marshal(res)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMultiStatus)
	_, _ = w.Write(b)
}

// appendAttrs is POST /entities/{id}/attrs (clause 6.6.3.1).
func (s *Service) appendAttrs(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	frag, tc, err := s.entityBody(r, false)
	if err != nil {
		return err
	}
	frag.ID, frag.Types = id, nil
	mode := mergeAppend
	for _, o := range splitList(queryParams(r).Get("options")) {
		if o == "noOverwrite" {
			mode = mergeNoOverwrite
		}
	}
	var skipped []string
	if _, err := s.commitOne(s.mergeChange(frag, mode, false, &skipped)); err != nil {
		return err
	}
	writeAttrResult(w, tc, frag, skipped, "attribute exists and options=noOverwrite")
	return nil
}

// updateAttrs is PATCH /entities/{id}/attrs (clause 6.6.3.2).
func (s *Service) updateAttrs(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	frag, tc, err := s.entityBody(r, false)
	if err != nil {
		return err
	}
	frag.ID, frag.Types = id, nil
	var skipped []string
	if _, err := s.commitOne(s.mergeChange(frag, mergeUpdateOnly, false, &skipped)); err != nil {
		return err
	}
	writeAttrResult(w, tc, frag, skipped, "attribute (or datasetId) does not exist")
	return nil
}

// attrFragment reads the body of a single-attribute request as a fragment
// entity holding that attribute.
func (s *Service) attrFragment(r *http.Request) (name string, raw map[string]any, tc *termContext, err error) {
	body, ldJSON, err := readBody(r)
	if err != nil {
		return "", nil, nil, err
	}
	m, err := ParseEntity(body)
	if err != nil {
		return "", nil, nil, err
	}
	if tc, err = s.bodyContext(r, m, ldJSON); err != nil {
		return "", nil, nil, err
	}
	delete(m, "@context")
	attr := r.PathValue("attr")
	if err := checkAttrPath(attr); err != nil {
		return "", nil, nil, err
	}
	return tc.expand(attr), m, tc, nil
}

// partialAttrUpdate is PATCH /entities/{id}/attrs/{attr} (clause 6.7.3.1):
// the members given replace those of the instance named by datasetId.
func (s *Service) partialAttrUpdate(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	name, raw, tc, err := s.attrFragment(r)
	if err != nil {
		return err
	}
	now := s.now()
	ch := change{id: id, apply: func(old *Entity) (*Entity, error) {
		if old == nil {
			return nil, errNotFound(id)
		}
		ds, _ := raw["datasetId"].(string)
		ne := old.clone()
		insts := ne.Attrs[name]
		for i, a := range insts {
			if a.DatasetID != ds {
				continue
			}
			merged, err := patchInstance(a, tc.compact(name), raw, tc, now)
			if err != nil {
				return nil, err
			}
			insts = append([]*Attribute(nil), insts...)
			insts[i] = merged
			ne.Attrs[name] = insts
			ne.ModifiedAt = now
			if err := s.val.check(ne); err != nil {
				return nil, err
			}
			return ne, nil
		}
		return nil, newError(ResourceNotFound, "attribute not found", "entity %q has no attribute %q with datasetId %q", id, tc.compact(name), ds)
	}}
	if _, err := s.commitOne(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// patchInstance merges the members of raw into a copy of a.
func patchInstance(a *Attribute, name string, raw map[string]any, tc *termContext, now time.Time) (*Attribute, error) {
	// Build the merged member map and decode it as one instance, so every
	// rule of decodeInstance applies to the result.
	m := map[string]any{"type": string(a.Type)}
	switch {
	case a.Type == Relationship:
		m["object"] = a.Object
	case a.Type == LanguageProperty:
		m["languageMap"] = a.LanguageMap
	case isExtended(a.Type):
		member, v := a.renderContent(tc, false)
		m[member] = v
	default:
		m["value"] = a.Value
	}
	if a.ObservedAt != "" {
		m["observedAt"] = a.ObservedAt
	}
	if a.UnitCode != "" {
		m["unitCode"] = a.UnitCode
	}
	if a.DatasetID != "" {
		m["datasetId"] = a.DatasetID
	}
	if t, ok := raw["type"].(string); ok && t != string(a.Type) {
		for _, k := range []string{"value", "object", "languageMap", "valueList", "objectList", "json", "vocab"} {
			delete(m, k)
		}
	}
	for k, v := range raw {
		m[k] = v
	}
	n, err := decodeInstance(name, m, tc, now)
	if err != nil {
		return nil, err
	}
	// Sub-attributes not named in raw survive the patch.
	for k, v := range a.Sub {
		if _, replaced := n.Sub[k]; !replaced {
			if n.Sub == nil {
				n.Sub = map[string][]*Attribute{}
			}
			n.Sub[k] = v
		}
	}
	n.CreatedAt, n.ModifiedAt = a.CreatedAt, now
	return n, nil
}

// replaceAttr is PUT /entities/{id}/attrs/{attr} (clause 6.7.3.3).
func (s *Service) replaceAttr(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	name, raw, tc, err := s.attrFragment(r)
	if err != nil {
		return err
	}
	now := s.now()
	insts, err := decodeAttr(tc.compact(name), raw, tc, now)
	if err != nil {
		return err
	}
	ch := change{id: id, apply: func(old *Entity) (*Entity, error) {
		if old == nil {
			return nil, errNotFound(id)
		}
		if _, ok := old.Attrs[name]; !ok {
			return nil, newError(ResourceNotFound, "attribute not found", "entity %q has no attribute %q", id, tc.compact(name))
		}
		ne := old.clone()
		ne.Attrs[name] = insts
		ne.ModifiedAt = now
		if err := s.val.check(ne); err != nil {
			return nil, err
		}
		return ne, nil
	}}
	if _, err := s.commitOne(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteAttr is DELETE /entities/{id}/attrs/{attr} (clause 6.7.3.2).
func (s *Service) deleteAttr(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	attr := r.PathValue("attr")
	if err := checkAttrPath(attr); err != nil {
		return err
	}
	name := tc.expand(attr)
	q := queryParams(r)
	ds, all := q.Get("datasetId"), q.Get("deleteAll") == "true"
	now := s.now()
	ch := change{id: id, apply: func(old *Entity) (*Entity, error) {
		if old == nil {
			return nil, errNotFound(id)
		}
		ne := old.clone()
		if !deleteInstances(ne, name, ds, all) {
			return nil, newError(ResourceNotFound, "attribute not found", "entity %q has no attribute %q (datasetId %q)", id, attr, ds)
		}
		ne.ModifiedAt = now
		if err := s.val.check(ne); err != nil {
			return nil, err
		}
		return ne, nil
	}}
	if _, err := s.commitOne(ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
