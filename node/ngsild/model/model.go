package model

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schemas contexts
var files embed.FS

// ErrNoModel is wrapped by Validate when no schema is bound to the entity type.
// Callers that validate only bound types check Lookup first.
var ErrNoModel = errors.New("no data model bound to this entity type")

// ErrSchema is wrapped by Bind (and NewRegistry) when a schema cannot be used: it
// is not JSON, not a valid JSON Schema, or refers to a schema that is not
// available offline.
var ErrSchema = errors.New("unusable JSON Schema")

// sharedSchemas maps every URL a shipped schema $refs to the embedded file. The
// raw.githubusercontent URL is what AirQualityObserved uses; it is not the file's
// $id, so the loader serves it as a separate resource (see offlineLoader).
var sharedSchemas = map[string]string{
	"https://smart-data-models.github.io/data-models/common-schema.json":                                       "schemas/common-schema.json",
	"https://smart-data-models.github.io/dataModel.Environment/Environment-schema.json":                        "schemas/Environment-schema.json",
	"https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/Environment-schema.json": "schemas/Environment-schema.json",
	"https://smart-data-models.github.io/dataModel.Weather/weather-schema.json":                                "schemas/weather-schema.json",
}

// contextURLs lists the URLs each embedded @context is published under; the first
// is the one the Smart Data Models examples use.
var contextURLs = map[string][]string{
	"dataModel.Environment":     {rawContextURL("dataModel.Environment")},
	"dataModel.Parking":         {rawContextURL("dataModel.Parking")},
	"dataModel.Streetlighting":  {rawContextURL("dataModel.Streetlighting")},
	"dataModel.Transportation":  {rawContextURL("dataModel.Transportation")},
	"dataModel.WasteManagement": {rawContextURL("dataModel.WasteManagement")},
	"dataModel.WaterQuality":    {rawContextURL("dataModel.WaterQuality")},
	"dataModel.Weather": {rawContextURL("dataModel.Weather"),
		"https://smart-data-models.github.io/dataModel.Weather/context.jsonld"},
}

func rawContextURL(repo string) string {
	return "https://raw.githubusercontent.com/smart-data-models/" + repo + "/master/context.jsonld"
}

// Contexts returns the embedded Smart Data Models @context documents keyed by every
// URL they are published under, for preloading a context store on a node without
// internet access. The map and slices are fresh copies.
func Contexts() map[string][]byte {
	out := make(map[string][]byte)
	for repo, urls := range contextURLs {
		b, err := files.ReadFile("contexts/" + repo + ".context.jsonld")
		if err != nil {
			panic("model: embedded context missing: " + err.Error()) // a build defect
		}
		for _, u := range urls {
			out[u] = bytes.Clone(b)
		}
	}
	return out
}

// Model describes one data model bound to an entity type.
type Model struct {
	TypeIRI     string   // expanded entity type, e.g. https://smartdatamodels.org/dataModel.Environment/AirQualityObserved
	ShortName   string   // the type as the schema and examples write it, e.g. AirQualityObserved
	ContextURL  string   // the @context that compacts TypeIRI to ShortName; "" when unknown
	SchemaID    string   // the schema's $id (or a urn:mimnode:schema: name when it has none)
	Version     string   // $schemaVersion, when the schema states one
	Title       string   // the schema's title
	Required    []string // attributes the schema requires (short names)
	Attributes  []string // attributes the schema declares (short names), sorted
	Shipped     bool     // embedded in the binary, as opposed to bound by an admin
	description string
}

// Description is the schema's description.
func (m Model) Description() string { return m.description }

type entry struct {
	model  Model
	schema *jsonschema.Schema // without the attributes in fast
	cert   *checker           // certify's tree of schema (certify.go)
	fast   []fastProp
	// fastAt indexes fast by name: a name splitSimple found in the
	// properties and in allOf branches has a check for each.
	fastAt map[string][]int
	// unread are the attributes of fast the reduced schema never looks
	// at (see unreadByGeneral): they are left out of the instance it
	// validates.
	unread []string
	// points are attributes whose schema is the GeoJSON geometry oneOf
	// or an object of strings; pointSchema (with pointUnread) is schema
	// with them as true, used when each is absent or a value its check
	// certainly accepts (point.go). nil when none.
	points      []string
	plain       []func(any) bool // the check of each of points
	pointSchema *jsonschema.Schema
	pointCert   *checker
	pointUnread []string
}

// Registry binds entity types to JSON Schemas. It is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	models map[string]entry // by type IRI; guarded by mu
	shared map[string]any   // decoded shared schemas by URL; read-only after NewRegistry
}

// NewRegistry returns a registry preloaded with the shipped models: the nine Smart
// Data Models in schemas/, each bound to the type IRI its @context gives it.
func NewRegistry() (*Registry, error) {
	r := &Registry{models: make(map[string]entry), shared: make(map[string]any)}
	for u, file := range sharedSchemas {
		doc, err := decodeEmbedded(file)
		if err != nil {
			return nil, err
		}
		r.shared[u] = doc
	}
	dirs, err := fs.ReadDir(files, "schemas")
	if err != nil {
		return nil, fmt.Errorf("model: reading embedded schemas: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if err := r.loadShipped(d.Name()); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func decodeEmbedded(file string) (any, error) {
	b, err := files.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("model: reading embedded %s: %w", file, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("model: decoding embedded %s: %w", file, err)
	}
	return doc, nil
}

// loadShipped binds an embedded model: its type IRI comes from the @context of the
// repository named in the schema's $id.
func (r *Registry) loadShipped(name string) error {
	file := path.Join("schemas", name, "schema.json")
	doc, err := decodeEmbedded(file)
	if err != nil {
		return err
	}
	id, _ := doc.(map[string]any)["$id"].(string)
	// $id is https://smart-data-models.github.io/dataModel.<Repo>/<Model>/schema.json
	parts := strings.Split(strings.TrimPrefix(id, "https://smart-data-models.github.io/"), "/")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "dataModel.") {
		return fmt.Errorf("model: %s: unexpected $id %q: %w", file, id, ErrSchema)
	}
	repo := parts[0]
	ctx, err := files.ReadFile("contexts/" + repo + ".context.jsonld")
	if err != nil {
		return fmt.Errorf("model: %s: no embedded @context for %s: %w", file, repo, err)
	}
	var c struct {
		Context map[string]any `json:"@context"`
	}
	if err := json.Unmarshal(ctx, &c); err != nil {
		return fmt.Errorf("model: decoding the %s @context: %w", repo, err)
	}
	iri, ok := c.Context[name].(string)
	if !ok {
		return fmt.Errorf("model: the %s @context does not define %s", repo, name)
	}
	e, err := r.compile(doc, iri)
	if err != nil {
		return fmt.Errorf("model: compiling shipped %s: %w", name, err)
	}
	e.model.ShortName = name
	e.model.ContextURL = contextURLs[repo][0]
	e.model.Shipped = true
	r.models[iri] = e
	return nil
}

// Bind binds typeIRI to a JSON Schema (draft 2020-12 unless the schema says
// otherwise) describing the keyValues form of its entities, replacing any earlier
// binding. The schema may $ref the shipped shared Smart Data Models schemas by
// their published URLs; any other external reference is an error, since nodes run
// without internet access. The short name is the last segment of typeIRI.
func (r *Registry) Bind(typeIRI string, schemaJSON []byte) error {
	if typeIRI == "" {
		return fmt.Errorf("model: binding a schema: empty type IRI")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return fmt.Errorf("model: binding %s: schema is not JSON: %v: %w", typeIRI, err, ErrSchema)
	}
	e, err := r.compile(doc, typeIRI)
	if err != nil {
		return fmt.Errorf("model: binding %s: %w", typeIRI, err)
	}
	e.model.ShortName = shortName(typeIRI)
	if repo, _, ok := strings.Cut(strings.TrimPrefix(typeIRI, "https://smartdatamodels.org/"), "/"); ok && strings.HasPrefix(typeIRI, "https://smartdatamodels.org/") {
		e.model.ContextURL = rawContextURL(repo)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.models[typeIRI] = e
	return nil
}

func shortName(iri string) string {
	if i := strings.LastIndexAny(iri, "/#:"); i >= 0 && i < len(iri)-1 {
		return iri[i+1:]
	}
	return iri
}

// unexactNumber returns a number in v (a decoded schema, numbers as
// json.Number) that math/big cannot hold, such as 1E10000000000000000000:
// the schema library compares numbers as big.Rat and panics on one it
// could not convert, while compiling the schema or validating against it.
func unexactNumber(v any) (json.Number, bool) {
	switch x := v.(type) {
	case json.Number:
		if _, ok := new(big.Rat).SetString(string(x)); !ok {
			return x, true
		}
	case map[string]any:
		for _, y := range x {
			if n, ok := unexactNumber(y); ok {
				return n, true
			}
		}
	case []any:
		for _, y := range x {
			if n, ok := unexactNumber(y); ok {
				return n, true
			}
		}
	}
	return "", false
}

// compile compiles one model schema with a fresh compiler (so a rebinding with the
// same $id does not clash) that resolves the shared schemas offline.
func (r *Registry) compile(doc any, typeIRI string) (entry, error) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return entry{}, fmt.Errorf("schema is not a JSON object: %w", ErrSchema)
	}
	if n, ok := unexactNumber(obj); ok {
		return entry{}, fmt.Errorf("the number %s is out of range: %w", n, ErrSchema)
	}
	reduced, fast := splitSimple(obj)
	id, _ := obj["$id"].(string)
	if id == "" {
		id = "urn:mimnode:schema:" + typeIRI
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(offlineLoader(r.shared))
	if _, shared := r.shared[id]; !shared {
		if err := c.AddResource(id, reduced); err != nil {
			return entry{}, fmt.Errorf("adding schema %s: %v: %w", id, err, ErrSchema)
		}
	} else {
		fast = nil // compiled from the shared copy, unreduced
	}
	sch, err := c.Compile(id)
	if err != nil {
		return entry{}, fmt.Errorf("%v: %w", err, ErrSchema)
	}
	var points []string
	var plain []func(any) bool
	var pointSch *jsonschema.Schema
	if fast != nil {
		var pointDoc map[string]any
		if pointDoc, points, plain = splitPoints(reduced, r.shared); points != nil {
			pc := jsonschema.NewCompiler()
			pc.DefaultDraft(jsonschema.Draft2020)
			pc.UseLoader(offlineLoader(r.shared))
			if err := pc.AddResource(id, pointDoc); err != nil {
				return entry{}, fmt.Errorf("adding schema %s: %v: %w", id, err, ErrSchema)
			}
			if pointSch, err = pc.Compile(id); err != nil {
				return entry{}, fmt.Errorf("%v: %w", err, ErrSchema)
			}
		}
	}
	m := Model{TypeIRI: typeIRI, SchemaID: id}
	m.Version, _ = obj["$schemaVersion"].(string)
	m.Title, _ = obj["title"].(string)
	m.description, _ = obj["description"].(string)
	if req, ok := obj["required"].([]any); ok {
		for _, v := range req {
			if s, ok := v.(string); ok {
				m.Required = append(m.Required, s)
			}
		}
	}
	m.Attributes = declared(sch)
	e := entry{model: m, schema: sch, cert: newCertifier(sch), fast: fast, unread: unreadByGeneral(sch, fast)}
	if len(fast) > 0 {
		e.fastAt = make(map[string][]int, len(fast))
		for i, fp := range fast {
			e.fastAt[fp.name] = append(e.fastAt[fp.name], i)
		}
	}
	if pointSch != nil {
		e.points, e.plain, e.pointSchema, e.pointUnread = points, plain, pointSch, unreadByGeneral(pointSch, fast)
		e.pointCert = newCertifier(pointSch)
	}
	return e, nil
}

// declared collects the property names a schema declares, through allOf and $ref.
func declared(sch *jsonschema.Schema) []string {
	seen := map[*jsonschema.Schema]bool{}
	names := map[string]bool{}
	var walk func(s *jsonschema.Schema)
	walk = func(s *jsonschema.Schema) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for n := range s.Properties {
			names[n] = true
		}
		if s.Ref != nil {
			walk(s.Ref)
		}
		for _, sub := range s.AllOf {
			walk(sub)
		}
	}
	walk(sch)
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// offlineLoader serves the shared schemas; every other URL fails, which names it.
type offlineLoader map[string]any

func (l offlineLoader) Load(url string) (any, error) {
	doc, ok := l[url]
	if !ok {
		return nil, fmt.Errorf("%s is not available offline (only the shipped Smart Data Models shared schemas are)", url)
	}
	// Served under a URL other than its own $id (the raw.githubusercontent alias),
	// the document gets that URL as $id, so that the two aliases are two resources
	// instead of one resource claimed twice.
	if obj, ok := doc.(map[string]any); ok {
		if id, _ := obj["$id"].(string); id != "" && id != url {
			cp := make(map[string]any, len(obj))
			for k, v := range obj {
				cp[k] = v
			}
			cp["$id"] = url
			return cp, nil
		}
	}
	return doc, nil
}

// Lookup returns the model bound to typeIRI.
func (r *Registry) Lookup(typeIRI string) (Model, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.models[typeIRI]
	return e.model, ok
}

// Models returns every bound model, sorted by type IRI.
func (r *Registry) Models() []Model {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Model, 0, len(r.models))
	for _, e := range r.models {
		out = append(out, e.model)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TypeIRI < out[j].TypeIRI })
	return out
}
