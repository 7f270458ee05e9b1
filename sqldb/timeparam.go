package sqldb

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"switchyard/delivery"
)

// The times people and scripts type into filters and query parameters,
// read here once for every store's readers (the dead-letter filter codec,
// the series API, the pages' forms), so that each accepts the same
// spellings and refuses, naming the parameter, what no store can hold.

// ParseQueryTime reads a time given as RFC 3339 or Unix seconds (fractions
// allowed). name is the parameter, for the message. Errors: EINVALID, also
// for a time outside TimeInRange.
func ParseQueryTime(name, v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return CheckTime(name, t)
	}
	// Seconds beyond ±1e11 are outside any range the stores accept, and
	// would overflow on the way to a time.
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1e11 {
		sec, frac := math.Modf(f)
		return CheckTime(name, time.Unix(int64(sec), int64(frac*1e9)).UTC())
	} else if err == nil {
		return time.Time{}, outOfRange(name)
	}
	return time.Time{}, delivery.Errorf(delivery.EINVALID, "%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or Unix seconds", name, clip(v, 40))
}

// formLayouts are what a browser's datetime-local input sends (no zone).
var formLayouts = [...]string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

// ParseFormTime reads what ParseQueryTime does plus a browser's
// datetime-local value, taken as UTC (the pages show UTC). Errors: EINVALID.
func ParseFormTime(name, v string) (time.Time, error) {
	for _, layout := range formLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return CheckTime(name, t.UTC())
		}
	}
	return ParseQueryTime(name, v)
}

// CheckTime returns t when the stores can hold it (TimeInRange), else
// EINVALID naming the parameter.
func CheckTime(name string, t time.Time) (time.Time, error) {
	if !TimeInRange(t) {
		return time.Time{}, outOfRange(name)
	}
	return t, nil
}

func outOfRange(name string) error {
	return delivery.Errorf(delivery.EINVALID, "%s must be a time %s", name, TimeRangeText)
}

// clip shortens s to n runes with an ellipsis, for an error message that
// must not echo a long input.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
