package alerting

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"switchyard/collector"
	"switchyard/delivery"
	"switchyard/tsdb"
)

// Template kinds: the one-click rules offered on the page where a problem
// shows ("tell me when this happens again").
const (
	TemplateGroupStatus      = "group_status"       // cluster, group
	TemplateLagSeconds       = "lag_seconds"        // cluster, group
	TemplateDLQDestination   = "dlq_destination"    // broker, cluster, destination
	TemplateDLQGroup         = "dlq_group"          // dlq_group (its id); tenant and resource optional
	TemplateFailureRatio     = "failure_ratio"      // service
	TemplateLatencyP99       = "latency_p99"        // service
	TemplateQueueNoConsumers = "queue_no_consumers" // cluster, vhost, queue
	TemplateJobPaused        = "job_paused"         // (none)
	TemplateClusterDown      = "cluster_down"       // kind (kafka or rabbitmq), cluster
)

// TemplateInfo describes one template kind.
type TemplateInfo struct {
	Kind   string   `json:"kind"`
	Title  string   `json:"title"`
	Labels []string `json:"labels"` // what it takes from the page it is offered on
}

var templateInfos = []TemplateInfo{
	{TemplateGroupStatus, "Consumer group status not OK for 5 minutes", []string{"cluster", "group"}},
	{TemplateLagSeconds, "Consumer group lag above N seconds", []string{"cluster", "group"}},
	{TemplateDLQDestination, "Dead-letter arrivals above N in 5 minutes, per destination", []string{"broker", "cluster", "destination"}},
	{TemplateDLQGroup, "Dead-letter arrivals above N in 5 minutes, per failure group", []string{"dlq_group"}}, // optional: tenant, resource
	{TemplateFailureRatio, "Failure ratio above P", []string{"service"}},
	{TemplateLatencyP99, "p99 processing latency above L", []string{"service"}},
	{TemplateQueueNoConsumers, "Queue with ready messages and no consumers", []string{"cluster", "vhost", "queue"}},
	{TemplateJobPaused, "A redrive job paused by a broker outage", nil},
	{TemplateClusterDown, "Cluster unreachable", []string{"kind", "cluster"}},
}

// Templates lists the template kinds.
func Templates() []TemplateInfo { return slices.Clone(templateInfos) }

// NewTemplate returns the draft rule of a template kind for the labels of
// the thing it is offered on. EINVALID for an unknown kind or a missing
// label. Thresholds are starting points the preview then tunes.
func NewTemplate(kind string, labels map[string]string) (Rule, error) {
	i := slices.IndexFunc(templateInfos, func(t TemplateInfo) bool { return t.Kind == kind })
	if i < 0 {
		kinds := make([]string, len(templateInfos))
		for j, t := range templateInfos {
			kinds[j] = t.Kind
		}
		return Rule{}, delivery.Errorf(delivery.EINVALID, "template %q: want one of %s", kind, strings.Join(kinds, ", "))
	}
	fe := FieldErrors{}
	for _, l := range templateInfos[i].Labels {
		if strings.TrimSpace(labels[l]) == "" {
			fe.Add(l, "required for the %s template", kind)
		}
	}
	if err := fe.Err("template " + kind); err != nil {
		return Rule{}, err
	}
	eq := func(names ...string) []tsdb.Matcher {
		out := make([]tsdb.Matcher, 0, len(names))
		for _, n := range names {
			out = append(out, tsdb.Matcher{Label: n, Op: tsdb.MatchEqual, Value: labels[n]})
		}
		return out
	}
	min := func(m int) Duration { return Duration(time.Duration(m) * time.Minute) }
	ann := func(summary, desc string) map[string]string {
		return map[string]string{"summary": summary, "description": desc}
	}
	r := Rule{Enabled: true, Severity: SeverityWarning, Op: OpGT}
	switch kind {
	case TemplateGroupStatus:
		r.Name = "Consumer group " + labels["group"] + " not OK"
		r.Expr = Selector{Metric: collector.MGroupStatus, Matchers: eq("cluster", "group")}
		r.Threshold, r.For = 0, min(5)
		r.Annotations = ann("Consumer group {{ $labels.group }} on {{ $labels.cluster }} is not OK",
			"Its status has been {{ $value }} (1 WARN, 2 ERR, 3 STOP, 4 STALL, 5 REWIND) for 5 minutes.")
	case TemplateLagSeconds:
		r.Name = "Consumer group " + labels["group"] + " lagging"
		r.Expr = Selector{Metric: collector.MGroupMaxLagSeconds, Matchers: eq("cluster", "group")}
		r.Threshold, r.For = 60, min(5)
		r.Annotations = ann("{{ $labels.group }} is {{ $value | humanizeDuration }} behind",
			"The oldest unconsumed message of consumer group {{ $labels.group }} on {{ $labels.cluster }} waits longer than 60s.")
	case TemplateDLQDestination:
		r.Name = "Dead letters arriving in " + labels["destination"]
		// The indexer's arrivals counter, recorded into the history: scoped
		// by the dead-letter destination itself.
		r.Expr = Selector{Metric: collector.MDLQArrivals, Matchers: eq("broker", "cluster", "destination"),
			Func: FuncIncrease, Window: min(5), Agg: AggSum, By: []string{"broker", "cluster", "destination"}}
		r.Threshold = 10
		r.Annotations = ann("{{ $value | humanize }} dead letters in 5 minutes in {{ $labels.destination }}",
			"More than 10 messages were dead-lettered to {{ $labels.destination }} in the last 5 minutes.")
	case TemplateDLQGroup:
		r.Name = "Failure group " + labels["dlq_group"] + " growing"
		// A failure group spans tenants and origins: the page's tenant and
		// resource, when it gives them, keep the rule within what a scoped
		// operator may manage.
		ms := eq("dlq_group")
		for _, l := range []string{"tenant", "resource"} {
			if labels[l] != "" {
				ms = append(ms, eq(l)...)
			}
		}
		r.Expr = Selector{Metric: collector.MDLQGroupEntries, Matchers: ms,
			Func: FuncIncrease, Window: min(5), Agg: AggSum, By: []string{"dlq_group", "error_code"}}
		r.Threshold = 10
		r.Annotations = ann("{{ $value | humanize }} new dead letters in failure group {{ $labels.dlq_group }} ({{ $labels.error_code }})",
			"More than 10 messages failed with this cause in the last 5 minutes.")
	case TemplateFailureRatio:
		r.Name = "Failure ratio of " + labels["service"]
		by := []string{"service"}
		r.Expr = Selector{Metric: collector.PromEventFailed, Matchers: eq("service"), Func: FuncRate, Window: min(5), Agg: AggSum, By: by}
		r.DivideBy = &Selector{Metric: collector.PromEventProcessed, Matchers: eq("service"), Func: FuncRate, Window: min(5), Agg: AggSum, By: by}
		r.Threshold, r.For = 0.05, min(5)
		r.Annotations = ann("{{ $labels.service }} fails {{ $value | humanizePercentage }} of its events",
			"Failed events divided by processed events over 5 minutes is above 5%.")
	case TemplateLatencyP99:
		r.Name = "p99 latency of " + labels["service"]
		r.Expr = Selector{Metric: collector.PromEventDuration, Matchers: eq("service"), Func: FuncQuantile, Quantile: 0.99,
			Window: min(5), Agg: AggSum, By: []string{"service"}}
		r.Threshold, r.For = 0.5, min(5)
		r.Annotations = ann("p99 processing latency of {{ $labels.service }} is {{ $value | humanizeDuration }}",
			"99% of events should be processed within 500ms.")
	case TemplateQueueNoConsumers:
		r.Name = "Queue " + labels["queue"] + " has no consumers"
		r.Expr = Selector{Metric: collector.MQueueReady, Matchers: eq("cluster", "vhost", "queue")}
		r.Threshold, r.For = 0, min(5)
		r.And = &Condition{Selector: Selector{Metric: collector.MQueueConsumers, Matchers: eq("cluster", "vhost", "queue")}, Op: OpEQ, Threshold: 0}
		r.Annotations = ann("{{ $labels.queue }} holds {{ $value }} ready messages and nobody consumes them",
			"Queue {{ $labels.queue }} in {{ $labels.vhost }} on {{ $labels.cluster }} has had ready messages and no consumers for 5 minutes.")
	case TemplateJobPaused:
		r.Name = "Redrive job paused"
		r.Expr = Selector{Metric: collector.MJobsPaused}
		r.Threshold, r.For = 0, min(5)
		r.Annotations = ann("{{ $value }} dead-letter job(s) held up by a broker outage",
			"A redrive, quarantine or discard job has been retrying its batch for 5 minutes.")
	case TemplateClusterDown:
		metric := collector.MKafkaUp
		switch labels["kind"] {
		case "kafka":
		case "rabbitmq":
			metric = collector.MRabbitUp
		default:
			return Rule{}, FieldErrors{"kind": "want kafka or rabbitmq"}.Err("template " + kind)
		}
		r.Name = "Cluster " + labels["cluster"] + " unreachable"
		r.Expr = Selector{Metric: metric, Matchers: eq("cluster")}
		r.Op, r.Threshold, r.For = OpEQ, 0, min(2)
		r.Severity = SeverityCritical
		r.Annotations = ann("{{ $labels.cluster }} is unreachable",
			fmt.Sprintf("The console has not reached %s cluster {{ $labels.cluster }} for 2 minutes.", labels["kind"]))
	}
	r.Name = cleanName(r.Name)
	return r, nil
}

// cleanName keeps a generated name within the characters names allow.
func cleanName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("_ .:-", c):
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	if len(b.String()) > 100 {
		return b.String()[:100]
	}
	return b.String()
}
