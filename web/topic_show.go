package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/web/templates"
)

func (s *Server) handleTopicShow(c *fiber.Ctx) error {
	vm, err := topicOf(s.visibleClusters(c), param(c, "cluster"), param(c, "topic"), s.now())
	if err != nil {
		return s.fail(c, err)
	}
	cluster, topic := param(c, "cluster"), param(c, "topic")
	if s.browser != nil && s.policy.Can(principal(c), access.ActionReadPayload, access.KafkaTopic(cluster, topic)) {
		vm.MessagesHref = topicHref(cluster, topic) + "/messages"
	}
	return s.render(c, templates.Page{Title: vm.Name, Area: templates.AreaOverview, Refresh: true}, templates.TopicView(vm))
}
