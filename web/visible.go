package web

import (
	"context"
	"maps"

	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/collector"
	"switchyard/tsdb"
)

// visibleClusters returns the latest cluster views cut down to what the
// request's principal may view: topics and groups they are not granted are
// gone, and so is everything computed from them (rates, a group's lag on
// hidden topics, cluster totals, which the view models compute from what
// remains). A cluster shows when something in it is visible or the
// principal may view the whole cluster. Pages and the API both read
// clusters only through here.
func (s *Server) visibleClusters(c *fiber.Ctx) []collector.ClusterView {
	p := principal(c)
	can := func(r access.Resource) bool { return s.policy.Can(p, access.ActionView, r) }
	var out []collector.ClusterView
	for _, v := range s.clusters.Latest() {
		if fv, ok := filterView(v, can); ok {
			out = append(out, fv)
		}
	}
	return out
}

func filterView(v collector.ClusterView, can func(access.Resource) bool) (collector.ClusterView, bool) {
	snap := v.Snapshot
	topics := make([]collector.Topic, 0, len(snap.Topics))
	seen := map[string]bool{}
	for _, t := range snap.Topics {
		if can(access.KafkaTopic(v.Name, t.Name)) {
			topics = append(topics, t)
			seen[t.Name] = true
		}
	}
	topicOK := func(name string) bool {
		if ok, known := seen[name]; known {
			return ok
		}
		ok := can(access.KafkaTopic(v.Name, name))
		seen[name] = ok
		return ok
	}
	groups := make([]collector.Group, 0, len(snap.Groups))
	for _, g := range snap.Groups {
		if !can(access.KafkaGroup(v.Name, g.Name)) {
			continue
		}
		parts := make([]collector.GroupPartition, 0, len(g.Partitions))
		var lag int64
		for _, gp := range g.Partitions {
			if !topicOK(gp.Topic) {
				continue
			}
			parts = append(parts, gp)
			if gp.Error == "" && gp.Lag > 0 {
				lag += gp.Lag
			}
		}
		if len(parts) < len(g.Partitions) {
			// Lag on topics the principal may not see is not theirs to know.
			g.Partitions, g.TotalLag = parts, lag
		}
		groups = append(groups, g)
	}
	if len(topics) == 0 && len(groups) == 0 && !can(access.AllOfKafkaCluster(v.Name)) {
		return collector.ClusterView{}, false
	}
	snap.Topics, snap.Groups = topics, groups
	v.Snapshot = snap
	v.TopicRates = filterRates(v.TopicRates, func(n string) bool { return seen[n] })
	v.GroupRates = filterRates(v.GroupRates, func(n string) bool {
		_, ok := snap.Group(n)
		return ok
	})
	return v, true
}

func filterRates(m map[string]float64, keep func(string) bool) map[string]float64 {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	maps.DeleteFunc(out, func(k string, _ float64) bool { return !keep(k) })
	return out
}

// visibleRabbit returns the RabbitMQ views cut down to the queues the
// principal may view. A cluster shows when one of its queues does, or the
// principal may view every queue ("rabbitmq:*").
func (s *Server) visibleRabbit(c *fiber.Ctx) []collector.RabbitView {
	p := principal(c)
	var out []collector.RabbitView
	all := s.policy.Can(p, access.ActionView, access.AllRabbitQueues())
	for _, v := range s.clusters.RabbitLatest() {
		qs := make([]collector.Queue, 0, len(v.Snapshot.Queues))
		for _, q := range v.Snapshot.Queues {
			if s.policy.Can(p, access.ActionView, access.RabbitQueue(q.VHost, q.Name)) {
				qs = append(qs, q)
			}
		}
		if len(qs) == 0 && !all {
			continue
		}
		v.Snapshot.Queues = qs
		out = append(out, v)
	}
	return out
}

// seriesScope is what the request's principal may read of the history:
// the policy's view rules as selectors of the time-series store
// (collector.SeriesScope), so that charts and the series API narrow their
// queries in the store, never after it. The configured clusters and known
// queues place the services' series, which name a topic or queue only.
func (s *Server) seriesScope(c *fiber.Ctx) *collector.SeriesScope {
	opts := collector.ScopeOptions{}
	for _, v := range s.clusters.Latest() {
		opts.KafkaClusters = append(opts.KafkaClusters, v.Name)
	}
	for _, v := range s.clusters.RabbitLatest() {
		for _, q := range v.Snapshot.Queues {
			opts.Queues = append(opts.Queues, collector.QueueRef{VHost: q.VHost, Name: q.Name})
		}
	}
	if st := s.series; st != nil {
		opts.Values = func(ctx context.Context, metric, label string) ([]string, error) {
			return st.LabelValues(ctx, label, tsdb.Matcher{Label: tsdb.MetricName, Op: tsdb.MatchEqual, Value: metric})
		}
	}
	return collector.NewSeriesScope(s.policy.Rules(principal(c), access.ActionView), opts)
}
