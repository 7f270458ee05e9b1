package grafana

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"switchyard/collector"
)

// traceLink opens the console's trace page for an exemplar's trace id.
//
// Which link Grafana shows on an exemplar: the Prometheus datasource's
// "Exemplars" setting (exemplarTraceIdDestinations: name trace_id, URL
// ${console_url}/traces/${__value.raw}) is the documented way, and it is the
// datasource owner's, not ours (README says how to set it). What a dashboard
// can carry is a field override on the exemplar frame's trace_id field with
// this data link: Grafana applies panel field overrides to the exemplar
// frame too, so the link appears in the exemplar tooltip without touching
// the datasource, and ${__value.raw} is the trace id itself.
func traceLink() dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: "links", Value: []map[string]any{{
		"title":       "Open trace ${__value.raw} in Switchyard",
		"url":         "${console_url}/traces/${__value.raw}",
		"targetBlank": true,
	}}}
}

// services shows the services' event metrics: processed and failed rates
// and the processing latency histogram's p50/p95/p99 with exemplars.
func services(v vars) *dashboard.DashboardBuilder {
	svc := func(m string) string { return sel(m, "tenant", "service") }
	buckets := rate(svc(collector.PromEventDuration + "_bucket"))
	quantile := func(q string) string {
		return "histogram_quantile(" + q + ", sum by (le, service) (" + buckets + "))"
	}
	tracesLink := []cog.Builder[dashboard.DashboardLink]{consoleLink("Traces in the console", "/traces")}

	return v.newDashboard("",
		v.labelVar("tenant", "Tenant", collector.PromEventProcessed),
		v.labelVar("service", "Service", sel(collector.PromEventProcessed, "tenant")),
	).
		Description("Services: events processed and failed, and processing latency with exemplars linking to the console's traces.").
		WithPanel(timeSeries("Events processed", unitPerSec, "Events processed per second by each service and event type (event_processed_total).").
			WithTarget(query("A", "sum by (service, event_type) ("+rate(svc(collector.PromEventProcessed))+")", "{{service}} {{event_type}}")).
			Links(tracesLink)).
		WithPanel(timeSeries("Events failed", unitPerSec, "Events failed per second by service and error code (event_failed_total).").
			WithTarget(query("A", "sum by (service, error_code) ("+rate(svc(collector.PromEventFailed))+")", "{{service}} {{error_code}}")).
			DataLinks([]cog.Builder[dashboard.DashboardLink]{
				consoleLink("Dead letters with ${__field.labels.error_code}", "/dead-letters?q="+label("error_code")),
			})).
		WithPanel(timeSeries("Processing latency", unitSeconds, "p50, p95 and p99 of event processing time per service. The dots are exemplars: click one to open its trace in the console.").
			Span(24).
			WithTarget(query("A", quantile("0.5"), "{{service}} p50")).
			WithTarget(query("B", quantile("0.95"), "{{service}} p95")).
			WithTarget(query("C", quantile("0.99"), "{{service}} p99").Exemplar(true)).
			OverrideByName("trace_id", []dashboard.DynamicConfigValue{traceLink()}).
			Links(tracesLink))
}
