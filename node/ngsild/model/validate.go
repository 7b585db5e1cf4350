package model

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ValidationError says which attribute of an entity breaks its data model, and
// how. An HTTP layer turns it into an NGSI-LD BadRequestData problem.
type ValidationError struct {
	Attribute string // short name as in the schema; "" when the entity as a whole is wrong
	Reason    string
	// More lists further problems (other attributes), sorted by attribute.
	More []ValidationError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	e.write(&b)
	if len(e.More) > 0 {
		fmt.Fprintf(&b, " (and %d more: ", len(e.More))
		for i := range e.More {
			if i > 0 {
				b.WriteString("; ")
			}
			e.More[i].write(&b)
		}
		b.WriteByte(')')
	}
	return b.String()
}

func (e *ValidationError) write(b *strings.Builder) {
	if e.Attribute == "" {
		fmt.Fprintf(b, "entity: %s", e.Reason)
		return
	}
	fmt.Fprintf(b, "attribute %q: %s", e.Attribute, e.Reason)
}

// Validate checks a keyValues-form entity whose attribute names are the model's short
// names (as in the schema). The error is a *ValidationError naming the attribute.
//
// The entity's "type" is checked as the model's short name whatever the caller put
// there, since the caller already chose the model by type (an entity may have
// several types, or carry its type expanded). "@context" is ignored. An unbound
// type gives an error wrapping ErrNoModel.
func (r *Registry) Validate(typeIRI string, keyValues map[string]any) error {
	inst := make(map[string]any, len(keyValues))
	for k, v := range keyValues {
		if k != "@context" {
			inst[k] = v
		}
	}
	return r.ValidateOwned(typeIRI, inst)
}

// ValidateOwned is Validate of a keyValues map the caller hands over:
// it may change the map's members (not the values), which saves Validate
// its copy. A node validating the form it made for the check uses it.
func (r *Registry) ValidateOwned(typeIRI string, inst map[string]any) error {
	r.mu.RLock()
	e, ok := r.models[typeIRI]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("model: validating an entity of type %s: %w", typeIRI, ErrNoModel)
	}
	delete(inst, "@context")
	inst["type"] = e.model.ShortName
	var probs []ValidationError
	// An entity has fewer attributes than a model declares: look up
	// each of them (the problems are sorted by attribute below).
	for name, v := range inst {
		for _, i := range e.fastAt[name] {
			if reason := e.fast[i].check(v); reason != "" {
				probs = append(probs, ValidationError{Attribute: name, Reason: reason})
			}
		}
	}
	sch, cert, unread := e.schema, e.cert, e.unread
	if e.pointSchema != nil && plainPoints(inst, e.points, e.plain) {
		sch, cert, unread = e.pointSchema, e.pointCert, e.pointUnread
	}
	// certify answers for nearly every valid entity; the general validator
	// decides the rest and words their errors. The attributes it never
	// reads (unread) leave its verdict as it is, so certify needs them
	// not left out.
	if cert.certify(inst) != valid {
		for _, name := range unread {
			delete(inst, name)
		}
		if err := sch.Validate(inst); err != nil {
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				// Not a verdict on the data: the value held something that is not JSON.
				return fmt.Errorf("model: validating an entity of type %s: %w", typeIRI, err)
			}
			n := len(probs)
			problems(ve, &probs)
			if len(probs) == n {
				probs = append(probs, ValidationError{Reason: reasonOf(ve)})
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Attribute < probs[j].Attribute })
	first := probs[0]
	for _, p := range probs[1:] {
		if p.Attribute != first.Attribute || p.Reason != first.Reason {
			first.More = append(first.More, p)
		}
	}
	return &first
}

var printer = message.NewPrinter(language.English)

func reasonOf(ve *jsonschema.ValidationError) string {
	return ve.ErrorKind.LocalizedString(printer)
}

// problems flattens the validator's error tree into one problem per attribute:
// the node where the instance location first names an attribute, followed down
// while it has a single cause so the reason is the most specific one.
func problems(ve *jsonschema.ValidationError, out *[]ValidationError) {
	if len(ve.InstanceLocation) == 0 {
		if req, ok := ve.ErrorKind.(*kind.Required); ok {
			for _, m := range req.Missing {
				*out = append(*out, ValidationError{Attribute: m, Reason: "required attribute is missing"})
			}
			return
		}
		if len(ve.Causes) == 0 {
			if _, isGroup := ve.ErrorKind.(*kind.Schema); !isGroup {
				*out = append(*out, ValidationError{Reason: reasonOf(ve)})
			}
			return
		}
		for _, c := range ve.Causes {
			problems(c, out)
		}
		return
	}
	n := ve
	for len(n.Causes) == 1 {
		n = n.Causes[0]
	}
	reason := reasonOf(n)
	if len(n.Causes) > 1 {
		var leaves []string
		seen := map[string]bool{}
		var walk func(v *jsonschema.ValidationError)
		walk = func(v *jsonschema.ValidationError) {
			if len(v.Causes) == 0 {
				s := at(v, n) + reasonOf(v)
				if !seen[s] && len(leaves) < 4 {
					seen[s] = true
					leaves = append(leaves, s)
				}
			}
			for _, c := range v.Causes {
				walk(c)
			}
		}
		walk(n)
		reason += ": " + strings.Join(leaves, "; ")
	}
	if len(n.InstanceLocation) > 1 {
		reason = "at /" + strings.Join(n.InstanceLocation[1:], "/") + ": " + reason
	}
	*out = append(*out, ValidationError{Attribute: ve.InstanceLocation[0], Reason: reason})
}

// at is the location of v below parent, as a prefix for its message.
func at(v, parent *jsonschema.ValidationError) string {
	if len(v.InstanceLocation) <= len(parent.InstanceLocation) {
		return ""
	}
	return "at /" + strings.Join(v.InstanceLocation[len(parent.InstanceLocation):], "/") + ": "
}

// valueMember maps an attribute type (last IRI segment, so the expanded form works
// too) to the member that holds its keyValues value (clause 4.5.4).
var valueMember = map[string]string{
	"Property":         "value",
	"GeoProperty":      "value",
	"Relationship":     "object",
	"LanguageProperty": "languageMap",
	"VocabProperty":    "vocab",
	"ListProperty":     "valueList",
	"ListRelationship": "objectList",
	"JsonProperty":     "json",
}

// KeyValues converts a normalized-form entity (compacted, short names) to keyValues.
//
// Each attribute becomes its value (object for a Relationship, languageMap for a
// LanguageProperty, and so on); sub-attributes and metadata are dropped; a JSON-LD
// value object such as {"@type": "DateTime", "@value": "..."} becomes its @value;
// of several datasetId instances the default one (no datasetId) is kept, else the
// first. id, type and members that are not typed attributes are copied as they
// are; @context is dropped. The input is not modified.
func KeyValues(normalized map[string]any) map[string]any {
	out := make(map[string]any, len(normalized))
	for k, v := range normalized {
		switch k {
		case "@context":
			continue
		case "id", "type", "scope":
			out[k] = v
			continue
		}
		out[k] = simplify(v)
	}
	return out
}

func simplify(v any) any {
	switch a := v.(type) {
	case []any:
		// Several instances of one attribute (clause 4.5.5), if all are typed.
		var first, dflt map[string]any
		for _, el := range a {
			m, ok := el.(map[string]any)
			if !ok || attrMember(m) == "" {
				return v // an ordinary array value
			}
			if first == nil {
				first = m
			}
			if _, has := m["datasetId"]; !has && dflt == nil {
				dflt = m
			}
		}
		if dflt == nil {
			dflt = first
		}
		if dflt == nil {
			return v
		}
		return simplify(dflt)
	case map[string]any:
		member := attrMember(a)
		if member == "" {
			return v
		}
		val := a[member]
		if m, ok := val.(map[string]any); ok {
			if inner, ok := m["@value"]; ok {
				return inner
			}
		}
		return val
	}
	return v
}

// attrMember is the member holding a typed attribute's value, "" when m is not a
// typed attribute (a compound value, say).
func attrMember(m map[string]any) string {
	typ, ok := m["type"].(string)
	if !ok {
		return ""
	}
	if i := strings.LastIndexAny(typ, "/#"); i >= 0 {
		typ = typ[i+1:]
	}
	member, ok := valueMember[typ]
	if !ok {
		return ""
	}
	if _, has := m[member]; !has {
		return ""
	}
	return member
}
