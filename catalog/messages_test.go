package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
	"github.com/paulmach/orb"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const dspBase = "https://w3id.org/dspace/2025/1/"

type dspLoader struct{}

func (dspLoader) Load(url string) (any, error) {
	rel, ok := strings.CutPrefix(url, dspBase)
	if !ok {
		return nil, fmt.Errorf("offline schema loader: no local copy of %s", url)
	}
	f, err := os.Open(filepath.Join("testdata/dsp", filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

// dspSchema returns the compiled DSP schema for a catalogue message @type.
func dspSchema(t testing.TB, typ string) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.UseLoader(dspLoader{})
		schemas = map[string]*jsonschema.Schema{}
		for typ, file := range map[string]string{
			TypeCatalogRequest: "catalog/catalog-request-message-schema.json",
			TypeDatasetRequest: "catalog/dataset-request-message-schema.json",
			TypeCatalog:        "catalog/catalog-schema.json",
			TypeDataset:        "catalog/dataset-schema.json",
			TypeCatalogError:   "catalog/catalog-error-schema.json",
		} {
			s, err := c.Compile(dspBase + file)
			if err != nil {
				schemaErr = err
				return
			}
			schemas[typ] = s
		}
	})
	if schemaErr != nil {
		t.Fatalf("compiling DSP schemas: %v", schemaErr)
	}
	return schemas[typ]
}

func validateDSP(t testing.TB, typ string, doc []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return dspSchema(t, typ).Validate(inst)
}

// TestUpstreamExamplesValidate makes sure the schema loader works: the DSP
// repository's own examples must pass.
func TestUpstreamExamplesValidate(t *testing.T) {
	for file, typ := range map[string]string{
		"catalog-request-message.json": TypeCatalogRequest,
		"dataset-request-message.json": TypeDatasetRequest,
		"catalog.json":                 TypeCatalog,
		"nested-catalog.json":          TypeCatalog,
		"dataset.json":                 TypeDataset,
		"catalog-error.json":           TypeCatalogError,
	} {
		if err := validateDSP(t, typ, readTestdata(t, "dsp/catalog/example/"+file)); err != nil {
			t.Errorf("upstream example %s does not validate: %v", file, err)
		}
	}
}

// publisherWith returns a catalogue with the example dataset, a restricted
// and a private one, and a dataset with two offers.
func publisherWith(t testing.TB, key testKey, audience string) *Catalog {
	t.Helper()
	c, err := NewCatalog(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := exampleDataset(t)
	base.Publisher.Name = "Aarhus Kommune"
	put := func(suffix string, f func(d *Dataset)) {
		d := base
		d.ID += suffix
		if f != nil {
			f(&d)
		}
		if _, err := c.Put(d, t0); err != nil {
			t.Fatalf("Put %s: %v", d.ID, err)
		}
	}
	put("", nil)
	put("-restricted", func(d *Dataset) { d.Dissemination, d.Audience = Restricted, []string{audience} })
	put("-private", func(d *Dataset) { d.Dissemination = Private })
	put("-two-offers", func(d *Dataset) {
		d.Title = "Noise levels, Aarhus"
		d.Keywords = []string{"noise"}
		d.Offers = []Offer{{Template: "open-data"}, {Template: "time-limited", Params: OfferParams{Days: 30}}}
	})
	return c
}

// TestMessagesValidateAgainstDSPSchemas checks every DSP-shaped message
// the catalogue writes against the DSP 2025-1 JSON Schemas (DSP catalog
// protocol, section 2 message types).
func TestMessagesValidateAgainstDSPSchemas(t *testing.T) {
	pub, peer := newTestKey(1), newTestKey(2)
	c := publisherWith(t, pub, peer.PeerID())
	v := Viewer{PeerID: peer.PeerID(), Role: policy.RoleAgency, Now: t0}
	bbox, _ := ParseBBox("10,56,11,57")
	withFiles := exampleDataset(t)
	withFiles.ID = "urn:mim:dataset:aarhus:stations"
	withFiles.Source = &Source{Files: []File{{Name: "stations.csv", MediaType: "text/csv", Size: 1234,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}}
	if _, err := c.Put(withFiles, t0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		msg  Message
	}{
		{"CatalogRequestMessage without filter", &CatalogRequest{}},
		{"CatalogRequestMessage with filter", &CatalogRequest{Filter: []Query{{Text: "noise", BBox: &bbox}}}},
		{"DatasetRequestMessage", &DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality"}},
		{"Catalog", c.Answer(&CatalogRequest{}, v)},
		{"Catalog, filtered", c.Answer(&CatalogRequest{Filter: []Query{{Text: "noise"}}}, v)},
		{"Catalog, empty", c.Answer(&CatalogRequest{Filter: []Query{{Text: "bicycles"}}}, v)},
		{"Catalog answering changes", c.Answer(&ChangesRequest{Since: 1}, v)},
		{"Dataset", c.Answer(&DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality-two-offers"}, v)},
		{"CatalogError", c.Answer(&DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality-private"}, v)},
		{"Dataset with a file distribution", c.Answer(&DatasetRequest{Dataset: withFiles.ID}, v)},
	}
	if b, _ := EncodeMessage(c.Answer(&DatasetRequest{Dataset: withFiles.ID}, v)); !bytes.Contains(b, []byte(`"dcat:byteSize":1234,"dcat:mediaType":"text/csv","dct:title":"stations.csv"`)) {
		t.Errorf("the Dataset answer lists no Distribution for stations.csv:\n%s", b)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeMessage(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateDSP(t, tc.msg.MessageType(), b); err != nil {
				t.Errorf("%s does not validate: %v\n%s", tc.msg.MessageType(), err, b)
			}
			back, err := DecodeMessage(b)
			if err != nil {
				t.Fatalf("DecodeMessage: %v\n%s", err, b)
			}
			again, err := EncodeMessage(back)
			if err != nil || !bytes.Equal(b, again) {
				t.Errorf("decode/encode changed the message (%v):\n%s\n%s", err, b, again)
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	pub, member, other := newTestKey(1), newTestKey(2), newTestKey(3)
	c := publisherWith(t, pub, member.PeerID())
	memberV := Viewer{PeerID: member.PeerID(), Role: policy.RoleAgency, Now: t0}
	otherV := Viewer{PeerID: other.PeerID(), Role: policy.RoleResearcher, Now: t0}
	names := func(m Message) string {
		var s []string
		switch x := m.(type) {
		case *CatalogResponse:
			for _, r := range x.Records {
				s = append(s, strings.TrimPrefix(r.Dataset.ID, "urn:mim:dataset:aarhus:air-quality"))
			}
			for _, r := range x.Retired {
				s = append(s, "retired"+strings.TrimPrefix(r.Dataset.ID, "urn:mim:dataset:aarhus:air-quality"))
			}
		case *DatasetResponse:
			s = append(s, strings.TrimPrefix(x.Record.Dataset.ID, "urn:mim:dataset:aarhus:air-quality"))
		case *CatalogError:
			s = append(s, "error "+string(x.Code))
		}
		return strings.Join(s, " ")
	}
	cases := []struct {
		name string
		req  Message
		v    Viewer
		want string
	}{
		{"catalogue for the audience", &CatalogRequest{}, memberV, " -restricted -two-offers"},
		{"catalogue for another peer", &CatalogRequest{}, otherV, " -two-offers"},
		{"filtered catalogue", &CatalogRequest{Filter: []Query{{Text: "noise"}}}, memberV, "-two-offers"},
		{"filter items are alternatives", &CatalogRequest{Filter: []Query{{Text: "noise"}, {Text: "PM10"}}}, otherV, " -two-offers"},
		{"dataset", &DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality"}, otherV, ""},
		{"restricted dataset for the audience", &DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality-restricted"}, memberV, "-restricted"},
		{"restricted dataset for another peer", &DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality-restricted"}, otherV, "error " + string(CodeUnknownDataset)},
		{"private dataset", &DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality-private"}, memberV, "error " + string(CodeUnknownDataset)},
		{"unknown dataset", &DatasetRequest{Dataset: "urn:mim:dataset:nope"}, memberV, "error " + string(CodeUnknownDataset)},
		{"changes since 0", &ChangesRequest{}, memberV, " -restricted -two-offers"},
		{"changes since 2", &ChangesRequest{Since: 2}, memberV, "-two-offers"},
		{"a response is not a request", &CatalogError{}, memberV, "error " + string(protocol.CodeMalformedMessage)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(c.Answer(tc.req, tc.v)); got != tc.want {
				t.Errorf("Answer(%T) = %q, want %q", tc.req, got, tc.want)
			}
		})
	}
	if _, err := c.Retire("urn:mim:dataset:aarhus:air-quality-restricted", t0); err != nil {
		t.Fatal(err)
	}
	if got := names(c.Answer(&ChangesRequest{Since: 4}, otherV)); got != "" {
		t.Errorf("a retirement of a restricted dataset reached a peer outside its audience: %q", got)
	}
	if got := names(c.Answer(&ChangesRequest{Since: 4}, memberV)); got != "retired-restricted" {
		t.Errorf("changes since 4 for the audience = %q, want the retirement", got)
	}
}

// node is one federation member as the catalogue sees it: its own
// catalogue and its federated index.
type node struct {
	key   testKey
	cat   *Catalog
	index *Index
	seen  map[string]uint64 // publisher -> highest seq pulled
}

func newNode(t testing.TB, seed byte) *node {
	k := newTestKey(seed)
	c, err := NewCatalog(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &node{key: k, cat: c, index: NewIndex(), seen: map[string]uint64{}}
}

// pullAll collects every page of a changes answer from since 0.
func (n *node) pullAll(t testing.TB, from *node) []Record {
	t.Helper()
	v := Viewer{PeerID: n.key.PeerID(), Role: policy.RoleAgency, Now: t0}
	var out []Record
	since := uint64(0)
	for {
		resp := from.cat.Answer(&ChangesRequest{Since: since}, v).(*CatalogResponse)
		if err := resp.Verify(testVerifier{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.Records...)
		since = resp.Seq
		if !resp.More {
			return out
		}
	}
}

// pull is what the node does on an announcement: changes requests until
// the publisher has no more, every frame encoded and decoded, every record
// verified before it enters the index.
func (n *node) pull(t testing.TB, from *node) {
	t.Helper()
	v := Viewer{PeerID: n.key.PeerID(), Role: policy.RoleAgency, Now: t0}
	for {
		req, _ := EncodeMessage(&ChangesRequest{Since: n.seen[from.key.PeerID()]})
		in, err := DecodeMessage(req)
		if err != nil {
			t.Fatal(err)
		}
		out, err := EncodeMessage(from.cat.Answer(in, v))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := DecodeMessage(out)
		if err != nil {
			t.Fatal(err)
		}
		resp := msg.(*CatalogResponse)
		if resp.Participant != from.key.PeerID() {
			t.Fatalf("answer from %s names %s", from.key.PeerID(), resp.Participant)
		}
		if err := resp.Verify(testVerifier{}); err != nil {
			t.Fatal(err)
		}
		for _, r := range append(resp.Records, resp.Retired...) {
			n.index.Put(r)
		}
		n.seen[from.key.PeerID()] = resp.Seq
		if !resp.More {
			return
		}
	}
}

func found(t testing.TB, n *node, q Query) int {
	t.Helper()
	r, err := n.index.Search(q)
	if err != nil {
		t.Fatal(err)
	}
	return r.Total
}

// TestFederationCatalogueFlow runs the scenarios through the
// catalogue alone: publish, update, retire, catch-up after being offline,
// restricted datasets, paging, in a three-member federation.
func TestFederationCatalogueFlow(t *testing.T) {
	a, b, c := newNode(t, 1), newNode(t, 2), newNode(t, 3)
	nodes := []*node{a, b, c}
	// gossip stands in for the announcement: every member that is online
	// pulls from every other.
	gossip := func(offline ...*node) {
		for _, n := range nodes {
			if slices.Contains(offline, n) {
				continue
			}
			for _, p := range nodes {
				if p != n {
					n.pull(t, p)
				}
			}
		}
	}
	d := exampleDataset(t)
	if _, err := a.cat.Put(d, t0); err != nil {
		t.Fatal(err)
	}
	gossip()
	for _, n := range []*node{b, c} {
		aarhus := orb.Bound{Min: orb.Point{10.1, 56.1}, Max: orb.Point{10.2, 56.2}}
		if found(t, n, Query{Text: "air quality", BBox: &aarhus}) != 1 {
			t.Errorf("published dataset not found on another member")
		}
	}
	// An update while c is offline; c catches up afterwards.
	d.Title = "Air quality and pollen, Aarhus"
	if _, err := a.cat.Put(d, t0.Add(1)); err != nil {
		t.Fatal(err)
	}
	gossip(c)
	if found(t, b, Query{Text: "pollen"}) != 1 || found(t, c, Query{Text: "pollen"}) != 0 {
		t.Fatalf("update: b should see it, offline c not yet")
	}
	gossip()
	if found(t, c, Query{Text: "pollen"}) != 1 {
		t.Errorf("c did not catch up with the update")
	}
	// Restricted to b: c never sees it.
	r := exampleDataset(t)
	r.ID, r.Title, r.Dissemination, r.Audience = "urn:mim:dataset:aarhus:cameras", "Traffic cameras", Restricted, []string{b.key.PeerID()}
	r.Description, r.Keywords = "Live images of junctions.", []string{"junctions"}
	if _, err := a.cat.Put(r, t0.Add(2)); err != nil {
		t.Fatal(err)
	}
	gossip()
	if found(t, b, Query{Text: "cameras"}) != 1 || found(t, c, Query{Text: "cameras"}) != 0 {
		t.Errorf("restricted dataset: b finds %d, c finds %d; want 1 and 0", found(t, b, Query{Text: "cameras"}), found(t, c, Query{Text: "cameras"}))
	}
	// Retirement propagates.
	if _, err := a.cat.Retire(d.ID, t0.Add(3)); err != nil {
		t.Fatal(err)
	}
	gossip()
	for _, n := range []*node{b, c} {
		if found(t, n, Query{Text: "pollen"}) != 0 {
			t.Errorf("retired dataset still found")
		}
	}
	// Visibility narrows: the cameras become private. b gets no
	// record saying so (a private dataset is in nobody's answer); a full
	// resync removes it.
	r.Dissemination, r.Audience = Private, nil
	if _, err := a.cat.Put(r, t0.Add(3)); err != nil {
		t.Fatal(err)
	}
	gossip()
	if found(t, b, Query{Text: "cameras"}) != 1 {
		t.Fatalf("expected the stale entry before the resync")
	}
	b.seen[a.key.PeerID()] = 0
	full := b.pullAll(t, a)
	if removed := b.index.Replace(a.key.PeerID(), full); len(removed) != 1 || found(t, b, Query{Text: "cameras"}) != 0 {
		t.Errorf("Replace removed %v; cameras found %d times; want 1 and 0", removed, found(t, b, Query{Text: "cameras"}))
	}
	// Many changes while b is offline: catch-up pages through them.
	for i := 0; i < MaxPage+50; i++ {
		x := exampleDataset(t)
		x.ID = fmt.Sprintf("urn:mim:dataset:aarhus:sensor-%d", i)
		if _, err := a.cat.Put(x, t0.Add(4)); err != nil {
			t.Fatal(err)
		}
	}
	gossip()
	if got := found(t, b, Query{Text: "PM10", Limit: 1}); got != MaxPage+50 {
		t.Errorf("after paged catch-up b finds %d, want %d", got, MaxPage+50)
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	pub := newTestKey(1)
	c := publisherWith(t, pub, newTestKey(2).PeerID())
	good, _ := EncodeMessage(c.Answer(&CatalogRequest{}, Viewer{PeerID: newTestKey(2).PeerID(), Now: t0}))
	with := func(f func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	ctx := `"@context":["` + protocol.Context + `"]`
	cases := []struct {
		name, doc string
		want      error
	}{
		{"not JSON", `{`, ErrMalformedMessage},
		{"array", `[]`, ErrMalformedMessage},
		{"no context", `{"@type":"DatasetRequestMessage","dataset":"urn:x"}`, ErrMalformedMessage},
		{"other context", `{"@context":"https://example.org/ctx","@type":"DatasetRequestMessage","dataset":"urn:x"}`, ErrMalformedMessage},
		{"unknown type", `{` + ctx + `,"@type":"ContractRequestMessage"}`, ErrUnknownMessageType},
		{"dataset request without dataset", `{` + ctx + `,"@type":"DatasetRequestMessage"}`, ErrMalformedMessage},
		{"dataset request with number", `{` + ctx + `,"@type":"DatasetRequestMessage","dataset":7}`, ErrMalformedMessage},
		{"filter not an array", `{` + ctx + `,"@type":"CatalogRequestMessage","filter":{}}`, ErrMalformedMessage},
		{"filter item unknown", `{` + ctx + `,"@type":"CatalogRequestMessage","filter":[{"sql":"drop"}]}`, ErrMalformedMessage},
		{"filter limit too big", `{` + ctx + `,"@type":"CatalogRequestMessage","filter":[{"limit":100000}]}`, ErrMalformedMessage},
		{"changes without since", `{` + ctx + `,"@type":"urn:mimnode:CatalogChangesRequestMessage"}`, ErrMalformedMessage},
		{"changes with negative since", `{` + ctx + `,"@type":"urn:mimnode:CatalogChangesRequestMessage","urn:mimnode:since":-1}`, ErrMalformedMessage},
		{"catalog of another participant", with(func(m map[string]any) { m["participantId"] = "someone-else" }), ErrMalformedMessage},
		{"catalog without seq", with(func(m map[string]any) { delete(m, "urn:mimnode:seq") }), ErrMalformedMessage},
		{"catalog seq below its records", with(func(m map[string]any) { m["urn:mimnode:seq"] = 1 }), ErrMalformedMessage},
		{"dataset without record", with(func(m map[string]any) {
			delete(m["dataset"].([]any)[0].(map[string]any), "urn:mimnode:record")
		}), ErrMalformedMessage},
		{"dataset id not the record's", with(func(m map[string]any) {
			m["dataset"].([]any)[0].(map[string]any)["@id"] = "urn:mim:dataset:other"
		}), ErrMalformedMessage},
		{"too large", `{"x":"` + strings.Repeat("x", protocol.MaxCatalogFrame) + `"}`, ErrMalformedMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMessage([]byte(tc.doc)); !errors.Is(err, tc.want) {
				t.Errorf("DecodeMessage = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	pub, peer := newTestKey(1), newTestKey(2)
	c := publisherWith(f, pub, peer.PeerID())
	v := Viewer{PeerID: peer.PeerID(), Now: t0}
	for _, m := range []Message{
		&CatalogRequest{Filter: []Query{{Text: "air", Theme: "ENVI"}}},
		&DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality"},
		&ChangesRequest{Since: 3},
		c.Answer(&CatalogRequest{}, v),
		c.Answer(&DatasetRequest{Dataset: "urn:mim:dataset:aarhus:air-quality"}, v),
		&CatalogError{Code: CodeUnknownDataset, Reason: []string{"no"}},
	} {
		b, err := EncodeMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, ex := range []string{"catalog-request-message.json", "dataset-request-message.json", "catalog.json", "dataset.json", "catalog-error.json"} {
		f.Add(readTestdata(f, "dsp/catalog/example/"+ex))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedMessage) && !errors.Is(err, ErrUnknownMessageType) &&
				!errors.Is(err, ErrNotCanonical) && !errors.Is(err, ErrInvalidDataset) && !errors.Is(err, policy.ErrSyntax) {
				t.Fatalf("DecodeMessage error %v wraps no documented sentinel", err)
			}
			return
		}
		// Whatever decodes must encode and decode to the same message.
		b, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\n%s", err, b)
		}
		b2, _ := EncodeMessage(m2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}
