package templates

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Count formats n for people: 999, 1.2k, 12k, 3.4M, 5.6G.
func Count(n int64) string {
	if n < 0 {
		return "—"
	}
	if n < 1000 {
		return strconv.FormatInt(n, 10)
	}
	v := float64(n)
	for _, unit := range []string{"k", "M", "G", "T", "P"} {
		v /= 1000
		// 999.6k would print as "1000k": move up a unit instead.
		if s := short(v); v < 1000 && s != "1000" {
			return s + unit
		}
	}
	return short(v) + "E"
}

// short prints one decimal below 100 ("1.2", "12.5", "12" for 12.0) and
// none above ("123").
func short(v float64) string {
	if v >= 99.95 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	s := strconv.FormatFloat(math.Round(v*10)/10, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0")
}

// Exact formats n with thousands separators, for tooltips: 1,234,567.
func Exact(n int64) string {
	if n < 0 {
		return "unknown"
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// PerSec formats a rate: "—" while unknown, "0/s", "0.4/s", "1.2k/s".
func PerSec(r Rate) string {
	switch {
	case !r.Known:
		return "—"
	case r.PerSec == 0:
		return "0/s"
	case r.PerSec < 10:
		return strings.TrimSuffix(strconv.FormatFloat(math.Round(r.PerSec*10)/10, 'f', 1, 64), ".0") + "/s"
	}
	return Count(int64(math.Round(r.PerSec))) + "/s"
}

// Ago formats the time from t to now: "just now", "12s ago", "3m ago",
// "2h ago", "4d ago"; "" for a zero t.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// Offset formats a partition offset, "—" for -1 (none or unknown).
func Offset(n int64) string {
	if n < 0 {
		return "—"
	}
	return strconv.FormatInt(n, 10)
}

func itoa[T ~int | ~int32 | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

func pathEscape(s string) string  { return url.PathEscape(s) }
func queryEscape(s string) string { return url.QueryEscape(s) }
