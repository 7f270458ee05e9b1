package web

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/tsdb"
	"switchyard/web/templates"
)

// This file holds what every dashboard handler shares: the range, the
// table state and the page frame.

// dashRange reads ?range= against the server's clock.
func (s *Server) dashRange(c *fiber.Ctx) (timeRange, error) {
	return parseRange(c.Query("range"), s.now())
}

func (s *Server) fresh() freshness { return freshness{now: s.now(), interval: s.pollInterval} }

// tableOf reads ?q=, ?sort= (one of sorts, default the first) and ?page=.
// Errors are EINVALID.
func tableOf(c *fiber.Ctx, path string, sorts []string, tr timeRange) (templates.Table, error) {
	t := templates.Table{Path: path, Q: strings.TrimSpace(strings.Clone(c.Query("q"))), Sorts: sorts, Page: 1}
	if tr.Explicit {
		t.Range = tr.Key
	}
	if len(t.Q) > 200 {
		return t, delivery.Errorf(delivery.EINVALID, "the filter is too long (200 characters at most)")
	}
	t.Sort = strings.Clone(c.Query("sort", sorts[0]))
	if !slices.Contains(sorts, t.Sort) {
		return t, delivery.Errorf(delivery.EINVALID, "sort must be one of %s", strings.Join(sorts, ", "))
	}
	if p := c.Query("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return t, delivery.Errorf(delivery.EINVALID, "page must be a positive number")
		}
		t.Page = n
	}
	return t, nil
}

// dashPage is the frame of a dashboard page: refreshed in place, with the
// range carried in the navigation.
func dashPage(title, area string, tr timeRange) templates.Page {
	return templates.Page{Title: title, Area: area, Refresh: true, RangeQuery: tr.query()}
}

// queryOf copies the request's query parameters (fiber reuses them).
func queryOf(c *fiber.Ctx) url.Values {
	v, err := url.ParseQuery(string(c.Request().URI().QueryString()))
	if err != nil {
		return url.Values{}
	}
	return v
}

// topicRateCharts are a Kafka cluster's throughput and DLQ arrival charts,
// from one read of the per-topic rates.
func (s *Server) topicRateCharts(c *fiber.Ctx, v collector.ClusterView, tr timeRange, scope *collector.SeriesScope) overviewCharts {
	ctx := c.UserContext()
	id := "c-" + slug(v.Name)
	all, err := s.history(ctx, collector.MKafkaTopicRate, tr, scope, eq("cluster", v.Name))
	var dlq []tsdb.Series
	for _, sr := range all {
		if v.Snapshot.IsDLQTopic(sr.Labels.Get("topic")) {
			dlq = append(dlq, sr)
		}
	}
	return overviewCharts{
		throughput: s.sumChart(ctx, newChart(id+"-throughput", "Messages produced per second", templates.UnitRate, tr), "all topics", all, err),
		dlq:        s.sumChart(ctx, newChart(id+"-dlq", "Dead letters arriving per second", templates.UnitRate, tr), "DLQ topics", dlq, err),
	}
}

// rabbitRateCharts are a RabbitMQ cluster's publish and DLQ arrival charts.
func (s *Server) rabbitRateCharts(c *fiber.Ctx, v collector.RabbitView, tr timeRange, scope *collector.SeriesScope) (pub, dlq templates.Chart) {
	ctx := c.UserContext()
	id := "r-" + slug(v.Name)
	all, err := s.history(ctx, collector.MQueuePublishRate, tr, scope, eq("cluster", v.Name))
	var dl []tsdb.Series
	for _, sr := range all {
		if v.Snapshot.IsDLQQueue(sr.Labels.Get("vhost"), sr.Labels.Get("queue")) {
			dl = append(dl, sr)
		}
	}
	pub = s.sumChart(ctx, newChart(id+"-publish", "Messages published per second", templates.UnitRate, tr), "all queues", all, err)
	dlq = s.sumChart(ctx, newChart(id+"-dlq", "Dead letters arriving per second", templates.UnitRate, tr), "DLQ queues", dl, err)
	return pub, dlq
}

// slug makes a name safe for an element id.
func slug(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
