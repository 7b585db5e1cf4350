package ngsild

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// isoDuration is an ISO 8601 duration (PnYnMnWnDTnHnMnS). Years, months
// and days are kept apart from the clock part because their length depends
// on the calendar: P1M after 31 January is not 30 days.
type isoDuration struct {
	years, months, days int
	clock               time.Duration
}

// errDuration is returned (wrapped) for a malformed ISO 8601 duration.
var errDuration = errors.New("invalid ISO 8601 duration")

// parseISODuration parses the duration forms NGSI-LD aggrPeriodDuration
// takes (clause 6.3.21); fractions are allowed on seconds only.
func parseISODuration(s string) (isoDuration, error) {
	var d isoDuration
	if len(s) < 2 || s[0] != 'P' {
		return d, fmt.Errorf("%w: %q must start with P", errDuration, s)
	}
	inTime, any := false, false
	i := 1
	for i < len(s) {
		if s[i] == 'T' {
			if inTime || i == len(s)-1 {
				return d, fmt.Errorf("%w: misplaced T in %q", errDuration, s)
			}
			inTime = true
			i++
			continue
		}
		j := i
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j == i || j == len(s) {
			return d, fmt.Errorf("%w: %q needs a number followed by a unit", errDuration, s)
		}
		num, unit := s[i:j], s[j]
		i = j + 1
		any = true
		if unit == 'S' && inTime {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f > math.MaxInt64/float64(time.Second) {
				return d, fmt.Errorf("%w: seconds %q", errDuration, num)
			}
			d.clock += time.Duration(f * float64(time.Second))
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n > 1<<24 {
			return d, fmt.Errorf("%w: %q is not a whole number in range", errDuration, num)
		}
		switch {
		case !inTime && unit == 'Y':
			d.years += n
		case !inTime && unit == 'M':
			d.months += n
		case !inTime && unit == 'W':
			d.days += 7 * n
		case !inTime && unit == 'D':
			d.days += n
		case inTime && unit == 'H':
			d.clock += time.Duration(n) * time.Hour
		case inTime && unit == 'M':
			d.clock += time.Duration(n) * time.Minute
		default:
			return d, fmt.Errorf("%w: unknown unit %q in %q", errDuration, unit, s)
		}
	}
	if !any {
		return d, fmt.Errorf("%w: %q has no parts", errDuration, s)
	}
	return d, nil
}

func (d isoDuration) zero() bool {
	return d.years == 0 && d.months == 0 && d.days == 0 && d.clock == 0
}

func (d isoDuration) addTo(t time.Time) time.Time {
	return t.AddDate(d.years, d.months, d.days).Add(d.clock)
}
