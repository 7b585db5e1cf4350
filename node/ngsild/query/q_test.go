package query

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func loadEntity(t testing.TB, file string) MapEntity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	var m MapEntity
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	return m
}

// sensor exercises the shapes the Smart Data Models examples do not: datasetId
// instances, sub-property chains, compound values, arrays, LanguageProperty.
const sensorJSON = `{
 "id": "urn:ngsi-ld:Device:1", "type": "Device",
 "temperature": [
  {"type": "Property", "value": 21.5, "datasetId": "urn:ngsi-ld:Dataset:indoor",
   "observedAt": "2024-05-01T10:00:00Z", "unitCode": "CEL"},
  {"type": "Property", "value": 8, "datasetId": "urn:ngsi-ld:Dataset:outdoor",
   "observedAt": "2024-05-01T10:05:00Z", "unitCode": "CEL"}
 ],
 "status": {"type": "Property", "value": "ok",
  "reason": {"type": "Property", "value": "calibrated",
   "by": {"type": "Relationship", "object": "urn:ngsi-ld:Person:ana"}}},
 "address": {"type": "Property", "value": {"streetAddress": "Main 1",
   "geo": {"city": "Oslo", "zip": "0150"}}},
 "tags": {"type": "Property", "value": ["red", "blue"]},
 "enabled": {"type": "Property", "value": true},
 "installedOn": {"type": "Property", "value": "2023-11-02"},
 "opensAt": {"type": "Property", "value": "08:30:00"},
 "lastSeen": {"type": "Property", "value": {"@type": "DateTime", "@value": "2024-05-01T10:05:00Z"}},
 "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Agency:city"},
 "label": {"type": "LanguageProperty", "languageMap": {"en": "boiler", "no": "kjele"}},
 "notes": {"type": "Property", "value": null}
}`

func sensor(t testing.TB) MapEntity {
	var m MapEntity
	if err := json.Unmarshal([]byte(sensorJSON), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClause4_9_QueryLanguage has one case per construct of the q grammar, each
// with a query that must match and one that must not.
func TestClause4_9_QueryLanguage(t *testing.T) {
	aq := loadEntity(t, "AirQualityObserved.normalized.jsonld")
	ps := loadEntity(t, "ParkingSpot.normalized.jsonld")
	dev := sensor(t)
	tests := []struct {
		name  string
		e     MapEntity
		q     string
		match bool
	}{
		{"equal number", aq, "no2==69", true},
		{"equal number false", aq, "no2==70", false},
		{"equal decimal", aq, "temperature==12.2", true},
		{"equal quoted string", aq, `coLevel=="moderate"`, true},
		{"equal quoted string false", aq, `coLevel=="good"`, false},
		{"equal unquoted URI on Relationship", aq, "refPointOfInterest==urn:ngsi-ld:PointOfInterest:28079004-Pza.deEspanya", true},
		{"equal quoted URI on Relationship", ps, `refParkingSite=="urn:ngsi-ld:ParkingSite:santander:daoiz_velarde_1_5"`, true},
		{"equal URI false", ps, "refParkingSite==urn:ngsi-ld:ParkingSite:other", false},
		{"equal true", dev, "enabled==true", true},
		{"equal false", dev, "enabled==false", false},
		{"unequal number", aq, "no2!=70", true},
		{"unequal number false", aq, "no2!=69", false},
		{"unequal string", aq, `coLevel!="good"`, true},
		{"unequal on absent attribute is false", aq, "nothing!=1", false},
		{"greater", aq, "no2>68", true},
		{"greater false on equal", aq, "no2>69", false},
		{"greater or equal", aq, "no2>=69", true},
		{"greater or equal false", aq, "no2>=69.5", false},
		{"less", aq, "temperature<12.3", true},
		{"less false", aq, "temperature<12.2", false},
		{"less or equal", aq, "temperature<=12.2", true},
		{"less or equal false", aq, "temperature<=-1e3", false},
		{"string ordering", aq, `coLevel>"a"`, true},
		{"string ordering false", aq, `coLevel<"a"`, false},
		{"range", aq, "no2==60..70", true},
		{"range inclusive bounds", aq, "no2==69..69", true},
		{"range outside", aq, "no2==70..80", false},
		{"not in range", aq, "no2!=70..80", true},
		{"not in range false", aq, "no2!=60..70", false},
		{"string range", aq, `coLevel=="a".."n"`, true},
		{"value list", aq, `coLevel=="good","moderate","bad"`, true},
		{"value list false", aq, `coLevel=="good","bad"`, false},
		{"number list", aq, "no2==1,2,69", true},
		{"unequal list", aq, `coLevel!="good","bad"`, true},
		{"unequal list false", aq, `coLevel!="good","moderate"`, false},
		{"pattern", aq, "source~=^http://datos", true},
		{"pattern false", aq, "source~=^https", false},
		{"pattern quoted with alternation", aq, `areaServed~="^(Brook|Moor)lands$"`, true},
		{"pattern unquoted with grouped alternation", aq, `areaServed~=^(Brook|Moor)lands$`, true},
		{"pattern case-insensitive flag", aq, `areaServed~=(?i)brooklands`, true},
		{"not pattern", aq, "source!~=^https", true},
		{"not pattern false", aq, "source!~=datos", false},
		{"pattern on number is false", aq, "no2~=69", false},
		{"exists", aq, "no2", true},
		{"exists false", aq, "pm10", false},
		{"not exists", aq, "!pm10", true},
		{"not exists false", aq, "!no2", false},
		{"null value exists", dev, "notes", true},
		{"and", aq, "no2==69;so2==11", true},
		{"and one false", aq, "no2==69;so2==12", false},
		{"or", aq, "no2==1|so2==11", true},
		{"or none", aq, "no2==1|so2==1", false},
		{"parentheses", aq, "(no2==1|no2==69);(so2==11|so2==1)", true},
		{"parentheses false", aq, "(no2==1|no2==2);(so2==11|so2==1)", false},
		{"nested parentheses", aq, "((no2==69))", true},
		{"AND binds tighter than OR", aq, "no2==1;so2==1|co==500", true},
		{"AND binds tighter than OR false", aq, "co==1|no2==1;so2==11", false},
		{"sub-attribute", ps, `status.parkingPermit=="yes"`, true},
		{"sub-attribute false", ps, `status.parkingPermit=="no"`, false},
		{"sub-sub-attribute relationship", dev, "status.reason.by==urn:ngsi-ld:Person:ana", true},
		{"sub-attribute exists", ps, "status.parkingPermit", true},
		{"sub-attribute not exists", ps, "!status.reason", true},
		{"metadata observedAt", ps, "status.observedAt>=2018-09-21T00:00:00Z", true},
		{"metadata observedAt false", ps, "status.observedAt<2018-09-21T00:00:00Z", false},
		{"metadata unitCode", aq, `co.unitCode=="GP"`, true},
		{"metadata unitCode false", aq, `no.unitCode=="GP"`, false},
		{"metadata datasetId", dev, "temperature.datasetId==urn:ngsi-ld:Dataset:outdoor", true},
		{"compound key", aq, `address[addressLocality]=="Madrid"`, true},
		{"compound key false", aq, `address[addressLocality]=="Paris"`, false},
		{"compound key path", dev, `address[geo.city]=="Oslo"`, true},
		{"compound key bracket chain", dev, `address[geo][zip]=="0150"`, true},
		{"compound key missing", dev, `address[geo.country]`, false},
		{"datasetId instances any", dev, "temperature<10", true},
		{"datasetId instances other", dev, "temperature>20", true},
		{"datasetId instances none", dev, "temperature>30", false},
		{"datasetId instances unequal needs none equal", dev, "temperature!=8", false},
		{"array value any element", dev, `tags=="blue"`, true},
		{"array value unequal", dev, `tags!="blue"`, false},
		{"array value list", ps, `category=="offStreet","onStreet"`, true},
		{"languageMap by key", dev, `label[no]=="kjele"`, true},
		{"date-time as instant", aq, "dateObserved==2016-03-15T11:00:00Z", true},
		{"date-time with offset is the same instant", aq, "dateObserved==2016-03-15T12:00:00+01:00", true},
		{"date-time greater", aq, "dateObserved>2016-03-15T10:59:59.5Z", true},
		{"date-time range", aq, "dateObserved==2016-01-01T00:00:00Z..2016-12-31T23:59:59Z", true},
		{"date-time range false", aq, "dateObserved==2017-01-01T00:00:00Z..2017-12-31T23:59:59Z", false},
		{"date-time JSON-LD value object", dev, "lastSeen>2024-05-01T10:00:00Z", true},
		{"date as instant", dev, "installedOn==2023-11-02", true},
		{"date before date-time value", aq, "dateObserved>=2016-03-15", true},
		{"date range", dev, "installedOn==2023-01-01..2023-12-31", true},
		{"time of day", dev, "opensAt<09:00:00", true},
		{"time of day false", dev, "opensAt>09:00:00Z", false},
		{"time of day of a date-time", aq, "dateObserved==11:00:00", true},
		{"number against string is false", aq, "coLevel>1", false},
		{"string against number is false", aq, `no2=="69"`, false},
		{"date against non-date string is false", aq, "coLevel>2016-01-01", false},
		{"GeoProperty exists", aq, "location", true},
		{"GeoProperty compound key", aq, `location[type]=="Point"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.q, nil)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.q, err)
			}
			if got := q.Match(tt.e); got != tt.match {
				t.Errorf("Parse(%q).Match = %v, want %v", tt.q, got, tt.match)
			}
			// Whatever the form written, the canonical form means the same.
			q2, err := Parse(q.String(), nil)
			if err != nil {
				t.Fatalf("Parse(String() = %q): %v", q.String(), err)
			}
			if got := q2.Match(tt.e); got != tt.match {
				t.Errorf("Parse(%q).Match = %v, want %v", q.String(), got, tt.match)
			}
		})
	}
}

func TestParseExpandsTerms(t *testing.T) {
	const sdm = "https://smartdatamodels.org/dataModel.Environment/"
	expand := func(term string) string { return sdm + term }
	e := MapEntity{
		sdm + "no2": map[string]any{"type": "Property", "value": 69.0, "unitCode": "GQ",
			sdm + "quality": map[string]any{"type": "Property", "value": "good"}},
	}
	tests := []struct {
		name  string
		q     string
		attrs []string
		match bool
	}{
		{"attribute", "no2==69", []string{sdm + "no2"}, true},
		{"sub-attribute", `no2.quality=="good"`, []string{sdm + "no2", sdm + "quality"}, true},
		{"metadata is not expanded", `no2.unitCode=="GQ"`, []string{sdm + "no2", "unitCode"}, true},
		{"metadata name in the middle is expanded", `no2.unitCode.x`, []string{sdm + "no2", sdm + "unitCode", sdm + "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.q, expand)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.q, err)
			}
			terms := q.root.(*term)
			if !reflect.DeepEqual(terms.path.Attrs, tt.attrs) {
				t.Errorf("Parse(%q) path = %q, want %q", tt.q, terms.path.Attrs, tt.attrs)
			}
			if got := q.Match(e); got != tt.match {
				t.Errorf("Parse(%q).Match = %v, want %v", tt.q, got, tt.match)
			}
		})
	}
}

func TestParseExpandedIRIWithDots(t *testing.T) {
	const iri = "https://smartdatamodels.org/dataModel.Environment/no2"
	q, err := Parse(iri+"==69;"+iri+"[a.b]", nil)
	if err != nil {
		t.Fatal(err)
	}
	terms := q.root.(andNode)
	if got := terms[0].(*term).path.Attrs; !reflect.DeepEqual(got, []string{iri}) {
		t.Errorf("first path = %q, want [%q]", got, iri)
	}
	if got := terms[1].(*term).path; !reflect.DeepEqual(got, Path{Attrs: []string{iri}, Keys: []string{"a", "b"}}) {
		t.Errorf("second path = %+v", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		q      string
		offset int
		msg    string
	}{
		{"empty", "", 0, "empty expression"},
		{"operator without value", "a==", 3, "expected a value"},
		{"missing attribute", "==1", 0, "expected attribute name"},
		{"unknown operator", "a=1", 1, "want an operator"},
		{"unknown operator tilde", "a~1", 1, "want an operator"},
		{"unclosed parenthesis", "(a==1", 0, "unclosed '('"},
		{"unbalanced parenthesis", "a==1)", 4, "unbalanced ')'"},
		{"empty group", "()", 1, "expected attribute name"},
		{"dangling and", "a==1;", 5, "expected attribute name"},
		{"dangling or", "a==1|", 5, "expected attribute name"},
		{"unterminated string", `a=="abc`, 3, "unterminated quoted string"},
		{"text after quoted string", `a=="x"y`, 6, "unexpected 'y'"},
		{"list after greater", "a>1,2", 3, "value list is only allowed after == and !="},
		{"range after less", "a<1..2", 3, "range is only allowed after == and !="},
		{"greater needs comparable", "a>true", 2, "needs a number"},
		{"greater than unquoted text", "a>abc", 2, "needs a number"},
		{"range of booleans", "a==true..false", 3, "a range needs"},
		{"range kinds differ", "a==1..\"x\"", 4, "range bounds differ"},
		{"range in list", "a==1,2..3", 6, "range cannot be part of a value list"},
		{"list after range", "a==1..3,4", 7, "range cannot be part of a value list"},
		{"bad date", "a==2024-13-45", 3, "bad date"},
		{"bad date-time", "a==2024-01-01T25:00:00Z", 3, "bad date-time"},
		{"bad time", "a>25:99", 2, "bad time"},
		{"bad pattern", "a~=(", 3, "bad pattern"},
		{"empty pattern", "a~=;b", 3, "expected a pattern"},
		{"empty sub-attribute", "a.==1", 2, "expected sub-attribute name"},
		{"unclosed bracket", "a[b", 3, "unclosed '['"},
		{"empty key", "a[]==1", 2, "expected key"},
		{"white space", "a == 1", 1, "want an operator"},
		{"white space in value", "a==b c", 3, "contains white space"},
		{"not before operator", "!a==1", 2, "want ';', '|' or end"},
		{"too deep", strings.Repeat("(", 70) + "a" + strings.Repeat(")", 70), 64, "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.q, nil)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.q, q.String())
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) error %v does not wrap ErrSyntax", tt.q, err)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not *SyntaxError", tt.q, err)
			}
			if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Parse(%q) = %v; want offset %d and message containing %q", tt.q, err, tt.offset, tt.msg)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		name, q, want string
	}{
		{"term", "a==1", "a==1"},
		{"parenthesised and is flattened", "(a==1;b==2);c", "a==1;b==2;c"},
		{"or inside and keeps parentheses", "a;(b|c)", "a;(b|c)"},
		{"and inside or needs none", "(a;b)|c", "a;b|c"},
		{"quoted strings are escaped", `a=="x\"y\\z"`, `a=="x\"y\\z"`},
		{"patterns are quoted", `a~=^x\d+$`, `a~="^x\\d+$"`},
		{"not exists", "!a.b[c.d]", "!a.b[c.d]"},
		{"bracket chain is canonical", "a[b][c]==1", "a[b.c]==1"},
		{"range and list", "a==1..2;b!=x,y", "a==1..2;b!=x,y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.q, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := q.String(); got != tt.want {
				t.Errorf("Parse(%q).String() = %q, want %q", tt.q, got, tt.want)
			}
		})
	}
}

func TestIndexTerms(t *testing.T) {
	day := time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)
	p := func(a string) Path { return Path{Attrs: []string{a}} }
	tests := []struct {
		name string
		q    string
		want []Term
	}{
		{"single equal", "a==1", []Term{{Path: p("a"), Op: "==", Values: []any{1.0}}}},
		{"value list", `a=="x",y,true`, []Term{{Path: p("a"), Op: "==", Values: []any{"x", "y", true}}}},
		{"range", "a==1..5", []Term{{Path: p("a"), Op: "..", Min: 1.0, Max: 5.0}}},
		{"greater", "a>1", []Term{{Path: p("a"), Op: ">", Values: []any{1.0}, Min: 1.0}}},
		{"less or equal date", "a<=2024-01-31", []Term{{Path: p("a"), Op: "<=", Values: []any{day}, Max: day}}},
		{"and of two", "a==1;b>=2", []Term{
			{Path: p("a"), Op: "==", Values: []any{1.0}},
			{Path: p("b"), Op: ">=", Values: []any{2.0}, Min: 2.0}}},
		{"nested and counts", "(a==1;b==2);c", []Term{
			{Path: p("a"), Op: "==", Values: []any{1.0}},
			{Path: p("b"), Op: "==", Values: []any{2.0}}}},
		{"or gives none", "a==1|b==2", nil},
		{"or branch of and is skipped", "a==1;(b==2|c==3)", []Term{{Path: p("a"), Op: "==", Values: []any{1.0}}}},
		{"unequal gives none", "a!=1", nil},
		{"pattern gives none", "a~=x", nil},
		{"exists gives none", "a", nil},
		{"sub-attribute gives none", "a.b==1", nil},
		{"compound gives none", "a[b]==1", nil},
		{"time of day gives none", "a<12:00:00", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.q, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := q.IndexTerms()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q).IndexTerms() = %#v, want %#v", tt.q, got, tt.want)
			}
		})
	}
}

// TestIndexTermsAreNecessary checks the promise a store relies on: an entity that
// matches satisfies every index term (here on the shipped examples).
func TestIndexTermsAreNecessary(t *testing.T) {
	aq := loadEntity(t, "AirQualityObserved.normalized.jsonld")
	for _, s := range []string{"no2==69;so2>=11", "no2==60..70;temperature<13", `coLevel=="moderate";dateObserved>=2016-03-15`} {
		q, err := Parse(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Match(aq) {
			t.Fatalf("Parse(%q) does not match the example", s)
		}
		for _, it := range q.IndexTerms() {
			single, err := Parse(termString(it), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !single.Match(aq) {
				t.Errorf("index term %s of %q does not match", termString(it), s)
			}
		}
	}
}

func termString(it Term) string {
	lit := func(v any) string {
		switch x := v.(type) {
		case string:
			b, _ := json.Marshal(x)
			return string(b)
		case time.Time:
			return x.Format(time.RFC3339Nano)
		default:
			b, _ := json.Marshal(x)
			return string(b)
		}
	}
	name := it.Path.String()
	switch it.Op {
	case "==":
		parts := make([]string, len(it.Values))
		for i, v := range it.Values {
			parts[i] = lit(v)
		}
		return name + "==" + strings.Join(parts, ",")
	case "..":
		return name + "==" + lit(it.Min) + ".." + lit(it.Max)
	default:
		return name + it.Op + lit(it.Values[0])
	}
}

func TestParseInstant(t *testing.T) {
	utc := func(h, m, s, ns int) time.Time { return time.Date(2016, 3, 15, h, m, s, ns, time.UTC) }
	tests := []struct {
		name, in string
		want     time.Time
		ok       bool
	}{
		{"RFC 3339", "2016-03-15T11:00:00Z", utc(11, 0, 0, 0), true},
		{"offset", "2016-03-15T12:00:00+01:00", utc(11, 0, 0, 0), true},
		{"fraction", "2016-03-15T11:00:00.25Z", utc(11, 0, 0, 250000000), true},
		{"no zone is UTC", "2016-03-15T11:00:00", utc(11, 0, 0, 0), true},
		{"no zone with fraction", "2016-03-15T11:00:00.5", utc(11, 0, 0, 500000000), true},
		{"no seconds", "2016-03-15T11:00Z", utc(11, 0, 0, 0), true},
		{"no seconds no zone", "2016-03-15T11:00", utc(11, 0, 0, 0), true},
		{"no seconds with offset", "2016-03-15T11:00-02:00", utc(13, 0, 0, 0), true},
		{"date", "2016-03-15", utc(0, 0, 0, 0), true},
		{"interval is not an instant", "2016-12-07T11:10:00/2016-12-07T11:15:00", time.Time{}, false},
		{"text", "moderate", time.Time{}, false},
		{"bad month", "2016-13-15T11:00:00Z", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseInstant(tt.in)
			if ok != tt.ok || !got.Equal(tt.want) {
				t.Errorf("parseInstant(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
