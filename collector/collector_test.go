package collector_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/collector"
	"switchyard/internal/testenv"
)

func newCluster(t *testing.T, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	return testenv.Kafka(t, kfake.SeedTopics(partitions, topics...))
}

func newClient(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return testenv.KafkaClient(t, addrs, opts...)
}

// produce writes n records to each partition of topic.
func produce(t *testing.T, cl *kgo.Client, topic string, partitions int32, n int) {
	t.Helper()
	var recs []*kgo.Record
	for p := range partitions {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "m%d", i)})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotLagIsExact(t *testing.T) {
	const topic, dlq = "orders.order.created.v1", "orders.order.created.v1.dlq"
	c := newCluster(t, 3, topic, dlq, "billing.invoice.paid.v1.DLT")
	cl := newClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl, topic, 3, 10) // 30 messages, high watermark 10 on each partition
	produce(t, cl, dlq, 3, 1)

	// A group that committed part: 4 on p0, 10 on p1, nothing on p2.
	adm := kadm.NewClient(cl)
	var offs kadm.Offsets
	offs.AddOffset(topic, 0, 4, -1)
	offs.AddOffset(topic, 1, 10, -1)
	if err := adm.CommitAllOffsets(context.Background(), "billing-partial", offs); err != nil {
		t.Fatal(err)
	}

	src, err := collector.NewKafkaSource("main", cl, collector.KafkaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Brokers) != 1 {
		t.Errorf("brokers = %d, want 1", len(snap.Brokers))
	}
	for _, tp := range snap.Topics {
		if strings.HasPrefix(tp.Name, "__") {
			t.Errorf("internal topic %s shown", tp.Name)
		}
	}
	got, ok := snap.Topic(topic)
	if !ok {
		t.Fatalf("topic %s missing from %+v", topic, snap.Topics)
	}
	if got.Messages != 30 || len(got.Partitions) != 3 || got.IsDLQ {
		t.Errorf("topic = %+v, want 30 messages in 3 partitions, not a DLQ", got)
	}
	for _, p := range got.Partitions {
		if p.Low != 0 || p.High != 10 {
			t.Errorf("partition %d watermarks = %d..%d, want 0..10", p.Partition, p.Low, p.High)
		}
	}
	for _, name := range []string{dlq, "billing.invoice.paid.v1.DLT"} {
		if d, _ := snap.Topic(name); !d.IsDLQ {
			t.Errorf("%s not marked as DLQ", name)
		}
	}

	g, ok := snap.Group("billing-partial")
	if !ok {
		t.Fatalf("group missing from %+v", snap.Groups)
	}
	if g.TotalLag != 6 {
		t.Errorf("total lag = %d, want 6 (10-4 on p0, 0 on p1)", g.TotalLag)
	}
	want := []collector.GroupPartition{
		{Topic: topic, Partition: 0, Committed: 4, High: 10, Lag: 6},
		{Topic: topic, Partition: 1, Committed: 10, High: 10, Lag: 0},
	}
	if len(g.Partitions) != len(want) {
		t.Fatalf("group partitions = %+v, want %+v", g.Partitions, want)
	}
	for i := range want {
		if g.Partitions[i] != want[i] {
			t.Errorf("partition %d = %+v, want %+v", i, g.Partitions[i], want[i])
		}
	}
	if g.State != "Empty" || g.Members != 0 {
		t.Errorf("group state/members = %s/%d, want Empty/0", g.State, g.Members)
	}
}

func TestSnapshotLiveConsumer(t *testing.T) {
	const topic = "shipping.parcel.sent.v1"
	c := newCluster(t, 2, topic)
	cl := newClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce(t, cl, topic, 2, 5)

	consumer := newClient(t, c.ListenAddrs(), kgo.ConsumerGroup("shipping-live"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for got := 0; got < 10; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10: %v", got, err)
		}
		got += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	src, _ := collector.NewKafkaSource("main", cl, collector.KafkaOptions{})
	var g collector.Group
	testenv.WaitWithin(t, 20*time.Second, "the live group stable on both partitions", func() bool {
		snap, err := src.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		g, _ = snap.Group("shipping-live")
		return g.State == "Stable" && len(g.Partitions) == 2
	})
	if g.State != "Stable" || g.Members != 1 || g.TotalLag != 0 || g.Protocol == "" {
		t.Errorf("live group = %+v, want Stable, 1 member, lag 0", g)
	}
	for _, p := range g.Partitions {
		if p.Committed != 5 || p.Member == "" {
			t.Errorf("partition %+v: want committed 5 and an assigned member", p)
		}
	}
}

func TestPollerRatesAndUnreachable(t *testing.T) {
	const topic = "payments.card.charged.v1"
	c := newCluster(t, 1, topic)
	cl := newClient(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	src, _ := collector.NewKafkaSource("main", cl, collector.KafkaOptions{})

	var mu sync.Mutex
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	p, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{src}, Now: clock, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if v := p.Latest(); len(v) != 1 || v[0].Polled || v[0].Name != "main" {
		t.Fatalf("before polling: %+v", v)
	}

	ctx := context.Background()
	adm := kadm.NewClient(cl)
	produce(t, cl, topic, 1, 5)
	var offs kadm.Offsets
	offs.AddOffset(topic, 0, 2, -1)
	adm.CommitAllOffsets(ctx, "payments-rate", offs)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	v := p.Latest()[0]
	if !v.Reachable || !v.HasSnapshot || len(v.TopicRates) != 0 {
		t.Fatalf("after one poll: reachable=%v snapshot=%v rates=%v; want no rate yet", v.Reachable, v.HasSnapshot, v.TopicRates)
	}

	advance(10 * time.Second)
	produce(t, cl, topic, 1, 20) // 20 messages in 10 s
	offs = nil
	offs.AddOffset(topic, 0, 7, -1) // 5 consumed in 10 s
	adm.CommitAllOffsets(ctx, "payments-rate", offs)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	v = p.Latest()[0]
	if got := v.TopicRates[topic]; got != 2 {
		t.Errorf("topic rate = %v msg/s, want 2", got)
	}
	if got := v.GroupRates["payments-rate"]; got != 0.5 {
		t.Errorf("group rate = %v msg/s, want 0.5", got)
	}

	// The broker goes away: the error is recorded, the last good snapshot
	// stays, nothing panics.
	c.Close()
	advance(5 * time.Second)
	down := clock()
	if err := p.Refresh(ctx); err == nil {
		t.Fatal("Refresh against a closed cluster succeeded")
	}
	v = p.Latest()[0]
	if v.Reachable || v.Error == "" || !v.UnreachableSince.Equal(down) {
		t.Errorf("unreachable view: reachable=%v error=%q since=%v, want false, an error, %v", v.Reachable, v.Error, v.UnreachableSince, down)
	}
	if tp, ok := v.Snapshot.Topic(topic); !ok || tp.Messages != 25 {
		t.Errorf("last good snapshot lost: %+v", tp)
	}
	advance(5 * time.Second)
	p.Refresh(ctx)
	if v2 := p.Latest()[0]; !v2.UnreachableSince.Equal(down) {
		t.Errorf("unreachable since moved to %v on retry, want %v", v2.UnreachableSince, down)
	}
}

func TestPollerRunNeverReachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cl := newClient(t, []string{addr}, kgo.DialTimeout(500*time.Millisecond))
	src, _ := collector.NewKafkaSource("gone", cl, collector.KafkaOptions{})
	p, err := collector.NewPoller(collector.PollerOptions{Sources: []*collector.KafkaSource{src}, Interval: 50 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.WaitWithin(t, 20*time.Second, "a poll attempt recorded", func() bool { return p.Latest()[0].Polled })
	if v := p.Latest()[0]; v.Reachable || v.Error == "" || v.HasSnapshot {
		t.Errorf("view of a dead cluster = %+v", v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
	if err := src.Ping(context.Background()); err == nil {
		t.Error("Ping of a dead cluster succeeded")
	}
}

func TestIsDLQTopic(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"orders.order.created.v1.dlq", true},
		{"orders.DLT", true},
		{"orders-dlq", true},
		{"orders_error", true},
		{"orders.order.created.v1", false},
		{"orders.dlq.audit", false},
		{"orders.quarantine", false},
	}
	for _, tt := range tests {
		// A snapshot no source took judges with the default patterns.
		if got := (collector.ClusterSnapshot{}).IsDLQTopic(tt.name); got != tt.want {
			t.Errorf("IsDLQTopic(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestKafkaSourceDLQPatterns: a source given the configured dlq.patterns
// marks the topics they match, and only those, as the indexer indexes them;
// the default patterns no longer apply.
func TestKafkaSourceDLQPatterns(t *testing.T) {
	const (
		parked  = "orders.order.created.v1.parked"
		classic = "orders.order.created.v1.dlq"
	)
	c := newCluster(t, 1, parked, classic)
	src, err := collector.NewKafkaSource("main", newClient(t, c.ListenAddrs()), collector.KafkaOptions{DLQPatterns: []string{"*.parked"}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tp, ok := snap.Topic(parked); !ok || !tp.IsDLQ {
		t.Errorf("%s = %+v, want a DLQ by the configured pattern *.parked", parked, tp)
	}
	if tp, ok := snap.Topic(classic); !ok || tp.IsDLQ {
		t.Errorf("%s = %+v, want no DLQ: the configured patterns replace the defaults", classic, tp)
	}
	if !snap.IsDLQTopic("payments.payment.failed.v1.parked") || snap.IsDLQTopic("gone.dlq") {
		t.Error("IsDLQTopic of a name the snapshot does not list ignores the configured patterns")
	}
	if _, err := collector.NewKafkaSource("main", newClient(t, c.ListenAddrs()), collector.KafkaOptions{DLQPatterns: []string{""}}); err == nil {
		t.Error(`NewKafkaSource accepted the dead-letter pattern ""`)
	}
}
