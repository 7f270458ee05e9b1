package tsdb

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
func Rate(pts []Point) []Point {
	var out []Point
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		dt := b.T.Sub(a.T).Seconds()
		if dt <= 0 || !finite(a.V) || !finite(b.V) {
			continue
		}
		d := b.V - a.V
		if d < 0 {
			d = b.V
		}
		out = append(out, Point{T: b.T, V: d / dt})
	}
	return out
}

// Rates is the Rate of each series, labels kept, for Aggregate to combine.
func Rates(series []Series) []Series {
	out := make([]Series, len(series))
	for i, sr := range series {
		out[i] = Series{Labels: sr.Labels, Points: Rate(sr.Points), Rollup: sr.Rollup}
	}
	return out
}
