package collector

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric is one value of a broker-derived series: the same list feeds the
// time-series store (history for the dashboards) and /metrics (Prometheus),
// so the two can never disagree on names or labels. Labels are name/value
// pairs in a fixed order per metric name.
type Metric struct {
	Name   string
	Labels []string
	Value  float64
	Help   string
}

// Names of the broker-derived series. They are a stable contract: the
// README lists them, Grafana dashboards and alert rules use them.
const (
	MKafkaUp              = "switchyard_kafka_up"
	MKafkaHighWatermark   = "switchyard_kafka_partition_high_watermark"
	MKafkaLowWatermark    = "switchyard_kafka_partition_low_watermark"
	MKafkaPartitionRate   = "switchyard_kafka_partition_messages_per_second"
	MKafkaTopicRate       = "switchyard_kafka_topic_messages_per_second"
	MKafkaTopicMessages   = "switchyard_kafka_topic_messages"
	MKafkaDLQMessages     = "switchyard_kafka_dlq_messages"
	MGroupLag             = "switchyard_consumer_group_lag"
	MGroupLagSeconds      = "switchyard_consumer_group_lag_seconds"
	MGroupPartitionStatus = "switchyard_consumer_group_partition_status"
	MGroupTotalLag        = "switchyard_consumer_group_total_lag"
	MGroupMaxLagSeconds   = "switchyard_consumer_group_max_lag_seconds"
	MGroupStatus          = "switchyard_consumer_group_status"
	MGroupMembers         = "switchyard_consumer_group_members"
	MGroupConsumeRate     = "switchyard_consumer_group_messages_per_second"
	MRabbitUp             = "switchyard_rabbitmq_up"
	MQueueReady           = "switchyard_rabbitmq_queue_messages_ready"
	MQueueUnacked         = "switchyard_rabbitmq_queue_messages_unacked"
	MQueueMessages        = "switchyard_rabbitmq_queue_messages"
	MQueueConsumers       = "switchyard_rabbitmq_queue_consumers"
	MQueueUtilisation     = "switchyard_rabbitmq_queue_consumer_utilisation"
	MQueuePublishRate     = "switchyard_rabbitmq_queue_publish_per_second"
	MQueueDeliverRate     = "switchyard_rabbitmq_queue_deliver_per_second"
	MQueueAckRate         = "switchyard_rabbitmq_queue_ack_per_second"
	MQueueRedeliverRate   = "switchyard_rabbitmq_queue_redeliver_per_second"
	MQueueIsDLQ           = "switchyard_rabbitmq_queue_is_dlq"
	MRabbitNodeAlarm      = "switchyard_rabbitmq_node_alarm"
	// MJobsPaused is redrive's gauge (redrive/metrics.go), recorded into
	// the history by RegistryHistory so that alert rules can read it.
	MJobsPaused = "switchyard_dlq_jobs_paused"
)

var metricHelp = map[string]string{
	MKafkaUp:              "1 when the last poll of the Kafka cluster succeeded.",
	MKafkaHighWatermark:   "High watermark (next offset) of a partition.",
	MKafkaLowWatermark:    "Low watermark (first retained offset) of a partition.",
	MKafkaPartitionRate:   "Messages produced per second to a partition, from watermark deltas.",
	MKafkaTopicRate:       "Messages produced per second to a topic, from watermark deltas.",
	MKafkaTopicMessages:   "Messages a topic retains (sum of high - low).",
	MKafkaDLQMessages:     "Messages a dead-letter topic retains.",
	MGroupLag:             "Consumer group lag in messages on a partition: max(0, high - committed).",
	MGroupLagSeconds:      "Consumer group lag in seconds on a partition, interpolated over the high-watermark history.",
	MGroupPartitionStatus: "Burrow status of a group's partition: 0 OK, 1 WARN, 3 STOP, 4 STALL, 5 REWIND.",
	MGroupTotalLag:        "Total lag of a consumer group in messages.",
	MGroupMaxLagSeconds:   "Largest lag in seconds over a group's partitions.",
	MGroupStatus:          "Burrow status of a consumer group: 0 OK, 1 WARN, 2 ERR.",
	MGroupMembers:         "Members of a consumer group.",
	MGroupConsumeRate:     "Messages committed per second by a consumer group.",
	MRabbitUp:             "1 when the last poll of the RabbitMQ management API succeeded.",
	MQueueReady:           "Messages ready for delivery in a queue.",
	MQueueUnacked:         "Messages delivered and not yet acknowledged.",
	MQueueMessages:        "Messages in a queue (ready + unacked).",
	MQueueConsumers:       "Consumers of a queue.",
	MQueueUtilisation:     "Share of time a queue's consumers could take deliveries (0..1).",
	MQueuePublishRate:     "Messages published per second to a queue.",
	MQueueDeliverRate:     "Messages delivered per second from a queue.",
	MQueueAckRate:         "Messages acknowledged per second on a queue.",
	MQueueRedeliverRate:   "Messages redelivered per second on a queue.",
	MQueueIsDLQ:           "1 when the queue is a dead-letter queue (by name or as another queue's dead-letter target).",
	MRabbitNodeAlarm:      "1 while a RabbitMQ node raises the alarm (memory, disk, down).",
	MDLQEntries:           "Indexed dead letters per DLQ destination and status.",
}

func i32(v int32) string { return strconv.Itoa(int(v)) }

// KafkaMetrics lists the series of one cluster view. An unreachable cluster
// yields only its up series: stale values are not re-exported as if current.
func KafkaMetrics(v ClusterView) []Metric {
	c := v.Name
	up := 0.0
	if v.Reachable {
		up = 1
	}
	out := []Metric{{Name: MKafkaUp, Labels: []string{"cluster", c}, Value: up}}
	if !v.Reachable || !v.HasSnapshot {
		return out
	}
	s := v.Snapshot
	for _, t := range s.Topics {
		tl := []string{"cluster", c, "topic", t.Name}
		out = append(out, Metric{Name: MKafkaTopicMessages, Labels: tl, Value: float64(t.Messages)})
		if t.IsDLQ {
			out = append(out, Metric{Name: MKafkaDLQMessages, Labels: tl, Value: float64(t.Messages)})
		}
		if r, ok := v.TopicRates[t.Name]; ok {
			out = append(out, Metric{Name: MKafkaTopicRate, Labels: tl, Value: r})
		}
		for _, p := range t.Partitions {
			if p.Error != "" {
				continue
			}
			pl := []string{"cluster", c, "topic", t.Name, "partition", i32(p.Partition)}
			out = append(out,
				Metric{Name: MKafkaHighWatermark, Labels: pl, Value: float64(p.High)},
				Metric{Name: MKafkaLowWatermark, Labels: pl, Value: float64(p.Low)})
			if p.Rate >= 0 {
				out = append(out, Metric{Name: MKafkaPartitionRate, Labels: pl, Value: p.Rate})
			}
		}
	}
	for _, g := range s.Groups {
		gl := []string{"cluster", c, "group", g.Name}
		out = append(out,
			Metric{Name: MGroupTotalLag, Labels: gl, Value: float64(g.TotalLag)},
			Metric{Name: MGroupMembers, Labels: gl, Value: float64(g.Members)},
			Metric{Name: MGroupStatus, Labels: gl, Value: g.Status.MetricValue()},
			Metric{Name: MGroupMaxLagSeconds, Labels: gl, Value: g.MaxLagSeconds})
		if r, ok := v.GroupRates[g.Name]; ok {
			out = append(out, Metric{Name: MGroupConsumeRate, Labels: gl, Value: r})
		}
		for _, p := range g.Partitions {
			if p.Lag < 0 {
				continue
			}
			pl := []string{"cluster", c, "group", g.Name, "topic", p.Topic, "partition", i32(p.Partition)}
			out = append(out,
				Metric{Name: MGroupLag, Labels: pl, Value: float64(p.Lag)},
				Metric{Name: MGroupPartitionStatus, Labels: pl, Value: p.Status.MetricValue()})
			if p.LagSecondsKnown {
				out = append(out, Metric{Name: MGroupLagSeconds, Labels: pl, Value: p.LagSeconds})
			}
		}
	}
	return out
}

// RabbitMetrics lists the series of one RabbitMQ view.
func RabbitMetrics(v RabbitView) []Metric {
	c := v.Name
	up := 0.0
	if v.Reachable {
		up = 1
	}
	out := []Metric{{Name: MRabbitUp, Labels: []string{"cluster", c}, Value: up}}
	if !v.Reachable || !v.HasSnapshot {
		return out
	}
	for _, q := range v.Snapshot.Queues {
		l := []string{"cluster", c, "vhost", q.VHost, "queue", q.Name}
		dlq := 0.0
		if q.IsDLQ {
			dlq = 1
		}
		out = append(out,
			Metric{Name: MQueueReady, Labels: l, Value: float64(q.Ready)},
			Metric{Name: MQueueUnacked, Labels: l, Value: float64(q.Unacked)},
			Metric{Name: MQueueMessages, Labels: l, Value: float64(q.Total)},
			Metric{Name: MQueueConsumers, Labels: l, Value: float64(q.Consumers)},
			Metric{Name: MQueuePublishRate, Labels: l, Value: q.PublishRate},
			Metric{Name: MQueueDeliverRate, Labels: l, Value: q.DeliverRate},
			Metric{Name: MQueueAckRate, Labels: l, Value: q.AckRate},
			Metric{Name: MQueueRedeliverRate, Labels: l, Value: q.RedeliverRate},
			Metric{Name: MQueueIsDLQ, Labels: l, Value: dlq})
		if q.Utilisation >= 0 {
			out = append(out, Metric{Name: MQueueUtilisation, Labels: l, Value: q.Utilisation})
		}
	}
	for _, n := range v.Snapshot.Nodes {
		for _, a := range []struct {
			kind string
			on   bool
		}{{"memory", n.MemAlarm}, {"disk", n.DiskAlarm}, {"down", !n.Running}} {
			v := 0.0
			if a.on {
				v = 1
			}
			out = append(out, Metric{Name: MRabbitNodeAlarm, Labels: []string{"cluster", c, "node", n.Name, "alarm", a.kind}, Value: v})
		}
	}
	return out
}

// BrokerViews is what Exporter reads; *Poller implements it.
type BrokerViews interface {
	Latest() []ClusterView
	RabbitLatest() []RabbitView
}

// Exporter is a prometheus.Collector over the Poller's latest views.
type Exporter struct{ views BrokerViews }

// NewExporter returns a collector for /metrics.
func NewExporter(v BrokerViews) *Exporter { return &Exporter{views: v} }

// Describe is empty: the series set follows the brokers (unchecked collector).
func (e *Exporter) Describe(chan<- *prometheus.Desc) {}

// Collect emits every broker-derived series as a gauge.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	var ms []Metric
	for _, v := range e.views.Latest() {
		ms = append(ms, KafkaMetrics(v)...)
	}
	for _, v := range e.views.RabbitLatest() {
		ms = append(ms, RabbitMetrics(v)...)
	}
	descs := map[string]*prometheus.Desc{}
	for _, m := range ms {
		names := make([]string, 0, len(m.Labels)/2)
		vals := make([]string, 0, len(m.Labels)/2)
		for i := 0; i+1 < len(m.Labels); i += 2 {
			names = append(names, m.Labels[i])
			vals = append(vals, m.Labels[i+1])
		}
		d, ok := descs[m.Name]
		if !ok {
			d = prometheus.NewDesc(m.Name, metricHelp[m.Name], names, nil)
			descs[m.Name] = d
		}
		if pm, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, m.Value, vals...); err == nil {
			ch <- pm
		}
	}
}

// MetricNames returns every broker-derived series name with its help, sorted
// (for the README and tests).
func MetricNames() [][2]string {
	out := make([][2]string, 0, len(metricHelp))
	for n, h := range metricHelp {
		out = append(out, [2]string{n, h})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}
