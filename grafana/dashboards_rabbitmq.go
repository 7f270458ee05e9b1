package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"switchyard/collector"
)

// rabbitMQ shows queue depth, consumers, message rates, node alarms and
// whether the console reaches each RabbitMQ.
func rabbitMQ(v vars) *dashboard.DashboardBuilder {
	q := func(m string) string { return sel(m, "cluster", "vhost", "queue") }
	queueLinks := []cog.Builder[dashboard.DashboardLink]{queuePageLink()}
	panelLinks := []cog.Builder[dashboard.DashboardLink]{consoleLink("Queues in the console", "/queues")}
	perQueue := func(m string) string { return "sum by (cluster, vhost, queue) (" + q(m) + ")" }
	legend := "{{cluster}} {{vhost}} {{queue}}"

	return v.newDashboard("",
		v.labelVar("cluster", "Cluster", collector.MRabbitUp),
		v.labelVar("vhost", "Virtual host", sel(collector.MQueueMessages, "cluster")),
		v.labelVar("queue", "Queue", sel(collector.MQueueMessages, "cluster", "vhost")),
	).
		Description("RabbitMQ queues: ready and unacknowledged messages, consumers, publish/deliver/ack rates, node alarms.").
		WithPanel(singleStat("Management API reachable", unitBool, "1 when the console's last poll of the RabbitMQ management API succeeded.").
			WithTarget(query("A", sel(collector.MRabbitUp, "cluster"), "{{cluster}}")).
			Mappings(boolMappings("DOWN", "red", "UP", "green")).
			Span(12).
			Links(panelLinks)).
		WithPanel(singleStat("Node alarms", unitCount, "Memory, disk and node-down alarms raised now, over every node.").
			WithTarget(query("A", "sum("+sel(collector.MRabbitNodeAlarm, "cluster")+")", "alarms")).
			Span(12)).
		WithPanel(timeSeries("Messages ready", unitCount, "Messages waiting for delivery in each queue.").
			WithTarget(query("A", perQueue(collector.MQueueReady), legend)).
			DataLinks(queueLinks)).
		WithPanel(timeSeries("Messages unacknowledged", unitCount, "Messages delivered and not yet acknowledged.").
			WithTarget(query("A", perQueue(collector.MQueueUnacked), legend)).
			DataLinks(queueLinks)).
		WithPanel(timeSeries("Consumers", unitCount, "Consumers of each queue; a queue with messages and 0 consumers is stuck.").
			WithTarget(query("A", perQueue(collector.MQueueConsumers), legend)).
			DataLinks(queueLinks)).
		WithPanel(timeSeries("Publish, deliver and ack rates", unitPerSec, "Messages published to, delivered from and acknowledged on the selected queues, per second.").
			WithTarget(query("A", "sum("+q(collector.MQueuePublishRate)+")", "publish")).
			WithTarget(query("B", "sum("+q(collector.MQueueDeliverRate)+")", "deliver")).
			WithTarget(query("C", "sum("+q(collector.MQueueAckRate)+")", "ack")).
			Links(panelLinks)).
		WithPanel(timeSeries("Node alarms by node", unitBool, "1 while a node raises the alarm (memory, disk, down).").
			WithTarget(query("A", "max by (cluster, node, alarm) ("+sel(collector.MRabbitNodeAlarm, "cluster")+")", "{{cluster}} {{node}} {{alarm}}")).
			Max(1)).
		WithPanel(timeSeries("Up", unitBool, "1 while the console reaches each RabbitMQ's management API.").
			WithTarget(query("A", sel(collector.MRabbitUp, "cluster"), "{{cluster}}")).
			Mappings(boolMappings("DOWN", "red", "UP", "green")).
			Max(1))
}
