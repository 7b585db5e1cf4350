package policy

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// appendPlainJSON appends v, a JSON tree as policyJSON and decodeJSON make
// it, as json.Marshal writes it (compact, object keys sorted), when every
// string and key in it is printable ASCII that json.Marshal writes as it
// is (no quote, backslash, <, > or &), every json.Number valid and every
// float64 finite. For anything else (other value types, strings needing
// escapes)
// it says !ok and the caller uses json.Marshal, so the bytes are the same
// either way.
func appendPlainJSON(dst []byte, v any) ([]byte, bool) {
	switch t := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		if t {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case string:
		return appendPlainString(dst, t)
	case json.Number:
		if !plainNumber(string(t)) {
			return nil, false
		}
		return append(dst, t...), true
	case float64:
		return appendFloat(dst, t)
	case []float64:
		return appendPlainList(dst, t, appendFloat)
	case []string:
		return appendPlainList(dst, t, appendPlainString)
	case []any:
		return appendPlainList(dst, t, appendPlainJSON)
	case map[string]any:
		if t == nil {
			return append(dst, "null"...), true
		}
		var buf [16]string
		keys := buf[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendPlainString(dst, k); !ok {
				return nil, false
			}
			dst = append(dst, ':')
			if dst, ok = appendPlainJSON(dst, t[k]); !ok {
				return nil, false
			}
		}
		return append(dst, '}'), true
	}
	return nil, false
}

// appendPlainString appends s quoted if json.Marshal writes it without
// escapes.
func appendPlainString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return nil, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// plainNumber reports whether s is a number in the JSON grammar, which
// json.Marshal writes as it is.
func plainNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// appendFloat writes f as encoding/json does (its floatEncoder for 64
// bits): the shortest form, with an exponent only below 1e-6 or from 1e21
// on, and no leading zero in a negative exponent.
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// appendPlainList appends xs as a JSON array (null when nil), each element
// by elem, or says !ok when elem does.
func appendPlainList[T any](dst []byte, xs []T, elem func([]byte, T) ([]byte, bool)) ([]byte, bool) {
	if xs == nil {
		return append(dst, "null"...), true
	}
	dst = append(dst, '[')
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = elem(dst, x); !ok {
			return nil, false
		}
	}
	return append(dst, ']'), true
}
