package ngsild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mimnode/mimnode/node/ngsild/query"
	"github.com/mimnode/mimnode/node/store"
)

// subscriptionLocation is the URL path of a subscription.
func subscriptionLocation(id string) string {
	return "/ngsi-ld/v1/subscriptions/" + url.PathEscape(id)
}

// readSubscription reads a subscription body and its @context (the value
// to keep: the body's for ld+json, the Link URL for json, nil for core).
func (s *Service) readSubscription(r *http.Request) (raw map[string]any, ctxVal any, tc *termContext, err error) {
	body, ldJSON, err := readBody(r)
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := parseJSON(body)
	if err != nil {
		return nil, nil, nil, newError(InvalidRequest, "invalid JSON", "the body is not JSON: %v", err)
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, nil, nil, newError(BadRequestData, "invalid subscription", "the body must be a JSON object")
	}
	if tc, err = s.bodyContext(r, raw, ldJSON); err != nil {
		return nil, nil, nil, err
	}
	if ldJSON {
		ctxVal = raw["@context"]
	} else if l, _ := linkContext(r); l != "" {
		ctxVal = l
	}
	delete(raw, "@context")
	return raw, ctxVal, tc, nil
}

func decodeSubscriptionBody(raw map[string]any) (*subscriptionBody, error) {
	j, err := json.Marshal(raw)
	if err != nil {
		return nil, newError(BadRequestData, "invalid subscription", "%v", err)
	}
	var b subscriptionBody
	if err := json.Unmarshal(j, &b); err != nil {
		return nil, newError(BadRequestData, "invalid subscription", "%v", err)
	}
	return &b, nil
}

// createSubscription is POST /subscriptions (clause 6.10.3.1).
func (s *Service) createSubscription(w http.ResponseWriter, r *http.Request) error {
	raw, ctxVal, tc, err := s.readSubscription(r)
	if err != nil {
		return err
	}
	b, err := decodeSubscriptionBody(raw)
	if err != nil {
		return err
	}
	if _, given := raw["id"]; given && b.ID == "" {
		return newError(BadRequestData, "invalid subscription", "id is empty; leave it out for the node to choose one")
	}
	if b.ID == "" {
		b.ID = "urn:ngsi-ld:Subscription:" + randomID()
	}
	if err := s.notificationContext(b, ctxVal); err != nil {
		return err
	}
	sub, err := compileSubscription(b, tc)
	if err != nil {
		return err
	}
	if !sub.ExpiresAt.IsZero() && !sub.ExpiresAt.After(s.now()) {
		return newError(BadRequestData, "invalid subscription", "expiresAt is in the past")
	}
	if err := s.notif.checkEndpoint(r.Context(), b.Notification.Endpoint.URI); err != nil {
		return err
	}
	st := &subState{body: *b, context: ctxVal, sub: sub, spec: compileSpec(b, sub, tc, ctxVal)}
	rec, err := st.record()
	if err != nil {
		return err
	}
	n := s.notif
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[b.ID] != nil {
		return newError(AlreadyExists, "subscription exists", "a subscription with id %q exists", b.ID)
	}
	if err := s.db.Update(func(tx *store.Txn) error { return tx.Set([]byte(keySub+b.ID), rec) }); err != nil {
		return err
	}
	n.put(st)
	w.Header().Set("Location", subscriptionLocation(b.ID))
	w.WriteHeader(http.StatusCreated)
	return nil
}

// renderSubscription is the client's view: the body as sent plus the
// service's status members (clause 5.2.12, 5.2.14).
func (st *subState) render(now time.Time) map[string]any {
	j, _ := json.Marshal(&st.body)
	var m map[string]any
	_ = json.Unmarshal(j, &m)
	active := st.body.IsActive == nil || *st.body.IsActive
	m["isActive"] = active
	switch {
	case st.sub != nil && !st.sub.ExpiresAt.IsZero() && !now.Before(st.sub.ExpiresAt):
		m["status"] = "expired"
	case !active:
		m["status"] = "paused"
	default:
		m["status"] = "active"
	}
	nd, _ := m["notification"].(map[string]any)
	if nd == nil {
		nd = map[string]any{}
		m["notification"] = nd
	}
	nd["timesSent"] = float64(st.status.TimesSent)
	nd["timesFailed"] = float64(st.status.TimesFailed)
	for k, t := range map[string]time.Time{"lastNotification": st.status.LastNotification, "lastSuccess": st.status.LastSuccess, "lastFailure": st.status.LastFailure} {
		if !t.IsZero() {
			nd[k] = fmtTime(t)
		}
	}
	switch {
	case st.status.LastNotification.IsZero():
	case st.status.LastFailure.Equal(st.status.LastNotification):
		nd["status"] = "failed"
	default:
		nd["status"] = "ok"
	}
	return m
}

func (s *Service) subscriptionView(r *http.Request, id string) (map[string]any, *termContext, error) {
	n := s.notif
	n.mu.Lock()
	st := n.subs[id]
	var m map[string]any
	var ctxVal any
	var link string
	if st != nil {
		m, ctxVal, link = st.render(s.now()), st.context, st.body.JSONLDContext
	}
	n.mu.Unlock()
	if st == nil {
		return nil, nil, newError(ResourceNotFound, "subscription not found", "no subscription with id %q", id)
	}
	tc, err := s.ctx.resolve(ctxVal)
	if err != nil {
		return nil, nil, err
	}
	if tc.link == "" && link != "" {
		// An @context that is no single URL is linked as the document
		// holding it (notificationContext), as its notifications are.
		linked := *tc
		linked.link = link
		tc = &linked
	}
	return m, tc, nil
}

// retrieveSubscription is GET /subscriptions/{id} (clause 6.11.3.1).
func (s *Service) retrieveSubscription(w http.ResponseWriter, r *http.Request) error {
	acc, err := negotiate(r, false)
	if err != nil {
		return err
	}
	m, tc, err := s.subscriptionView(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m, acc, tc)
	return nil
}

// listSubscriptions is GET /subscriptions (clause 6.10.3.2), by id, with
// limit and offset.
func (s *Service) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	acc, err := negotiate(r, false)
	if err != nil {
		return err
	}
	q := queryParams(r)
	limit, offset := s.opts.DefaultLimit, 0
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 0 || limit > s.opts.MaxLimit {
			return newError(BadRequestData, "invalid limit", "limit must be an integer from 0 to %d", s.opts.MaxLimit)
		}
	}
	if o := q.Get("offset"); o != "" {
		if offset, err = strconv.Atoi(o); err != nil || offset < 0 {
			return newError(BadRequestData, "invalid offset", "offset must be a non-negative integer")
		}
	}
	n := s.notif
	n.mu.Lock()
	ids := make([]string, 0, len(n.subs))
	for id := range n.subs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	total := len(ids)
	ids = ids[min(offset, len(ids)):]
	more := len(ids) > limit
	ids = ids[:min(limit, len(ids))]
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		m := n.subs[id].render(s.now())
		if acc == acceptLD {
			// Its names are as its creator wrote them, under its own
			// @context, not the one of this request.
			c := n.subs[id].context
			if c == nil {
				c = CoreContextURL
			}
			m["@context"] = c
		}
		out = append(out, m)
	}
	n.mu.Unlock()
	if q.Get("count") == "true" {
		w.Header().Set("NGSILD-Results-Count", strconv.Itoa(total))
	}
	if limit > 0 {
		pageLinks(w.Header(), r.URL, offset, limit, more)
	}
	tc, err := s.queryContext(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out, acc, tc)
	return nil
}

// updateSubscription is PATCH /subscriptions/{id} (clause 6.11.3.2): the
// members given replace the stored ones (notification and its endpoint
// merge member by member). Names in the patch are read with the request's
// @context when it has one, else with the subscription's.
func (s *Service) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	patch, reqCtx, reqTC, err := s.readSubscription(r)
	if err != nil {
		return err
	}
	if pid, ok := patch["id"]; ok && pid != id {
		return newError(BadRequestData, "id mismatch", "the body's id differs from the URL's")
	}
	// A new endpoint is checked before taking the lock: the check may
	// resolve a name, and delivery waits for the lock.
	nd, _ := patch["notification"].(map[string]any)
	ep, _ := nd["endpoint"].(map[string]any)
	if uri, ok := ep["uri"].(string); ok {
		if err := s.notif.checkEndpoint(r.Context(), uri); err != nil {
			return err
		}
	}
	n := s.notif
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.subs[id]
	if st == nil {
		return newError(ResourceNotFound, "subscription not found", "no subscription with id %q", id)
	}
	tc, err := s.ctx.resolve(st.context)
	if err != nil {
		return err
	}
	if reqCtx != nil {
		// The stored body is in the terms of the subscription's own
		// @context, which reads it and which a GET shows it with: the
		// patch's names are taken to their IRIs with the request's
		// @context and back to terms with the subscription's. An IRI
		// the subscription's @context has no term for stays whole.
		err := mapSubscriptionNames(patch, func(name string) string { return tc.compact(reqTC.expand(name)) })
		if err != nil {
			return err
		}
	}
	j, err := json.Marshal(&st.body)
	if err != nil {
		return err
	}
	var cur map[string]any
	if err := json.Unmarshal(j, &cur); err != nil {
		return err
	}
	mergeMembers(cur, patch)
	b, err := decodeSubscriptionBody(cur)
	if err != nil {
		return err
	}
	if err := s.notificationContext(b, st.context); err != nil {
		return err
	}
	sub, err := compileSubscription(b, tc)
	if err != nil {
		return err
	}
	if _, ok := patch["expiresAt"]; ok && !sub.ExpiresAt.IsZero() && !sub.ExpiresAt.After(s.now()) {
		return newError(BadRequestData, "invalid subscription", "expiresAt is in the past")
	}
	next := &subState{body: *b, context: st.context, sub: sub, spec: compileSpec(b, sub, tc, st.context), status: st.status}
	rec, err := next.record()
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *store.Txn) error { return tx.Set([]byte(keySub+id), rec) }); err != nil {
		return err
	}
	n.put(next)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// notificationContext checks the jsonldContext a subscription names, or
// gives it one when its @context is no single URL (an array, an object):
// a notification sent as application/json carries its @context as a Link
// to one document, and its names are compacted with the whole @context, so
// the Link must name a document holding all of it. The node stores that
// document as an ImplicitlyCreated context (clause 5.13.1) under its own
// URL, named by a digest of the @context, so subscriptions with the same
// one share it.
func (s *Service) notificationContext(b *subscriptionBody, ctxVal any) error {
	if b.JSONLDContext != "" {
		if !isURI(b.JSONLDContext) {
			return newError(BadRequestData, "invalid subscription", "jsonldContext %q is not a URL", b.JSONLDContext)
		}
		return nil
	}
	if _, single := ctxVal.(string); single || ctxVal == nil {
		return nil
	}
	u, err := s.implicitContext(ctxVal)
	if err != nil {
		return err
	}
	b.JSONLDContext = u
	return nil
}

// implicitContext returns the URL of a document holding @context ctxVal
// (no single URL: an array, an object), stored as an ImplicitlyCreated
// context (clause 5.13.1) named by a digest of it, so that every use of
// the same @context shares one.
func (s *Service) implicitContext(ctxVal any) (string, error) {
	doc, err := json.Marshal(map[string]any{"@context": ctxVal})
	if err != nil {
		return "", newError(BadRequestData, "invalid @context", "%v", err)
	}
	sum := sha256.Sum256(doc)
	u := s.hostedPrefix() + "implicit-" + hex.EncodeToString(sum[:12])
	if _, err := s.ctx.meta(u, s.hostedPrefix()); errors.Is(err, store.ErrNotFound) {
		if err := s.ctx.put(u, doc, contextImplicit); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	return u, nil
}

// linkable returns tc, for an answer in application/json, with a Link
// target that holds the whole @context: an @context of several entries
// (the body of a query may carry one) is linked as its implicitly
// created document, since the answer's names are compacted with all of
// it (clause 6.3.6).
func (s *Service) linkable(tc *termContext, acc accepted) (*termContext, error) {
	if acc == acceptLD || tc.link != "" || tc.value == nil {
		return tc, nil
	}
	u, err := s.implicitContext(tc.value)
	if err != nil {
		return nil, err
	}
	linked := *tc
	linked.link = u
	return &linked, nil
}

// mapSubscriptionNames replaces the names in a subscription patch
// (entity types, watchedAttributes, notification attributes, the
// geoproperty and the attributes in q) with what rename makes of them.
func mapSubscriptionNames(patch map[string]any, rename func(string) string) error {
	renameList := func(v any) {
		if l, ok := v.([]any); ok {
			for i, x := range l {
				if name, ok := x.(string); ok {
					l[i] = rename(name)
				}
			}
		}
	}
	if ents, ok := patch["entities"].([]any); ok {
		for _, e := range ents {
			if m, ok := e.(map[string]any); ok {
				if t, ok := m["type"].(string); ok && !strings.ContainsAny(t, ",;|()") {
					m["type"] = rename(t)
				}
			}
		}
	}
	renameList(patch["watchedAttributes"])
	if nd, ok := patch["notification"].(map[string]any); ok {
		renameList(nd["attributes"])
	}
	if g, ok := patch["geoQ"].(map[string]any); ok {
		if gp, ok := g["geoproperty"].(string); ok {
			g["geoproperty"] = rename(gp)
		}
	}
	if qs, ok := patch["q"].(string); ok && qs != "" {
		q, err := query.Parse(qs, rename)
		if err != nil {
			return &Error{Type: BadRequestData, Title: "invalid subscription q", Detail: err.Error(), Err: err}
		}
		patch["q"] = q.String()
	}
	return nil
}

// mergeMembers applies patch to dst; objects under notification merge.
func mergeMembers(dst, patch map[string]any) {
	for k, v := range patch {
		pm, isMap := v.(map[string]any)
		dm, dstMap := dst[k].(map[string]any)
		if isMap && dstMap && (k == "notification" || k == "endpoint") {
			mergeMembers(dm, pm)
			continue
		}
		if v == nil {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
}

// deleteSubscription is DELETE /subscriptions/{id} (clause 6.11.3.3).
func (s *Service) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	n := s.notif
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs[id] == nil {
		return newError(ResourceNotFound, "subscription not found", "no subscription with id %q", id)
	}
	if err := s.db.Update(func(tx *store.Txn) error { return tx.Delete([]byte(keySub + id)) }); err != nil {
		return err
	}
	n.remove(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
