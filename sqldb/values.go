package sqldb

import (
	"time"
	"unicode/utf8"
)

// How the stores write times and which values they accept: shared by
// every store so that a time or a name means the same in each file.

// TimeLayout is how the console stores timestamps: UTC, fixed width, so that
// string order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// FormatTime formats t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a timestamp written by FormatTime.
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeLayout, s) }

// The span of times the console's stores hold and its queries accept.
// Stores keep Unix nanoseconds (which end in 2262) or this layout (which
// ends in 9999): a time outside the span is a mistake to refuse, never a
// bound that silently wraps into "every entry".
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// TimeInRange reports whether t lies in the span the stores accept:
// from 1970-01-01 up to (not including) 2200-01-01, UTC.
func TimeInRange(t time.Time) bool { return !t.Before(minTime) && t.Before(maxTime) }

// TimeRangeText says the span for error messages.
const TimeRangeText = "between 1970-01-01 and 2200-01-01 (UTC)"

// ValidText reports whether s is text the stores accept in a name, an id
// or a search: valid UTF-8 without control characters other than tab and
// newline. A NUL would end the string early inside SQLite and FTS5; the
// others have no business in a filter and would reach logs and pages.
func ValidText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}
