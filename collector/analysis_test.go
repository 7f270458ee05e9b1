package collector_test

import (
	"context"
	"math"
	"testing"
	"time"

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
	src, err := collector.NewKafkaSource("main", cl)
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
}
