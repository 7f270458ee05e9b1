package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/web/templates"
)

// overviewSorts are the orders of the overview's topic tables.
var overviewSorts = []string{"name", "messages", "rate"}

func (s *Server) handleOverview(c *fiber.Ctx) error {
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	tbl, err := tableOf(c, "/", overviewSorts, tr)
	if err != nil {
		return s.fail(c, err)
	}
	kafka, rabbit := s.visibleClusters(c), s.visibleRabbit(c)
	scope := s.seriesScope(c)
	f := s.fresh()
	vm := templates.Overview{Range: tr.picker("/", queryOf(c))}
	for _, v := range kafka {
		vm.Clusters = append(vm.Clusters, clusterCardOf(v, tr, tbl, f, s.topicRateCharts(c, v, tr, scope)))
	}
	for _, v := range rabbit {
		pub, dlq := s.rabbitRateCharts(c, v, tr, scope)
		vm.Rabbit = append(vm.Rabbit, rabbitCardOf(v, tr, f, pub, dlq))
	}
	vm.Services = s.services(c.UserContext(), tr, scope)
	return s.render(c, dashPage("Overview", templates.AreaOverview, tr), templates.OverviewView(vm))
}
