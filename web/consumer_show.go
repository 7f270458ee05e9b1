package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/web/templates"
)

func (s *Server) handleConsumerShow(c *fiber.Ctx) error {
	vm, err := groupOf(s.visibleClusters(c), param(c, "cluster"), param(c, "group"), s.now())
	if err != nil {
		return s.fail(c, err)
	}
	return s.render(c, templates.Page{Title: vm.Name, Area: templates.AreaConsumers, Refresh: true}, templates.GroupView(vm))
}
