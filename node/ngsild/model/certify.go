package model

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// After the direct checks (fast.go, point.go) the general validator still
// spent most of an AirQualityObserved's validation walking the shared
// Smart Data Models definitions: every schema it enters gets a scope, an
// evaluation tracker and a sub-validator; an anyOf tries its branches in
// order (the entity identifier's first branch is a regexp, the second,
// format "uri", accepts any string since format does not assert in draft
// 2020-12). Nearly every entity written is valid. certify decides that
// directly on a tree compiled once from the same compiled schema, with no
// allocation; an applicator's branches are tried cheapest first, which
// cannot change a verdict (anyOf holds when one branch does, oneOf when
// exactly one does). Whatever it cannot decide exactly (a keyword it does
// not evaluate, a reference cycle, a number equal to a bound as float64) is
// unsure; Validate runs the general validator on every entity not
// certified valid, so verdicts and errors are the validator's own.

// verdict is certify's answer.
type verdict uint8

const (
	unsure  verdict = iota // left to the general validator
	valid                  // the general validator accepts the value
	invalid                // the general validator rejects it
)

// jsonKind mirrors the general validator's JSON types (typeOf).
type jsonKind uint8

const (
	kNull jsonKind = 1 << iota
	kBool
	kNumber
	kInteger // only in a schema's type set
	kString
	kArray
	kObject
)

// kindOf is typeOf: 0 for a value that is not JSON, which only the general
// validator words.
func kindOf(v any) jsonKind {
	switch x := v.(type) {
	case nil:
		return kNull
	case bool:
		return kBool
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0
		}
		return kNumber
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return 0
		}
		return kNumber
	case json.Number, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return kNumber
	case string:
		return kString
	case []any:
		return kArray
	case map[string]any:
		return kObject
	}
	return 0
}

// maxCertifyDepth bounds the schemas entered for one value: a reference
// cycle (which the general validator reports) is unsure, not a stack
// overflow.
const maxCertifyDepth = 256

// bound is a numeric keyword: the exact value and the float64 nearest it.
type bound struct {
	rat *big.Rat
	f   float64
}

func newBound(r *big.Rat) *bound {
	if r == nil {
		return nil
	}
	f, _ := r.Float64()
	return &bound{rat: r, f: f}
}

// cmp compares num (a JSON number the general validator would read as the
// decimal fmt prints) with the bound. For a float64 both sides round to
// nearest monotonically, so a float64 above or below the bound's nearest
// float64 is above or below the bound itself; an equal one, and any other
// number type, is compared as the validator does.
func (b *bound) cmp(num any) int {
	if f, ok := num.(float64); ok {
		switch {
		case f < b.f:
			return -1
		case f > b.f:
			return 1
		}
	}
	r, ok := new(big.Rat).SetString(fmt.Sprintf("%v", num))
	if !ok {
		return 2 // not comparable: unsure
	}
	return r.Cmp(b.rat)
}

// checker is one compiled schema as certify evaluates it.
type checker struct {
	boolean int8 // 1 for the schema true, -1 for false, 0 otherwise
	// other: the schema has a keyword only the general validator
	// evaluates; the verdict is invalid or unsure, never valid.
	other   bool
	refOnly bool // draft < 2019 with $ref: its other keywords are not evaluated

	types  jsonKind // 0 when absent
	enum   []any
	hasEnm bool
	cnst   *any
	format *jsonschema.Format
	ref    *checker

	required  []string
	props     map[string]*checker
	minProps  int // -1 when absent
	maxProps  int
	minItems  int
	maxItems  int
	unique    bool
	items     *checker   // every item (items, or items after prefixItems)
	prefix    []*checker // prefixItems, or items as an array before draft 2020
	minLength int
	maxLength int
	pattern   jsonschema.Regexp
	min, max  *bound
	exclMin   *bound
	exclMax   *bound

	not         *checker
	allOf       []*checker
	anyOf       []*checker // cheapest first
	oneOf       []*checker // cheapest first
	ifc         *checker
	then, elsec *checker

	cost int // a rough count of keywords below, for ordering branches
}

// compileChecker builds the checker of sch and of everything it refers
// to; memo holds those built so far, so a cycle of references is a cycle
// of checkers.
func compileChecker(sch *jsonschema.Schema, memo map[*jsonschema.Schema]*checker) *checker {
	if sch == nil {
		return nil
	}
	if c, ok := memo[sch]; ok {
		return c
	}
	c := &checker{minProps: -1, maxProps: -1, minItems: -1, maxItems: -1, minLength: -1, maxLength: -1, cost: 1}
	memo[sch] = c
	if sch.Bool != nil {
		c.boolean = -1
		if *sch.Bool {
			c.boolean = 1
		}
		return c
	}
	sub := func(s *jsonschema.Schema) *checker {
		k := compileChecker(s, memo)
		if k != nil && k != c {
			c.cost += min(k.cost, 1000)
		}
		return k
	}
	if sch.Types != nil {
		for _, t := range sch.Types.ToStrings() {
			switch t {
			case "null":
				c.types |= kNull
			case "boolean":
				c.types |= kBool
			case "number":
				c.types |= kNumber
			case "integer":
				c.types |= kInteger
			case "string":
				c.types |= kString
			case "array":
				c.types |= kArray
			case "object":
				c.types |= kObject
			}
		}
	}
	if sch.Enum != nil {
		c.hasEnm, c.enum = true, sch.Enum.Values
	}
	c.cnst = sch.Const
	c.format = sch.Format
	if sch.Ref != nil {
		c.ref = sub(sch.Ref)
		if sch.DraftVersion < 2019 {
			c.refOnly = true
			return c
		}
	}
	if sch.RecursiveRef != nil || sch.DynamicRef != nil || len(sch.Extensions) > 0 ||
		len(sch.PatternProperties) > 0 || sch.AdditionalProperties != nil || sch.PropertyNames != nil ||
		len(sch.Dependencies) > 0 || len(sch.DependentRequired) > 0 || len(sch.DependentSchemas) > 0 ||
		sch.UnevaluatedProperties != nil || sch.Contains != nil ||
		sch.AdditionalItems != nil || sch.UnevaluatedItems != nil || sch.ContentEncoding != nil ||
		sch.ContentMediaType != nil || sch.ContentSchema != nil || sch.MultipleOf != nil {
		c.other = true
	}
	c.required = sch.Required
	if len(sch.Properties) > 0 {
		c.props = make(map[string]*checker, len(sch.Properties))
		for name, ps := range sch.Properties {
			c.props[name] = sub(ps)
		}
	}
	setInt := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	setInt(&c.minProps, sch.MinProperties)
	setInt(&c.maxProps, sch.MaxProperties)
	setInt(&c.minItems, sch.MinItems)
	setInt(&c.maxItems, sch.MaxItems)
	setInt(&c.minLength, sch.MinLength)
	c.unique = sch.UniqueItems
	setInt(&c.maxLength, sch.MaxLength)
	if sch.DraftVersion < 2020 {
		switch items := sch.Items.(type) {
		case *jsonschema.Schema:
			c.items = sub(items)
		case []*jsonschema.Schema:
			// Items after these are unchecked unless additionalItems
			// says otherwise, which is other.
			for _, s := range items {
				c.prefix = append(c.prefix, sub(s))
			}
		}
	} else {
		for _, s := range sch.PrefixItems {
			c.prefix = append(c.prefix, sub(s))
		}
		c.items = sub(sch.Items2020)
	}
	c.pattern = sch.Pattern
	if c.pattern != nil {
		c.cost += 20
	}
	c.min, c.max = newBound(sch.Minimum), newBound(sch.Maximum)
	c.exclMin, c.exclMax = newBound(sch.ExclusiveMinimum), newBound(sch.ExclusiveMaximum)
	c.not = sub(sch.Not)
	for _, s := range sch.AllOf {
		c.allOf = append(c.allOf, sub(s))
	}
	for _, s := range sch.AnyOf {
		c.anyOf = append(c.anyOf, sub(s))
	}
	for _, s := range sch.OneOf {
		c.oneOf = append(c.oneOf, sub(s))
	}
	if sch.If != nil && (sch.Then != nil || sch.Else != nil) {
		c.ifc, c.then, c.elsec = sub(sch.If), sub(sch.Then), sub(sch.Else)
	}
	return c
}

// orderBranches sorts every anyOf and oneOf cheapest first, once every
// checker's cost is known.
func orderBranches(memo map[*jsonschema.Schema]*checker) {
	for _, c := range memo {
		for _, list := range [][]*checker{c.anyOf, c.oneOf} {
			// Insertion sort: a few branches, and a stable order.
			for i := 1; i < len(list); i++ {
				for j := i; j > 0 && list[j].cost < list[j-1].cost; j-- {
					list[j], list[j-1] = list[j-1], list[j]
				}
			}
		}
	}
}

// newCertifier compiles the checker of a compiled schema.
func newCertifier(sch *jsonschema.Schema) *checker {
	memo := map[*jsonschema.Schema]*checker{}
	c := compileChecker(sch, memo)
	orderBranches(memo)
	return c
}

// certify is the general validator's verdict on v, or unsure.
func (c *checker) certify(v any) verdict { return c.eval(v, 0) }

// and combines the verdicts of keywords that must all hold.
func and(a, b verdict) verdict {
	if a == invalid || b == invalid {
		return invalid
	}
	if a == unsure || b == unsure {
		return unsure
	}
	return valid
}

func (c *checker) eval(v any, depth int) verdict {
	if c.boolean != 0 {
		if c.boolean > 0 {
			return valid
		}
		return invalid
	}
	if depth > maxCertifyDepth {
		return unsure
	}
	depth++
	k := kindOf(v)
	if k == 0 {
		return unsure
	}
	if c.types != 0 && c.types&k == 0 {
		if !(c.types&kInteger != 0 && k == kNumber) {
			return invalid
		}
		if r := isWhole(v); r != valid {
			return r
		}
	}
	res := valid
	if c.cnst != nil {
		if res = and(res, equal(v, *c.cnst)); res == invalid {
			return invalid
		}
	}
	if c.hasEnm {
		if res = and(res, inEnum(v, c.enum)); res == invalid {
			return invalid
		}
	}
	if c.format != nil && c.format.Validate(v) != nil {
		return invalid
	}
	if c.ref != nil {
		if res = and(res, c.ref.eval(v, depth)); res == invalid || c.refOnly {
			return res
		}
	}
	if c.other {
		res = and(res, unsure)
	}
	switch x := v.(type) {
	case map[string]any:
		res = and(res, c.object(x, depth))
	case []any:
		res = and(res, c.array(x, depth))
	case string:
		res = and(res, c.str(x))
	case bool, nil:
	default:
		res = and(res, c.number(v))
	}
	if res == invalid {
		return invalid
	}
	if c.not != nil {
		switch c.not.eval(v, depth) {
		case valid:
			return invalid
		case unsure:
			res = unsure
		}
	}
	for _, sub := range c.allOf {
		if res = and(res, sub.eval(v, depth)); res == invalid {
			return invalid
		}
	}
	if len(c.anyOf) > 0 {
		some := invalid
		for _, sub := range c.anyOf {
			switch sub.eval(v, depth) {
			case valid:
				some = valid
			case unsure:
				some = unsure
			}
			if some == valid {
				break
			}
		}
		if res = and(res, some); res == invalid {
			return invalid
		}
	}
	if len(c.oneOf) > 0 {
		n, sure := 0, true
		for _, sub := range c.oneOf {
			switch sub.eval(v, depth) {
			case valid:
				n++
			case unsure:
				sure = false
			}
			if n > 1 {
				break
			}
		}
		one := valid
		switch {
		case n > 1:
			one = invalid
		case !sure:
			one = unsure
		case n == 0:
			one = invalid
		}
		if res = and(res, one); res == invalid {
			return invalid
		}
	}
	if c.ifc != nil {
		var branch verdict
		switch c.ifc.eval(v, depth) {
		case valid:
			branch = valid
			if c.then != nil {
				branch = c.then.eval(v, depth)
			}
		case invalid:
			branch = valid
			if c.elsec != nil {
				branch = c.elsec.eval(v, depth)
			}
		default:
			branch = unsure
		}
		res = and(res, branch)
	}
	return res
}

func (c *checker) object(obj map[string]any, depth int) verdict {
	if c.minProps >= 0 && len(obj) < c.minProps || c.maxProps >= 0 && len(obj) > c.maxProps {
		return invalid
	}
	for _, name := range c.required {
		if _, ok := obj[name]; !ok {
			return invalid
		}
	}
	res := valid
	if len(c.props) <= len(obj) {
		for name, pc := range c.props {
			if pv, ok := obj[name]; ok {
				if res = and(res, pc.eval(pv, depth)); res == invalid {
					return invalid
				}
			}
		}
	} else {
		for name, pv := range obj {
			if pc, ok := c.props[name]; ok {
				if res = and(res, pc.eval(pv, depth)); res == invalid {
					return invalid
				}
			}
		}
	}
	return res
}

func (c *checker) array(arr []any, depth int) verdict {
	if c.minItems >= 0 && len(arr) < c.minItems || c.maxItems >= 0 && len(arr) > c.maxItems {
		return invalid
	}
	res := valid
	if c.unique && len(arr) > 1 {
		res = distinct(arr)
		if res == invalid {
			return invalid
		}
	}
	n := min(len(c.prefix), len(arr))
	for i, item := range arr[:n] {
		if res = and(res, c.prefix[i].eval(item, depth)); res == invalid {
			return invalid
		}
	}
	if c.items != nil {
		for _, item := range arr[n:] {
			if res = and(res, c.items.eval(item, depth)); res == invalid {
				return invalid
			}
		}
	}
	return res
}

// distinct is uniqueItems for the arrays the general validator compares
// pairwise (up to 20 items), unsure for longer ones.
func distinct(arr []any) verdict {
	if len(arr) > 20 {
		return unsure
	}
	res := valid
	for i := 1; i < len(arr); i++ {
		for j := 0; j < i; j++ {
			switch equal(arr[i], arr[j]) {
			case valid:
				return invalid
			case unsure:
				res = unsure
			}
		}
	}
	return res
}

func (c *checker) str(s string) verdict {
	if c.minLength >= 0 || c.maxLength >= 0 {
		n := utf8.RuneCountInString(s)
		if c.minLength >= 0 && n < c.minLength || c.maxLength >= 0 && n > c.maxLength {
			return invalid
		}
	}
	if c.pattern != nil && !c.pattern.MatchString(s) {
		return invalid
	}
	return valid
}

func (c *checker) number(num any) verdict {
	res := valid
	check := func(b *bound, lo, hi int) {
		if b == nil || res == invalid {
			return
		}
		switch r := b.cmp(num); {
		case r == 2:
			res = unsure
		case r < lo || r > hi:
			res = invalid
		}
	}
	check(c.min, 0, 1)
	check(c.max, -1, 0)
	check(c.exclMin, 1, 1)
	check(c.exclMax, -1, -1)
	return res
}

// isWhole is the general validator's isInteger: a finite float64 is an
// integer exactly when the decimal fmt prints for it is one (below 2^53 no
// integer rounds to a fraction, above it every float64 is an integer).
func isWhole(v any) verdict {
	if f, ok := v.(float64); ok {
		if f == math.Trunc(f) {
			return valid
		}
		return invalid
	}
	r, ok := new(big.Rat).SetString(fmt.Sprint(v))
	if ok && r.IsInt() {
		return valid
	}
	return invalid
}

// equal is the general validator's equality for the values it is sure of:
// strings, booleans and null; numbers, arrays and objects are unsure
// unless their kinds differ.
func equal(v, want any) verdict {
	kv, kw := kindOf(v), kindOf(want)
	if kv == 0 || kw == 0 {
		return unsure
	}
	if kv != kw {
		return invalid
	}
	switch x := v.(type) {
	case string:
		if x == want.(string) {
			return valid
		}
		return invalid
	case bool:
		if x == want.(bool) {
			return valid
		}
		return invalid
	case nil:
		return valid
	}
	return unsure
}

func inEnum(v any, values []any) verdict {
	res := invalid
	for _, item := range values {
		switch equal(v, item) {
		case valid:
			return valid
		case unsure:
			res = unsure
		}
	}
	return res
}
