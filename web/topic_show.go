package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/dlqstore"
	"switchyard/web/templates"
)

func (s *Server) handleTopicShow(c *fiber.Ctx) error {
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	cluster, topic := param(c, "cluster"), param(c, "topic")
	vm, err := topicOf(s.visibleClusters(c), cluster, topic, tr, s.fresh())
	if err != nil {
		return s.fail(c, err)
	}
	vm.Range = tr.picker(topicHref(cluster, topic), queryOf(c))
	// The route authorized exactly this topic: no further filtering.
	series, err := s.history(c.UserContext(), collector.MKafkaTopicRate, tr, nil, eq("cluster", cluster), eq("topic", topic))
	vm.Chart = s.sumChart(c.UserContext(), newChart("topic-throughput", "Messages produced per second", templates.UnitRate, tr), topic, series, err)
	if s.browser != nil && s.policy.Can(principal(c), access.ActionReadPayload, access.KafkaTopic(cluster, topic)) {
		vm.MessagesHref = topicHref(cluster, topic) + "/messages"
	}
	if vm.IsDLQ {
		if vm.DeadLetters, err = s.dlqHere(c, delivery.BrokerKafka, cluster, "", topic); err != nil {
			return s.fail(c, err)
		}
	}
	return s.render(c, dashPage(vm.Name, templates.AreaOverview, tr), templates.TopicView(vm))
}

// dlqHere is what the page of a DLQ topic or queue says of its indexed
// dead letters (nil without a dead-letter index): how many of them the
// caller may see, counted by the dead-letter service over their scope in
// the store's query — the very filter of the entries list it links to, so
// the two agree — and, for a RabbitMQ queue, whether the console's
// indexer takes custody of it (it is one of the caller's sources).
func (s *Server) dlqHere(c *fiber.Ctx, broker, cluster, vhost, destination string) (*templates.DLQHere, error) {
	st := s.dlq
	if st == nil {
		return nil, nil
	}
	caller, ctx := callerOf(c), c.UserContext()
	f := dlqstore.Filter{Broker: broker, Cluster: cluster, Destination: destination}
	counted := f
	counted.Limit = 1
	page, err := st.FindEntries(ctx, caller, counted)
	if err != nil {
		return nil, err
	}
	here := &templates.DLQHere{Count: totalText(page.Total, page.TotalCapped), EntriesHref: withQuery("/dead-letters/entries", f.Values()),
		AlertOn: s.alertOn(c, "Alert on arrivals", alerting.TemplateDLQDestination, "broker", broker, "cluster", cluster, "destination", destination)}
	if broker == delivery.BrokerRabbitMQ {
		sources, _, err := st.Sources(ctx, caller)
		if err != nil {
			return nil, err
		}
		for _, src := range sources {
			if src.Broker == broker && src.Cluster == cluster && cmpOr(src.VHost, "/") == vhost && src.Destination == destination {
				here.Custody = true
			}
		}
	}
	return here, nil
}
