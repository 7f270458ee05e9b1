package web

import (
	"cmp"
	"context"
	"math"
	"slices"

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
	addLine(&c, line, tsdb.Combine(series, tsdb.OpSum))
	return c
}

// addLine adds pts to c as the line named line, when there are any.
func addLine(c *templates.Chart, line string, pts []tsdb.Point) {
	if len(pts) > 0 {
		c.Series = append(c.Series, templates.ChartSeries{Name: line, Points: chartPoints(pts)})
	}
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

// serviceLabel names the service on the event_* series.
const serviceLabel = "service"

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
	for _, t := range tsdb.IncreaseBy(processed, serviceLabel) {
		row(t.Labels.Get(serviceLabel)).Processed += t.V
	}
	for _, t := range tsdb.IncreaseBy(failed, serviceLabel) {
		row(t.Labels.Get(serviceLabel)).Failed += t.V
	}
	addLine(&out.Rates, "processed", tsdb.Combine(tsdb.Rates(processed), tsdb.OpSum))
	addLine(&out.Rates, "failed", tsdb.Combine(tsdb.Rates(failed), tsdb.OpSum))
	perSvc := map[string]tsdb.Histogram{}
	for _, h := range tsdb.HistogramsBy(buckets, serviceLabel) {
		svc := h.Labels.Get(serviceLabel)
		perSvc[svc] = h
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
	var total tsdb.Histogram
	if all := tsdb.HistogramsBy(buckets); len(all) > 0 {
		total = all[0]
	}
	out.Total.P50, out.Total.P95, out.Total.P99 = quantiles(total)
	if s.traces != nil {
		out.Rates.Links = exampleTraceLinks(tr, out.Total.P99)
	}
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

// quantiles are the latencies the services table shows.
func quantiles(h tsdb.Histogram) (p50, p95, p99 float64) {
	return h.Quantile(0.5), h.Quantile(0.95), h.Quantile(0.99)
}
