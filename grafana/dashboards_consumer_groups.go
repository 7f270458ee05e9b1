package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"switchyard/collector"
)

// consumerGroups shows each group's lag (messages and seconds), Burrow
// status, members and consume rate, by cluster, group and topic.
func consumerGroups(v vars) *dashboard.DashboardBuilder {
	groupSel := func(m string) string { return sel(m, "cluster", "group") }
	partSel := func(m string) string { return sel(m, "cluster", "group", "topic") }
	groupLinks := []cog.Builder[dashboard.DashboardLink]{groupPageLink()}
	panelLinks := []cog.Builder[dashboard.DashboardLink]{consoleLink("Consumer groups in the console", "/consumers")}

	return v.newDashboard("",
		v.labelVar("cluster", "Cluster", collector.MGroupStatus),
		v.labelVar("group", "Consumer group", sel(collector.MGroupStatus, "cluster")),
		v.labelVar("topic", "Topic", sel(collector.MGroupLag, "cluster", "group")),
	).
		Description("Consumer groups: lag in messages and seconds, Burrow status, members and consume rate.").
		WithPanel(instantTable("Group status", unitCount, "Burrow status of each group (OK, WARN, ERR) with its lag; click a row for the console's group page.").
			WithTarget(query("A", "max by (cluster, group) ("+groupSel(collector.MGroupStatus)+")", "").
				Instant().Format(prometheus.PromQueryFormatTable)).
			Mappings(statusMappings()).
			DataLinks(groupLinks).
			Links(panelLinks)).
		WithPanel(timeSeries("Lag (messages)", unitCount, "Messages not yet committed, per group and topic: max(0, high watermark - committed offset).").
			WithTarget(query("A", "sum by (cluster, group, topic) ("+partSel(collector.MGroupLag)+")", "{{cluster}} {{group}} {{topic}}")).
			DataLinks(groupLinks)).
		WithPanel(timeSeries("Lag (seconds)", unitSeconds, "How far behind the newest message each group's slowest partition is, per topic.").
			WithTarget(query("A", "max by (cluster, group, topic) ("+partSel(collector.MGroupLagSeconds)+")", "{{cluster}} {{group}} {{topic}}")).
			DataLinks(groupLinks)).
		WithPanel(timeSeries("Partition status", unitCount, "Worst Burrow status of each group's partitions per topic: OK, WARN, STOP, STALL, REWIND.").
			WithTarget(query("A", "max by (cluster, group, topic) ("+partSel(collector.MGroupPartitionStatus)+")", "{{cluster}} {{group}} {{topic}}")).
			Mappings(statusMappings()).
			Max(5).
			DataLinks(groupLinks)).
		WithPanel(timeSeries("Members", unitCount, "Members of each consumer group; 0 while the group is empty.").
			WithTarget(query("A", groupSel(collector.MGroupMembers), "{{cluster}} {{group}}")).
			DataLinks(groupLinks)).
		WithPanel(timeSeries("Consume rate", unitPerSec, "Messages committed per second by each group.").
			WithTarget(query("A", groupSel(collector.MGroupConsumeRate), "{{cluster}} {{group}}")).
			DataLinks(groupLinks))
}
