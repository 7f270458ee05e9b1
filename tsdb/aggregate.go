package tsdb

import (
	"math"
	"slices"
	"time"
)

// This file holds the aggregation across series (see the package comment
// for the other analytics and who shares them).

// Op says how the values of several series at one time combine into one,
// as PromQL's aggregation operators do. Agg, by contrast, combines the
// points of one series inside one step bucket.
type Op string

// The aggregation operators.
const (
	OpSum   Op = "sum" // the default: "" sums too
	OpAvg   Op = "avg"
	OpMin   Op = "min"
	OpMax   Op = "max"
	OpCount Op = "count" // how many series have a value
)

// ParseOp reads an operator by its name; "" is OpSum. Errors are EINVALID.
func ParseOp(s string) (Op, error) {
	switch op := Op(s); op {
	case "":
		return OpSum, nil
	case OpSum, OpAvg, OpMin, OpMax, OpCount:
		return op, nil
	}
	return "", invalidf("aggregation operator %q: want sum, avg, min, max or count", s)
}

// Aggregate combines series point by point, like PromQL's
// `op by (by…) (series)`: series are grouped by their values of the by
// labels (all in one group when by is empty), and within a group the values
// at the same time are combined by op. Query results share their times,
// since buckets are aligned to the step. Non-finite values are skipped, so a
// time whose values are all NaN or ±Inf has no point.
//
// Each result is labelled with its group's by labels only (the metric name
// goes, as in PromQL), has its points in time order and is Rollup when any
// of its series is; results are sorted by labels. The input is not
// modified: query results may be shared. An op that ParseOp refuses gives
// no series.
func Aggregate(series []Series, op Op, by ...string) []Series {
	if _, err := ParseOp(string(op)); err != nil {
		return nil
	}
	var out []Series
	for _, g := range groupBy(series, by) {
		sr := Series{Labels: g.labels, Points: combine(g.series, op)}
		for _, in := range g.series {
			sr.Rollup = sr.Rollup || in.Rollup
		}
		if len(sr.Points) > 0 {
			out = append(out, sr)
		}
	}
	return out
}

// Combine is Aggregate without grouping: all series become one line,
// empty when none of them has a finite value.
func Combine(series []Series, op Op) []Point {
	if out := Aggregate(series, op); len(out) > 0 {
		return out[0].Points
	}
	return nil
}

// combine folds the finite values of series per time; op is valid.
func combine(series []Series, op Op) []Point {
	byT := map[int64]*agg{}
	for _, sr := range series {
		for _, p := range sr.Points {
			if !finite(p.V) {
				continue
			}
			t := p.T.UnixMilli()
			a := byT[t]
			if a == nil {
				a = &agg{}
				byT[t] = a
			}
			a.addPoint(p.V)
		}
	}
	out := make([]Point, 0, len(byT))
	for t, a := range byT {
		v := a.sum
		switch op {
		case OpAvg:
			v = a.sum / a.count
		case OpMin:
			v = a.min
		case OpMax:
			v = a.max
		case OpCount:
			v = a.count
		}
		out = append(out, Point{T: time.UnixMilli(t).UTC(), V: v})
	}
	slices.SortFunc(out, func(a, b Point) int { return a.T.Compare(b.T) })
	return out
}

// group is the series that share their values of the by labels.
type group struct {
	labels Labels
	series []Series
}

// groupBy splits series by their values of the by labels, in series order
// within a group, groups sorted by labels. A label a series lacks is left
// out of its group's labels, as an empty value is in the store.
func groupBy(series []Series, by []string) []group {
	by = slices.Compact(slices.Sorted(slices.Values(by)))
	at := map[string]int{}
	var out []group
	for _, sr := range series {
		ls := make(Labels, 0, len(by))
		for _, name := range by {
			if v := sr.Labels.Get(name); v != "" {
				ls = append(ls, Label{Name: name, Value: v})
			}
		}
		key := ls.String() // canonical: by, and so ls, is sorted by name
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, group{labels: ls})
		}
		out[i].series = append(out[i].series, sr)
	}
	slices.SortFunc(out, func(a, b group) int { return CompareLabels(a.labels, b.labels) })
	return out
}

// finite reports whether v is a number a sum can use: not NaN or ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
