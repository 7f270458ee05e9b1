package tsdb

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 observations: 50 ≤ 0.1s, 40 in (0.1, 0.5], 10 in (0.5, 1].
	latency := []Bucket{{0.1, 50}, {0.5, 90}, {1, 100}, {inf, 100}}
	for _, tc := range []struct {
		name string
		q    float64
		bs   []Bucket
		want float64
	}{
		{"median at a bucket edge", 0.5, latency, 0.1},
		{"interpolated inside the first bucket from zero", 0.25, latency, 0.05},
		{"p95 interpolated in (0.5, 1]", 0.95, latency, 0.75},
		{"p99", 0.99, latency, 0.95},
		{"p70 in the middle bucket", 0.7, latency, 0.1 + 0.4*20/40},
		{"rank in +Inf answers the highest finite bound", 0.99, []Bucket{{0.1, 10}, {1, 90}, {inf, 100}}, 1},
		{"unsorted input is sorted", 0.95, []Bucket{{inf, 100}, {1, 100}, {0.1, 50}, {0.5, 90}}, 0.75},
		{"non-monotonic counts are evened out", 0.5, []Bucket{{0.1, 50}, {0.5, 49}, {1, 100}, {inf, 100}}, 0.1},
		{"q=0", 0, latency, 0},
		{"q=1 is the top of the last finite bucket with data", 1, latency, 1},
		{"no observations", 0.5, []Bucket{{0.1, 0}, {inf, 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []Bucket{{0.1, 5}, {1, 10}}, math.NaN()},
		{"only +Inf", 0.5, []Bucket{{inf, 10}}, math.NaN()},
		{"empty", 0.5, nil, math.NaN()},
		{"q out of range", 1.5, latency, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := HistogramQuantile(tc.q, tc.bs)
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

// Bucket series become one histogram per group, from each bucket's
// increase over the range; the services table reads its p50/p95/p99 so.
func TestHistogramsBy(t *testing.T) {
	bucket := func(svc, tenant, le string, from, to float64) Series {
		return Series{
			Labels: L(MetricName, "event_processing_duration_seconds_bucket", "service", svc, "tenant", tenant, BucketLabel, le),
			Points: []Point{{T: t0, V: from}, {T: t0.Add(time.Minute), V: to}},
		}
	}
	series := []Series{
		// billing: two tenants that add up to the 100 observations of
		// TestHistogramQuantile's latency histogram.
		bucket("billing", "acme", "0.1", 0, 30), bucket("billing", "acme", "0.5", 0, 50),
		bucket("billing", "acme", "1", 0, 60), bucket("billing", "acme", "+Inf", 0, 60),
		bucket("billing", "beta", "0.1", 5, 25), bucket("billing", "beta", "0.5", 5, 45),
		bucket("billing", "beta", "1", 5, 45), bucket("billing", "beta", "+Inf", 5, 45),
		// shipping: everything in (0.5, 1], and a series with no bound.
		bucket("shipping", "acme", "0.5", 0, 0), bucket("shipping", "acme", "1", 0, 8),
		bucket("shipping", "acme", "+Inf", 0, 8), bucket("shipping", "acme", "", 0, 1000),
	}
	hs := HistogramsBy(series, "service")
	if len(hs) != 2 || hs[0].Labels.String() != `{service="billing"}` || hs[1].Labels.String() != `{service="shipping"}` {
		t.Fatalf("groups = %v", hs)
	}
	inf := math.Inf(1)
	if got, want := hs[0].Buckets, []Bucket{{0.1, 50}, {0.5, 90}, {1, 100}, {inf, 100}}; !slices.Equal(got, want) {
		t.Errorf("billing buckets = %v, want %v", got, want)
	}
	if got := hs[0].Quantile(0.95); math.Abs(got-0.75) > 1e-9 {
		t.Errorf("billing p95 = %v, want 0.75", got)
	}
	if got := hs[1].Quantile(0.5); math.Abs(got-0.75) > 1e-9 {
		t.Errorf("shipping p50 = %v, want 0.75", got)
	}
	all := HistogramsBy(series)
	if len(all) != 1 || len(all[0].Labels) != 0 {
		t.Fatalf("all = %v, want one unlabelled histogram", all)
	}
	if got, want := all[0].Buckets, []Bucket{{0.1, 50}, {0.5, 90}, {1, 108}, {inf, 108}}; !slices.Equal(got, want) {
		t.Errorf("all buckets = %v, want %v", got, want)
	}
	if got := HistogramsBy(nil, "service"); len(got) != 0 {
		t.Errorf("no series gave %v", got)
	}
	if got := (Histogram{}).Quantile(0.5); !math.IsNaN(got) {
		t.Errorf("empty histogram p50 = %v, want NaN", got)
	}
}
