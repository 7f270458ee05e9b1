package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/web/templates"
)

func (s *Server) handleOverview(c *fiber.Ctx) error {
	vm := overviewOf(s.visibleClusters(c), s.now())
	return s.render(c, templates.Page{Title: "Overview", Area: templates.AreaOverview, Refresh: true}, templates.OverviewView(vm))
}
