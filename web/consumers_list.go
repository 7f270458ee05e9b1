package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/web/templates"
)

func (s *Server) handleConsumersList(c *fiber.Ctx) error {
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	tbl, err := tableOf(c, "/consumers", consumerSorts, tr)
	if err != nil {
		return s.fail(c, err)
	}
	vm := consumersOf(s.visibleClusters(c), tbl, tr, s.fresh())
	vm.Range = tr.picker("/consumers", queryOf(c))
	return s.render(c, dashPage("Consumers", templates.AreaConsumers, tr), templates.ConsumersView(vm))
}
