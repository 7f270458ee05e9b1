package alerting

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/tsdb"
)

// rangeHistory is a history with a little of everything: gauges that come
// and go, counters with a reset, histogram buckets, queues.
func rangeHistory(t *testing.T, n int) *tsdb.Store {
	var series []engSeries
	for i, g := range []string{"billing", "shipping", "audit"} {
		series = append(series, engSeries{lagLabels("demo", g), engValues(n, func(k int) float64 {
			if g == "audit" && k%37 > 30 { // gaps of 6 scrapes
				return engGap
			}
			return float64((k*(i+3))%90) + 0.25*float64(i)
		})})
		ctr := func(name string, inc float64) engSeries {
			return engSeries{tsdb.L(tsdb.MetricName, name, "cluster", "demo", "group", g),
				engCounter(n, func(k int) float64 { return inc * float64(1+(k/20+i)%3) }, map[int]float64{n / 2: 1})}
		}
		series = append(series, ctr("event_failed_total", float64(i+1)), ctr("event_processed_total", 40))
		for j, le := range []string{"0.1", "0.5", "1", "+Inf"} {
			series = append(series, engSeries{tsdb.L(tsdb.MetricName, "event_processing_duration_seconds_bucket", "group", g, "le", le),
				engCounter(n, func(k int) float64 { return float64((j + 1) * (10 + (k/15+i)%4*j)) }, nil)})
		}
	}
	return engHistory(t, series...)
}

func rangeRules() []*Rule {
	five := Duration(5 * time.Minute)
	ratioDen := Selector{Metric: "event_processed_total", Func: FuncRate, Window: Duration(2 * time.Minute), Agg: AggSum, By: []string{"group"}}
	return []*Rule{
		{Name: "value", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT, Threshold: 40},
		{Name: "max", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds", Agg: AggMax, By: []string{"cluster"}}, Op: OpGE, Threshold: 80},
		{Name: "rate", Expr: Selector{Metric: "event_failed_total", Func: FuncRate, Window: Duration(time.Minute)}, Op: OpGT, Threshold: 0.1},
		{Name: "ratio", Expr: Selector{Metric: "event_failed_total", Func: FuncRate, Window: Duration(2 * time.Minute), Agg: AggSum, By: []string{"group"}},
			DivideBy: &ratioDen, Op: OpGT, Threshold: 0.05},
		{Name: "p90", Expr: Selector{Metric: "event_processing_duration_seconds", Func: FuncQuantile, Quantile: 0.9, Window: five, Agg: AggSum, By: []string{"group"}},
			Op: OpGT, Threshold: 0.5},
		{Name: "and", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT, Threshold: 10,
			And: &Condition{Selector: Selector{Metric: "event_failed_total", Func: FuncIncrease, Window: five, Agg: AggSum, By: []string{"cluster", "group"}}, Op: OpGT, Threshold: 50}},
	}
}

// TestEvalRangeIsEvalAtEveryStep: the preview's path and the evaluator's
// compute the same numbers, bit for bit, at every step.
func TestEvalRangeIsEvalAtEveryStep(t *testing.T) {
	n := 160
	h := rangeHistory(t, n)
	ctx := context.Background()
	for _, r := range rangeRules() {
		for _, step := range []time.Duration{engScrape, 40 * time.Second} {
			from, to := engAt(3).Add(7*time.Second), engAt(n-1)
			rr, err := EvalRange(ctx, h, r, from, to, step, 0)
			if err != nil {
				t.Fatalf("%s: EvalRange: %v", r.Name, err)
			}
			if len(rr.Steps) == 0 || rr.Steps[0].Before(from) || rr.Steps[0].UnixMilli()%step.Milliseconds() != 0 {
				t.Fatalf("%s: steps start %v, want the first multiple of %s from %s", r.Name, rr.Steps[:1], step, from)
			}
			held := 0
			for i, at := range rr.Steps {
				res := mustEval(t, h, r, at)
				want := map[string]float64{}
				for _, s := range res.Values {
					want[s.Labels.String()] = s.V
				}
				// A label set Eval has (maybe with NaN, as 0/0) must be in
				// the range result with the same value; any other must be
				// absent (NaN) there.
				got := map[string]float64{}
				for _, sr := range rr.Series {
					k, v := sr.Labels.String(), sr.Values[i]
					if _, ok := want[k]; ok || !math.IsNaN(v) {
						got[k] = v
					}
				}
				if !maps.EqualFunc(got, want, func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }) {
					t.Fatalf("%s, step %s at %s: EvalRange %v, Eval %v", r.Name, step, at.Format(time.TimeOnly), got, want)
				}
				if a, b := sampleText(rr.Holding[i]), sampleText(res.Holding); !slices.Equal(a, b) {
					t.Fatalf("%s, step %s at %s: EvalRange holds %q, Eval %q", r.Name, step, at.Format(time.TimeOnly), a, b)
				}
				held += len(res.Holding)
			}
			if held == 0 {
				t.Errorf("%s: never holds over the range; the comparison proves little", r.Name)
			}
		}
	}
}

// TestSimulate: the intervals and notifications of a known series.
func TestSimulate(t *testing.T) {
	// billing: above 60 from scrape 4 to 13, and from 20 to the end;
	// shipping: above for 2 scrapes only (less than for).
	h := engHistory(t,
		engSeries{lagLabels("demo", "billing"), engValues(30, func(k int) float64 {
			if (k >= 4 && k < 14) || k >= 20 {
				return 100
			}
			return 0
		})},
		engSeries{lagLabels("demo", "shipping"), engValues(30, func(k int) float64 { return map[bool]float64{true: 90, false: 0}[k == 6 || k == 7] })},
	)
	r := &Rule{Name: "Lag", Severity: SeverityWarning, Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"},
		Op: OpGT, Threshold: 60, For: Duration(45 * time.Second)}
	rr, err := EvalRange(context.Background(), h, r, engAt(0), engAt(29), engScrape, 0)
	if err != nil {
		t.Fatal(err)
	}
	intervals, notes, fired := Simulate(r, rr)
	lbl := func(g string) map[string]string {
		return map[string]string{"alertname": "Lag", "severity": "warning", "cluster": "demo", "group": g}
	}
	want := []Interval{
		{Labels: lbl("billing"), State: StatePending, From: engAt(4), To: engAt(6)},
		{Labels: lbl("shipping"), State: StatePending, From: engAt(6), To: engAt(7)},
		{Labels: lbl("billing"), State: StateFiring, From: engAt(7), To: engAt(13)},
		{Labels: lbl("billing"), State: StatePending, From: engAt(20), To: engAt(22)},
		{Labels: lbl("billing"), State: StateFiring, From: engAt(23), To: engAt(29), Open: true},
	}
	if len(intervals) != len(want) {
		t.Fatalf("intervals = %+v, want %+v", intervals, want)
	}
	for i := range want {
		g, w := intervals[i], want[i]
		if !maps.Equal(g.Labels, w.Labels) || g.State != w.State || !g.From.Equal(w.From) || !g.To.Equal(w.To) || g.Open != w.Open {
			t.Errorf("interval %d = %s %s %s..%s open %v, want %s %s %s..%s open %v", i,
				g.Labels["group"], g.State, g.From.Format(time.TimeOnly), g.To.Format(time.TimeOnly), g.Open,
				w.Labels["group"], w.State, w.From.Format(time.TimeOnly), w.To.Format(time.TimeOnly), w.Open)
		}
	}
	// Fired twice (two notifications) and resolved once (one more).
	if fired != 2 || notes != 3 {
		t.Errorf("fired %d, notifications %d; want 2 and 3", fired, notes)
	}
}

// TestEvalRangeRollupsDoNotLookAhead: at a 1-minute resolution a step
// sees only buckets that ended by then, so a rise shows one bucket late
// rather than before it happened.
func TestEvalRangeRollupsDoNotLookAhead(t *testing.T) {
	h := engHistory(t, engSeries{lagLabels("demo", "billing"), engValues(80, func(k int) float64 {
		return map[bool]float64{true: 100, false: 0}[k >= 40] // rises at engT0+10m
	})})
	r := &Rule{Name: "Lag", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT, Threshold: 50}
	rr, err := EvalRange(context.Background(), h, r, engT0, engAt(79), time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	first := -1
	for i, hs := range rr.Holding {
		if len(hs) > 0 {
			first = i
			break
		}
	}
	rise := engT0.Add(10 * time.Minute)
	if first < 0 || !rr.Steps[first].Equal(rise.Add(time.Minute)) {
		t.Fatalf("first holding step %d (%v), want %s: the bucket that ends a minute after the rise", first, rr.Steps, rise.Add(time.Minute).Format(time.TimeOnly))
	}
	// The first step sees no bucket yet (the one starting there ends a
	// minute later); the second sees the first minute.
	if len(rr.Series) != 1 || !math.IsNaN(rr.Series[0].Values[0]) || rr.Series[0].Values[1] != 0 {
		t.Errorf("series = %+v, want nothing at the first step and 0 at the second", rr.Series)
	}
}

func TestEvalRangeRefusesBadRanges(t *testing.T) {
	h := engHistory(t, engSeries{lagLabels("demo", "billing"), []float64{1}})
	r := &Rule{Name: "Lag", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		from, to time.Time
		step     time.Duration
	}{
		{"no step", engT0, engAt(4), 0},
		{"from after to", engAt(4), engT0, engScrape},
		{"too many steps", engT0, engT0.Add(14 * 24 * time.Hour), time.Second},
	} {
		if _, err := EvalRange(ctx, h, r, tc.from, tc.to, tc.step, 0); delivery.ErrorCode(err) != delivery.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", tc.name, err)
		}
	}
	rr, err := EvalRange(ctx, h, r, engT0.Add(time.Second), engT0.Add(2*time.Second), engScrape, 0)
	if err != nil || len(rr.Steps) != 0 {
		t.Errorf("a range without a step: %+v, %v; want empty", rr, err)
	}
}

// memReader serves fixed series, for measuring the engine's own work
// without the store's (BenchmarkAlertPreview14d measures both).
type memReader map[string][]tsdb.Series

func (m memReader) Select(_ context.Context, q tsdb.SelectQ) ([]tsdb.Series, error) {
	var out []tsdb.Series
	for _, s := range m[q.Name] {
		i, _ := slices.BinarySearchFunc(s.Points, q.From, func(p tsdb.Point, t time.Time) int { return p.T.Compare(t) })
		j, _ := slices.BinarySearchFunc(s.Points, q.To.Add(time.Nanosecond), func(p tsdb.Point, t time.Time) int { return p.T.Compare(t) })
		if i < j {
			out = append(out, tsdb.Series{Labels: s.Labels, Points: s.Points[i:j]})
		}
	}
	return out, nil
}

// BenchmarkEvalRange14d: EvalRange and Simulate of a failure ratio summed
// over 10 services, over 14 days of 1-minute points, at a 1-minute step.
func BenchmarkEvalRange14d(b *testing.B) {
	const minutes = 14 * 24 * 60
	end := engT0.Add(minutes * time.Minute)
	m := memReader{}
	for _, name := range []string{"event_processed_total", "event_failed_total"} {
		for i := range 10 {
			pts := make([]tsdb.Point, minutes+10)
			for k := range pts {
				v := float64(k * 60)
				if name == "event_failed_total" {
					v = float64(k * (1 + (k/720)%5))
				}
				pts[k] = tsdb.Point{T: engT0.Add(time.Duration(k-10) * time.Minute), V: v}
			}
			m[name] = append(m[name], tsdb.Series{Labels: tsdb.L(tsdb.MetricName, name, "service", fmt.Sprintf("svc-%d", i)), Points: pts, Rollup: true})
		}
	}
	den := Selector{Metric: "event_processed_total", Func: FuncRate, Window: Duration(5 * time.Minute), Agg: AggSum}
	r := &Rule{Name: "ratio", Expr: Selector{Metric: "event_failed_total", Func: FuncRate, Window: Duration(5 * time.Minute), Agg: AggSum},
		DivideBy: &den, Op: OpGT, Threshold: 0.05, For: Duration(5 * time.Minute), Severity: SeverityWarning,
		Annotations: map[string]string{"summary": "{{ $value | humanizePercentage }}"}}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rr, err := EvalRange(ctx, m, r, engT0, end, time.Minute, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, fired := Simulate(r, rr); fired == 0 || len(rr.Steps) != minutes+1 {
			b.Fatalf("%d steps, %d fired", len(rr.Steps), fired)
		}
	}
}

// TestEvalRangeWidensWindowsOverCoarseRollups: a 1-minute rate previewed
// over 5-minute rollups (a range beyond 48 h) still has values: its window
// is widened to two points, and the rate it gives is the series' slope.
func TestEvalRangeWidensWindowsOverCoarseRollups(t *testing.T) {
	h := engHistory(t, engSeries{tsdb.L(tsdb.MetricName, "event_failed_total", "cluster", "demo", "group", "billing"),
		engCounter(240, func(int) float64 { return 3 }, nil)}) // +3 a scrape (15 s): 0.2/s
	r := &Rule{Name: "rate", Expr: Selector{Metric: "event_failed_total", Func: FuncRate, Window: Duration(time.Minute)}, Op: OpGT, Threshold: 0.1}
	rr, err := EvalRange(context.Background(), h, r, engT0.Add(20*time.Minute), engAt(239), 5*time.Minute, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Series) != 1 {
		t.Fatalf("series = %+v, want the one counter", rr.Series)
	}
	got := 0
	for i, v := range rr.Series[0].Values {
		if math.IsNaN(v) {
			continue
		}
		got++
		if math.Abs(v-0.2) > 0.02 {
			t.Errorf("rate at %s = %v, want about 0.2/s", rr.Steps[i].Format(time.TimeOnly), v)
		}
	}
	if got < len(rr.Steps)-1 {
		t.Errorf("%d of %d steps have a rate, want all (but perhaps the first)", got, len(rr.Steps))
	}
}
