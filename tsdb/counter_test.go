package tsdb

import (
	"math"
	"slices"
	"testing"
	"time"
)

func counter(vs ...float64) []Point {
	out := make([]Point, len(vs))
	for i, v := range vs {
		out[i] = Point{T: t0.Add(time.Duration(i) * 10 * time.Second), V: v}
	}
	return out
}

func TestIncrease(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name string
		pts  []Point
		want float64
	}{
		{"growth", counter(5, 7, 12), 7},
		{"a restart counts from zero", counter(10, 15, 3, 4), 5 + 3 + 1},
		{"non-finite values are skipped", counter(1, nan, 4, math.Inf(1), 6), 5},
		{"one point", counter(42), 0},
		{"none", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Increase(tc.pts); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRate(t *testing.T) {
	got := Rate(counter(0, 10, 30, 5, math.NaN(), 25))
	want := []Point{
		{T: t0.Add(10 * time.Second), V: 1},
		{T: t0.Add(20 * time.Second), V: 2},
		{T: t0.Add(30 * time.Second), V: 0.5}, // restarted: 5 since zero
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	same := []Point{{T: t0, V: 1}, {T: t0, V: 2}}
	if got := Rate(same); len(got) != 0 {
		t.Errorf("no time between gave %v", got)
	}
	rs := Rates([]Series{{Labels: L(MetricName, "c", "service", "billing"), Points: counter(0, 20), Rollup: true}})
	if len(rs) != 1 || rs[0].Labels.Get("service") != "billing" || !rs[0].Rollup || !slices.Equal(rs[0].Points, []Point{{T: t0.Add(10 * time.Second), V: 2}}) {
		t.Errorf("Rates = %v", rs)
	}
}

// IncreaseBy sums each group's series' increases: the services table's
// processed and failed counts per service.
func TestIncreaseBy(t *testing.T) {
	ev := func(svc, tenant string, vs ...float64) Series {
		return Series{Labels: L(MetricName, "event_processed_total", "service", svc, "tenant", tenant), Points: counter(vs...)}
	}
	series := []Series{ev("shipping", "acme", 0, 4), ev("billing", "acme", 0, 90), ev("billing", "beta", 10, 20, 5)}
	got := IncreaseBy(series, "service")
	if len(got) != 2 || got[0].Labels.String() != `{service="billing"}` || got[0].V != 105 ||
		got[1].Labels.String() != `{service="shipping"}` || got[1].V != 4 {
		t.Errorf("by service = %v", got)
	}
	if all := IncreaseBy(series); len(all) != 1 || all[0].V != 109 {
		t.Errorf("all = %v", all)
	}
	if none := IncreaseBy(nil, "service"); len(none) != 0 {
		t.Errorf("no series gave %v", none)
	}
}

// A counter recorded every 10 s: one missed sample is bridged with the
// average rate (at the missed time too, so sums of series stay level); a
// longer silence is a gap (NaN), never 0/s followed by a spike.
func TestRateBridgesOneMissedSampleAndGapsLongerSilences(t *testing.T) {
	at := func(s int, v float64) Point { return Point{T: t0.Add(time.Duration(s) * time.Second), V: v} }
	// The sample at 30 s is missed; those at 50, 60 and 70 s too.
	pts := []Point{at(0, 0), at(10, 10), at(20, 20), at(40, 60), at(80, 100), at(90, 130)}
	got := Rate(pts)
	want := []Point{at(10, 1), at(20, 1), at(30, 2), at(40, 2), at(80, math.NaN()), at(90, 3)}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].T.Equal(want[i].T) || !(got[i].V == want[i].V || math.IsNaN(got[i].V) && math.IsNaN(want[i].V)) {
			t.Errorf("point %d = %v, want %v", i, got[i], want[i])
		}
	}
	for _, p := range got {
		if p.V == 0 {
			t.Errorf("a 0/s point at %v: the silence read as idleness", p.T)
		}
	}
}
