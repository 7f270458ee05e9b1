package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/web/templates"
)

// The areas below have their navigation entry and route (with its policy)
// already, and say plainly what will appear; no made-up data.

func (s *Server) placeholder(c *fiber.Ctx, area, title string, p templates.Placeholder) error {
	p.Heading = title
	return s.render(c, templates.Page{Title: title, Area: area}, templates.PlaceholderView(p))
}

func (s *Server) handleExport(c *fiber.Ctx) error {
	return s.placeholder(c, templates.AreaExport, "Export", templates.Placeholder{
		Summary: "Nothing to export yet",
		Coming: []string{
			"Prometheus alerting rules and Grafana dashboards generated from the console",
			"dead-letter exports as JSON lines",
		},
	})
}
