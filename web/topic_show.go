package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/web/templates"
)

func (s *Server) handleTopicShow(c *fiber.Ctx) error {
	vm, err := topicOf(s.clusters.Latest(), param(c, "cluster"), param(c, "topic"), s.now())
	if err != nil {
		return s.fail(c, err)
	}
	return s.render(c, templates.Page{Title: vm.Name, Area: templates.AreaOverview, Refresh: true}, templates.TopicView(vm))
}
