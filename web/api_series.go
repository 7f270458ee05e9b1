package web

import (
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"switchyard/delivery"
	"switchyard/tsdb"
)

type apiPoint struct {
	T time.Time
	V float64
}

// MarshalJSON writes [unix seconds, value], value null when NaN or ±Inf
// (which JSON cannot carry).
func (p apiPoint) MarshalJSON() ([]byte, error) {
	t := float64(p.T.UnixMilli()) / 1000
	if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
		return json.Marshal([2]any{t, nil})
	}
	return json.Marshal([2]any{t, p.V})
}

type apiSeries struct {
	Labels tsdb.Labels `json:"labels"`
	Rollup bool        `json:"rollup"`
	Points []apiPoint  `json:"points"`
}

type seriesResponse struct {
	Name   string      `json:"name"`
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	Step   string      `json:"step"`
	Agg    string      `json:"agg"`
	Series []apiSeries `json:"series"`
}

// handleAPISeries answers a range query over the collected history:
// name, match[] (PromQL matchers), from and to (RFC 3339 or Unix seconds;
// default the last hour), step (default such that the range has at most
// 300 points) and agg (last, avg, min, max). Series the principal may not
// view — by the resource they describe and, for the services' and
// dead-letter series, their tenant — are left out by the store's own
// selection (seriesScope).
func (s *Server) handleAPISeries(c *fiber.Ctx) error {
	q, err := s.seriesQuery(c)
	if err != nil {
		return s.fail(c, err)
	}
	if s.series == nil {
		return s.fail(c, delivery.Errorf(delivery.ENOTFOUND, "the time-series store is not configured"))
	}
	ctx := c.UserContext()
	scoped, err := s.seriesScope(c).Restrict(ctx, q)
	if err != nil {
		return s.fail(c, err)
	}
	got, err := s.series.Query(ctx, scoped)
	if err != nil {
		return s.fail(c, err)
	}
	out := seriesResponse{Name: q.Name, From: q.From.UTC(), To: q.To.UTC(), Step: q.Step.String(), Agg: string(q.Agg), Series: []apiSeries{}}
	for _, sr := range got {
		pts := make([]apiPoint, len(sr.Points))
		for i, p := range sr.Points {
			pts[i] = apiPoint{T: p.T, V: p.V}
		}
		out.Series = append(out.Series, apiSeries{Labels: sr.Labels, Rollup: sr.Rollup, Points: pts})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

func (s *Server) seriesQuery(c *fiber.Ctx) (tsdb.Q, error) {
	q := tsdb.Q{Name: strings.Clone(c.Query("name")), Agg: tsdb.Agg(strings.Clone(c.Query("agg", string(tsdb.AggLast))))}
	if q.Name == "" {
		return q, delivery.Errorf(delivery.EINVALID, "name is required: the metric to read, e.g. switchyard_consumer_group_lag")
	}
	args := c.Context().QueryArgs()
	for _, key := range []string{"match[]", "match"} {
		for _, raw := range args.PeekMulti(key) {
			m, err := tsdb.ParseMatcher(string(raw))
			if err != nil {
				return q, err
			}
			q.Matchers = append(q.Matchers, m)
		}
	}
	now := s.now()
	q.To = now
	if v := c.Query("to"); v != "" {
		t, err := parseTime("to", v)
		if err != nil {
			return q, err
		}
		q.To = t
	}
	q.From = q.To.Add(-time.Hour)
	if v := c.Query("from"); v != "" {
		t, err := parseTime("from", v)
		if err != nil {
			return q, err
		}
		q.From = t
	}
	if q.To.Before(q.From) {
		return q, delivery.Errorf(delivery.EINVALID, "from must not be after to")
	}
	q.Step = stepFor(q.To.Sub(q.From))
	if v := c.Query("step"); v != "" {
		d, err := parseStep(v)
		if err != nil {
			return q, err
		}
		q.Step = d
	}
	return q, nil
}
