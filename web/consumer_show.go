package web

import (
	"github.com/gofiber/fiber/v2"

	"switchyard/access"
	"switchyard/alerting"
	"switchyard/collector"
	"switchyard/tsdb"
	"switchyard/web/templates"
)

// maxPartitionLines is the most partitions charted one line each.
const maxPartitionLines = 20

func (s *Server) handleConsumerShow(c *fiber.Ctx) error {
	tr, err := s.dashRange(c)
	if err != nil {
		return s.fail(c, err)
	}
	kafka := s.visibleClusters(c)
	cluster, group := param(c, "cluster"), param(c, "group")
	vm, err := groupOf(kafka, cluster, group, tr, s.fresh())
	if err != nil {
		return s.fail(c, err)
	}
	vm.Range = tr.picker(groupHref(cluster, group), queryOf(c))
	vm.AlertOn = append(s.alertOn(c, "Alert on its status", alerting.TemplateGroupStatus, "cluster", cluster, "group", group),
		s.alertOn(c, "Alert on its lag", alerting.TemplateLagSeconds, "cluster", cluster, "group", group)...)
	ctx := c.UserContext()
	// The group is authorized by the route; its partition series still
	// name topics, which the principal may not all see.
	scope := s.seriesScope(c)
	gm := []tsdb.Matcher{eq("cluster", cluster), eq("group", group)}
	totalC := newChart("group-total-lag", "Total lag (messages)", templates.UnitMessages, tr)
	maxC := newChart("group-max-lag-seconds", "Max lag (time)", templates.UnitSeconds, tr)
	if s.seesWholeGroup(c, cluster, group) {
		total, err := s.history(ctx, collector.MGroupTotalLag, tr, nil, gm...)
		totalC = s.sumChart(ctx, totalC, "total lag", total, err)
		maxSec, err := s.history(ctx, collector.MGroupMaxLagSeconds, tr, nil, gm...)
		maxC = s.sumChart(ctx, maxC, "max lag seconds", maxSec, err)
	} else {
		// The group totals include topics the principal may not see:
		// rebuild them from the partitions they may.
		lag, err := s.history(ctx, collector.MGroupLag, tr, scope, gm...)
		totalC = s.sumChart(ctx, totalC, "total lag", lag, err)
		secs, err := s.history(ctx, collector.MGroupLagSeconds, tr, scope, gm...)
		if err != nil {
			s.chartFailed(ctx, &maxC, err)
		} else {
			addLine(&maxC, "max lag seconds", tsdb.Combine(secs, tsdb.OpMax))
		}
	}
	vm.Charts = append(vm.Charts, totalC, maxC)
	if len(vm.Partitions) <= maxPartitionLines {
		parts, err := s.history(ctx, collector.MGroupLag, tr, scope, gm...)
		vm.Charts = append(vm.Charts, s.linesChart(ctx, newChart("group-partition-lag", "Lag per partition (messages)", templates.UnitMessages, tr), parts, err,
			func(l tsdb.Labels) string { return l.Get("topic") + "/" + l.Get("partition") }))
	}
	vm.Traces = s.groupTraces(c, cluster, group)
	return s.render(c, dashPage(vm.Name, templates.AreaConsumers, tr), templates.GroupView(vm))
}

// seesWholeGroup reports whether the principal may view every topic the
// group reads, so that the group's stored totals are theirs to see.
func (s *Server) seesWholeGroup(c *fiber.Ctx, cluster, group string) bool {
	p := principal(c)
	for _, v := range s.clusters.Latest() {
		if v.Name != cluster {
			continue
		}
		g, _ := v.Snapshot.Group(group)
		for _, gp := range g.Partitions {
			if !s.policy.Can(p, access.ActionView, access.KafkaTopic(cluster, gp.Topic)) {
				return false
			}
		}
	}
	return true
}
