package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// isoDuration is an ISO 8601 / xsd:duration. Years, months and days are kept
// apart from the clock part because their length depends on the start date:
// P1M after 31 January is not 30 days.
type isoDuration struct {
	years, months, days int
	clock               time.Duration
	text                string
}

// after returns t plus d, calendar parts first, as time.AddDate does.
func (d isoDuration) after(t time.Time) time.Time {
	if d.years == 0 && d.months == 0 && d.days <= maxQuickDays && t.Location() == time.UTC {
		if u := t.Unix(); u >= minQuickUnix && u <= maxQuickUnix {
			// In UTC every day has 24 hours, so AddDate's calendar
			// arithmetic, most of an elapsedTime check, comes to adding a
			// duration. Round(0) drops any monotonic reading, as AddDate
			// does, so comparisons still use the wall clock.
			return t.Round(0).Add(time.Duration(d.days)*24*time.Hour + d.clock)
		}
	}
	return t.AddDate(d.years, d.months, d.days).Add(d.clock)
}

// The quick path of after is taken for at most 100 years of days (with the
// clock part, at most 150 years, the sum stays below time.Duration's 292) and
// for start times in years 1 to 9999, far from where either way of adding
// could overflow.
const (
	maxQuickDays = 36500
	minQuickUnix = -62135596800 // 0001-01-01T00:00:00Z
	maxQuickUnix = 253402300799 // 9999-12-31T23:59:59Z
)

const maxClock = 150 * 365 * 24 * time.Hour

// maxPart bounds each number so that no arithmetic below can overflow.
var maxPart = map[string]float64{
	"Y": 10000, "M": 120000, "W": 520000, "D": 3650000,
	"TH": 1e6, "TM": 6e7, "TS": 3.6e9,
}

// parseDuration reads "P30D", "PT12H", "P1Y2M3DT4H5M6.5S", "P2W".
// Negative durations are refused: elapsed time is never negative.
func parseDuration(s string) (isoDuration, error) {
	d := isoDuration{text: s}
	bad := func(why string) (isoDuration, error) {
		return isoDuration{}, fmt.Errorf("%q is not an ISO 8601 duration (e.g. P30D, PT12H): %s", s, why)
	}
	if !strings.HasPrefix(s, "P") {
		return bad("it must start with P")
	}
	rest := s[1:]
	if rest == "" || rest == "T" {
		return bad("it has no parts")
	}
	inTime := false
	seen := ""
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad("T appears twice")
			}
			inTime = true
			rest = rest[1:]
			if rest == "" {
				return bad("nothing after T")
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return bad("a number must be followed by a unit")
		}
		num, unit := rest[:i], rest[i]
		rest = rest[i+1:]
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+",") {
			return bad("unit " + key + " repeated")
		}
		seen += key + ","
		if unit != 'S' || !inTime {
			if strings.Contains(num, ".") {
				return bad("only seconds may have a fraction")
			}
		}
		n, err := strconv.ParseFloat(num, 64)
		if err != nil || n > maxPart[key] {
			return bad("number out of range")
		}
		switch {
		case !inTime && unit == 'Y':
			d.years = int(n)
		case !inTime && unit == 'M':
			d.months = int(n)
		case !inTime && unit == 'W':
			d.days += 7 * int(n)
		case !inTime && unit == 'D':
			d.days += int(n)
		case inTime && unit == 'H':
			d.clock += time.Duration(n) * time.Hour
		case inTime && unit == 'M':
			d.clock += time.Duration(n) * time.Minute
		case inTime && unit == 'S':
			d.clock += time.Duration(n * float64(time.Second))
		default:
			return bad("unknown unit " + string(unit))
		}
		// Checked after every part, each part is at most ~115 years, so the
		// sum cannot overflow time.Duration (292 years) before it is caught.
		if d.clock > maxClock {
			return bad("longer than 150 years")
		}
	}
	return d, nil
}

// words says the duration for people: "30 days", "1 month 2 hours".
func (d isoDuration) words() string {
	var parts []string
	add := func(n int, unit string) {
		if n == 0 {
			return
		}
		if n != 1 {
			unit += "s"
		}
		parts = append(parts, strconv.Itoa(n)+" "+unit)
	}
	add(d.years, "year")
	add(d.months, "month")
	add(d.days, "day")
	c := d.clock
	add(int(c/time.Hour), "hour")
	add(int(c%time.Hour/time.Minute), "minute")
	if s := c % time.Minute; s != 0 {
		parts = append(parts, strconv.FormatFloat(s.Seconds(), 'f', -1, 64)+" seconds")
	}
	if len(parts) == 0 {
		return "no time"
	}
	return strings.Join(parts, " ")
}
