package collector_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/collector"
)

// The Poller turns consecutive snapshots into per-partition throughput and
// lag in seconds: a group that committed offset 50 while the log grows by
// 50 messages every 10 s is 20 s behind after the second poll (the time the
// log was at offset 50, extrapolated from the table's rate), and the group
// carries an evaluator status.
func TestPollerAddsRatesLagSecondsAndStatus(t *testing.T) {
	const topic = "orders.order.created.v1"
	c := newCluster(t, 1, topic)
	cl := newClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	produce(t, cl, topic, 1, 100)
	var offs kadm.Offsets
	offs.AddOffset(topic, 0, 50, -1)
	if err := adm.CommitAllOffsets(context.Background(), "reports", offs); err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	src, err := collector.NewKafkaSource("main", cl, collector.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eval, err := collector.NewEvaluator(collector.EvaluatorOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{src}, Evaluator: eval, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, _ := p.Latest()[0].Snapshot.Group("reports")
	if len(g.Partitions) != 1 || g.Partitions[0].LagSecondsKnown {
		t.Fatalf("after one poll lag seconds must be unknown (one point), got %+v", g.Partitions)
	}

	produce(t, cl, topic, 1, 50)
	now = now.Add(10 * time.Second)
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := p.Latest()[0]
	tp, _ := v.Snapshot.Topic(topic)
	if got := tp.Partitions[0].Rate; math.Abs(got-5) > 1e-9 {
		t.Errorf("partition rate = %v msgs/s, want 5 (50 messages in 10 s)", got)
	}
	g, _ = v.Snapshot.Group("reports")
	gp := g.Partitions[0]
	if !gp.LagSecondsKnown || math.Abs(gp.LagSeconds-20) > 1e-6 {
		t.Errorf("lag seconds = %v (known %v), want 20", gp.LagSeconds, gp.LagSecondsKnown)
	}
	if gp.Lag != 100 {
		t.Errorf("lag = %d messages, want 100", gp.Lag)
	}
	if g.MaxLagTopic != topic || g.MaxLagPartition != 0 || math.Abs(g.MaxLagSeconds-20) > 1e-6 {
		t.Errorf("max lag partition = %s/%d %vs, want %s/0 20s", g.MaxLagTopic, g.MaxLagPartition, g.MaxLagSeconds, topic)
	}
	if g.Status != collector.StatusOK || g.Reason == "" {
		t.Errorf("group status = %v %q, want OK with a reason (the window is still incomplete)", g.Status, g.Reason)
	}

	// /metrics shows the same numbers under the documented names.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.NewExporter(p))
	want := `
# HELP switchyard_consumer_group_lag Consumer group lag in messages on a partition: max(0, high - committed).
# TYPE switchyard_consumer_group_lag gauge
switchyard_consumer_group_lag{cluster="main",group="reports",partition="0",topic="orders.order.created.v1"} 100
# HELP switchyard_consumer_group_lag_seconds Consumer group lag in seconds on a partition, interpolated over the high-watermark history.
# TYPE switchyard_consumer_group_lag_seconds gauge
switchyard_consumer_group_lag_seconds{cluster="main",group="reports",partition="0",topic="orders.order.created.v1"} 20
# HELP switchyard_kafka_up 1 when the last poll of the Kafka cluster succeeded.
# TYPE switchyard_kafka_up gauge
switchyard_kafka_up{cluster="main"} 1
# HELP switchyard_kafka_partition_messages_per_second Messages produced per second to a partition, from watermark deltas.
# TYPE switchyard_kafka_partition_messages_per_second gauge
switchyard_kafka_partition_messages_per_second{cluster="main",partition="0",topic="orders.order.created.v1"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "switchyard_consumer_group_lag", "switchyard_consumer_group_lag_seconds", "switchyard_kafka_up", "switchyard_kafka_partition_messages_per_second"); err != nil {
		t.Error(err)
	}
}
