package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"switchyard/collector"
)

// Counters the indexer (indexer/indexer.go) and redrive (redrive/metrics.go)
// register on /metrics; those packages name them in literals, so the names
// are repeated here and the test checks them against README's table.
const (
	MetricDLQArrivals     = "switchyard_dlq_arrivals_total"
	MetricDLQJobItems     = "switchyard_dlq_job_items_total"
	MetricDLQJobsFinished = "switchyard_dlq_jobs_finished_total"
)

func deadLettersLink() cog.Builder[dashboard.DashboardLink] {
	return consoleLink("Dead letters from ${__field.labels.destination}",
		"/dead-letters?broker="+label("broker")+"&destination="+label("destination"))
}

// deadLetters shows arrivals by destination, failures by error code, the
// backlog by state and the redrive jobs.
func deadLetters(v vars) *dashboard.DashboardBuilder {
	arrivals := rate(sel(MetricDLQArrivals, "cluster"))
	failed := rate(sel(collector.PromEventFailed, "tenant"))
	panelLinks := []cog.Builder[dashboard.DashboardLink]{consoleLink("Dead letters in the console", "/dead-letters")}
	jobLinks := []cog.Builder[dashboard.DashboardLink]{consoleLink("Dead-letter jobs in the console", "/dead-letters/jobs")}

	return v.newDashboard("",
		v.labelVar("cluster", "Cluster", MetricDLQArrivals),
		v.labelVar("tenant", "Tenant", collector.PromEventFailed),
	).
		Description("Dead letters: arrivals by destination, failures by error code, entries by state and redrive jobs.").
		WithPanel(timeSeries("Arrivals by destination", unitPerSec, "Dead letters newly indexed per second, per dead-letter topic or queue (duplicates excluded).").
			WithTarget(query("A", "sum by (broker, cluster, destination) ("+arrivals+")", "{{cluster}} {{destination}}")).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{deadLettersLink()}).
			Links(panelLinks)).
		WithPanel(timeSeries("Failures by error code", unitPerSec, "Events the services failed per second, by error code (event_failed_total).").
			WithTarget(query("A", "sum by (error_code) ("+failed+")", "{{error_code}}")).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{
				consoleLink("Dead letters with ${__field.labels.error_code}", "/dead-letters?q="+label("error_code")),
			})).
		WithPanel(timeSeries("Entries by state", unitCount, "Indexed dead letters by state (dead, quarantined, redriven, …): the backlog operators watch.").
			WithTarget(query("A", "sum by (state) ("+sel(collector.MDLQEntries, "cluster")+")", "{{state}}")).
			Links(panelLinks)).
		WithPanel(instantTable("Entries by destination and state", unitCount, "The backlog per dead-letter destination; click a row for its dead letters.").
			WithTarget(query("A", "sum by (broker, cluster, destination, state) ("+sel(collector.MDLQEntries, "cluster")+")", "").
				Instant().Format(prometheus.PromQueryFormatTable)).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{deadLettersLink()})).
		WithPanel(timeSeries("Redrive job items", unitPerSec, "Entries dead-letter jobs finished with per second: sent (acknowledged by the broker), failed, cancelled.").
			WithTarget(query("A", "sum by (action, outcome) ("+rate(MetricDLQJobItems)+")", "{{action}} {{outcome}}")).
			Links(jobLinks)).
		WithPanel(timeSeries("Jobs finished", unitCount, "Dead-letter jobs that ended in the interval: completed, cancelled, canary_failed, failed.").
			WithTarget(query("A", "sum by (action, state) (increase("+MetricDLQJobsFinished+"[$__rate_interval]))", "{{action}} {{state}}")).
			Links(jobLinks)).
		WithPanel(singleStat("Jobs paused", unitCount, "Jobs a broker outage holds up right now; alert when it stays above 0.").
			WithTarget(query("A", collector.MJobsPaused, "paused")).
			Links(jobLinks))
}
