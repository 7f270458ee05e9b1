package tsdb

import (
	"math"
	"slices"
	"time"
)

// This file holds what a counter's points mean: how much it grew and how
// fast. A counter only goes up; a drop means the process restarted from
// zero, so the value after the drop is all the growth since.

// Total is one number for one label group over a whole range, such as a
// group's summed increase.
type Total struct {
	Labels Labels
	V      float64
}

// Increase is how much a counter grew over its points, counting a drop as
// a restart from zero (Prometheus' increase, without extrapolation).
// Non-finite values are skipped.
func Increase(pts []Point) float64 {
	var inc, prev float64
	have := false
	for _, p := range pts {
		if !finite(p.V) {
			continue
		}
		if have {
			if d := p.V - prev; d >= 0 {
				inc += d
			} else {
				inc += p.V
			}
		}
		prev, have = p.V, true
	}
	return inc
}

// IncreaseBy is each group's growth over the range: the Increase of every
// series, summed by the by labels (one group when by is empty), like
// PromQL's sum by (by…) (increase(series[range])). Totals are sorted by
// labels and carry the by labels only.
func IncreaseBy(series []Series, by ...string) []Total {
	groups := groupBy(series, by)
	out := make([]Total, 0, len(groups))
	for _, g := range groups {
		t := Total{Labels: g.labels}
		for _, sr := range g.series {
			t.V += Increase(sr.Points)
		}
		out = append(out, t)
	}
	return out
}

// Rate turns a counter's points into per-second rates between consecutive
// points, at the later point's time; a drop counts as a restart from zero.
// A pair with a non-finite value, or with no time between, gives no point.
//
// Points are expected every spacing (the median time between them). A
// pair up to twice that apart — one sample missed, as when a service's
// export and the recording drift past each other — has its average rate
// at the missed time too, so that series added together (Combine) keep
// their shape. A pair further apart is a gap: the point after it is NaN,
// so a chart breaks its line there instead of drawing the stretch as 0/s
// followed by a spike (or as one long average).
func Rate(pts []Point) []Point {
	every := spacing(pts)
	var out []Point
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		dt := b.T.Sub(a.T)
		if dt <= 0 || !finite(a.V) || !finite(b.V) {
			continue
		}
		if every > 0 && dt > 2*every {
			out = append(out, Point{T: b.T, V: math.NaN()})
			continue
		}
		d := b.V - a.V
		if d < 0 {
			d = b.V
		}
		r := d / dt.Seconds()
		if every > 0 {
			for t := a.T.Add(every); b.T.Sub(t) >= every/2; t = t.Add(every) {
				out = append(out, Point{T: t, V: r})
			}
		}
		out = append(out, Point{T: b.T, V: r})
	}
	return out
}

// spacing is the median time between consecutive points, 0 with fewer
// than two.
func spacing(pts []Point) time.Duration {
	if len(pts) < 2 {
		return 0
	}
	gaps := make([]time.Duration, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		if d := pts[i].T.Sub(pts[i-1].T); d > 0 {
			gaps = append(gaps, d)
		}
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// Rates is the Rate of each series, labels kept, for Aggregate to combine.
func Rates(series []Series) []Series {
	out := make([]Series, len(series))
	for i, sr := range series {
		out[i] = Series{Labels: sr.Labels, Points: Rate(sr.Points), Rollup: sr.Rollup}
	}
	return out
}
