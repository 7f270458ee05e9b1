package alerting

import (
	"strings"
	"time"

	"switchyard/collector"
)

// Recording rules of RecommendedRules, named level:metric:operations as
// Prometheus's naming practice has them. The alerting rules read these.
const (
	RecGroupLagSeconds   = "cluster_group:" + collector.MGroupLagSeconds + ":max"
	RecDLQArrivals       = "broker_cluster_destination:switchyard_dlq_arrivals:increase5m"
	RecEventProcessed    = "service:event_processed:rate5m"
	RecEventFailed       = "service:event_failed:rate5m"
	RecFailureRatio      = "service:event_failure_ratio:rate5m"
	RecDurationBuckets   = "service_le:" + collector.PromEventDuration + "_bucket:rate5m"
	RecDurationP99       = "service:" + collector.PromEventDuration + ":p99_rate5m"
	RecommendedRecording = "switchyard-recording"
	RecommendedAlerts    = "switchyard-alerts"
)

// Thresholds of the recommended alerting rules: starting points, as the
// templates' (NewTemplate) are.
const (
	RecommendedLagSeconds   = 60   // seconds the oldest unconsumed message waits
	RecommendedDLQArrivals  = 10   // dead letters per destination in 5 minutes
	RecommendedFailureRatio = 0.05 // failed / processed events
	RecommendedLatencyP99   = 0.5  // seconds
)

// RecommendedRules are the platform's recording and alerting rules over
// the console's /metrics, for a Prometheus that runs them without the
// console's evaluator: a consumer group lagging (its partitions' largest
// lag in seconds) or not OK, dead letters arriving in a destination,
// a service's failure ratio and p99 processing latency, a queue with ready
// messages and no consumers, a cluster the console cannot reach, a redrive
// job held up by a broker outage. The recording group comes first, so its
// series exist when the alerts read them.
func RecommendedRules() PromRuleFile {
	fiveMin := Duration(5 * time.Minute)
	rate5m := func(metric string, by ...string) string {
		return selectorPromQL(Selector{Metric: metric, Func: FuncRate, Window: fiveMin, Agg: AggSum, By: by})
	}
	recording := PromRuleGroup{Name: RecommendedRecording, Rules: []PromRule{
		{Record: RecGroupLagSeconds, Expr: selectorPromQL(Selector{Metric: collector.MGroupLagSeconds, Agg: AggMax, By: []string{"cluster", "group"}})},
		{Record: RecDLQArrivals, Expr: selectorPromQL(Selector{Metric: collector.MDLQArrivals, Func: FuncIncrease, Window: fiveMin,
			Agg: AggSum, By: []string{"broker", "cluster", "destination"}})},
		{Record: RecEventProcessed, Expr: rate5m(collector.PromEventProcessed, "service")},
		{Record: RecEventFailed, Expr: rate5m(collector.PromEventFailed, "service")},
		{Record: RecFailureRatio, Expr: RecEventFailed + " / " + RecEventProcessed},
		{Record: RecDurationBuckets, Expr: rate5m(collector.PromEventDuration+"_bucket", "service", "le")},
		{Record: RecDurationP99, Expr: "histogram_quantile(0.99, " + RecDurationBuckets + ")"},
	}}
	alert := func(name, expr string, forD time.Duration, severity, summary, description string) PromRule {
		r := PromRule{Alert: name, Expr: expr, Labels: map[string]string{"severity": severity},
			Annotations: map[string]string{"summary": summary, "description": description}}
		if forD > 0 {
			r.For = Duration(forD).String()
		}
		return r
	}
	gt := func(metric string, v float64) string {
		var b strings.Builder
		b.WriteString(metric)
		writeCmp(&b, OpGT, v)
		return b.String()
	}
	const five, two = 5 * time.Minute, 2 * time.Minute
	alerts := PromRuleGroup{Name: RecommendedAlerts, Rules: []PromRule{
		alert("SwitchyardConsumerGroupLagging", gt(RecGroupLagSeconds, RecommendedLagSeconds), five, SeverityWarning,
			"Consumer group {{ $labels.group }} on {{ $labels.cluster }} is {{ $value | humanizeDuration }} behind",
			"The oldest unconsumed message of a partition of {{ $labels.group }} has waited longer than 60s for 5 minutes."),
		alert("SwitchyardConsumerGroupNotOK", gt(collector.MGroupStatus, 0), five, SeverityWarning,
			"Consumer group {{ $labels.group }} on {{ $labels.cluster }} is not OK",
			"Its status has been {{ $value }} (1 WARN, 2 ERR) for 5 minutes."),
		alert("SwitchyardDeadLettersArriving", gt(RecDLQArrivals, RecommendedDLQArrivals), 0, SeverityWarning,
			"{{ $value | humanize }} dead letters in 5 minutes in {{ $labels.destination }}",
			"More than 10 messages were dead-lettered to {{ $labels.destination }} on {{ $labels.cluster }} in the last 5 minutes."),
		alert("SwitchyardServiceFailureRatio", gt(RecFailureRatio, RecommendedFailureRatio), five, SeverityWarning,
			"{{ $labels.service }} fails {{ $value | humanizePercentage }} of its events",
			"Failed events divided by processed events over 5 minutes has been above 5% for 5 minutes."),
		alert("SwitchyardServiceLatencyP99", gt(RecDurationP99, RecommendedLatencyP99), five, SeverityWarning,
			"p99 processing latency of {{ $labels.service }} is {{ $value | humanizeDuration }}",
			"99% of events should be processed within 500ms."),
		alert("SwitchyardQueueWithoutConsumers",
			gt(collector.MQueueReady, 0)+" and "+collector.MQueueConsumers+" == 0", five, SeverityWarning,
			"{{ $labels.queue }} holds {{ $value }} ready messages and nobody consumes them",
			"Queue {{ $labels.queue }} in {{ $labels.vhost }} on {{ $labels.cluster }} has had ready messages and no consumers for 5 minutes."),
		// One rule per broker kind: both series are labelled by cluster
		// alone, and an alert's labels drop the metric name.
		alert("SwitchyardKafkaClusterDown", collector.MKafkaUp+" == 0", two, SeverityCritical,
			"Kafka cluster {{ $labels.cluster }} is unreachable",
			"The console has not reached Kafka cluster {{ $labels.cluster }} for 2 minutes."),
		alert("SwitchyardRabbitMQClusterDown", collector.MRabbitUp+" == 0", two, SeverityCritical,
			"RabbitMQ cluster {{ $labels.cluster }} is unreachable",
			"The console has not reached the management API of RabbitMQ cluster {{ $labels.cluster }} for 2 minutes."),
		alert("SwitchyardRedriveJobPaused", gt(collector.MJobsPaused, 0), five, SeverityWarning,
			"{{ $value }} dead-letter job(s) held up by a broker outage",
			"A redrive, quarantine or discard job has been retrying its batch for 5 minutes."),
	}}
	return PromRuleFile{Groups: []PromRuleGroup{recording, alerts}, Source: "its recommended recording and alerting rules"}
}

// selectorPromQL renders one selector as PromQL does in a rule.
func selectorPromQL(s Selector) string {
	var b strings.Builder
	writeSelector(&b, &s)
	return b.String()
}
