package alerting

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/tsdb"
)

// The engine tests (eval, state, promql, promcompat, rangeeval) share these
// helpers: histories in a real tsdb, scraped every 15 s from engT0.

// engT0 is where the engine tests' histories start, aligned to the scrape
// interval as Prometheus's evaluations would be.
var engT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// engScrape is the histories' scrape (and evaluation) interval.
const engScrape = 15 * time.Second

// engGap marks a scrape without a sample.
var engGap = math.NaN()

// engSeries is one series of a test history: its value at each scrape k
// (at engT0 + k*engScrape), engGap for none.
type engSeries struct {
	labels tsdb.Labels
	values []float64
}

// engAt is the time of scrape (or evaluation) k.
func engAt(k int) time.Time { return engT0.Add(time.Duration(k) * engScrape) }

// engValues builds n values from f.
func engValues(n int, f func(k int) float64) []float64 {
	out := make([]float64, n)
	for k := range out {
		out[k] = f(k)
	}
	return out
}

// engCounter builds a counter of n scrapes that grows by inc(k) at each
// scrape after the first, and restarts from reset(k) where reset says so.
func engCounter(n int, inc func(k int) float64, reset map[int]float64) []float64 {
	out := make([]float64, n)
	for k := 1; k < n; k++ {
		if v, ok := reset[k]; ok {
			out[k] = v
			continue
		}
		out[k] = out[k-1] + inc(k)
	}
	return out
}

// engHistory opens a real tsdb in a temp dir and records the series into
// it scrape by scrape, with the store's clock following; the clock ends at
// the last scrape.
func engHistory(t testing.TB, series ...engSeries) *tsdb.Store {
	t.Helper()
	c := deliverytest.NewClock(engT0)
	s, err := tsdb.Open(context.Background(), tsdb.Options{
		Dir: t.TempDir(), Now: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("tsdb.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	n := 0
	for _, sr := range series {
		n = max(n, len(sr.values))
	}
	for k := range n {
		c.Set(engAt(k))
		var batch []tsdb.Sample
		for _, sr := range series {
			if k < len(sr.values) && !math.IsNaN(sr.values[k]) {
				batch = append(batch, tsdb.Sample{Series: sr.labels, T: engAt(k), V: sr.values[k]})
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := s.Append(context.Background(), batch); err != nil {
			t.Fatalf("Append at scrape %d: %v", k, err)
		}
	}
	if st := s.Stats(); st.Rejected > 0 || st.Dropped > 0 {
		t.Fatalf("the store refused samples: %+v", st)
	}
	return s
}

func mustEval(t testing.TB, rd Reader, r *Rule, at time.Time) Result {
	t.Helper()
	res, err := Eval(context.Background(), rd, r, at)
	if err != nil {
		t.Fatalf("Eval at %s: %v", at.Format(time.TimeOnly), err)
	}
	return res
}

// engMatcher parses a matcher or fails the test.
func engMatcher(t testing.TB, s string) tsdb.Matcher {
	t.Helper()
	m, err := tsdb.ParseMatcher(s)
	if err != nil {
		t.Fatalf("ParseMatcher(%q): %v", s, err)
	}
	return m
}

// sampleText renders samples as `{labels} value` lines for comparisons.
func sampleText(ss []Sample) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Labels.String() + " " + formatNumber(s.V)
	}
	return out
}

// labelText renders the samples' labels only.
func labelText(ss []Sample) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Labels.String()
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

func lagLabels(cluster, group string) tsdb.Labels {
	return tsdb.L(tsdb.MetricName, "switchyard_consumer_group_lag_seconds", "cluster", cluster, "group", group)
}

// TestEvalValueAndStaleness: an instant selector answers the latest sample
// of the last 5 minutes, both ends included, and a series without one is
// absent — never 0.
func TestEvalValueAndStaleness(t *testing.T) {
	h := engHistory(t,
		engSeries{lagLabels("demo", "billing"), []float64{10, 20, 30}}, // scrapes 0-2, then nothing
		engSeries{lagLabels("demo", "shipping"), engValues(40, func(k int) float64 { return 5 })},
		engSeries{lagLabels("prod", "billing"), engValues(40, func(k int) float64 { return 500 })},
	)
	r := &Rule{Name: "lag", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds",
		Matchers: []tsdb.Matcher{engMatcher(t, `cluster="demo"`)}}, Op: OpGT, Threshold: 15}

	cases := []struct {
		name        string
		at          time.Time
		wantValues  []string
		wantHolding []string
	}{
		{"between scrapes, the latest sample", engAt(1).Add(5 * time.Second),
			[]string{lagLabels("demo", "billing").String() + " 20", lagLabels("demo", "shipping").String() + " 5"},
			[]string{lagLabels("demo", "billing").String() + " 20"}},
		{"exactly 5m after the last sample: still there", engAt(2).Add(Lookback),
			[]string{lagLabels("demo", "billing").String() + " 30", lagLabels("demo", "shipping").String() + " 5"},
			[]string{lagLabels("demo", "billing").String() + " 30"}},
		{"1ms later: stale, absent rather than 0", engAt(2).Add(Lookback + time.Millisecond),
			[]string{lagLabels("demo", "shipping").String() + " 5"}, nil},
		{"before the first sample: nothing", engT0.Add(-time.Second), nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := mustEval(t, h, r, tc.at)
			if got := sampleText(res.Values); !sameStrings(got, tc.wantValues) {
				t.Errorf("values = %q, want %q", got, tc.wantValues)
			}
			if got := sampleText(res.Holding); !sameStrings(got, tc.wantHolding) {
				t.Errorf("holding = %q, want %q", got, tc.wantHolding)
			}
		})
	}
}

// TestEvalRateAndIncrease checks rate and increase against Prometheus's
// extrapolation worked by hand, including a counter reset.
func TestEvalRateAndIncrease(t *testing.T) {
	failed := func(svc string) tsdb.Labels {
		return tsdb.L(tsdb.MetricName, "event_failed_total", "service", svc)
	}
	// billing: +15 per scrape, restarting from 0 at scrape 6 (the value
	// there is 3: 3 more since the restart).
	billing := []float64{100, 115, 130, 145, 160, 175, 3, 18, 33}
	h := engHistory(t,
		engSeries{failed("billing"), billing},
		engSeries{failed("idle"), []float64{7, 7, 7, 7, 7, 7, 7, 7, 7}},
		engSeries{failed("once"), []float64{engGap, engGap, engGap, engGap, engGap, engGap, engGap, engGap, 1}},
	)
	rate := func(fn Func, w time.Duration) *Rule {
		return &Rule{Name: "r", Expr: Selector{Metric: "event_failed_total", Func: fn, Window: Duration(w)}, Op: OpGE, Threshold: 0}
	}
	at := engAt(8)

	// A 2m window at scrape 8 holds scrapes 0-8 (both ends included):
	// raw increase 33-100 = -67, plus 175 for the reset = 108; the samples
	// reach both ends exactly, so no extrapolation: 108 over 120s.
	res := mustEval(t, h, rate(FuncIncrease, 2*time.Minute), at)
	got := map[string]float64{}
	for _, s := range res.Values {
		got[s.Labels.Get("service")] = s.V
		if s.Labels.Name() != "" {
			t.Errorf("increase keeps the metric name: %s", s.Labels)
		}
	}
	if !near(got["billing"], 108) {
		t.Errorf("increase(billing[2m]) = %v, want 108", got["billing"])
	}
	if v, ok := got["idle"]; !ok || v != 0 {
		t.Errorf("increase(idle[2m]) = %v (present %v), want 0", v, ok)
	}
	if _, ok := got["once"]; ok {
		t.Errorf("a series with one sample in the window has a rate: %v", got["once"])
	}
	res = mustEval(t, h, rate(FuncRate, 2*time.Minute), at)
	for _, s := range res.Values {
		if s.Labels.Get("service") == "billing" && !near(s.V, 108.0/120) {
			t.Errorf("rate(billing[2m]) = %v, want %v", s.V, 108.0/120)
		}
	}

	// A 100s window at scrape 8 (t=120s) starts at 20s: samples at 30s..120s
	// (7 samples, 90s apart end to end, 15s average). The start is 10s away,
	// within 1.1 × 15s, so it extrapolates there; the zero point of the
	// counter (90s × 130/78 before the first sample) lies further, so it
	// does not limit. Increase over the samples: 33-130+175 = 78, times
	// 100/90.
	res = mustEval(t, h, rate(FuncIncrease, 100*time.Second), at)
	for _, s := range res.Values {
		if s.Labels.Get("service") == "billing" && !near(s.V, 78*100.0/90) {
			t.Errorf("increase(billing[100s]) = %v, want %v", s.V, 78*100.0/90)
		}
	}
}

// TestEvalCounterZeroPoint: a counter that starts inside the window is not
// extrapolated to before it was zero.
func TestEvalCounterZeroPoint(t *testing.T) {
	h := engHistory(t, engSeries{tsdb.L(tsdb.MetricName, "c_total"), []float64{engGap, engGap, engGap, engGap, 2, 4, 6, 8, 10}})
	r := &Rule{Name: "z", Expr: Selector{Metric: "c_total", Func: FuncIncrease, Window: Duration(2 * time.Minute)}, Op: OpGT}
	// Samples at 60s..120s (5, 60s); the window starts at 0s, 60s before
	// the first sample, beyond 1.1 × 15s; but the counter's zero point is
	// 60s × 2/8 = 15s before it, which is within: it extrapolates to the
	// zero point, 8 × 75/60 = 10, everything the counter counted.
	res := mustEval(t, h, r, engAt(8))
	if len(res.Values) != 1 || !near(res.Values[0].V, 10) {
		t.Fatalf("increase = %v, want 10", sampleText(res.Values))
	}
	// A counter that starts at a high value close to the window start:
	// with samples 40 → 44 the zero point lies 60s × 40/4 = 600s before,
	// so extrapolation runs to the window start (0s is 60s away, beyond
	// the threshold: half an interval) — the same answer for a counter
	// that did not start at zero.
	h2 := engHistory(t, engSeries{tsdb.L(tsdb.MetricName, "c_total"), []float64{engGap, engGap, engGap, engGap, 40, 41, 42, 43, 44}})
	res = mustEval(t, h2, r, engAt(8))
	if len(res.Values) != 1 || !near(res.Values[0].V, 4*67.5/60) {
		t.Fatalf("increase = %v, want %v", sampleText(res.Values), 4*67.5/60)
	}
}

// TestEvalAggregations checks each aggregation by labels and over all.
func TestEvalAggregations(t *testing.T) {
	h := engHistory(t,
		engSeries{lagLabels("demo", "a"), []float64{1}},
		engSeries{lagLabels("demo", "b"), []float64{4}},
		engSeries{lagLabels("demo", "c"), []float64{10}},
		engSeries{lagLabels("prod", "a"), []float64{100}},
	)
	cases := []struct {
		agg  AggOp
		by   []string
		want []string
	}{
		{AggSum, []string{"cluster"}, []string{`{cluster="demo"} 15`, `{cluster="prod"} 100`}},
		{AggMax, []string{"cluster"}, []string{`{cluster="demo"} 10`, `{cluster="prod"} 100`}},
		{AggMin, []string{"cluster"}, []string{`{cluster="demo"} 1`, `{cluster="prod"} 100`}},
		{AggAvg, []string{"cluster"}, []string{`{cluster="demo"} 5`, `{cluster="prod"} 100`}},
		{AggCount, []string{"cluster"}, []string{`{cluster="demo"} 3`, `{cluster="prod"} 1`}},
		{AggSum, nil, []string{`{} 115`}},
		{AggCount, []string{"group"}, []string{`{group="a"} 2`, `{group="b"} 1`, `{group="c"} 1`}},
		// A by label no series has is left out of the result's labels.
		{AggMax, []string{"cluster", "region"}, []string{`{cluster="demo"} 10`, `{cluster="prod"} 100`}},
	}
	for _, tc := range cases {
		t.Run(string(tc.agg), func(t *testing.T) {
			r := &Rule{Name: "agg", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds", Agg: tc.agg, By: tc.by}, Op: OpGT, Threshold: 2}
			res := mustEval(t, h, r, engAt(0))
			if got := sampleText(res.Values); !sameStrings(got, tc.want) {
				t.Errorf("%s by %v = %q, want %q", tc.agg, tc.by, got, tc.want)
			}
		})
	}
}

// TestEvalDivideBy: a ratio matches one to one on all labels; an unmatched
// side drops; x/0 is +Inf and 0/0 NaN, which no comparison holds for.
func TestEvalDivideBy(t *testing.T) {
	ctr := func(name, group string) tsdb.Labels {
		return tsdb.L(tsdb.MetricName, name, "cluster", "demo", "group", group)
	}
	n := 9
	h := engHistory(t,
		engSeries{ctr("event_failed_total", "billing"), engCounter(n, func(int) float64 { return 10 }, nil)},
		engSeries{ctr("event_processed_total", "billing"), engCounter(n, func(int) float64 { return 100 }, nil)},
		engSeries{ctr("event_failed_total", "stuck"), engCounter(n, func(int) float64 { return 5 }, nil)},
		engSeries{ctr("event_processed_total", "stuck"), engCounter(n, func(int) float64 { return 0 }, nil)},
		engSeries{ctr("event_failed_total", "idle"), engCounter(n, func(int) float64 { return 0 }, nil)},
		engSeries{ctr("event_processed_total", "idle"), engCounter(n, func(int) float64 { return 0 }, nil)},
		engSeries{ctr("event_failed_total", "orphan"), engCounter(n, func(int) float64 { return 1 }, nil)},
	)
	side := func(metric string) Selector {
		return Selector{Metric: metric, Func: FuncRate, Window: Duration(time.Minute), Agg: AggSum, By: []string{"cluster", "group"}}
	}
	div := side("event_processed_total")
	r := &Rule{Name: "ratio", Expr: side("event_failed_total"), DivideBy: &div, Op: OpGT, Threshold: 0.05}
	res := mustEval(t, h, r, engAt(8))
	got := map[string]float64{}
	for _, s := range res.Values {
		got[s.Labels.Get("group")] = s.V
	}
	if len(got) != 3 {
		t.Errorf("groups = %v, want billing, stuck and idle (orphan has no denominator)", got)
	}
	if !near(got["billing"], 0.1) {
		t.Errorf("billing ratio = %v, want 0.1", got["billing"])
	}
	if !math.IsInf(got["stuck"], 1) {
		t.Errorf("stuck ratio = %v, want +Inf", got["stuck"])
	}
	if v, ok := got["idle"]; !ok || !math.IsNaN(v) {
		t.Errorf("idle ratio = %v (present %v), want NaN", v, ok)
	}
	if got := labelText(res.Holding); !sameStrings(got, []string{`{cluster="demo",group="billing"}`, `{cluster="demo",group="stuck"}`}) {
		t.Errorf("holding = %q, want billing and stuck (NaN never holds)", got)
	}
}

// TestEvalAnd: "ready messages AND no consumers" holds only for the queues
// where both hold, matched on their labels.
func TestEvalAnd(t *testing.T) {
	q := func(metric, queue string) tsdb.Labels {
		return tsdb.L(tsdb.MetricName, metric, "cluster", "demo", "vhost", "/", "queue", queue)
	}
	const ready, consumers = "switchyard_rabbitmq_queue_messages_ready", "switchyard_rabbitmq_queue_consumers"
	h := engHistory(t,
		engSeries{q(ready, "orders"), []float64{5}}, engSeries{q(consumers, "orders"), []float64{0}},
		engSeries{q(ready, "empty"), []float64{0}}, engSeries{q(consumers, "empty"), []float64{0}},
		engSeries{q(ready, "busy"), []float64{9}}, engSeries{q(consumers, "busy"), []float64{2}},
		engSeries{q(ready, "unknown"), []float64{3}}, // no consumers series at all
	)
	plain := &Rule{Name: "q", Expr: Selector{Metric: ready}, Op: OpGT, Threshold: 0,
		And: &Condition{Selector: Selector{Metric: consumers}, Op: OpEQ, Threshold: 0}}
	res := mustEval(t, h, plain, engAt(0))
	if got := sampleText(res.Holding); !sameStrings(got, []string{q(ready, "orders").String() + " 5"}) {
		t.Errorf("plain and: holding = %q, want orders only", got)
	}
	if len(res.Values) != 4 {
		t.Errorf("values = %q, want every ready queue", sampleText(res.Values))
	}

	agg := &Rule{Name: "q", Expr: Selector{Metric: ready, Agg: AggSum, By: []string{"vhost", "queue"}}, Op: OpGT, Threshold: 0,
		And: &Condition{Selector: Selector{Metric: consumers, Agg: AggMax, By: []string{"cluster", "vhost", "queue"}}, Op: OpEQ, Threshold: 0}}
	res = mustEval(t, h, agg, engAt(0))
	if got := sampleText(res.Holding); !sameStrings(got, []string{`{queue="orders",vhost="/"} 5`}) {
		t.Errorf("and on (queue, vhost): holding = %q, want orders only", got)
	}
}

// TestEvalQuantile: p99 from cumulative buckets, per service, with
// Prometheus's answers for a rank in the +Inf bucket and a histogram
// without +Inf.
func TestEvalQuantile(t *testing.T) {
	const metric = "event_processing_duration_seconds"
	bucket := func(svc, inst, le string) tsdb.Labels {
		return tsdb.L(tsdb.MetricName, metric+"_bucket", "service", svc, "instance", inst, "le", le)
	}
	n := 9
	per := func(v float64) []float64 { return engCounter(n, func(int) float64 { return v }, nil) }
	h := engHistory(t,
		// billing, two instances, 100 observations per scrape in all:
		// 80 ≤ 0.1, 95 ≤ 0.5, 100 ≤ 1.
		engSeries{bucket("billing", "a", "0.1"), per(40)}, engSeries{bucket("billing", "b", "0.1"), per(40)},
		engSeries{bucket("billing", "a", "0.5"), per(50)}, engSeries{bucket("billing", "b", "0.5"), per(45)},
		engSeries{bucket("billing", "a", "1"), per(50)}, engSeries{bucket("billing", "b", "1"), per(50)},
		engSeries{bucket("billing", "a", "+Inf"), per(50)}, engSeries{bucket("billing", "b", "+Inf"), per(50)},
		// slow: most observations beyond the last finite bound.
		engSeries{bucket("slow", "a", "0.1"), per(1)}, engSeries{bucket("slow", "a", "1"), per(2)},
		engSeries{bucket("slow", "a", "+Inf"), per(100)},
		// broken: no +Inf bucket.
		engSeries{bucket("broken", "a", "0.1"), per(1)}, engSeries{bucket("broken", "a", "1"), per(2)},
	)
	r := &Rule{Name: "p99", Expr: Selector{Metric: metric, Func: FuncQuantile, Quantile: 0.99, Window: Duration(time.Minute),
		Agg: AggSum, By: []string{"service"}}, Op: OpGT, Threshold: 0.5}
	res := mustEval(t, h, r, engAt(8))
	got := map[string]float64{}
	for _, s := range res.Values {
		got[s.Labels.String()] = s.V
	}
	// Rank 99 of 100 lies in (0.5, 1] holding 5: 0.5 + 0.5 × (99-95)/5.
	if v := got[`{service="billing"}`]; !near(v, 0.9) {
		t.Errorf("billing p99 = %v, want 0.9", v)
	}
	if v := got[`{service="slow"}`]; v != 1 {
		t.Errorf("slow p99 = %v, want 1 (the highest finite bound)", v)
	}
	if v, ok := got[`{service="broken"}`]; !ok || !math.IsNaN(v) {
		t.Errorf("broken p99 = %v (present %v), want NaN", v, ok)
	}
	if got := labelText(res.Holding); !sameStrings(got, []string{`{service="billing"}`, `{service="slow"}`}) {
		t.Errorf("holding = %q", got)
	}
}

// TestBucketQuantileMatchesPrometheus covers bucketQuantile's special
// cases, worked from Prometheus 2.42's promql/quantile.go.
func TestBucketQuantileMatchesPrometheus(t *testing.T) {
	inf := math.Inf(1)
	bks := func(boundCount ...float64) []tsdb.Bucket {
		var out []tsdb.Bucket
		for i := 0; i+1 < len(boundCount); i += 2 {
			out = append(out, tsdb.Bucket{UpperBound: boundCount[i], Count: boundCount[i+1]})
		}
		return out
	}
	cases := []struct {
		name string
		q    float64
		bs   []tsdb.Bucket
		want float64
	}{
		{"interpolates in the bucket", 0.5, bks(1, 10, 2, 30, inf, 30), 1.25},
		{"lowest bucket from 0", 0.25, bks(4, 20, inf, 20), 1},
		{"lowest bound not above 0 answers it", 0.1, bks(-1, 5, 0, 10, inf, 10), -1},
		{"+Inf bucket answers the highest finite bound", 0.99, bks(1, 10, inf, 20), 1},
		{"no +Inf: NaN", 0.5, bks(1, 10, 2, 20), math.NaN()},
		{"no observations: NaN", 0.5, bks(1, 0, inf, 0), math.NaN()},
		{"only +Inf: NaN", 0.5, bks(inf, 10), math.NaN()},
		{"non-monotonic counts are made monotonic", 0.5, bks(1, 10, 2, 8, 3, 30, inf, 30), 2.25},
		{"equal bounds are merged", 0.5, bks(1, 5, 1, 5, 2, 30, inf, 30), 1.25},
		{"unsorted input", 0.5, bks(inf, 30, 2, 30, 1, 10), 1.25},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := bucketQuantile(tc.q, append([]tsdb.Bucket(nil), tc.bs...)); !near(got, tc.want) {
				t.Errorf("bucketQuantile(%v, %v) = %v, want %v", tc.q, tc.bs, got, tc.want)
			}
		})
	}
}

// TestEvalRefusesCollidingAlertLabels: a rule label that overrides the
// only label telling two series apart makes them one alert, which
// Prometheus refuses as an evaluation error.
func TestEvalRefusesCollidingAlertLabels(t *testing.T) {
	h := engHistory(t, engSeries{lagLabels("demo", "a"), []float64{100}}, engSeries{lagLabels("demo", "b"), []float64{100}})
	r := &Rule{Name: "lag", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT, Threshold: 1,
		Labels: map[string]string{"group": "all"}}
	_, err := Eval(context.Background(), h, r, engAt(0))
	if delivery.ErrorCode(err) != delivery.EINVALID {
		t.Fatalf("Eval = %v, want EINVALID", err)
	}
	r.Labels = map[string]string{"team": "payments"}
	if res := mustEval(t, h, r, engAt(0)); len(res.Holding) != 2 {
		t.Errorf("holding = %q, want both groups", sampleText(res.Holding))
	}
}

// TestCycleReaderReadsOnce: rules sharing a selection read it once, over
// the widest range they need, and each gets exactly what a direct read
// gives.
func TestCycleReaderReadsOnce(t *testing.T) {
	n := 40
	h := engHistory(t,
		engSeries{lagLabels("demo", "billing"), engValues(n, func(k int) float64 { return float64(k) })},
		engSeries{lagLabels("demo", "shipping"), engValues(n, func(k int) float64 { return float64(2 * k) })},
		engSeries{tsdb.L(tsdb.MetricName, "event_failed_total", "cluster", "demo", "group", "billing"), engCounter(n, func(int) float64 { return 3 }, nil)},
	)
	lag := func(ms ...string) Selector {
		s := Selector{Metric: "switchyard_consumer_group_lag_seconds"}
		for _, m := range ms {
			s.Matchers = append(s.Matchers, engMatcher(t, m))
		}
		return s
	}
	rules := []*Rule{
		{Name: "a", Expr: lag(`cluster="demo"`, `group=~".+"`), Op: OpGT, Threshold: 10},
		{Name: "b", Expr: lag(`group=~".+"`, `cluster="demo"`), Op: OpGT, Threshold: 50}, // same selection, other order
		{Name: "c", Expr: func() Selector {
			s := lag(`cluster="demo"`, `group=~".+"`)
			s.Func, s.Window = FuncIncrease, Duration(8*time.Minute)
			return s
		}(), Op: OpGT},
		{Name: "d", Expr: Selector{Metric: "event_failed_total", Func: FuncRate, Window: Duration(time.Minute)}, Op: OpGT,
			And: &Condition{Selector: lag(`cluster="demo"`, `group=~".+"`), Op: OpGT, Threshold: 0}},
	}
	at := engAt(n - 1)
	cr := NewCycleReader(h)
	if err := cr.Plan(context.Background(), rules, at); err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if cr.Reads() != 2 {
		t.Errorf("Plan made %d reads, want 2 (the lag selection and the counter)", cr.Reads())
	}
	for _, r := range rules {
		direct := mustEval(t, h, r, at)
		cycled := mustEval(t, cr, r, at)
		if a, b := sampleText(direct.Values), sampleText(cycled.Values); !sameStrings(a, b) {
			t.Errorf("rule %s: through the cycle reader %q, directly %q", r.Name, b, a)
		}
		if a, b := sampleText(direct.Holding), sampleText(cycled.Holding); !sameStrings(a, b) {
			t.Errorf("rule %s: holding through the cycle reader %q, directly %q", r.Name, b, a)
		}
	}
	if cr.Reads() != 2 {
		t.Errorf("evaluating made %d reads in all, want still 2", cr.Reads())
	}
	// A selection it was not planned for goes to the store.
	other := &Rule{Name: "e", Expr: lag(`cluster="prod"`), Op: OpGT}
	mustEval(t, cr, other, at)
	if cr.Reads() != 3 {
		t.Errorf("an unplanned select made %d reads in all, want 3", cr.Reads())
	}
}

// BenchmarkEngineCycle is the engine's share of one evaluation cycle: Plan
// and Eval of 1,000 rules through a CycleReader, and Apply, over 10,000
// series (five families of 2,000, 15 minutes at 15 s), each rule over 10
// series of its family; about half of them hold.
func BenchmarkEngineCycle(b *testing.B) {
	families := []struct {
		metric, label string
		counter       bool
	}{
		{"switchyard_consumer_group_lag_seconds", "group", false},
		{"switchyard_consumer_group_status", "group", false},
		{"event_processed_total", "service", true},
		{"event_failed_total", "service", true},
		{"switchyard_rabbitmq_queue_messages_ready", "queue", false},
	}
	const perFamily, scrapes = 2000, 60
	var series []engSeries
	var rules []*Rule
	for _, f := range families {
		for i := range perFamily {
			vs := engValues(scrapes, func(k int) float64 {
				if f.counter {
					return float64(k * (i % 10))
				}
				return float64(i % 100)
			})
			series = append(series, engSeries{tsdb.L(tsdb.MetricName, f.metric, "cluster", "prod", f.label, fmt.Sprintf("n%04d", i)), vs})
		}
		for i := range perFamily / 10 {
			r := &Rule{ID: int64(len(rules) + 1), Name: fmt.Sprintf("%s-%03d", f.metric, i), Op: OpGT, Threshold: 50, For: Duration(time.Minute),
				Severity: SeverityWarning, Annotations: map[string]string{"summary": "{{ $labels.cluster }} at {{ $value | humanize }}"},
				Expr: Selector{Metric: f.metric, Matchers: []tsdb.Matcher{
					{Label: "cluster", Op: tsdb.MatchEqual, Value: "prod"},
					{Label: f.label, Op: tsdb.MatchRegexp, Value: fmt.Sprintf("n%03d.", i)}}}}
			if f.counter {
				r.Expr.Func, r.Expr.Window, r.Expr.Agg, r.Expr.By = FuncRate, Duration(5*time.Minute), AggSum, []string{"cluster"}
				r.Threshold = 0.1
			}
			rules = append(rules, r)
		}
	}
	h := engHistory(b, series...)
	ctx := context.Background()
	active := make([]map[string]*Alert, len(rules))
	for i := range active {
		active[i] = map[string]*Alert{}
	}
	at := engAt(scrapes - 1)
	held := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cr := NewCycleReader(h)
		if err := cr.Plan(ctx, rules, at); err != nil {
			b.Fatal(err)
		}
		held = 0
		for j, r := range rules {
			res, err := Eval(ctx, cr, r, at)
			if err != nil {
				b.Fatal(err)
			}
			held += len(res.Holding)
			Apply(r, active[j], res.Holding, at.Add(time.Duration(i)*time.Millisecond))
		}
	}
	if held == 0 {
		b.Fatal("nothing holds: the benchmark evaluates nothing that fires")
	}
}

// TestCycleReaderCanceled: a cycle whose context ends while planning
// fails its selects instead of answering "no series".
func TestCycleReaderCanceled(t *testing.T) {
	h := engHistory(t, engSeries{lagLabels("demo", "billing"), []float64{100}})
	r := &Rule{Name: "lag", Expr: Selector{Metric: "switchyard_consumer_group_lag_seconds"}, Op: OpGT}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cr := NewCycleReader(h)
	if err := cr.Plan(ctx, []*Rule{r}, engAt(0)); err == nil {
		t.Fatal("Plan with an ended context = nil")
	}
	if res, err := Eval(context.Background(), cr, r, engAt(0)); err == nil {
		t.Errorf("Eval after a canceled plan = %v, nil; want an error", res)
	}
}
