package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/alerting"
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
	vm := templates.Overview{Range: tr.picker("/", queryOf(c)), Firing: s.firingHead(c)}
	for _, v := range kafka {
		card := clusterCardOf(v, tr, tbl, f, s.topicRateCharts(c, v, tr, scope))
		if card.Status.State == "unreachable" {
			card.AlertOn = s.alertOn(c, "Alert on this", alerting.TemplateClusterDown, "kind", "kafka", "cluster", v.Name)
		}
		vm.Clusters = append(vm.Clusters, card)
	}
	for _, v := range rabbit {
		pub, dlq := s.rabbitRateCharts(c, v, tr, scope)
		card := rabbitCardOf(v, tr, f, pub, dlq)
		if card.Status.State == "unreachable" {
			card.AlertOn = s.alertOn(c, "Alert on this", alerting.TemplateClusterDown, "kind", "rabbitmq", "cluster", v.Name)
		}
		vm.Rabbit = append(vm.Rabbit, card)
	}
	vm.Services = s.services(c.UserContext(), tr, scope)
	for i := range vm.Services.Rows {
		r := &vm.Services.Rows[i]
		r.AlertOn = append(s.alertOn(c, "Alert on failures", alerting.TemplateFailureRatio, "service", r.Service),
			s.alertOn(c, "Alert on p99", alerting.TemplateLatencyP99, "service", r.Service)...)
	}
	return s.render(c, dashPage("Overview", templates.AreaOverview, tr), templates.OverviewView(vm))
}
