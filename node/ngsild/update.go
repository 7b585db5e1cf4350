package ngsild

import (
	"maps"
	"sort"
	"time"
)

// clone returns a deep-enough copy of e for building a new state: the
// attribute maps and instance slices are copied, instances are shared
// (they are never modified in place once stored).
func (e *Entity) clone() *Entity {
	c := *e
	c.Types = append([]string(nil), e.Types...)
	c.Attrs = make(map[string][]*Attribute, len(e.Attrs))
	for k, v := range e.Attrs {
		c.Attrs[k] = append([]*Attribute(nil), v...)
	}
	return &c
}

// mergeMode says how mergeAttrs treats attributes and instances.
type mergeMode int

const (
	// mergeAppend adds new attributes and replaces existing instances
	// (POST .../attrs, upsert with options=update).
	mergeAppend mergeMode = iota
	// mergeNoOverwrite adds new attributes and instances only
	// (options=noOverwrite).
	mergeNoOverwrite
	// mergeUpdateOnly replaces existing instances only (PATCH .../attrs).
	mergeUpdateOnly
	// mergePatch is mergeAppend where a value of "urn:ngsi-ld:null"
	// deletes the instance and an existing instance is merged with the
	// fragment's rather than replaced (mergeInstance): PATCH
	// /entities/{id}, clause 5.6.17, and batch merge.
	mergePatch
)

// ngsiNull marks an attribute for deletion in a merge.
const ngsiNull = "urn:ngsi-ld:null"

// mergeAttrs applies src's attribute instances to dst (a clone) and returns
// the compact-able IRIs of the attributes it did not apply, sorted.
func mergeAttrs(dst *Entity, src map[string][]*Attribute, mode mergeMode, now time.Time) []string {
	var skipped []string
	for name, insts := range src {
		cur := dst.Attrs[name]
		applied := false
		for _, in := range insts {
			idx := -1
			for i, a := range cur {
				if a.DatasetID == in.DatasetID {
					idx = i
					break
				}
			}
			switch {
			case mode == mergePatch && in.isNull():
				if idx >= 0 {
					cur = append(append([]*Attribute(nil), cur[:idx]...), cur[idx+1:]...)
				}
			case idx >= 0 && mode == mergeNoOverwrite:
				continue
			case idx < 0 && mode == mergeUpdateOnly:
				continue
			case idx >= 0 && mode == mergePatch:
				cur = append(append(append([]*Attribute(nil), cur[:idx]...), mergeInstance(cur[idx], in, now)), cur[idx+1:]...)
			case idx >= 0:
				n := *in
				n.CreatedAt, n.ModifiedAt = cur[idx].CreatedAt, now
				cur = append(append(append([]*Attribute(nil), cur[:idx]...), &n), cur[idx+1:]...)
			default:
				n := *in
				n.CreatedAt, n.ModifiedAt = now, now
				cur = append(cur, &n)
			}
			applied = true
		}
		if applied {
			if len(cur) == 0 {
				delete(dst.Attrs, name)
			} else {
				dst.Attrs[name] = cur
			}
			dst.ModifiedAt = now
		} else {
			skipped = append(skipped, name)
		}
	}
	sort.Strings(skipped)
	return skipped
}

// isNull reports whether a is the NGSI-LD null of a merge: an instance
// whose value or object is urn:ngsi-ld:null, asking for its removal.
func (a *Attribute) isNull() bool { return a.Value == ngsiNull || a.Object == ngsiNull }

// mergeInstance is what a merge makes of the stored instance old and the
// fragment's instance in for the same datasetId (clause 5.6.17): in's
// content (type and value, object, languageMap...) replaces old's, and
// what in leaves out is kept: observedAt, unitCode and the
// sub-attributes it does not name. A client sending {"value": 100} to a
// reading with a unit and an observation time means to change the
// reading, not to strip what qualifies it. Sub-attributes in names merge
// the same way, and one given as urn:ngsi-ld:null is removed.
func mergeInstance(old, in *Attribute, now time.Time) *Attribute {
	n := *in
	if n.ObservedAt == "" {
		n.ObservedAt = old.ObservedAt
	}
	if n.UnitCode == "" {
		n.UnitCode = old.UnitCode
	}
	if len(in.Sub) > 0 {
		// Sub-attributes merge as attributes do (mergeAttrs), into a
		// copy of old's.
		sub := &Entity{Attrs: maps.Clone(old.Sub)}
		if sub.Attrs == nil {
			sub.Attrs = map[string][]*Attribute{}
		}
		mergeAttrs(sub, in.Sub, mergePatch, now)
		n.Sub = sub.Attrs
		if len(n.Sub) == 0 {
			n.Sub = nil
		}
	} else {
		n.Sub = maps.Clone(old.Sub)
	}
	n.CreatedAt, n.ModifiedAt = old.CreatedAt, now
	return &n
}

// stampNew sets createdAt/modifiedAt of a new entity and all its instances.
func stampNew(e *Entity, created, now time.Time) {
	e.CreatedAt, e.ModifiedAt = created, now
	for _, insts := range e.Attrs {
		stampInstances(insts, now)
	}
}

func stampInstances(insts []*Attribute, now time.Time) {
	for _, a := range insts {
		a.CreatedAt, a.ModifiedAt = now, now
		for _, sub := range a.Sub {
			stampInstances(sub, now)
		}
	}
}

// keepCreated carries createdAt of instances that survive a replacement
// (same attribute and datasetId) over from old.
func keepCreated(old, ne *Entity) {
	for name, insts := range ne.Attrs {
		for _, a := range insts {
			if o := findInstance(old.Attrs[name], a.DatasetID); o != nil {
				a.CreatedAt = o.CreatedAt
			}
		}
	}
}

// findInstance returns the instance among insts with datasetID ("" the
// default instance), or nil.
func findInstance(insts []*Attribute, datasetID string) *Attribute {
	for _, a := range insts {
		if a.DatasetID == datasetID {
			return a
		}
	}
	return nil
}

// deleteInstances removes an attribute's instance with datasetID, or all of
// them; ok is false when there was nothing to remove.
func deleteInstances(e *Entity, name, datasetID string, all bool) bool {
	cur, has := e.Attrs[name]
	if !has {
		return false
	}
	if all {
		delete(e.Attrs, name)
		return true
	}
	for i, a := range cur {
		if a.DatasetID == datasetID {
			rest := append(append([]*Attribute(nil), cur[:i]...), cur[i+1:]...)
			if len(rest) == 0 {
				delete(e.Attrs, name)
			} else {
				e.Attrs[name] = rest
			}
			return true
		}
	}
	return false
}
