package catalog

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mimnode/mimnode/content"
)

// Limits on descriptions. They keep one record well under a catalogue frame
// (protocol.MaxCatalogFrame) and make the index's memory predictable.
const (
	MaxTitle       = 200
	MaxDescription = 10000
	MaxKeywords    = 50
	MaxKeyword     = 100
	MaxListItems   = 100 // themes, entity types, audience, files, offers
	MaxIRI         = 512
)

// Themes are the DCAT-AP data themes (EU Publications Office "data-theme"
// authority table); a dataset's themes are codes from it.
var Themes = map[string]string{
	"AGRI":      "Agriculture, fisheries, forestry and food",
	"ECON":      "Economy and finance",
	"EDUC":      "Education, culture and sport",
	"ENER":      "Energy",
	"ENVI":      "Environment",
	"GOVE":      "Government and public sector",
	"HEAL":      "Health",
	"INTR":      "International issues",
	"JUST":      "Justice, legal system and public safety",
	"OP_DATPRO": "Provisional data",
	"REGI":      "Regions and cities",
	"SOCI":      "Population and society",
	"TECH":      "Science and technology",
	"TRAN":      "Transport",
}

// ThemeIRI is the prefix of the DCAT-AP data theme IRIs.
const ThemeIRI = "http://publications.europa.eu/resource/authority/data-theme/"

// licences are SPDX ids of licences open-data portals commonly use; anything
// else must be given as an IRI, so that a typo is caught rather than
// published.
var licences = map[string]bool{
	"CC0-1.0": true, "CC-BY-4.0": true, "CC-BY-SA-4.0": true, "CC-BY-NC-4.0": true,
	"CC-BY-ND-4.0": true, "CC-BY-NC-SA-4.0": true, "CC-BY-NC-ND-4.0": true,
	"CC-BY-3.0": true, "CC-BY-SA-3.0": true, "ODbL-1.0": true, "ODC-By-1.0": true,
	"PDDL-1.0": true, "OGL-UK-3.0": true, "DL-DE-BY-2.0": true, "DL-DE-ZERO-2.0": true,
	"etalab-2.0": true, "NLOD-2.0": true, "Apache-2.0": true, "MIT": true,
}

// LicenceIRI returns the IRI for a licence: SPDX ids map to spdx.org, IRIs
// stay as they are.
func LicenceIRI(l string) string {
	if licences[l] {
		return "https://spdx.org/licenses/" + l
	}
	return l
}

var (
	urnRE      = regexp.MustCompile(`^(?i:urn):[A-Za-z0-9][A-Za-z0-9-]{0,31}:[A-Za-z0-9()+,\-.:=@;$_!*'%/?#]+$`)
	iriRE      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"{}|\\^` + "`" + `]+$`)
	typeNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	durationRE = regexp.MustCompile(`^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$`)
)

func isDuration(s string) bool {
	return durationRE.MatchString(s) && s != "P" && !strings.HasSuffix(s, "T")
}

// Validate checks every rule of a dataset description and returns the first
// problem as a *FieldError (wrapping ErrInvalidDataset).
func (d Dataset) Validate() error { return d.validate() }

func checkText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return fieldErr(field, "is required")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fieldErr(field, "is %d characters long, at most %d allowed", n, max)
	}
	if strings.TrimSpace(s) == "" {
		return fieldErr(field, "is blank")
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return fieldErr(field, "contains control character %U", r)
		}
	}
	return nil
}

func checkIRI(field, s string) error {
	if s == "" {
		return fieldErr(field, "is empty")
	}
	if len(s) > MaxIRI {
		return fieldErr(field, "is longer than %d bytes", MaxIRI)
	}
	if !iriRE.MatchString(s) {
		return fieldErr(field, "%q is not an absolute IRI", s)
	}
	return nil
}

func checkList(field string, items []string, check func(field, s string) error) error {
	if len(items) > MaxListItems {
		return fieldErr(field, "has %d items, at most %d allowed", len(items), MaxListItems)
	}
	seen := make(map[string]bool, len(items))
	for i, s := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := check(f, s); err != nil {
			return err
		}
		k := strings.ToLower(s)
		if seen[k] {
			return fieldErr(f, "%q is listed twice", s)
		}
		seen[k] = true
	}
	return nil
}

func checkEntityType(field, s string) error {
	if typeNameRE.MatchString(s) {
		return nil
	}
	if err := checkIRI(field, s); err != nil {
		return fieldErr(field, "%q is neither an entity type IRI nor an NGSI-LD type name", s)
	}
	return nil
}

func checkPeerID(field, s string) error {
	if s == "" || strings.TrimSpace(s) != s || len(s) > 128 {
		return fieldErr(field, "%q is not a peer ID", s)
	}
	return nil
}

func (d Dataset) validate() error {
	if d.ID == "" {
		return fieldErr("id", "is required")
	}
	if len(d.ID) > MaxIRI || !urnRE.MatchString(d.ID) {
		return fieldErr("id", "%q is not a URN (e.g. urn:mim:dataset:city:name)", d.ID)
	}
	if err := checkText("title", d.Title, MaxTitle, true); err != nil {
		return err
	}
	if err := checkText("description", d.Description, MaxDescription, false); err != nil {
		return err
	}
	if len(d.Keywords) > MaxKeywords {
		return fieldErr("keywords", "has %d keywords, at most %d allowed", len(d.Keywords), MaxKeywords)
	}
	if err := checkList("keywords", d.Keywords, func(f, s string) error {
		if s == "" {
			return fieldErr(f, "is empty")
		}
		return checkText(f, s, MaxKeyword, true)
	}); err != nil {
		return err
	}
	if err := checkList("themes", d.Themes, func(f, s string) error {
		if _, ok := Themes[s]; !ok {
			return fieldErr(f, "%q is not a DCAT-AP data theme code (ENVI, TRAN, REGI, ...)", s)
		}
		return nil
	}); err != nil {
		return err
	}
	if d.Publisher.PeerID != "" {
		if err := checkPeerID("publisher.peerId", d.Publisher.PeerID); err != nil {
			return err
		}
	}
	if err := checkText("publisher.name", d.Publisher.Name, MaxTitle, false); err != nil {
		return err
	}
	if d.Spatial != nil {
		if err := checkGeometry("spatial", d.Spatial); err != nil {
			return err
		}
	}
	if t := d.Temporal; t != nil {
		if t.Start.IsZero() && t.End.IsZero() {
			return fieldErr("temporal", "needs a start or an end")
		}
		if !t.Start.IsZero() && !t.End.IsZero() && t.End.Before(t.Start) {
			return fieldErr("temporal.end", "is before temporal.start")
		}
	}
	if err := checkList("entityTypes", d.EntityTypes, checkEntityType); err != nil {
		return err
	}
	if d.License == "" {
		return fieldErr("license", "is required (an SPDX id such as CC-BY-4.0, or a licence IRI)")
	}
	if !licences[d.License] {
		if err := checkIRI("license", d.License); err != nil {
			return fieldErr("license", "%q is neither a known SPDX licence id (CC-BY-4.0, CC0-1.0, ODbL-1.0, ...) nor a licence IRI", d.License)
		}
	}
	if err := d.PriceModel.validate(); err != nil {
		return err
	}
	if err := d.SLA.validate(); err != nil {
		return err
	}
	if len(d.Offers) == 0 {
		return fieldErr("offers", "at least one offer is required: nobody could get the data otherwise")
	}
	if len(d.Offers) > MaxListItems {
		return fieldErr("offers", "has %d offers, at most %d allowed", len(d.Offers), MaxListItems)
	}
	for i, o := range d.Offers {
		if _, err := o.build("", d.ID, d.Publisher.PeerID); err != nil {
			return fieldErr(fmt.Sprintf("offers[%d]", i), "%v", err)
		}
	}
	switch d.Dissemination {
	case Federation, Private:
		if len(d.Audience) > 0 {
			return fieldErr("audience", "only a restricted dataset has an audience (dissemination is %q)", d.Dissemination)
		}
	case Restricted:
		if len(d.Audience) == 0 {
			return fieldErr("audience", "a restricted dataset must list the peer IDs that may see it")
		}
		if err := checkList("audience", d.Audience, checkPeerID); err != nil {
			return err
		}
	default:
		return fieldErr("dissemination", "%q is not federation, restricted or private", d.Dissemination)
	}
	if err := d.Source.validate(); err != nil {
		return err
	}
	if d.Version != "" && !validCID(d.Version) {
		return fieldErr("version", "%q is not a CID", d.Version)
	}
	if !d.Issued.IsZero() && !d.Modified.IsZero() && d.Modified.Before(d.Issued) {
		return fieldErr("modified", "is before issued")
	}
	return nil
}

func checkNumber(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fieldErr(field, "is not a finite number")
	}
	return nil
}

func (p *PriceModel) validate() error {
	if p == nil {
		return nil
	}
	if !priceTypes[p.Type] {
		return fieldErr("priceModel.type", "%q is not free, fixed, per-transfer or subscription", p.Type)
	}
	if err := checkNumber("priceModel.amount", p.Amount); err != nil {
		return err
	}
	if p.Type == "free" {
		if p.Amount != 0 || p.Currency != "" || p.Period != "" {
			return fieldErr("priceModel", "a free price model has no amount, currency or period")
		}
		return nil
	}
	if p.Amount <= 0 {
		return fieldErr("priceModel.amount", "must be more than 0 for a %s price", p.Type)
	}
	if !currencyRE.MatchString(p.Currency) {
		return fieldErr("priceModel.currency", "%q is not an ISO 4217 currency code (EUR, DKK, ...)", p.Currency)
	}
	switch {
	case p.Type == "subscription" && !isDuration(p.Period):
		return fieldErr("priceModel.period", "%q is not an ISO 8601 duration (P1M, P1Y, ...)", p.Period)
	case p.Type != "subscription" && p.Period != "":
		return fieldErr("priceModel.period", "only a subscription has a period")
	}
	return nil
}

func (s *SLA) validate() error {
	if s == nil {
		return nil
	}
	if err := checkNumber("sla.availability", s.Availability); err != nil {
		return err
	}
	if s.Availability < 0 || s.Availability > 100 {
		return fieldErr("sla.availability", "%v is not a percentage between 0 and 100", s.Availability)
	}
	if s.UpdateFrequency != "" && !isDuration(s.UpdateFrequency) {
		return fieldErr("sla.updateFrequency", "%q is not an ISO 8601 duration (PT1H, P1D, ...)", s.UpdateFrequency)
	}
	if s.ResponseTime != "" && !isDuration(s.ResponseTime) {
		return fieldErr("sla.responseTime", "%q is not an ISO 8601 duration (PT5M, ...)", s.ResponseTime)
	}
	return checkText("sla.support", s.Support, MaxTitle, false)
}

func (s *Source) validate() error {
	if s == nil {
		return nil
	}
	if s.View == nil && len(s.Files) == 0 {
		return fieldErr("source", "needs a view or files")
	}
	if v := s.View; v != nil {
		if err := checkList("source.view.entityTypes", v.EntityTypes, checkEntityType); err != nil {
			return err
		}
		if err := checkText("source.view.q", v.Q, 4096, false); err != nil {
			return err
		}
		if v.Area != nil {
			if err := checkGeometry("source.view.area", v.Area); err != nil {
				return err
			}
		}
	}
	if len(s.Files) > MaxListItems {
		return fieldErr("source.files", "has %d files, at most %d allowed", len(s.Files), MaxListItems)
	}
	seen := map[string]bool{}
	for i, f := range s.Files {
		field := fmt.Sprintf("source.files[%d]", i)
		if !content.ValidFileName(f.Name) {
			return fieldErr(field+".name", "%q is not a plain file name (no directory, not hidden, no ':' or control characters, at most 255 bytes)", f.Name)
		}
		if seen[f.Name] {
			return fieldErr(field+".name", "%q is listed twice", f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 {
			return fieldErr(field+".size", "is negative")
		}
		if f.Version != "" && !validCID(f.Version) {
			return fieldErr(field+".version", "%q is not a CID", f.Version)
		}
		if f.SHA256 != "" && !isSHA256(f.SHA256) {
			return fieldErr(field+".sha256", "%q is not 64 lower-case hex digits", f.SHA256)
		}
		if err := checkText(field+".mediaType", f.MediaType, MaxTitle, false); err != nil {
			return err
		}
	}
	return nil
}

// isSHA256 reports whether s is a SHA2-256 digest in lower-case hex.
func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
