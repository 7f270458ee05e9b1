package web

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 observations: 50 ≤ 0.1s, 40 in (0.1, 0.5], 10 in (0.5, 1].
	latency := []bucket{{0.1, 50}, {0.5, 90}, {1, 100}, {inf, 100}}
	for _, tc := range []struct {
		name string
		q    float64
		bs   []bucket
		want float64
	}{
		{"median at a bucket edge", 0.5, latency, 0.1},
		{"interpolated inside the first bucket from zero", 0.25, latency, 0.05},
		{"p95 interpolated in (0.5, 1]", 0.95, latency, 0.75},
		{"p99", 0.99, latency, 0.95},
		{"p70 in the middle bucket", 0.7, latency, 0.1 + 0.4*20/40},
		{"rank in +Inf answers the highest finite bound", 0.99, []bucket{{0.1, 10}, {1, 90}, {inf, 100}}, 1},
		{"unsorted input is sorted", 0.95, []bucket{{inf, 100}, {1, 100}, {0.1, 50}, {0.5, 90}}, 0.75},
		{"non-monotonic counts are evened out", 0.5, []bucket{{0.1, 50}, {0.5, 49}, {1, 100}, {inf, 100}}, 0.1},
		{"q=0", 0, latency, 0},
		{"q=1 is the top of the last finite bucket with data", 1, latency, 1},
		{"no observations", 0.5, []bucket{{0.1, 0}, {inf, 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []bucket{{0.1, 5}, {1, 10}}, math.NaN()},
		{"only +Inf", 0.5, []bucket{{inf, 10}}, math.NaN()},
		{"empty", 0.5, nil, math.NaN()},
		{"q out of range", 1.5, latency, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := histogramQuantile(tc.q, tc.bs)
			if math.IsNaN(tc.want) {
				if !math.IsNaN(got) {
					t.Errorf("got %v, want NaN", got)
				}
				return
			}
			if math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

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
