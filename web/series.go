package web

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"time"

	"switchyard/collector"
	"switchyard/tsdb"
	"switchyard/web/templates"
)

// history reads the series of one metric over the page's range, narrowed
// in the store to what scope may see (the principal's, seriesScope). A nil
// scope reads everything the matchers select: only for a resource the
// route itself authorized as a whole. A nil store reads nothing.
func (s *Server) history(ctx context.Context, name string, tr timeRange, scope *collector.SeriesScope, ms ...tsdb.Matcher) ([]tsdb.Series, error) {
	if s.series == nil {
		return nil, nil
	}
	q := tsdb.Q{Name: name, Matchers: ms, From: tr.From, To: tr.To, Step: tr.Step}
	if scope != nil {
		var err error
		if q, err = scope.Restrict(ctx, q); err != nil {
			return nil, err
		}
	}
	return s.series.Query(ctx, q)
}

func eq(label, value string) tsdb.Matcher {
	return tsdb.Matcher{Label: label, Op: tsdb.MatchEqual, Value: value}
}

// chartErr is what a chart says when the history cannot be read; the
// cause goes to the log once per chart, the page still renders.
const chartErr = "History is unavailable right now"

func (s *Server) chartFailed(ctx context.Context, c *templates.Chart, err error) {
	s.log.WarnContext(ctx, "read chart history", "chart", c.ID, "err", err)
	c.Error = chartErr
}

func newChart(id, title, unit string, tr timeRange) templates.Chart {
	return templates.Chart{ID: id, Title: title, Unit: unit, From: tr.From, To: tr.To}
}

// sumChart is one line: the sum over series per bucket.
func (s *Server) sumChart(ctx context.Context, c templates.Chart, line string, series []tsdb.Series, err error) templates.Chart {
	if err != nil {
		s.chartFailed(ctx, &c, err)
		return c
	}
	if pts := sumPoints(series); len(pts) > 0 {
		c.Series = append(c.Series, templates.ChartSeries{Name: line, Points: pts})
	}
	return c
}

// linesChart is one line per series, named by name(labels).
func (s *Server) linesChart(ctx context.Context, c templates.Chart, series []tsdb.Series, err error, name func(tsdb.Labels) string) templates.Chart {
	if err != nil {
		s.chartFailed(ctx, &c, err)
		return c
	}
	for _, sr := range series {
		c.Series = append(c.Series, templates.ChartSeries{Name: name(sr.Labels), Points: chartPoints(sr.Points)})
	}
	return c
}

func chartPoints(pts []tsdb.Point) []templates.ChartPoint {
	out := make([]templates.ChartPoint, len(pts))
	for i, p := range pts {
		out[i] = templates.ChartPoint{T: p.T, V: p.V}
	}
	return out
}

// sumPoints adds series bucket by bucket (buckets are aligned to the
// step, so equal times are the same bucket). Non-finite values are
// skipped.
func sumPoints(series []tsdb.Series) []templates.ChartPoint {
	if len(series) == 1 {
		return chartPoints(series[0].Points)
	}
	sums := map[int64]float64{}
	for _, sr := range series {
		for _, p := range sr.Points {
			if finite(p.V) {
				sums[p.T.UnixMilli()] += p.V
			}
		}
	}
	out := make([]templates.ChartPoint, 0, len(sums))
	for t, v := range sums {
		out = append(out, templates.ChartPoint{T: time.UnixMilli(t).UTC(), V: v})
	}
	slices.SortFunc(out, func(a, b templates.ChartPoint) int { return a.T.Compare(b.T) })
	return out
}

// maxPoints is the largest value over series per bucket.
func maxPoints(series []tsdb.Series) []templates.ChartPoint {
	top := map[int64]float64{}
	for _, sr := range series {
		for _, p := range sr.Points {
			if !finite(p.V) {
				continue
			}
			if cur, ok := top[p.T.UnixMilli()]; !ok || p.V > cur {
				top[p.T.UnixMilli()] = p.V
			}
		}
	}
	out := make([]templates.ChartPoint, 0, len(top))
	for t, v := range top {
		out = append(out, templates.ChartPoint{T: time.UnixMilli(t).UTC(), V: v})
	}
	slices.SortFunc(out, func(a, b templates.ChartPoint) int { return a.T.Compare(b.T) })
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// increase is how much a counter grew over its points, counting a drop as
// a restart from zero (Prometheus' increase, without extrapolation).
func increase(pts []tsdb.Point) float64 {
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

// rates turns a counter's points into per-second rates between
// consecutive points, at the later point's time.
func rates(pts []tsdb.Point) []tsdb.Point {
	var out []tsdb.Point
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
		out = append(out, tsdb.Point{T: b.T, V: d / dt})
	}
	return out
}

// services computes the overview's service figures over the range from the
// stored event_* series the principal may see (their tenants and
// destinations, selected in the store by scope), so that every row and the
// total add up what the principal may see only: failure ratio from the
// counters' increase, p50/p95/p99 from the duration histogram's bucket
// increases.
func (s *Server) services(ctx context.Context, tr timeRange, scope *collector.SeriesScope) templates.Services {
	out := templates.Services{Rates: newChart("svc-rates", "Events per second", templates.UnitRate, tr), Scoped: scope != nil && !scope.All()}
	processed, err1 := s.history(ctx, collector.PromEventProcessed, tr, scope)
	failed, err2 := s.history(ctx, collector.PromEventFailed, tr, scope)
	buckets, err3 := s.history(ctx, collector.PromEventDuration+"_bucket", tr, scope)
	if err := cmp.Or(err1, err2, err3); err != nil {
		s.chartFailed(ctx, &out.Rates, err)
		return out
	}
	if len(processed)+len(failed)+len(buckets) == 0 {
		return out
	}
	out.HasData = true
	rows := map[string]*templates.ServiceRow{}
	row := func(svc string) *templates.ServiceRow {
		r, ok := rows[svc]
		if !ok {
			r = &templates.ServiceRow{Service: svc}
			rows[svc] = r
		}
		return r
	}
	var procRates, failRates []tsdb.Series
	for _, sr := range processed {
		row(sr.Labels.Get("service")).Processed += increase(sr.Points)
		procRates = append(procRates, tsdb.Series{Points: rates(sr.Points)})
	}
	for _, sr := range failed {
		row(sr.Labels.Get("service")).Failed += increase(sr.Points)
		failRates = append(failRates, tsdb.Series{Points: rates(sr.Points)})
	}
	if pts := sumPoints(procRates); len(pts) > 0 {
		out.Rates.Series = append(out.Rates.Series, templates.ChartSeries{Name: "processed", Points: pts})
	}
	if pts := sumPoints(failRates); len(pts) > 0 {
		out.Rates.Series = append(out.Rates.Series, templates.ChartSeries{Name: "failed", Points: pts})
	}
	// Bucket increases per service and le, and over all services.
	perSvc := map[string]map[float64]float64{}
	total := map[float64]float64{}
	for _, sr := range buckets {
		le, err := strconv.ParseFloat(sr.Labels.Get("le"), 64)
		if err != nil {
			continue
		}
		svc := sr.Labels.Get("service")
		if perSvc[svc] == nil {
			perSvc[svc] = map[float64]float64{}
		}
		inc := increase(sr.Points)
		perSvc[svc][le] += inc
		total[le] += inc
		row(svc)
	}
	out.Total = templates.ServiceRow{Service: "all"}
	for _, r := range rows {
		r.FailureRatio = ratio(r.Failed, r.Processed+r.Failed)
		r.P50, r.P95, r.P99 = quantiles(perSvc[r.Service])
		out.Total.Processed += r.Processed
		out.Total.Failed += r.Failed
		out.Rows = append(out.Rows, *r)
	}
	out.Total.FailureRatio = ratio(out.Total.Failed, out.Total.Processed+out.Total.Failed)
	out.Total.P50, out.Total.P95, out.Total.P99 = quantiles(total)
	slices.SortFunc(out.Rows, func(a, b templates.ServiceRow) int {
		return cmp.Or(cmp.Compare(nanLow(b.FailureRatio), nanLow(a.FailureRatio)), cmp.Compare(a.Service, b.Service))
	})
	return out
}

func nanLow(v float64) float64 {
	if math.IsNaN(v) {
		return -1
	}
	return v
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return a / b
}

func quantiles(byLE map[float64]float64) (p50, p95, p99 float64) {
	bs := make([]bucket, 0, len(byLE))
	for le, n := range byLE {
		bs = append(bs, bucket{UpperBound: le, Count: n})
	}
	return histogramQuantile(0.5, bs), histogramQuantile(0.95, bs), histogramQuantile(0.99, bs)
}
