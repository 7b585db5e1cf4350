package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ipfs/go-cid"
	"github.com/paulmach/orb"
)

// Dissemination says who may see a dataset in the federation.
type Dissemination string

const (
	// Federation: every member of the federation sees the dataset.
	Federation Dissemination = "federation"
	// Restricted: only the peers listed in Audience see it.
	Restricted Dissemination = "restricted"
	// Private: nobody but the publisher sees it (listed locally only).
	Private Dissemination = "private"
)

// Dataset is one dataset described in DCAT-AP terms (DESIGN.md, Catalogue).
// ParseDataset reads it from an authored JSON or TOML file; MarshalJSON
// writes it back in the same shape.
type Dataset struct {
	ID          string    // URN, e.g. urn:mim:dataset:aarhus:air-quality
	Title       string    // dct:title
	Description string    // dct:description
	Keywords    []string  // dcat:keyword
	Themes      []string  // dcat:theme: DCAT-AP data theme codes (ENVI, TRAN, ...)
	Publisher   Publisher // dct:publisher; the catalogue fills in the peer ID

	Spatial  orb.Geometry // dct:spatial, GeoJSON geometry in EPSG:4326; nil: none
	Temporal *Temporal    // dct:temporal; nil: none

	EntityTypes []string // Smart Data Models type IRIs (or short NGSI-LD type names)
	License     string   // SPDX licence id (CC-BY-4.0) or licence IRI
	PriceModel  *PriceModel
	SLA         *SLA

	Offers []Offer // at least one; templates or inline ODRL policies

	Dissemination Dissemination
	Audience      []string // peer IDs; only with Restricted

	Source *Source // where the data comes from; nil: a view of EntityTypes, if any

	Version  string    // current version: manifest CID (package content); empty: none yet
	Issued   time.Time // first published; set by Catalog.Put
	Modified time.Time // last changed; set by Catalog.Put
}

// Publisher is the agency that publishes a dataset: its node's peer ID and
// its name for people.
type Publisher struct {
	PeerID string `json:"peerId,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Temporal is the period the data covers; either end may be open (zero).
type Temporal struct {
	Start time.Time
	End   time.Time
}

// PriceModel says what using the data costs.
type PriceModel struct {
	Type     string  `json:"type"`               // free, fixed, per-transfer, subscription
	Amount   float64 `json:"amount,omitempty"`   // in Currency; not for free
	Currency string  `json:"currency,omitempty"` // ISO 4217, e.g. EUR
	Period   string  `json:"period,omitempty"`   // subscription period, ISO 8601 duration
}

// Price model types.
var priceTypes = map[string]bool{"free": true, "fixed": true, "per-transfer": true, "subscription": true}

// SLA is the service level the publisher commits to.
type SLA struct {
	Availability    float64 `json:"availability,omitempty"`    // percent of time, (0, 100]
	UpdateFrequency string  `json:"updateFrequency,omitempty"` // ISO 8601 duration, e.g. PT1H
	ResponseTime    string  `json:"responseTime,omitempty"`    // ISO 8601 duration
	Support         string  `json:"support,omitempty"`         // contact (e-mail, URL)
}

// Source is where a dataset's data comes from: an NGSI-LD view of the
// node's entity store, files, or both (a view whose dataset also carries
// files added with mimnode dataset add-file). At least one is set.
type Source struct {
	View  *View
	Files []File
}

// View selects entities from the node's store: entity types (defaulting to
// the dataset's EntityTypes), an optional NGSI-LD q expression and an
// optional area the entities' location must intersect.
type View struct {
	EntityTypes []string
	Q           string       // NGSI-LD query language; checked by the node's ngsild package
	Area        orb.Geometry // nil: anywhere
}

// File is one file of a file-based dataset (mimnode dataset add-file).
type File struct {
	Name      string `json:"name"`                // base name, no directories
	MediaType string `json:"mediaType,omitempty"` // e.g. text/csv
	Version   string `json:"version,omitempty"`   // the file's own manifest CID (content.ChunkFile)
	Size      int64  `json:"size,omitempty"`      // bytes
	SHA256    string `json:"sha256,omitempty"`    // hex SHA2-256 of the file's bytes
}

// EffectiveView returns the view the dataset's data is taken from: its
// Source.View with the entity types filled in, or a view of its entity types
// when no source is given. ok is false for file datasets and for datasets
// with neither a source nor entity types.
func (d Dataset) EffectiveView() (v View, ok bool) {
	if d.Source != nil {
		if d.Source.View == nil {
			return View{}, false
		}
		v = *d.Source.View
		if len(v.EntityTypes) == 0 {
			v.EntityTypes = d.EntityTypes
		}
		return v, len(v.EntityTypes) > 0
	}
	if len(d.EntityTypes) == 0 {
		return View{}, false
	}
	return View{EntityTypes: d.EntityTypes}, true
}

// Bound returns the bounding box of the spatial coverage; ok is false when
// the dataset has none.
func (d Dataset) Bound() (b orb.Bound, ok bool) {
	if d.Spatial == nil {
		return orb.Bound{}, false
	}
	return d.Spatial.Bound(), true
}

// Formats ParseDataset reads.
const (
	FormatJSON = "json"
	FormatTOML = "toml"
)

// MaxDatasetSize bounds an authored description; anything larger is refused
// before it is parsed.
const MaxDatasetSize = 1 << 20

// ParseDataset reads a dataset description authored as JSON or TOML
// (format "json" or "toml"; "" means JSON) and checks it. Every problem is a
// *FieldError wrapping ErrInvalidDataset that names the field; unknown
// fields are errors, so a typo never goes unnoticed.
func ParseDataset(data []byte, format string) (Dataset, error) {
	if len(data) > MaxDatasetSize {
		return Dataset{}, fieldErr("(document)", "%d bytes is more than the %d allowed", len(data), MaxDatasetSize)
	}
	switch strings.ToLower(format) {
	case "", FormatJSON:
	case FormatTOML:
		j, err := tomlToJSON(data)
		if err != nil {
			return Dataset{}, err
		}
		data = j
	default:
		return Dataset{}, fmt.Errorf("parsing dataset: format %q is not json or toml", format)
	}
	d, err := decodeDataset(data)
	if err != nil {
		return Dataset{}, err
	}
	if d.Dissemination == "" {
		d.Dissemination = Federation
	}
	if err := d.Validate(); err != nil {
		return Dataset{}, err
	}
	return d, nil
}

// tomlToJSON reads TOML into generic values and writes them as JSON, so both
// formats go through one decoder with one set of field names and checks.
func tomlToJSON(data []byte) ([]byte, error) {
	var m map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fieldErr("(document)", "not valid TOML: line %d: %s", pe.Position.Line, pe.Message)
		}
		return nil, fieldErr("(document)", "not valid TOML: %v", err)
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fieldErr("(document)", "TOML value cannot be represented as JSON: %v", err)
	}
	return j, nil
}

// datasetJSON is the authored (and displayed) JSON shape of a Dataset.
type datasetJSON struct {
	ID            string            `json:"id"`
	Title         string            `json:"title"`
	Description   string            `json:"description,omitempty"`
	Keywords      []string          `json:"keywords,omitempty"`
	Themes        []string          `json:"themes,omitempty"`
	Publisher     *Publisher        `json:"publisher,omitempty"`
	Spatial       json.RawMessage   `json:"spatial,omitempty"`
	Temporal      *temporalJSON     `json:"temporal,omitempty"`
	EntityTypes   []string          `json:"entityTypes,omitempty"`
	License       string            `json:"license,omitempty"`
	PriceModel    *PriceModel       `json:"priceModel,omitempty"`
	SLA           *SLA              `json:"sla,omitempty"`
	Offers        []json.RawMessage `json:"offers,omitempty"`
	Dissemination string            `json:"dissemination,omitempty"`
	Audience      []string          `json:"audience,omitempty"`
	Source        *sourceJSON       `json:"source,omitempty"`
	Version       string            `json:"version,omitempty"`
	Issued        string            `json:"issued,omitempty"`
	Modified      string            `json:"modified,omitempty"`
}

type temporalJSON struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type sourceJSON struct {
	View  *viewJSON `json:"view,omitempty"`
	Files []File    `json:"files,omitempty"`
}

type viewJSON struct {
	EntityTypes []string        `json:"entityTypes,omitempty"`
	Q           string          `json:"q,omitempty"`
	Area        json.RawMessage `json:"area,omitempty"`
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("extra data after the JSON value")
	}
	return nil
}

// jsonFieldErr turns encoding/json's errors into a FieldError naming the field.
func jsonFieldErr(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if prefix != "" {
			f = prefix + "." + f
		}
		if f == "" {
			f = "(document)"
		}
		return fieldErr(f, "must be %s, not a JSON %s", jsonTypeName(te.Type.Kind().String()), te.Value)
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name := strings.Trim(rest, `"`)
		if prefix != "" {
			name = prefix + "." + name
		}
		return fieldErr(name, "unknown field")
	}
	if prefix == "" {
		prefix = "(document)"
	}
	return fieldErr(prefix, "not valid JSON: %s", strings.TrimPrefix(msg, "json: "))
}

func jsonTypeName(kind string) string {
	switch kind {
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "float64", "int", "int64", "uint64":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "a " + kind
}

// datasetIn is the decoding side of datasetJSON: nested objects stay raw so
// that each is decoded strictly with its path, and an unknown field deep
// inside is named in full ("sla.uptime").
type datasetIn struct {
	ID            string            `json:"id"`
	Title         string            `json:"title"`
	Description   string            `json:"description"`
	Keywords      []string          `json:"keywords"`
	Themes        []string          `json:"themes"`
	Publisher     json.RawMessage   `json:"publisher"`
	Spatial       json.RawMessage   `json:"spatial"`
	Temporal      json.RawMessage   `json:"temporal"`
	EntityTypes   []string          `json:"entityTypes"`
	License       string            `json:"license"`
	PriceModel    json.RawMessage   `json:"priceModel"`
	SLA           json.RawMessage   `json:"sla"`
	Offers        []json.RawMessage `json:"offers"`
	Dissemination string            `json:"dissemination"`
	Audience      []string          `json:"audience"`
	Source        json.RawMessage   `json:"source"`
	Version       string            `json:"version"`
	Issued        string            `json:"issued"`
	Modified      string            `json:"modified"`
}

type sourceIn struct {
	View  json.RawMessage   `json:"view"`
	Files []json.RawMessage `json:"files"`
}

type viewIn struct {
	EntityTypes []string        `json:"entityTypes"`
	Q           string          `json:"q"`
	Area        json.RawMessage `json:"area"`
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// decodeAt strictly decodes raw into v, naming fields under prefix.
func decodeAt(prefix string, raw json.RawMessage, v any) error {
	if err := strictUnmarshal(raw, v); err != nil {
		return jsonFieldErr(prefix, err)
	}
	return nil
}

func decodeDataset(data []byte) (Dataset, error) {
	var w datasetIn
	if err := strictUnmarshal(data, &w); err != nil {
		return Dataset{}, jsonFieldErr("", err)
	}
	d := Dataset{
		ID: w.ID, Title: w.Title, Description: w.Description,
		Keywords: w.Keywords, Themes: w.Themes,
		EntityTypes: w.EntityTypes, License: w.License,
		Dissemination: Dissemination(w.Dissemination), Audience: w.Audience,
		Version: w.Version,
	}
	var err error
	if present(w.Publisher) {
		if err := decodeAt("publisher", w.Publisher, &d.Publisher); err != nil {
			return Dataset{}, err
		}
	}
	if present(w.PriceModel) {
		d.PriceModel = new(PriceModel)
		if err := decodeAt("priceModel", w.PriceModel, d.PriceModel); err != nil {
			return Dataset{}, err
		}
	}
	if present(w.SLA) {
		d.SLA = new(SLA)
		if err := decodeAt("sla", w.SLA, d.SLA); err != nil {
			return Dataset{}, err
		}
	}
	if present(w.Spatial) {
		if d.Spatial, err = decodeGeometry("spatial", w.Spatial); err != nil {
			return Dataset{}, err
		}
	}
	if present(w.Temporal) {
		var tj temporalJSON
		if err := decodeAt("temporal", w.Temporal, &tj); err != nil {
			return Dataset{}, err
		}
		t := &Temporal{}
		if t.Start, err = parseTime("temporal.start", tj.Start); err != nil {
			return Dataset{}, err
		}
		if t.End, err = parseTime("temporal.end", tj.End); err != nil {
			return Dataset{}, err
		}
		d.Temporal = t
	}
	for i, raw := range w.Offers {
		o, err := decodeOffer(fmt.Sprintf("offers[%d]", i), raw)
		if err != nil {
			return Dataset{}, err
		}
		d.Offers = append(d.Offers, o)
	}
	if present(w.Source) {
		var si sourceIn
		if err := decodeAt("source", w.Source, &si); err != nil {
			return Dataset{}, err
		}
		s := &Source{}
		for i, raw := range si.Files {
			var f File
			if err := decodeAt(fmt.Sprintf("source.files[%d]", i), raw, &f); err != nil {
				return Dataset{}, err
			}
			s.Files = append(s.Files, f)
		}
		if present(si.View) {
			var vi viewIn
			if err := decodeAt("source.view", si.View, &vi); err != nil {
				return Dataset{}, err
			}
			v := &View{EntityTypes: vi.EntityTypes, Q: vi.Q}
			if present(vi.Area) {
				if v.Area, err = decodeGeometry("source.view.area", vi.Area); err != nil {
					return Dataset{}, err
				}
			}
			s.View = v
		}
		d.Source = s
	}
	if d.Issued, err = parseTime("issued", w.Issued); err != nil {
		return Dataset{}, err
	}
	if d.Modified, err = parseTime("modified", w.Modified); err != nil {
		return Dataset{}, err
	}
	return d, nil
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr(field, "%q is not an RFC 3339 date-time (e.g. 2026-01-31T00:00:00Z)", s)
	}
	return t.UTC(), nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// checkGeometry enforces what EPSG:4326 GeoJSON needs for the bbox search to
// mean anything: finite coordinates in range and closed polygon rings.
func checkGeometry(field string, g orb.Geometry) error {
	checkPt := func(where string, p orb.Point) error {
		if !(p[0] >= -180 && p[0] <= 180) || !(p[1] >= -90 && p[1] <= 90) {
			return fieldErr(where, "position [%v, %v] is outside EPSG:4326 ([lon -180..180, lat -90..90])", p[0], p[1])
		}
		return nil
	}
	checkRing := func(where string, r orb.Ring) error {
		if len(r) < 4 {
			return fieldErr(where, "a polygon ring needs at least 4 positions, got %d", len(r))
		}
		if r[0] != r[len(r)-1] {
			return fieldErr(where, "a polygon ring must end where it starts")
		}
		for i, p := range r {
			if err := checkPt(fmt.Sprintf("%s[%d]", where, i), p); err != nil {
				return err
			}
		}
		return nil
	}
	c := field + ".coordinates"
	switch t := g.(type) {
	case orb.Point:
		return checkPt(c, t)
	case orb.MultiPoint:
		if len(t) == 0 {
			return fieldErr(c, "empty MultiPoint")
		}
		for i, p := range t {
			if err := checkPt(fmt.Sprintf("%s[%d]", c, i), p); err != nil {
				return err
			}
		}
	case orb.LineString:
		if len(t) < 2 {
			return fieldErr(c, "a LineString needs at least 2 positions")
		}
		for i, p := range t {
			if err := checkPt(fmt.Sprintf("%s[%d]", c, i), p); err != nil {
				return err
			}
		}
	case orb.MultiLineString:
		if len(t) == 0 {
			return fieldErr(c, "empty MultiLineString")
		}
		for i, ls := range t {
			if err := checkGeometry(fmt.Sprintf("%s[%d]", field, i), ls); err != nil {
				return err
			}
		}
	case orb.Polygon:
		if len(t) == 0 {
			return fieldErr(c, "a Polygon needs at least one ring")
		}
		for i, r := range t {
			if err := checkRing(fmt.Sprintf("%s[%d]", c, i), r); err != nil {
				return err
			}
		}
	case orb.MultiPolygon:
		if len(t) == 0 {
			return fieldErr(c, "empty MultiPolygon")
		}
		for i, p := range t {
			if err := checkGeometry(fmt.Sprintf("%s[%d]", field, i), p); err != nil {
				return err
			}
		}
	case orb.Collection:
		if len(t) == 0 {
			return fieldErr(field+".geometries", "empty GeometryCollection")
		}
		for i, x := range t {
			if err := checkGeometry(fmt.Sprintf("%s.geometries[%d]", field, i), x); err != nil {
				return err
			}
		}
	default:
		return fieldErr(field, "unsupported geometry type %s", g.GeoJSONType())
	}
	return nil
}

// wire returns the JSON shape of d; offers are written by Offer.MarshalJSON.
func (d Dataset) wire(withOffers bool) (datasetJSON, error) {
	w := datasetJSON{
		ID: d.ID, Title: d.Title, Description: d.Description,
		Keywords: d.Keywords, Themes: d.Themes,
		EntityTypes: d.EntityTypes, License: d.License,
		PriceModel: d.PriceModel, SLA: d.SLA,
		Dissemination: string(d.Dissemination), Audience: d.Audience,
		Version: d.Version, Issued: formatTime(d.Issued), Modified: formatTime(d.Modified),
	}
	if d.Publisher != (Publisher{}) {
		p := d.Publisher
		w.Publisher = &p
	}
	var err error
	if w.Spatial, err = geometryJSON(d.Spatial); err != nil {
		return w, fmt.Errorf("encoding spatial of %s: %w", d.ID, err)
	}
	if d.Temporal != nil {
		w.Temporal = &temporalJSON{Start: formatTime(d.Temporal.Start), End: formatTime(d.Temporal.End)}
	}
	if withOffers {
		for i, o := range d.Offers {
			b, err := o.MarshalJSON()
			if err != nil {
				return w, fmt.Errorf("encoding offers[%d] of %s: %w", i, d.ID, err)
			}
			w.Offers = append(w.Offers, b)
		}
	}
	if d.Source != nil {
		s := &sourceJSON{Files: d.Source.Files}
		if d.Source.View != nil {
			v := &viewJSON{EntityTypes: d.Source.View.EntityTypes, Q: d.Source.View.Q}
			if v.Area, err = geometryJSON(d.Source.View.Area); err != nil {
				return w, fmt.Errorf("encoding source.view.area of %s: %w", d.ID, err)
			}
			s.View = v
		}
		w.Source = s
	}
	return w, nil
}

// MarshalJSON writes the dataset in the shape ParseDataset reads.
func (d Dataset) MarshalJSON() ([]byte, error) {
	w, err := d.wire(true)
	if err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the shape MarshalJSON writes, strictly, without
// validating; ParseDataset is the checked entry point.
func (d *Dataset) UnmarshalJSON(b []byte) error {
	x, err := decodeDataset(b)
	if err != nil {
		return err
	}
	*d = x
	return nil
}

// validCID reports whether s parses as a CID.
func validCID(s string) bool {
	_, err := cid.Decode(s)
	return err == nil
}
