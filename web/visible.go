package web

import (
	"maps"
	"strings"

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
	if len(topics) == 0 && len(groups) == 0 && !can(access.Res("kafka:"+v.Name+"/*")) {
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
	all := s.policy.Can(p, access.ActionView, access.Res("rabbitmq:*"))
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

// seriesFilter decides which stored series a principal may see, by the
// labels that name what a series describes: queue (with vhost), group
// (and topic), topic, or only a cluster. The services' event metrics are
// judged by their destination: a Kafka topic on any configured cluster, a
// RabbitMQ queue; a series without one is the service's own and visible to
// every viewer.
type seriesFilter struct {
	can           func(access.Resource) bool
	kafka, rabbit map[string]bool // clusters the principal sees
	kafkaClusters []string        // every configured cluster
	queueVHosts   map[string][]string
	rabbitAll     bool
}

// seriesFilterFor builds the filter from the views the request already
// computed (visibleClusters, visibleRabbit).
func (s *Server) seriesFilterFor(c *fiber.Ctx, kafka []collector.ClusterView, rabbit []collector.RabbitView) *seriesFilter {
	p := principal(c)
	f := &seriesFilter{
		can:         func(r access.Resource) bool { return s.policy.Can(p, access.ActionView, r) },
		kafka:       map[string]bool{},
		rabbit:      map[string]bool{},
		queueVHosts: map[string][]string{},
	}
	f.rabbitAll = f.can(access.Res("rabbitmq:*"))
	for _, v := range s.clusters.Latest() {
		f.kafkaClusters = append(f.kafkaClusters, v.Name)
	}
	for _, v := range kafka {
		f.kafka[v.Name] = true
	}
	for _, v := range s.clusters.RabbitLatest() {
		for _, q := range v.Snapshot.Queues {
			f.queueVHosts[q.Name] = append(f.queueVHosts[q.Name], q.VHost)
		}
	}
	for _, v := range rabbit {
		f.rabbit[v.Name] = true
	}
	return f
}

func (f *seriesFilter) visible(ls tsdb.Labels) bool {
	cluster := ls.Get("cluster")
	name := ls.Name()
	switch {
	case ls.Get("queue") != "":
		return f.can(access.RabbitQueue(ls.Get("vhost"), ls.Get("queue")))
	case ls.Get("group") != "":
		if !f.can(access.KafkaGroup(cluster, ls.Get("group"))) {
			return false
		}
		return ls.Get("topic") == "" || f.can(access.KafkaTopic(cluster, ls.Get("topic")))
	case ls.Get("topic") != "":
		return f.can(access.KafkaTopic(cluster, ls.Get("topic")))
	case ls.Get("service") != "" || strings.HasPrefix(name, "event_"):
		return f.serviceVisible(ls)
	case cluster != "":
		if strings.HasPrefix(name, "switchyard_rabbitmq_") {
			return f.rabbit[cluster] || f.rabbitAll
		}
		return f.kafka[cluster]
	}
	return false
}

func (f *seriesFilter) serviceVisible(ls tsdb.Labels) bool {
	dest := ls.Get("destination")
	if dest == "" {
		return true
	}
	switch ls.Get("messaging_system") {
	case "kafka":
		for _, c := range f.kafkaClusters {
			if f.can(access.KafkaTopic(c, dest)) {
				return true
			}
		}
		return false
	case "rabbitmq":
		vhosts := f.queueVHosts[dest]
		if len(vhosts) == 0 {
			vhosts = []string{"/"}
		}
		for _, vh := range vhosts {
			if f.can(access.RabbitQueue(vh, dest)) {
				return true
			}
		}
		return false
	}
	return true
}
