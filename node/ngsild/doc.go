// Package ngsild is MIM1: the node's NGSI-LD context broker (ETSI GS CIM
// 009). It keeps entities in the node's badger store (through node/store,
// under store.PrefixNGSILD), serves the NGSI-LD API over them, validates
// entities of Smart Data Models types (MIM2, via node/ngsild/model) and
// answers geo-queries and GeoJSON (MIM7). The q language and geo-query
// semantics live in the pure package node/ngsild/query.
//
// # Wiring
//
// node.New builds one Service over the node's store and mounts its routes:
//
//	svc, err := ngsild.New(db, ngsild.Options{Logger: log, BaseURL: "http://127.0.0.1:7070"})
//	srv.Mount(svc.Register) // "POST /ngsi-ld/v1/entities", ... (the routes table in service.go)
//	defer svc.Close()
//
// Existing NGSI-LD clients then point at http://HOST:PORT/ngsi-ld/v1 and work
// unchanged: entities (normalized, concise or keyValues input) with scope
// (scope.go) and every attribute type of NGSI-LD 1.8 (Property,
// GeoProperty, Relationship, LanguageProperty, and ListProperty,
// ListRelationship, JsonProperty, VocabProperty in attrtypes.go),
// attributes, batch operations, queries (type with the type selection
// language, id, idPattern, attrs, q, scopeQ, geo-queries,
// limit/offset/count, options=keyValues|concise|sysAttrs, lang, pick/omit
// (projection.go), Accept: application/geo+json; also as POST
// /entityOperations/query), /types, /attributes and /jsonldContexts.
// Errors are problem details with the NGSI-LD error type URIs (errors.go
// has the table).
//
// # @context
//
// Entities are stored once, with attribute names and types expanded to IRIs;
// each request's @context (in the body for application/ld+json, in the Link
// header for application/json, the core context otherwise) expands what the
// client writes and compacts what it reads, so a client using the Smart Data
// Models context gets back the short names it sent. Contexts are processed
// with json-gold once per distinct @context value and cached; the hot path
// only does map lookups. Context documents come from the context store in
// badger, preloaded with the embedded NGSI-LD core context (under the v1.9
// and the unversioned URL) and the Smart Data Models contexts; an admin adds
// more with POST /ngsi-ld/v1/jsonldContexts?url=URL (the `mimnode context
// add URL FILE` command). Any other URL is fetched once (Options.HTTPClient,
// ContextTimeout), kept in badger, and never fetched again; when it cannot
// be loaded the request fails with LdContextNotAvailable. The store keeps
// each document's kind (Cached: a copy of the document at its URL; Hosted:
// one the node serves under its own URL, added without ?url=;
// ImplicitlyCreated: one it made for a subscription whose @context is not
// a single URL, named in the subscription's jsonldContext and linked from
// its application/json notifications) and when it was stored: GET /jsonldContexts?details=true&kind=K lists them (clause
// 5.13.3), GET /jsonldContexts/{id}?details=true describes one, and
// DELETE /jsonldContexts/{id}?reload=true fetches a cached one again,
// keeping the stored copy when that fails (504).
//
// # Storage and durability
//
// keys.go documents the key layout: a type index, an S2-cell spatial index
// and value indexes (numbers, strings, booleans and relationship objects of
// top-level attributes, which the planner uses for q's ==, ranges and
// bounds, intersecting equality terms by key probes), so queries by type,
// value and area read only candidates. A value index exists per attribute:
// it is built in the background the first time a query filters on the
// attribute (or at start for Options.IndexedAttributes), because indexing
// every attribute of every entity halved write throughput (valueindex.go).
//
// All writes go through one commit path (storage.go): a commit that has
// to wait for the write lock works out meanwhile what does not depend on
// the stored states (validation, history records, the encoding of
// entities not stored yet) on all cores (ahead.go), so concurrent
// requests overlap; under the lock the new states and index changes are
// prepared on all cores, then the entity pointer, index changes,
// type/attribute counters and a change-feed record holding the new state
// are written in one badger transaction per chunk; commit returns only
// once badger has synced it, so a 201, 204 or 207 is on disk.
//
// # Change feed
//
// Every create, update and delete gets the next sequence number and a feed
// record with the entity's new state, written in the same transaction. The
// subscription, live-transfer and catalogue-version features consume it:
//
//	err := svc.Follow(ctx, cursor+1, func(c ngsild.Change) error {
//		// c.Seq, c.Op (create/update/delete), c.ID, c.Types, c.Entity (nil on delete)
//		cursor = c.Seq // persist it with the consumer's own state
//		return nil
//	})
//
// Follow replays from the cursor, then waits for new changes. Writers only
// signal a coalescing channel (Notify), so a slow consumer never blocks a
// write; it catches up by reading Changes from its own cursor. TrimChanges
// drops records every consumer has passed; sequence numbers are never
// reused. A consumer matches a change with a q expression directly (*Entity
// implements query.Entity; parse with Service.Expand as the expand
// function) and shows it to its client with Service.Render. Service.Entity
// reads one entity in stored form and Service.Put writes entities in that
// form (for transfers landing a provider's data).
//
// # Attribute history (temporal API)
//
// Every instance a write stamps is also kept as a temporal instance, in the
// same transaction (history.go has the layout): one record per write and
// instant, newest first, so lastN and time ranges are key-range scans. A
// write's records refer to its feed record, whose state holds the
// instances; TrimChanges writes them out in full before dropping it.
// Clients read it with GET /ngsi-ld/v1/temporal/entities (type, id,
// idPattern, attrs, q and geo-queries select entities by their current
// state) and /temporal/entities/{id}, with timerel=before|after|between,
// timeAt, endTimeAt, timeproperty (observedAt, the default, is the key
// order; modifiedAt and createdAt filter a full scan), lastN,
// options=temporalValues|sysAttrs, and aggrMethods (totalCount,
// distinctCount, sum, avg, min, max) per aggrPeriodDuration (ISO 8601).
// An instance without observedAt is filed under its modifiedAt.
// POST /temporal/entities adds instances (the newest of each attribute
// becomes the current value); DELETE removes an entity's history, an
// attribute's, or one instance by instanceId; PATCH corrects one instance
// (its members, not its place in time or dataset). Go code reads it with
// Service.History.
//
// History is kept forever unless Options.Retention gives a duration for
// the entity type (expanded IRI); Start then trims it every
// RetentionInterval, and TrimHistory does it on demand. The node sets
// these from its configuration.
//
// # Subscriptions
//
// POST/GET/PATCH/DELETE /ngsi-ld/v1/subscriptions manage NGSI-LD
// subscriptions (entities, watchedAttributes, q, geoQ, throttling,
// timeInterval, expiresAt, isActive, notificationTrigger; notification
// attributes, format, sysAttrs, showChanges, endpoint uri, accept and
// receiverInfo). They are stored in badger and survive restarts. Deciding
// what fires is the Matcher's job (pure: the clock is an argument, no
// HTTP), so live transfers can match changes the same way:
//
//	m := ngsild.NewMatcher()
//	sub, err := svc.CompileSubscription(body, context) // or build a Subscription
//	m.Put(sub)
//	for _, s := range m.Match(now, change) { ... deliver to s ... }
//
// The Matcher indexes subscriptions by the types and ids they select and
// by the value a top-level q equality pins (q=no2==5), so a change is
// tested only against the subscriptions that can match it.
// notificationTrigger (NGSI-LD 1.8) picks the kinds of change that fire:
// entityCreated, entityUpdated (= the three attribute triggers),
// entityDeleted, attributeCreated, attributeUpdated, attributeDeleted;
// the default is attributeCreated and attributeUpdated. A deleted entity
// is notified as its id and type, a deleted attribute with the value
// urn:ngsi-ld:null; showChanges adds previousValue (previousObject,
// previousLanguageMap) to changed attributes. The state before a change
// comes from the commit, so a change replayed from the store after a
// restart is notified without it.
//
// Delivery needs the node to call Start once:
//
//	if err := svc.Start(ctx); err != nil { ... }
//
// A dispatcher then follows the change feed from a cursor kept in badger
// (a change committed while the node was down is notified after it
// restarts; the cursor is written every StatusInterval, so after a crash
// what was notified since may be notified twice, never lost). It matches up to 1024 changes per round and sends one
// Notification per subscription per round, holding the entities the
// subscription matched in change order; each entity is rendered once per
// distinct format/attributes/@context and the bytes are shared by the
// subscriptions that show it alike. Each receiver (endpoint URI) has its
// own bounded queue and worker pool (Options.Notify) over keep-alive
// connections; a failed POST is retried with exponential backoff; a full
// queue drops the notification and records a failure. So a slow or dead
// receiver never blocks writes, the dispatcher or other receivers. (With
// more than one worker, notifications to one receiver may arrive out of
// order.) timesSent, timesFailed, lastNotification, lastSuccess and
// lastFailure are shown on the subscription and written to badger every
// StatusInterval and at Close.
//
// Endpoints are limited by an allowlist (NotifyOptions.Allow, the node's
// [ngsild] notify_allow; default loopback only), checked when a
// subscription is created or its endpoint changed and again on the
// resolved addresses of every connection (notifyallow.go), so a
// subscriber cannot make the node reach internal services.
package ngsild
