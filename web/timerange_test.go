package web

import (
	"testing"
	"time"
)

func TestParseStepAndTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"15s": 15 * time.Second, "1m30s": 90 * time.Second, "90": 90 * time.Second, "0.5": 500 * time.Millisecond,
		"1d": 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "250ms": 250 * time.Millisecond,
	} {
		if got, err := parseStep(in); err != nil || got != want {
			t.Errorf("parseStep(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-5s", "abc", "5x", "d", "NaN"} {
		if _, err := parseStep(bad); err == nil {
			t.Errorf("parseStep(%q) accepted", bad)
		}
	}
	want := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, in := range []string{"2026-01-02T15:04:05Z", "2026-01-02T16:04:05+01:00", "1767366245"} {
		if got, err := parseTime("from", in); err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, _ := parseTime("from", "1767366245.5"); !got.Equal(want.Add(500 * time.Millisecond)) {
		t.Errorf("fractional unix seconds = %v", got)
	}
	if _, err := parseTime("from", "yesterday"); err == nil {
		t.Error("parseTime accepted yesterday")
	}
}

// Every range of the picker gets a chart of 120 to 300 points.
func TestStepForRanges(t *testing.T) {
	for _, r := range ranges {
		n := int(r.d / stepFor(r.d))
		if n < 120 || n > 300 {
			t.Errorf("range %s: step %s gives %d points", r.key, stepFor(r.d), n)
		}
	}
	if _, err := parseRange("2d", time.Now()); err == nil {
		t.Error("range 2d accepted")
	}
}
