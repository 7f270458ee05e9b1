package demo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// startIdle starts the platform (the embedded Kafka and its topics)
// without its services, so a test alone writes and commits.
func startIdle(t *testing.T, opts Options) (*Platform, *kgo.Client, *kadm.Client) {
	t.Helper()
	opts.DataDir = t.TempDir()
	opts.KafkaAddr = "127.0.0.1:0"
	p, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cl := testenv.KafkaClient(t, p.KafkaBrokers(), kgo.DefaultProduceTopic(TopicOrders), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	return p, cl, kadm.NewClient(cl)
}

// produceAt writes n records to partition 0 of topic, stamped at.
func produceAt(t *testing.T, cl *kgo.Client, topic string, n int, at time.Time) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("record %d", i)), Timestamp: at}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
}

// startOffset is the log start offset of partition 0 of topic: the oldest
// record a consumer can still read.
func startOffset(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	lo, err := adm.ListStartOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := lo.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("start offset of %s/0: %v", topic, o.Err)
	}
	return o.Offset
}

func commit(t *testing.T, adm *kadm.Client, group, topic string, at int64) {
	t.Helper()
	var os kadm.Offsets
	os.AddOffset(topic, 0, at, -1)
	if err := adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Fatalf("commit %s at %d for %s: %v", topic, at, group, err)
	}
}

// Records past their age go, but not those a consumer group has yet to
// read: lag stays what the operator would expect, and young records stay
// whatever the groups did.
func TestRetentionTrimsAgedRecordsNoGroupStillNeeds(t *testing.T) {
	p, cl, adm := startIdle(t, Options{Retention: Retention{MaxAge: time.Hour, MaxRecords: 1000}})
	now := time.Now()
	produceAt(t, cl, TopicOrders, 30, now.Add(-2*time.Hour)) // offsets 0–29, aged
	produceAt(t, cl, TopicOrders, 10, now.Add(-time.Minute)) // offsets 30–39, young
	commit(t, adm, GroupBilling, TopicOrders, 40)
	commit(t, adm, GroupAnalytics, TopicOrders, 12) // analytics lags

	if _, err := p.trim(context.Background(), adm, now); err != nil {
		t.Fatal(err)
	}
	if got := startOffset(t, adm, TopicOrders); got != 12 {
		t.Fatalf("after a pass the orders log starts at %d, want 12 (aged records up to the lagging group's committed offset)", got)
	}
	commit(t, adm, GroupAnalytics, TopicOrders, 40)
	if _, err := p.trim(context.Background(), adm, now); err != nil {
		t.Fatal(err)
	}
	if got := startOffset(t, adm, TopicOrders); got != 30 {
		t.Fatalf("once every group has read all, the orders log starts at %d, want 30 (the first young record)", got)
	}
	// The lag the console shows is still the groups' own: nothing they
	// committed lies below the log start.
	lag, err := adm.Lag(context.Background(), GroupAnalytics)
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := lag[GroupAnalytics].Lag.Lookup(TopicOrders, 0); !ok || l.Lag != 0 {
		t.Errorf("analytics lag on orders/0 after trimming = %+v, want 0", l)
	}
}

// MaxRecords bounds a partition even while a group is stalled far behind:
// the bound is what keeps memory flat, whoever stops consuming.
func TestRetentionHoldsMaxRecordsPastAStalledGroup(t *testing.T) {
	p, cl, adm := startIdle(t, Options{Retention: Retention{MaxAge: time.Hour, MaxRecords: 25}})
	now := time.Now()
	produceAt(t, cl, TopicOrders, 100, now) // all young
	commit(t, adm, "someones-stalled-tool", TopicOrders, 0)
	if _, err := p.trim(context.Background(), adm, now); err != nil {
		t.Fatal(err)
	}
	if got := startOffset(t, adm, TopicOrders); got != 75 {
		t.Fatalf("with 100 young records and a bound of 25 the log starts at %d, want 75", got)
	}
}

// Dead letters the console has not indexed stay, however old and many;
// indexed ones go by their own, longer age.
func TestRetentionKeepsDeadLettersUntilIndexed(t *testing.T) {
	dlq := delivery.DLQTopic(TopicOrders)
	indexed := map[string]map[int32]int64{}
	p, cl, adm := startIdle(t, Options{
		Retention: Retention{MaxAge: time.Minute, DLQMaxAge: time.Hour, MaxRecords: 5},
		IndexedUpTo: func(context.Context) (map[string]map[int32]int64, error) {
			return indexed, nil
		},
	})
	now := time.Now()
	produceAt(t, cl, dlq, 20, now.Add(-2*time.Hour))
	produceAt(t, cl, dlq, 5, now.Add(-10*time.Minute)) // past MaxAge, within DLQMaxAge

	if _, err := p.trim(context.Background(), adm, now); err != nil {
		t.Fatal(err)
	}
	if got := startOffset(t, adm, dlq); got != 0 {
		t.Fatalf("a DLQ partition the indexer has not read was trimmed to %d", got)
	}
	indexed[dlq] = map[int32]int64{0: 8}
	if _, err := p.trim(context.Background(), adm, now); err != nil {
		t.Fatal(err)
	}
	if got := startOffset(t, adm, dlq); got != 8 {
		t.Fatalf("with dead letters indexed up to 8 the DLQ starts at %d, want 8", got)
	}
	indexed[dlq][0] = 25
	if _, err := p.trim(context.Background(), adm, now); err != nil {
		t.Fatal(err)
	}
	if got := startOffset(t, adm, dlq); got != 20 {
		t.Fatalf("with every dead letter indexed the DLQ starts at %d, want 20 (the ones younger than DLQMaxAge stay)", got)
	}
}

// The running demo trims behind its own consumers: the orders log start
// moves up while billing, which commits, is never overtaken.
func TestDemoRetentionRunsBehindItsConsumers(t *testing.T) {
	p, cancel, done := startWith(t, Options{DataDir: t.TempDir(), Rate: 200,
		Retention: Retention{MaxAge: 2 * time.Second, Interval: 300 * time.Millisecond}})
	defer stopDemo(t, p, cancel, done)
	cl := testenv.KafkaClient(t, p.KafkaBrokers())
	adm := kadm.NewClient(cl)
	testenv.WaitWithin(t, 60*time.Second, "the orders log to be trimmed on every partition", func() bool {
		lo, err := adm.ListStartOffsets(context.Background(), TopicOrders)
		if err != nil || lo.Error() != nil {
			return false
		}
		moved := 0
		lo.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 {
				moved++
			}
		})
		return moved == partitions
	})
	starts, err := adm.ListStartOffsets(context.Background(), TopicOrders)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{GroupBilling, GroupAnalytics} {
		offs, err := adm.FetchOffsets(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic != TopicOrders {
				return
			}
			// The group may have committed further since the start
			// offsets were listed, never less than they are.
			if s, ok := starts.Lookup(o.Topic, o.Partition); ok && o.At < s.Offset {
				t.Errorf("orders/%d starts at %d, above group %s's committed offset %d", o.Partition, s.Offset, g, o.At)
			}
		})
	}
}
