package alerting_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/delivery/deliverytest"
	"switchyard/sqldb"
	"switchyard/tsdb"
)

// benchWorld is newWorld for benchmarks.
func benchWorld(b *testing.B, clock *deliverytest.Clock) *world {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	w := &world{clock: clock}
	h, err := tsdb.Open(ctx, tsdb.Options{Dir: filepath.Join(dir, "tsdb"), Now: clock.Now, MaxSeries: 20_000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	db, err := sqldb.Open(ctx, filepath.Join(dir, "console.db"), access.Schema(), alerting.Schema())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	w.hist, w.store = h, alerting.NewStore(db, clock.Now)
	if w.eval, err = alerting.NewEvaluator(alerting.EvaluatorOptions{Store: w.store, History: h, Now: clock.Now}); err != nil {
		b.Fatal(err)
	}
	if err := w.eval.Load(ctx); err != nil {
		b.Fatal(err)
	}
	if w.svc, err = alerting.NewService(alerting.ServiceOptions{Store: w.store, Evaluator: w.eval, History: h, Now: clock.Now}); err != nil {
		b.Fatal(err)
	}
	return w
}

// The cycle benchmark's history: 10,000 series in five families of 2,000
// (lag seconds and status of consumer groups, the services' processed and
// failed counters, queues' ready messages), 15 minutes at 15 s.
var cycleFamilies = []struct {
	metric, label string
	counter       bool
}{
	{collector.MGroupMaxLagSeconds, "group", false},
	{collector.MGroupStatus, "group", false},
	{collector.PromEventProcessed, "service", true},
	{collector.PromEventFailed, "service", true},
	{collector.MQueueReady, "queue", false},
}

const seriesPerFamily = 2000

func cycleSeries() []tsdb.Labels {
	var out []tsdb.Labels
	for _, f := range cycleFamilies {
		for i := range seriesPerFamily {
			out = append(out, tsdb.L(tsdb.MetricName, f.metric, "cluster", "prod", f.label, fmt.Sprintf("n%04d", i)))
		}
	}
	return out
}

// cycleRules are 1,000 rules, 200 per family, each over the 10 series
// whose name starts with its prefix (n0000–n0009, …): instant values for
// the gauges, sum by of rate over 5m for the counters.
func cycleRules() []alerting.Rule {
	var out []alerting.Rule
	for fi, f := range cycleFamilies {
		for i := range seriesPerFamily / 10 {
			r := alerting.Rule{Name: fmt.Sprintf("r%d-%03d", fi, i), Op: alerting.OpGT, Threshold: 50,
				For: alerting.Duration(time.Minute), Enabled: true, Severity: alerting.SeverityWarning,
				Expr: alerting.Selector{Metric: f.metric, Matchers: []tsdb.Matcher{
					{Label: "cluster", Op: tsdb.MatchEqual, Value: "prod"},
					{Label: f.label, Op: tsdb.MatchRegexp, Value: fmt.Sprintf("n%03d.", i)}}}}
			if f.counter {
				r.Expr.Func, r.Expr.Window, r.Expr.Agg, r.Expr.By = alerting.FuncRate, alerting.Duration(5*time.Minute), alerting.AggSum, []string{"cluster"}
				r.Threshold = 5
			}
			out = append(out, r)
		}
	}
	return out
}

// BenchmarkAlertCycle: one evaluation cycle of 1,000 rules over 10,000
// series (a quarter of them above threshold, so alerts go pending and
// fire), beside the same reads done as bare history queries: each
// distinct selection read once over the range its rules need, as the
// cycle reads them, with no evaluation, state or persistence.
func BenchmarkAlertCycle(b *testing.B) {
	ctx := context.Background()
	clock := deliverytest.NewClock(time.Now().Add(-20 * time.Minute).Truncate(time.Hour).Add(time.Minute))
	w := benchWorld(b, clock)
	series := cycleSeries()
	batch := make([]tsdb.Sample, len(series))
	for step := 0; step < 60; step++ {
		for i, ls := range series {
			v := float64(i % 100)
			if ls.Name() == collector.PromEventProcessed || ls.Name() == collector.PromEventFailed {
				v = float64(step * (i % 10))
			}
			batch[i] = tsdb.Sample{Series: ls, T: clock.Now(), V: v}
		}
		if err := w.hist.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		clock.Advance(15 * time.Second)
	}
	clock.Advance(-15 * time.Second)
	rules := cycleRules()
	for _, r := range rules {
		if _, err := w.store.CreateRule(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	at := clock.Now()

	b.Run("switchyard", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if err := w.eval.Cycle(ctx, at.Add(time.Duration(i)*time.Millisecond)); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		snap := w.eval.Snapshot()
		n := 0
		for _, as := range snap.Alerts {
			n += len(as)
		}
		if n == 0 {
			b.Fatal("no alerts: the benchmark evaluates nothing that holds")
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/cycle")
	})
	b.Run("bare-tsdb", func(b *testing.B) {
		type key struct {
			name, ms string
		}
		need := map[key]time.Duration{}
		sels := map[key][]tsdb.Matcher{}
		for _, r := range rules {
			d := alerting.Lookback
			if r.Expr.Func != alerting.FuncValue {
				d = time.Duration(r.Expr.Window)
			}
			k := key{r.Expr.Metric, fmt.Sprint(r.Expr.Matchers)}
			need[k] = max(need[k], d)
			sels[k] = r.Expr.Matchers
		}
		var total time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			for k, d := range need {
				if _, err := w.hist.Select(ctx, tsdb.SelectQ{Name: k.name, Matchers: sels[k], From: at.Add(-d), To: at}); err != nil {
					b.Fatal(err)
				}
			}
			total += time.Since(start)
		}
		b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/cycle")
	})
}

// BenchmarkAlertPreview14d: the preview of one rule (failure ratio over
// 5 minutes, summed over 20 services) over 14 days of 1-minute rollups,
// beside a bare read of the same rollups. p99 over the iterations.
func BenchmarkAlertPreview14d(b *testing.B) {
	ctx := context.Background()
	end := time.Now().Truncate(time.Minute)
	clock := deliverytest.NewClock(end.Add(-14 * 24 * time.Hour))
	w := benchWorld(b, clock)
	var series []tsdb.Labels
	for _, m := range []string{collector.PromEventProcessed, collector.PromEventFailed} {
		for i := range 10 {
			series = append(series, tsdb.L(tsdb.MetricName, m, "service", fmt.Sprintf("svc-%d", i)))
		}
	}
	batch := make([]tsdb.Sample, len(series))
	for step := 0; clock.Now().Before(end); step++ {
		for i, ls := range series {
			v := float64(step * 60)
			if ls.Name() == collector.PromEventFailed {
				v = float64(step * (1 + (step/720)%5)) // bursts of failures every half day
			}
			batch[i] = tsdb.Sample{Series: ls, T: clock.Now(), V: v}
		}
		if err := w.hist.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
		clock.Advance(time.Minute)
	}
	if err := w.hist.Maintain(ctx); err != nil {
		b.Fatal(err)
	}
	r, err := alerting.NewTemplate(alerting.TemplateFailureRatio, map[string]string{"service": "x"})
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []*alerting.Selector{&r.Expr, r.DivideBy} {
		s.Matchers = []tsdb.Matcher{{Label: "service", Op: tsdb.MatchRegexp, Value: "svc-.*"}}
		s.By = nil
	}
	from, to := end.Add(-14*24*time.Hour+time.Minute), end
	admin := caller("ada", grant([]string{"*"}, []string{"*"}, access.Actions()...))
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[(len(ds)*99)/100].Microseconds()) / 1000
	}
	b.Run("switchyard", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			p, err := w.svc.Preview(ctx, admin, r, from, to)
			if err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
			if len(p.Series) != 1 || p.Fired == 0 {
				b.Fatalf("preview: %d series, fired %d", len(p.Series), p.Fired)
			}
		}
		b.ReportMetric(p99(ds), "p99-ms")
	})
	// What the preview reads: beyond 48 h the history holds 5-minute
	// rollups, and the rate windows widen to two of them.
	b.Run("bare-tsdb", func(b *testing.B) {
		ds := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			for _, s := range []*alerting.Selector{&r.Expr, r.DivideBy} {
				if _, err := w.hist.Select(ctx, tsdb.SelectQ{Name: s.Metric, Matchers: s.Matchers, From: from.Add(-10 * time.Minute), To: to, Resolution: tsdb.DefaultCoarseStep}); err != nil {
					b.Fatal(err)
				}
			}
			ds = append(ds, time.Since(start))
		}
		b.ReportMetric(p99(ds), "p99-ms")
	})
}
