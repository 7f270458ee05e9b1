package tsdb

import (
	"math"
	"slices"
	"strconv"
)

// This file holds quantiles from histograms stored in Prometheus' layout:
// one cumulative series per bucket, named <metric>_bucket and labelled with
// its upper bound (BucketLabel), the last bound +Inf.

// BucketLabel is the label holding a histogram bucket's upper bound.
const BucketLabel = "le"

// Bucket is one cumulative histogram bucket: Count observations were at
// most UpperBound (+Inf for the last).
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Histogram is the buckets of one label group, counted over a range.
type Histogram struct {
	Labels  Labels
	Buckets []Bucket // in ascending bound order
}

// Quantile is HistogramQuantile of h's buckets: NaN for a histogram with
// no observations.
func (h Histogram) Quantile(q float64) float64 { return HistogramQuantile(q, h.Buckets) }

// HistogramsBy builds one histogram per group from the bucket series of a
// histogram: each series' Increase over its range, summed by the by labels
// and the bucket bound, like PromQL's
// sum by (by…, le) (increase(x_bucket[range])), ready for a quantile.
// Series whose BucketLabel is not a number are skipped. Histograms are
// sorted by labels and carry the by labels only.
func HistogramsBy(series []Series, by ...string) []Histogram {
	var out []Histogram
	for _, g := range groupBy(series, by) {
		counts := map[float64]float64{}
		for _, sr := range g.series {
			le, err := strconv.ParseFloat(sr.Labels.Get(BucketLabel), 64)
			if err != nil || math.IsNaN(le) {
				continue
			}
			counts[le] += Increase(sr.Points)
		}
		if len(counts) == 0 {
			continue
		}
		h := Histogram{Labels: g.labels, Buckets: make([]Bucket, 0, len(counts))}
		for le, n := range counts {
			h.Buckets = append(h.Buckets, Bucket{UpperBound: le, Count: n})
		}
		sortBuckets(h.Buckets)
		out = append(out, h)
	}
	return out
}

// HistogramQuantile estimates the q-quantile (0 ≤ q ≤ 1) of cumulative
// buckets the way Prometheus' histogram_quantile does: find the bucket the
// rank falls in and interpolate linearly inside it, taking 0 as the lower
// edge of the first bucket (durations are not negative). A rank in the
// +Inf bucket answers the highest finite bound: nothing better is known.
// NaN when there are no observations or no finite bound. bs is not
// modified and may be in any order.
func HistogramQuantile(q float64, bs []Bucket) float64 {
	if math.IsNaN(q) || q < 0 || q > 1 || len(bs) == 0 {
		return math.NaN()
	}
	bs = slices.Clone(bs)
	sortBuckets(bs)
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
	i, _ := slices.BinarySearchFunc(bs, rank, func(b Bucket, r float64) int {
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
	// Parenthesized as Prometheus does, so that a p99 exactly at a
	// threshold compares the same here and there.
	return lower + (upper-lower)*((rank-below)/count)
}

func sortBuckets(bs []Bucket) {
	slices.SortFunc(bs, func(a, b Bucket) int {
		switch {
		case a.UpperBound < b.UpperBound:
			return -1
		case a.UpperBound > b.UpperBound:
			return 1
		}
		return 0
	})
}
