package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/mimnode/mimnode/policy"
	"github.com/mimnode/mimnode/protocol"
)

// Catalogue messages on /mim/catalog/1.0.0 (protocol.CatalogProtocol). The
// requests and answers are Dataspace Protocol 2025-1 catalogue documents
// (CatalogRequestMessage, DatasetRequestMessage, Catalog, Dataset,
// CatalogError) compacted against the DSP context; mimnode's additions use
// absolute IRIs as keys, so DSP tools read the rest unchanged:
//
//   - every dataset carries its signed record under "urn:mimnode:record";
//   - a Catalog carries the publisher's sequence number ("urn:mimnode:seq"),
//     retired datasets' records ("urn:mimnode:retired") and whether more
//     pages follow ("urn:mimnode:more");
//   - "changes since sequence N" is a request of ours,
//     urn:mimnode:CatalogChangesRequestMessage with "urn:mimnode:since".

// Message @types.
const (
	TypeCatalogRequest = "CatalogRequestMessage"
	TypeDatasetRequest = "DatasetRequestMessage"
	TypeChangesRequest = "urn:mimnode:CatalogChangesRequestMessage"
	TypeCatalog        = "Catalog"
	TypeDataset        = "Dataset"
	TypeCatalogError   = "CatalogError"
)

// Extension keys.
const (
	keyRecord  = "urn:mimnode:record"
	keySeq     = "urn:mimnode:seq"
	keyRetired = "urn:mimnode:retired"
	keyMore    = "urn:mimnode:more"
	keySince   = "urn:mimnode:since"
)

// DistributionFormat is the dcat:format of every mimnode distribution: the
// data is pulled over /mim/transfer/1.0.0 under an agreement.
const DistributionFormat = "mimnode-pull"

// MaxPage bounds the records in one Catalog answer, so that an answer stays
// well under protocol.MaxCatalogFrame; "urn:mimnode:more" says to ask again.
const MaxPage = 200

// CodeUnknownDataset is the CatalogError code for a dataset that does not
// exist or that the requester may not see (the two are not told apart).
// It belongs in protocol's code table; until it is there it is defined here.
const CodeUnknownDataset protocol.Code = "MIM-406"

// Message is one catalogue message: *CatalogRequest, *DatasetRequest,
// *ChangesRequest, *CatalogResponse, *DatasetResponse or *CatalogError.
type Message interface {
	MessageType() string
}

// CatalogRequest asks for a publisher's catalogue, optionally filtered.
// Filter items are Query objects; a dataset is listed if it matches any.
type CatalogRequest struct {
	Filter []Query
}

// DatasetRequest asks for one dataset by id.
type DatasetRequest struct {
	Dataset string
}

// ChangesRequest asks for every dataset changed after sequence number
// Since (0: everything): how a node catches up after an announcement or
// after being offline.
type ChangesRequest struct {
	Since uint64
}

// CatalogResponse is a publisher's catalogue, or one page of it.
type CatalogResponse struct {
	Participant string   // publisher peer ID (DSP participantId)
	Seq         uint64   // the catalogue sequence number this answer brings the asker up to
	More        bool     // the answer is one page: for a changes request, ask again with Since = Seq
	Records     []Record // live datasets
	Retired     []Record // retired datasets (changes answers only)
}

// DatasetResponse is one dataset.
type DatasetResponse struct {
	Record Record
}

// CatalogError is a DSP CatalogError.
type CatalogError struct {
	Code   protocol.Code
	Reason []string
}

func (*CatalogRequest) MessageType() string  { return TypeCatalogRequest }
func (*DatasetRequest) MessageType() string  { return TypeDatasetRequest }
func (*ChangesRequest) MessageType() string  { return TypeChangesRequest }
func (*CatalogResponse) MessageType() string { return TypeCatalog }
func (*DatasetResponse) MessageType() string { return TypeDataset }
func (*CatalogError) MessageType() string    { return TypeCatalogError }

// Error makes a received CatalogError usable as an error.
func (e *CatalogError) Error() string {
	return fmt.Sprintf("catalogue error %s: %v", e.Code, e.Reason)
}

// CatalogID is the @id of a publisher's catalogue.
func CatalogID(peer string) string { return "urn:mim:catalog:" + peer }

// ServiceID is the @id of a publisher's data service (its transfer endpoint).
func ServiceID(peer string) string { return "urn:mim:service:" + peer }

func header(typ string) map[string]any {
	return map[string]any{"@context": []any{protocol.Context}, "@type": typ}
}

// dspOffer turns a published offer into a DSP Offer: no @context (the DSP
// context covers ODRL terms) and no target (the dataset is the target).
func dspOffer(o Offer) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(o.canon, &m); err != nil {
		return nil, fmt.Errorf("encoding offer: %w", err)
	}
	delete(m, "@context")
	delete(m, "target")
	return m, nil
}

// dspDataset is the DSP Dataset object for a record.
func dspDataset(r Record) (map[string]any, error) {
	d := r.Dataset
	m := map[string]any{"@id": d.ID, "@type": TypeDataset, "dct:title": d.Title}
	if d.Description != "" {
		m["dct:description"] = d.Description
	}
	if len(d.Keywords) > 0 {
		m["dcat:keyword"] = d.Keywords
	}
	var offers []any
	for _, o := range d.Offers {
		x, err := dspOffer(o)
		if err != nil {
			return nil, err
		}
		offers = append(offers, x)
	}
	if len(offers) > 0 {
		m["hasPolicy"] = offers
	}
	dist := []any{map[string]any{"@type": "Distribution", "format": DistributionFormat, "accessService": ServiceID(r.Publisher)}}
	if d.Source != nil {
		// One more Distribution per file, in the terms DCAT uses for files.
		for _, f := range d.Source.Files {
			x := map[string]any{"@type": "Distribution", "format": DistributionFormat, "accessService": ServiceID(r.Publisher),
				"dct:title": f.Name, "dcat:byteSize": f.Size}
			if f.MediaType != "" {
				x["dcat:mediaType"] = f.MediaType
			}
			dist = append(dist, x)
		}
	}
	m["distribution"] = dist
	rec, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	m[keyRecord] = json.RawMessage(rec)
	return m, nil
}

// EncodeMessage writes a catalogue message as a frame body.
func EncodeMessage(msg Message) ([]byte, error) {
	var m map[string]any
	switch x := msg.(type) {
	case *CatalogRequest:
		m = header(TypeCatalogRequest)
		f := make([]any, len(x.Filter))
		for i, q := range x.Filter {
			f[i] = q
		}
		m["filter"] = f
	case *DatasetRequest:
		m = header(TypeDatasetRequest)
		m["dataset"] = x.Dataset
	case *ChangesRequest:
		m = header(TypeChangesRequest)
		m[keySince] = x.Since
	case *CatalogResponse:
		m = header(TypeCatalog)
		m["@id"] = CatalogID(x.Participant)
		m["participantId"] = x.Participant
		m["service"] = []any{map[string]any{"@id": ServiceID(x.Participant), "@type": "DataService", "endpointURL": "/p2p/" + x.Participant}}
		var ds []any
		for _, r := range x.Records {
			d, err := dspDataset(r)
			if err != nil {
				return nil, fmt.Errorf("encoding catalogue of %s: %w", x.Participant, err)
			}
			ds = append(ds, d)
		}
		if len(ds) > 0 {
			m["dataset"] = ds
		}
		if len(x.Retired) > 0 {
			m[keyRetired] = x.Retired
		}
		m[keySeq] = x.Seq
		if x.More {
			m[keyMore] = true
		}
	case *DatasetResponse:
		d, err := dspDataset(x.Record)
		if err != nil {
			return nil, fmt.Errorf("encoding dataset %s: %w", x.Record.Dataset.ID, err)
		}
		m = d
		m["@context"] = []any{protocol.Context}
	case *CatalogError:
		m = header(TypeCatalogError)
		m["code"] = string(x.Code)
		reason := make([]any, len(x.Reason))
		for i, s := range x.Reason {
			reason[i] = s
		}
		m["reason"] = reason
	default:
		return nil, fmt.Errorf("encoding catalogue message: %w: %T", ErrUnknownMessageType, msg)
	}
	return json.Marshal(m)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("decoding catalogue message: %w: %s", ErrMalformedMessage, fmt.Sprintf(format, args...))
}

// DecodeMessage reads a frame body. It checks the form of every record it
// carries (DecodeRecord) but not the signatures: call Verify on a
// CatalogResponse or DatasetResponse before using its records.
func DecodeMessage(body []byte) (Message, error) {
	if len(body) > protocol.MaxCatalogFrame {
		return nil, malformed("%d bytes is more than %d", len(body), protocol.MaxCatalogFrame)
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, malformed("not a JSON object")
	}
	if dec.More() {
		return nil, malformed("extra data after the JSON object")
	}
	if err := checkContext(m["@context"]); err != nil {
		return nil, err
	}
	var typ string
	if err := json.Unmarshal(m["@type"], &typ); err != nil || typ == "" {
		return nil, malformed("@type must be a string")
	}
	str := func(key string, required bool) (string, error) {
		raw, ok := m[key]
		if !ok {
			if required {
				return "", malformed("%s: %s is required", typ, key)
			}
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || (required && s == "") {
			return "", malformed("%s: %s must be a non-empty string", typ, key)
		}
		return s, nil
	}
	switch typ {
	case TypeCatalogRequest:
		req := &CatalogRequest{}
		if raw, ok := m["filter"]; ok {
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, malformed("filter must be an array")
			}
			for i, it := range items {
				var q Query
				if err := json.Unmarshal(it, &q); err != nil {
					return nil, malformed("filter[%d] is not a catalogue query: %v", i, err)
				}
				if _, err := q.check(); err != nil {
					return nil, malformed("filter[%d]: %v", i, err)
				}
				req.Filter = append(req.Filter, q)
			}
		}
		return req, nil
	case TypeDatasetRequest:
		id, err := str("dataset", true)
		if err != nil {
			return nil, err
		}
		return &DatasetRequest{Dataset: id}, nil
	case TypeChangesRequest:
		var since uint64
		if err := json.Unmarshal(m[keySince], &since); err != nil {
			return nil, malformed("%s: %s must be a sequence number", typ, keySince)
		}
		return &ChangesRequest{Since: since}, nil
	case TypeCatalog:
		return decodeCatalog(m, str)
	case TypeDataset:
		r, err := decodeDSPDataset(m)
		if err != nil {
			return nil, err
		}
		return &DatasetResponse{Record: r}, nil
	case TypeCatalogError:
		code, err := str("code", false)
		if err != nil {
			return nil, err
		}
		e := &CatalogError{Code: protocol.Code(code)}
		if raw, ok := m["reason"]; ok {
			var rs protocol.Reasons
			if err := json.Unmarshal(raw, &rs); err != nil {
				return nil, malformed("reason: %v", err)
			}
			e.Reason = rs
		}
		return e, nil
	}
	return nil, fmt.Errorf("decoding catalogue message: %w: %q", ErrUnknownMessageType, typ)
}

func checkContext(raw json.RawMessage) error {
	if len(raw) == 0 {
		return malformed("@context is required")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == protocol.Context {
			return nil
		}
		return malformed("@context %q is not the DSP context %s", one, protocol.Context)
	}
	var many []json.RawMessage
	if err := json.Unmarshal(raw, &many); err != nil {
		return malformed("@context must be a string or an array")
	}
	for _, c := range many {
		if json.Unmarshal(c, &one) == nil && one == protocol.Context {
			return nil
		}
	}
	return malformed("@context does not list the DSP context %s", protocol.Context)
}

func decodeCatalog(m map[string]json.RawMessage, str func(string, bool) (string, error)) (Message, error) {
	peer, err := str("participantId", true)
	if err != nil {
		return nil, err
	}
	if id, err := str("@id", true); err != nil {
		return nil, err
	} else if id != CatalogID(peer) {
		return nil, malformed("Catalog @id %q is not %s", id, CatalogID(peer))
	}
	resp := &CatalogResponse{Participant: peer}
	if err := json.Unmarshal(m[keySeq], &resp.Seq); err != nil {
		return nil, malformed("Catalog: %s must be a sequence number", keySeq)
	}
	if raw, ok := m[keyMore]; ok {
		if err := json.Unmarshal(raw, &resp.More); err != nil {
			return nil, malformed("Catalog: %s must be a boolean", keyMore)
		}
	}
	var datasets []map[string]json.RawMessage
	if raw, ok := m["dataset"]; ok {
		if err := json.Unmarshal(raw, &datasets); err != nil {
			return nil, malformed("Catalog: dataset must be an array of objects")
		}
	}
	for i, d := range datasets {
		r, err := decodeDSPDataset(d)
		if err != nil {
			return nil, fmt.Errorf("dataset[%d]: %w", i, err)
		}
		resp.Records = append(resp.Records, r)
	}
	var retired []json.RawMessage
	if raw, ok := m[keyRetired]; ok {
		if err := json.Unmarshal(raw, &retired); err != nil {
			return nil, malformed("Catalog: %s must be an array", keyRetired)
		}
	}
	for i, raw := range retired {
		r, err := DecodeRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("decoding catalogue message: %s[%d]: %w", keyRetired, i, err)
		}
		if !r.Retired {
			return nil, malformed("%s[%d] is not a retirement", keyRetired, i)
		}
		resp.Retired = append(resp.Retired, r)
	}
	for _, r := range slices.Concat(resp.Records, resp.Retired) {
		if r.Publisher != peer {
			return nil, malformed("Catalog of %s carries a record published by %s", peer, r.Publisher)
		}
		if r.Seq > resp.Seq {
			return nil, malformed("record of %s has seq %d, above the catalogue's %d", r.Dataset.ID, r.Seq, resp.Seq)
		}
	}
	return resp, nil
}

func decodeDSPDataset(m map[string]json.RawMessage) (Record, error) {
	raw, ok := m[keyRecord]
	if !ok {
		return Record{}, malformed("Dataset without %s: not from a mimnode peer", keyRecord)
	}
	r, err := DecodeRecord(raw)
	if err != nil {
		return Record{}, fmt.Errorf("decoding catalogue message: %w", err)
	}
	var id string
	if err := json.Unmarshal(m["@id"], &id); err != nil || id != r.Dataset.ID {
		return Record{}, malformed("Dataset @id %q is not its record's %q", id, r.Dataset.ID)
	}
	if r.Retired {
		return Record{}, malformed("Dataset %s is retired; retirements travel in %s", id, keyRetired)
	}
	return r, nil
}

// Verify checks every record's signature (Record.Verify).
func (c *CatalogResponse) Verify(v policy.Verifier) error {
	for _, r := range slices.Concat(c.Records, c.Retired) {
		if err := r.Verify(v); err != nil {
			return err
		}
	}
	return nil
}

// Verify checks the record's signature.
func (d *DatasetResponse) Verify(v policy.Verifier) error { return d.Record.Verify(v) }

// Answer is the publisher's side of /mim/catalog/1.0.0: it answers a
// request from the peer v with what v may see. The node's stream handler
// reads one frame, decodes it, calls Answer and writes the result.
func (c *Catalog) Answer(req Message, v Viewer) Message {
	switch x := req.(type) {
	case *CatalogRequest:
		return c.answerCatalog(x, v)
	case *DatasetRequest:
		r, err := c.Lookup(x.Dataset, v)
		if err != nil || r.Retired {
			return &CatalogError{Code: CodeUnknownDataset, Reason: []string{"no dataset " + x.Dataset}}
		}
		return &DatasetResponse{Record: r}
	case *ChangesRequest:
		rs := c.Since(x.Since, v)
		resp := &CatalogResponse{Participant: c.Publisher(), Seq: c.seq}
		if len(rs) > MaxPage {
			rs = rs[:MaxPage]
			resp.More = true
			resp.Seq = rs[len(rs)-1].Seq
		}
		for _, r := range rs {
			if r.Retired {
				resp.Retired = append(resp.Retired, r)
			} else {
				resp.Records = append(resp.Records, r)
			}
		}
		return resp
	}
	return &CatalogError{Code: protocol.CodeMalformedMessage, Reason: []string{fmt.Sprintf("%s is not a catalogue request", req.MessageType())}}
}

func (c *Catalog) answerCatalog(req *CatalogRequest, v Viewer) Message {
	var visible []Record
	for _, r := range c.All() {
		if r.Retired {
			continue
		}
		if x, ok := Visible(r, v); ok {
			visible = append(visible, x)
		}
	}
	if len(req.Filter) > 0 {
		x := NewIndex()
		for _, r := range visible {
			x.Put(r)
		}
		keep := map[string]bool{}
		for _, q := range req.Filter {
			q.Limit, q.Offset = MaxLimit, 0
			res, err := x.Search(q)
			if err != nil {
				return &CatalogError{Code: protocol.CodeMalformedMessage, Reason: []string{err.Error()}}
			}
			for _, h := range res.Hits {
				keep[h.Record.Dataset.ID] = true
			}
		}
		visible = slices.DeleteFunc(visible, func(r Record) bool { return !keep[r.Dataset.ID] })
	}
	resp := &CatalogResponse{Participant: c.Publisher(), Seq: c.seq, Records: visible}
	if len(visible) > MaxPage {
		// A DSP catalogue request has no paging; the full catalogue comes
		// through changes requests, which page by sequence number.
		resp.Records, resp.More = visible[:MaxPage], true
	}
	return resp
}
