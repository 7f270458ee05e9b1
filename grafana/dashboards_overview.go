package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"switchyard/collector"
)

// overview is the platform standard's first dashboard: produce throughput,
// lag, dead-letter arrivals, failure ratio and p99 processing latency.
func overview(v vars) *dashboard.DashboardBuilder {
	topicRate := sel(collector.MKafkaTopicRate, "cluster")
	maxLag := sel(collector.MGroupMaxLagSeconds, "cluster")
	arrivals := rate(sel(MetricDLQArrivals, "cluster"))
	failed := rate(sel(collector.PromEventFailed, "tenant"))
	processed := rate(sel(collector.PromEventProcessed, "tenant"))
	buckets := rate(sel(collector.PromEventDuration+"_bucket", "tenant"))
	failureRatio := "(sum(" + failed + ") or vector(0)) / sum(" + processed + ")"

	return v.newDashboard("",
		v.labelVar("cluster", "Cluster", collector.MKafkaUp),
		v.labelVar("tenant", "Tenant", collector.PromEventProcessed),
	).
		Description("Platform overview: throughput, lag, dead letters, failures and latency, from the Switchyard console's /metrics.").
		WithPanel(singleStat("Produce throughput", unitPerSec, "Messages produced per second over every topic.").
			WithTarget(query("A", "sum("+topicRate+")", "messages/s")).
			Links([]cog.Builder[dashboard.DashboardLink]{consoleLink("Overview in the console", "/")})).
		WithPanel(singleStat("Max lag", unitSeconds, "The largest lag in seconds of any consumer group.").
			WithTarget(query("A", "max("+maxLag+")", "max lag")).
			Links([]cog.Builder[dashboard.DashboardLink]{consoleLink("Consumer groups in the console", "/consumers")})).
		WithPanel(singleStat("Dead-letter arrivals", unitPerSec, "Dead letters newly indexed per second.").
			WithTarget(query("A", "sum("+arrivals+") or vector(0)", "arrivals/s")).
			Links([]cog.Builder[dashboard.DashboardLink]{consoleLink("Dead letters in the console", "/dead-letters")})).
		WithPanel(singleStat("Failure ratio", unitRatio, "Failed events over processed events, all services.").
			WithTarget(query("A", failureRatio, "failed / processed"))).
		WithPanel(timeSeries("Produce throughput by topic", unitPerSec, "Messages produced per second per topic, from watermark deltas.").
			WithTarget(query("A", "sum by (cluster, topic) ("+topicRate+")", "{{cluster}} {{topic}}")).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{topicPageLink()})).
		WithPanel(timeSeries("Max lag by consumer group", unitSeconds, "Largest lag in seconds over each group's partitions.").
			WithTarget(query("A", "max by (cluster, group) ("+maxLag+")", "{{cluster}} {{group}}")).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{groupPageLink()})).
		WithPanel(timeSeries("Dead-letter arrivals by destination", unitPerSec, "Dead letters newly indexed per second, duplicates excluded.").
			WithTarget(query("A", "sum by (broker, cluster, destination) ("+arrivals+")", "{{cluster}} {{destination}}")).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{deadLettersLink()})).
		WithPanel(timeSeries("p99 processing latency by service", unitSeconds, "99th percentile of event processing time per service.").
			WithTarget(query("A", "histogram_quantile(0.99, sum by (le, service) ("+buckets+"))", "{{service}} p99")))
}
