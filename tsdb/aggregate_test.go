package tsdb

import (
	"math"
	"slices"
	"testing"
	"time"

	"switchyard/delivery"
)

// Aggregate combines the values at each time, per group of the by labels,
// skipping NaN and ±Inf; the charts' "all topics" lines and the consumer
// page's max lag come from it.
func TestAggregate(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	lag := func(group, topic string, rollup bool, vs ...float64) Series {
		sr := Series{Labels: L(MetricName, "switchyard_consumer_group_lag", "group", group, "topic", topic), Rollup: rollup}
		for i, v := range vs {
			sr.Points = append(sr.Points, Point{T: at(i), V: v})
		}
		return sr
	}
	nan := math.NaN()
	series := []Series{
		lag("billing", "orders", false, 1, 2, 3),
		lag("billing", "payments", true, 10, nan, 30),
		lag("shipping", "orders", false, 5, math.Inf(1), nan),
	}
	line := func(vs ...float64) []Point {
		var out []Point
		for i, v := range vs {
			if !math.IsNaN(v) {
				out = append(out, Point{T: at(i), V: v})
			}
		}
		return out
	}
	for _, tc := range []struct {
		op   Op
		want []Point
	}{
		{OpSum, line(16, 2, 33)},
		{"", line(16, 2, 33)},
		{OpAvg, line(16.0/3, 2, 16.5)},
		{OpMin, line(1, 2, 3)},
		{OpMax, line(10, 2, 30)},
		{OpCount, line(3, 1, 2)},
	} {
		t.Run("all "+string(tc.op), func(t *testing.T) {
			if got := Combine(series, tc.op); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("by group", func(t *testing.T) {
		got := Aggregate(series, OpSum, "group")
		if len(got) != 2 {
			t.Fatalf("got %d series, want billing and shipping", len(got))
		}
		if got[0].Labels.String() != `{group="billing"}` || !slices.Equal(got[0].Points, line(11, 2, 33)) || !got[0].Rollup {
			t.Errorf("billing = %v", got[0])
		}
		// Only finite values count: the shipping line keeps its first point.
		if got[1].Labels.String() != `{group="shipping"}` || !slices.Equal(got[1].Points, line(5)) || got[1].Rollup {
			t.Errorf("shipping = %v", got[1])
		}
	})
	t.Run("by a label some series lack", func(t *testing.T) {
		got := Aggregate(series, OpMax, "partition", "topic", "topic")
		if len(got) != 2 || got[0].Labels.String() != `{topic="orders"}` || got[1].Labels.String() != `{topic="payments"}` {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("input untouched", func(t *testing.T) {
		before := slices.Clone(series[1].Points)
		Aggregate(series, OpMin, "group")
		if !slices.EqualFunc(before, series[1].Points, func(a, b Point) bool {
			return a.T.Equal(b.T) && (a.V == b.V || math.IsNaN(a.V) && math.IsNaN(b.V))
		}) {
			t.Error("Aggregate changed its input")
		}
	})
	t.Run("nothing finite", func(t *testing.T) {
		if got := Combine([]Series{lag("x", "y", false, nan)}, OpSum); len(got) != 0 {
			t.Errorf("got %v", got)
		}
		if got := Aggregate(nil, OpSum, "group"); len(got) != 0 {
			t.Errorf("no series gave %v", got)
		}
	})
	t.Run("unknown op", func(t *testing.T) {
		if got := Aggregate(series, "median"); got != nil {
			t.Errorf("median gave %v", got)
		}
	})
}

func TestParseOp(t *testing.T) {
	for in, want := range map[string]Op{"": OpSum, "sum": OpSum, "avg": OpAvg, "min": OpMin, "max": OpMax, "count": OpCount} {
		if got, err := ParseOp(in); err != nil || got != want {
			t.Errorf("ParseOp(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"median", "SUM", "rate"} {
		if _, err := ParseOp(bad); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("ParseOp(%q) = %v, want EINVALID", bad, err)
		}
	}
}
