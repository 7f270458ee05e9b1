package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/web/templates"
)

func (s *Server) handleConsumersList(c *fiber.Ctx) error {
	sortBy := c.Query("sort", "lag")
	if sortBy != "lag" && sortBy != "name" {
		return s.fail(c, access.Errorf(access.EINVALID, "sort must be lag or name"))
	}
	vm := consumersOf(s.visibleClusters(c), sortBy, s.now())
	return s.render(c, templates.Page{Title: "Consumers", Area: templates.AreaConsumers, Refresh: true}, templates.ConsumersView(vm))
}
