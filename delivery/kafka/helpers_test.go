package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// wait is the generous deadline every polling assertion gets.
const wait = 20 * time.Second

var nameSeq atomic.Int64

// uniqueTopic returns a platform-conforming topic name no other test uses.
func uniqueTopic(event string) string {
	return fmt.Sprintf("test.kafka.%s%d.v1", event, nameSeq.Add(1))
}

// newCluster starts an in-process kfake cluster holding topics with
// partitions partitions each.
func newCluster(t testing.TB, partitions int32, topics ...string) (*kfake.Cluster, []string) {
	t.Helper()
	var opts []kfake.Opt
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c := testenv.Kafka(t, opts...)
	return c, c.ListenAddrs()
}

// newClient returns a plain kgo client closed at cleanup.
func newClient(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return testenv.KafkaClient(t, addrs, opts...)
}

func newAdmin(t testing.TB, addrs []string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, addrs))
}

// envelope returns a valid envelope keyed by key with payload.
func envelope(t testing.TB, key string, payload any) delivery.Envelope {
	t.Helper()
	env, err := delivery.NewEnvelope("orders.order.created.v1", "checkout", payload, delivery.Metadata{PartitionKey: key, TenantID: "t1"})
	if err != nil {
		t.Fatalf("new envelope: %v", err)
	}
	env.TraceID = strings.ReplaceAll(uuid.NewString(), "-", "")
	return env
}

func newPublisher(t testing.TB, addrs []string, opts PublisherOptions) *Publisher {
	t.Helper()
	opts.Brokers = addrs
	p, err := NewPublisher(opts)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// publish writes envs to topic and returns the produced records.
func publish(t testing.TB, p *Publisher, topic string, extra delivery.Headers, envs ...delivery.Envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, env := range envs {
		if err := p.Publish(ctx, topic, env, extra); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// produceRaw writes raw bytes to topic, bypassing the Publisher, and
// returns the produced record (with its offset).
func produceRaw(t testing.TB, cl *kgo.Client, topic, key string, value []byte) *kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return r
}

// startConsumer runs a Consumer until the test ends (or stop is called)
// and fails the test if Run returns an error.
func startConsumer(t testing.TB, opts ConsumerOptions) (stop func()) {
	t.Helper()
	c, err := NewConsumer(opts)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consumer Run: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("consumer Run did not return within %s after cancel", wait)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// committed returns the group's committed offset of topic/partition, -1
// when none.
func committed(t testing.TB, adm *kadm.Client, group, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		// A group that has not committed yet may answer with an error.
		t.Logf("fetch offsets of %s: %v", group, err)
		return -1
	}
	o, ok := os.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return -1
	}
	return o.At
}

// waitCommitted waits until the group has committed at least off.
func waitCommitted(t testing.TB, adm *kadm.Client, group, topic string, partition int32, off int64) {
	t.Helper()
	testenv.WaitFor(t, fmt.Sprintf("group %s to commit %s/%d past %d", group, topic, partition, off-1), func() bool {
		return committed(t, adm, group, topic, partition) >= off
	})
}

// readAll reads every record of topic up to its current high watermarks
// with a plain (group-less) consumer.
func readAll(t testing.TB, addrs []string, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	end := testenv.KafkaEndOffsets(t, newAdmin(t, addrs), topic)
	if testenv.SumOffsets(end) == 0 {
		return nil
	}
	seen := map[int32]int64{}
	return read(t, addrs, topic, func(rs []*kgo.Record) bool {
		for _, r := range rs[len(rs)-1:] {
			seen[r.Partition] = r.Offset + 1
		}
		for p, hwm := range end {
			if seen[p] < hwm {
				return false
			}
		}
		return true
	}, opts...)
}

// readN reads the first n records of topic (a read_committed reader never
// reaches the high watermark when the last offset is a transaction marker).
func readN(t testing.TB, addrs []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	return read(t, addrs, topic, func(rs []*kgo.Record) bool { return len(rs) >= n }, opts...)
}

// read consumes topic from the start, one record at a time into done,
// until done reports true.
func read(t testing.TB, addrs []string, topic string, done func([]*kgo.Record) bool, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, addrs, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out []*kgo.Record
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: timed out with %d records", topic, len(out))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("read %s: %v", topic, err) })
		for _, r := range fs.Records() {
			out = append(out, r)
			if done(out) {
				return out
			}
		}
	}
}

// message turns a consumed record into the delivery.Message Decode takes.
func message(r *kgo.Record) delivery.Message {
	return delivery.Message{
		Location:  delivery.Location{Broker: delivery.BrokerKafka, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset},
		Key:       r.Key,
		Headers:   toHeaders(r.Headers),
		Body:      r.Value,
		Timestamp: r.Timestamp,
	}
}

// fastRetry retries quickly so that tests do not wait on backoff.
func fastRetry(attempts int) delivery.RetryPolicy {
	return delivery.RetryPolicy{MaxAttempts: attempts, Initial: time.Millisecond, MaxDelay: time.Millisecond}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
