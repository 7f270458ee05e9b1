package web

import (
	"math"
	"slices"
)

// bucket is one cumulative histogram bucket: Count observations were at
// most UpperBound (+Inf for the last).
type bucket struct {
	UpperBound float64
	Count      float64
}

// histogramQuantile estimates the q-quantile (0 ≤ q ≤ 1) of cumulative
// buckets the way Prometheus' histogram_quantile does: find the bucket the
// rank falls in and interpolate linearly inside it, taking 0 as the lower
// edge of the first bucket (durations are not negative). A rank in the
// +Inf bucket answers the highest finite bound: nothing better is known.
// NaN when there are no observations or no finite bound.
func histogramQuantile(q float64, bs []bucket) float64 {
	if math.IsNaN(q) || q < 0 || q > 1 || len(bs) == 0 {
		return math.NaN()
	}
	bs = slices.Clone(bs)
	slices.SortFunc(bs, func(a, b bucket) int {
		switch {
		case a.UpperBound < b.UpperBound:
			return -1
		case a.UpperBound > b.UpperBound:
			return 1
		}
		return 0
	})
	if !math.IsInf(bs[len(bs)-1].UpperBound, 1) {
		return math.NaN() // without +Inf the total is unknown
	}
	// Counts from increases over a range can dip by a scrape's worth of
	// jitter; keep them monotonic as Prometheus does.
	for i := 1; i < len(bs); i++ {
		if bs[i].Count < bs[i-1].Count {
			bs[i].Count = bs[i-1].Count
		}
	}
	total := bs[len(bs)-1].Count
	if total <= 0 || len(bs) < 2 {
		return math.NaN()
	}
	rank := q * total
	i, _ := slices.BinarySearchFunc(bs, rank, func(b bucket, r float64) int {
		if b.Count < r {
			return -1
		}
		return 1
	})
	if i == len(bs)-1 {
		return bs[len(bs)-2].UpperBound
	}
	if i >= len(bs) {
		i = len(bs) - 1
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = bs[i-1].UpperBound, bs[i-1].Count
	}
	upper, count := bs[i].UpperBound, bs[i].Count-below
	if count <= 0 {
		return upper
	}
	if i == 0 && upper <= 0 {
		return upper
	}
	return lower + (upper-lower)*(rank-below)/count
}
