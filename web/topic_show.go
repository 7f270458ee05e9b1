package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/collector"
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
	return s.render(c, dashPage(vm.Name, templates.AreaOverview, tr), templates.TopicView(vm))
}
