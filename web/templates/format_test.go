package templates

import (
	"testing"
	"time"
)

func TestCount(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{-1, "—"}, {0, "0"}, {999, "999"}, {1000, "1k"}, {1234, "1.2k"}, {12_345, "12.3k"},
		{99_949, "99.9k"}, {99_950, "100k"}, {123_456, "123k"}, {999_499, "999k"}, {999_500, "1M"},
		{3_400_000, "3.4M"}, {5_600_000_000, "5.6G"}, {7_000_000_000_000, "7T"},
	}
	for _, tt := range tests {
		if got := Count(tt.n); got != tt.want {
			t.Errorf("Count(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestExact(t *testing.T) {
	for n, want := range map[int64]string{-1: "unknown", 0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := Exact(n); got != want {
			t.Errorf("Exact(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPerSec(t *testing.T) {
	tests := []struct {
		r    Rate
		want string
	}{
		{Rate{}, "—"}, {Rate{Known: true}, "0/s"}, {Rate{0.44, true}, "0.4/s"}, {Rate{2, true}, "2/s"},
		{Rate{9.96, true}, "10/s"}, {Rate{42.4, true}, "42/s"}, {Rate{1234, true}, "1.2k/s"},
	}
	for _, tt := range tests {
		if got := PerSec(tt.r); got != tt.want {
			t.Errorf("PerSec(%+v) = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"}, {12 * time.Second, "12s ago"}, {3*time.Minute + 59*time.Second, "3m ago"},
		{2 * time.Hour, "2h ago"}, {47 * time.Hour, "47h ago"}, {4 * 24 * time.Hour, "4d ago"},
	}
	for _, tt := range tests {
		if got := Ago(now, now.Add(-tt.d)); got != tt.want {
			t.Errorf("Ago(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := Ago(now, time.Time{}); got != "" {
		t.Errorf("Ago(zero) = %q, want empty", got)
	}
}
