package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// A message that always fails lands once in <topic>.dlq with the
// handler's error, the attempt count, its origin and its original bytes
// and headers; the group commits past it; a restarted consumer of the same
// group does not see it again.
func TestConsumerDeadLettersAfterLastAttempt(t *testing.T) {
	topic := uniqueTopic("declined")
	_, addrs := newCluster(t, 3, topic)
	adm := newAdmin(t, addrs)
	pub := newPublisher(t, addrs, PublisherOptions{})
	group := "g-" + topic

	var mu sync.Mutex
	var attempts []int
	stop := startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic},
		Retry: fastRetry(3), Cluster: "test-cluster", Service: "billing",
		Handler: func(_ context.Context, d *Delivery) error {
			mu.Lock()
			attempts = append(attempts, d.Attempt)
			mu.Unlock()
			return delivery.Errorf("PAYMENT_DECLINED", "card ending %s was declined", "4242")
		},
	})

	env := envelope(t, "order-7", map[string]any{"amount": 12})
	publish(t, pub, topic, delivery.Headers{{Key: "x-origin", Value: []byte("web")}}, env)
	orig := readAll(t, addrs, topic)
	if len(orig) != 1 {
		t.Fatalf("source topic holds %d records, want 1", len(orig))
	}
	src := orig[0]
	waitCommitted(t, adm, group, topic, src.Partition, src.Offset+1)

	dlqs := readAll(t, addrs, topic+".dlq")
	if len(dlqs) != 1 {
		t.Fatalf("dlq holds %d records, want exactly 1", len(dlqs))
	}
	got := dlqs[0]
	if !bytes.Equal(got.Value, src.Value) {
		t.Errorf("dlq value differs from the original:\n got %s\nwant %s", got.Value, src.Value)
	}
	if string(got.Key) != "order-7" {
		t.Errorf("dlq key = %q, want order-7", got.Key)
	}
	dl := delivery.Decode(message(got))
	if dl.Format != delivery.FormatSwitchyard {
		t.Errorf("format = %s, want switchyard", dl.Format)
	}
	if dl.Error.Code != "PAYMENT_DECLINED" || dl.Error.Message != "card ending 4242 was declined" {
		t.Errorf("error = %q %q, want PAYMENT_DECLINED / card ending 4242 was declined", dl.Error.Code, dl.Error.Message)
	}
	if dl.Attempts != 3 {
		t.Errorf("attempts = %d, want 3", dl.Attempts)
	}
	wantOrigin := delivery.Location{Broker: "kafka", Cluster: "test-cluster", Topic: topic, Partition: src.Partition, Offset: src.Offset, ConsumerGroup: group, Service: "billing"}
	if dl.Origin != wantOrigin {
		t.Errorf("origin = %+v\nwant %+v", dl.Origin, wantOrigin)
	}
	if dl.FirstFailureAt.IsZero() || dl.LastFailureAt.Before(dl.FirstFailureAt) {
		t.Errorf("failure times first=%v last=%v", dl.FirstFailureAt, dl.LastFailureAt)
	}
	for _, h := range src.Headers {
		if v, ok := dl.Headers.Get(h.Key); !ok || !bytes.Equal(v, h.Value) {
			t.Errorf("original header %s=%q not kept on the dead letter (got %q)", h.Key, h.Value, v)
		}
	}
	if dl.Envelope == nil || dl.Envelope.ID != env.ID {
		t.Errorf("dead letter envelope = %+v, want id %s", dl.Envelope, env.ID)
	}
	mu.Lock()
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Errorf("handler saw attempts %v, want [1 2 3]", attempts)
	}
	mu.Unlock()

	// Restart: the same group resumes after the dead-lettered record.
	stop()
	var seen []string
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic}, Retry: fastRetry(3),
		Handler: func(_ context.Context, d *Delivery) error {
			mu.Lock()
			seen = append(seen, d.Envelope.ID)
			mu.Unlock()
			return nil
		},
	})
	next := envelope(t, "order-7", map[string]any{"amount": 13})
	publish(t, pub, topic, nil, next)
	waitCommitted(t, adm, group, topic, src.Partition, src.Offset+2)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{next.ID}) {
		t.Errorf("restarted consumer handled %v, want only the new event %s", seen, next.ID)
	}
}

// Failing twice then succeeding leaves no dead letter and one side effect.
func TestConsumerRetriesThenSucceeds(t *testing.T) {
	topic := uniqueTopic("flaky")
	_, addrs := newCluster(t, 1, topic)
	adm := newAdmin(t, addrs)
	pub := newPublisher(t, addrs, PublisherOptions{})
	group := "g-" + topic

	var mu sync.Mutex
	var attempts []int
	var effects atomic.Int32
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic}, Retry: fastRetry(5),
		Handler: func(_ context.Context, d *Delivery) error {
			mu.Lock()
			attempts = append(attempts, d.Attempt)
			mu.Unlock()
			if d.Attempt < 3 {
				return errors.New("database is restarting")
			}
			effects.Add(1)
			return nil
		},
	})
	publish(t, pub, topic, nil, envelope(t, "k", map[string]any{"n": 1}))
	waitCommitted(t, adm, group, topic, 0, 1)

	if n := effects.Load(); n != 1 {
		t.Errorf("side effect happened %d times, want 1", n)
	}
	mu.Lock()
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Errorf("attempts = %v, want [1 2 3]", attempts)
	}
	mu.Unlock()
	if n := testenv.SumOffsets(testenv.KafkaEndOffsets(t, adm, topic+".dlq")); n != 0 {
		t.Errorf("dlq holds %d records, want none", n)
	}
}

// Messages no retry can fix go to the DLQ after one attempt, or without
// the handler at all when the payload itself is the problem.
func TestConsumerDeadLettersAtOnce(t *testing.T) {
	tests := []struct {
		name      string
		value     func(t *testing.T) []byte
		handler   func(calls *atomic.Int32) Handler
		wantCode  string
		wantTries int
		wantCalls int32
		wantStack bool
	}{
		{
			name:  "permanent error",
			value: func(t *testing.T) []byte { return mustJSON(t, envelope(t, "k", map[string]any{"n": 1})) },
			handler: func(calls *atomic.Int32) Handler {
				return func(context.Context, *Delivery) error {
					calls.Add(1)
					return delivery.Permanent(delivery.Errorf("ACCOUNT_CLOSED", "account 9 is closed"))
				}
			},
			wantCode: "ACCOUNT_CLOSED", wantTries: 1, wantCalls: 1,
		},
		{
			name:      "not JSON",
			value:     func(*testing.T) []byte { return []byte("hello, not json") },
			wantCode:  delivery.CodeUndecodable,
			wantTries: 1, wantCalls: 0,
		},
		{
			name: "schema-invalid envelope",
			value: func(t *testing.T) []byte {
				env := envelope(t, "k", map[string]any{"n": 1})
				env.Type = "OrderCreated"
				return mustJSON(t, env)
			},
			wantCode:  delivery.CodeValidationFailed,
			wantTries: 1, wantCalls: 0,
		},
		{
			name:  "handler panic",
			value: func(t *testing.T) []byte { return mustJSON(t, envelope(t, "k", map[string]any{"n": 1})) },
			handler: func(calls *atomic.Int32) Handler {
				return func(context.Context, *Delivery) error {
					calls.Add(1)
					var m map[string]int
					m["boom"]++ // nil map write
					return nil
				}
			},
			wantCode: delivery.CodeHandlerPanic, wantTries: 2, wantCalls: 2, wantStack: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			topic := uniqueTopic("poison")
			_, addrs := newCluster(t, 1, topic)
			adm := newAdmin(t, addrs)
			group := "g-" + topic
			var calls atomic.Int32
			h := Handler(func(context.Context, *Delivery) error { calls.Add(1); return nil })
			if tt.handler != nil {
				h = tt.handler(&calls)
			}
			startConsumer(t, ConsumerOptions{Brokers: addrs, Group: group, Topics: []string{topic}, Retry: fastRetry(2), Handler: h})
			value := tt.value(t)
			src := produceRaw(t, newClient(t, addrs), topic, "k", value)
			waitCommitted(t, adm, group, topic, 0, src.Offset+1)

			dlqs := readAll(t, addrs, topic+".dlq")
			if len(dlqs) != 1 {
				t.Fatalf("dlq holds %d records, want 1", len(dlqs))
			}
			dl := delivery.Decode(message(dlqs[0]))
			if dl.Error.Code != tt.wantCode {
				t.Errorf("error code = %q (%s), want %q", dl.Error.Code, dl.Error.Message, tt.wantCode)
			}
			if dl.Attempts != tt.wantTries {
				t.Errorf("attempts = %d, want %d", dl.Attempts, tt.wantTries)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("handler called %d times, want %d", n, tt.wantCalls)
			}
			if !bytes.Equal(dlqs[0].Value, value) {
				t.Errorf("dlq value = %q, want the original %q", dlqs[0].Value, value)
			}
			if tt.wantStack && !strings.Contains(dl.Error.Stack, "goroutine") {
				t.Errorf("stack = %q, want a goroutine stack", dl.Error.Stack)
			}
		})
	}
}

// While the dead-letter topic refuses writes, the failed record's offset
// is not committed (the one before it is); once writes succeed the dead
// letter lands and the offset moves past it.
func TestConsumerHoldsOffsetUntilDeadLetterLands(t *testing.T) {
	topic := uniqueTopic("held")
	dlq := topic + ".dlq"
	c, addrs := newCluster(t, 1, topic, dlq)
	adm := newAdmin(t, addrs)
	cl := newClient(t, addrs)
	group := "g-" + topic

	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: dlq, Err: kerr.PolicyViolation, Count: -1})
	var calls atomic.Int32
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic}, Retry: fastRetry(2),
		Handler: func(_ context.Context, d *Delivery) error {
			if string(d.Record.Key) == "bad" {
				calls.Add(1)
				return delivery.Errorf("OUT_OF_STOCK", "sku 1 is out of stock")
			}
			return nil
		},
	})
	good := produceRaw(t, cl, topic, "good", mustJSON(t, envelope(t, "good", 1)))
	bad := produceRaw(t, cl, topic, "bad", mustJSON(t, envelope(t, "bad", 2)))

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := fault.Wait(ctx, 3); err != nil {
		t.Fatalf("dead-letter produce was not retried 3 times: %v", err)
	}
	waitCommitted(t, adm, group, topic, 0, good.Offset+1)
	if got := committed(t, adm, group, topic, 0); got != bad.Offset {
		t.Fatalf("while the DLQ refuses writes committed offset = %d, want %d (the failed record)", got, bad.Offset)
	}
	if n := testenv.SumOffsets(testenv.KafkaEndOffsets(t, adm, dlq)); n != 0 {
		t.Fatalf("dlq holds %d records while refusing writes", n)
	}

	fault.Remove()
	waitCommitted(t, adm, group, topic, 0, bad.Offset+1)
	dlqs := readAll(t, addrs, dlq)
	if len(dlqs) != 1 {
		t.Fatalf("dlq holds %d records, want 1", len(dlqs))
	}
	dl := delivery.Decode(message(dlqs[0]))
	if dl.Origin.Offset != bad.Offset || dl.Error.Code != "OUT_OF_STOCK" {
		t.Errorf("dead letter origin offset %d code %s, want %d OUT_OF_STOCK", dl.Origin.Offset, dl.Error.Code, bad.Offset)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times for the bad record, want 2 (the DLQ retries must not re-run it)", n)
	}
}

// The same envelope id delivered twice has its side effect once.
func TestConsumerIdempotency(t *testing.T) {
	topic := uniqueTopic("dup")
	_, addrs := newCluster(t, 1, topic)
	adm := newAdmin(t, addrs)
	pub := newPublisher(t, addrs, PublisherOptions{})
	group := "g-" + topic

	var effects atomic.Int32
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic},
		Idempotency: delivery.NewMemoryKeyStore(),
		Handler:     func(context.Context, *Delivery) error { effects.Add(1); return nil },
	})
	env := envelope(t, "k", map[string]any{"n": 1})
	publish(t, pub, topic, nil, env, env)
	waitCommitted(t, adm, group, topic, 0, 2)
	if n := effects.Load(); n != 1 {
		t.Errorf("side effect happened %d times for one event id, want 1", n)
	}
}

// Per-key order holds across partitions handled concurrently.
func TestConsumerKeepsPerKeyOrder(t *testing.T) {
	topic := uniqueTopic("ordered")
	_, addrs := newCluster(t, 4, topic)
	pub := newPublisher(t, addrs, PublisherOptions{})
	keys := []string{"a", "b", "c", "d", "e"}

	var mu sync.Mutex
	got := map[string][]int{}
	n := 0
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: "g-" + topic, Topics: []string{topic},
		Handler: func(_ context.Context, d *Delivery) error {
			var p struct{ Seq int }
			if err := json.Unmarshal(d.Envelope.Payload, &p); err != nil {
				return delivery.Permanent(err)
			}
			mu.Lock()
			got[d.Envelope.Metadata.PartitionKey] = append(got[d.Envelope.Metadata.PartitionKey], p.Seq)
			n++
			mu.Unlock()
			return nil
		},
	})

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var failed atomic.Int32
	for i := range 200 {
		k := keys[i%len(keys)]
		pub.PublishAsync(ctx, topic, envelope(t, k, map[string]int{"seq": i}), nil, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := pub.Flush(ctx); err != nil || failed.Load() > 0 {
		t.Fatalf("publish: flush %v, %d failed", err, failed.Load())
	}
	testenv.WaitFor(t, "200 messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return n >= 200 })

	mu.Lock()
	defer mu.Unlock()
	if n != 200 {
		t.Errorf("handled %d messages, want 200", n)
	}
	for _, k := range keys {
		seqs := got[k]
		if len(seqs) != 40 {
			t.Errorf("key %s: %d messages, want 40", k, len(seqs))
		}
		if !slices.IsSorted(seqs) {
			t.Errorf("key %s arrived out of order: %v", k, seqs)
		}
	}
}

// When a second member joins, partitions move without any event being
// handled twice: the first member commits what it finished on revoke.
func TestConsumerRebalanceHandsOverWithoutDuplicates(t *testing.T) {
	topic := uniqueTopic("rebalance")
	_, addrs := newCluster(t, 6, topic)
	adm := newAdmin(t, addrs)
	pub := newPublisher(t, addrs, PublisherOptions{})
	group := "g-" + topic

	var mu sync.Mutex
	count := map[string]int{}
	byMember := map[string]int{}
	handler := func(member string) Handler {
		return func(_ context.Context, d *Delivery) error {
			mu.Lock()
			count[d.Envelope.ID]++
			byMember[member]++
			mu.Unlock()
			return nil
		}
	}
	startConsumer(t, ConsumerOptions{Brokers: addrs, Group: group, Topics: []string{topic}, Handler: handler("a")})

	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	send := func(from, to int) {
		envs := make([]delivery.Envelope, 0, to-from)
		for i := from; i < to; i++ {
			envs = append(envs, envelope(t, keys[i%len(keys)], i))
		}
		publish(t, pub, topic, nil, envs...)
	}
	handled := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(count) >= n }
	}
	send(0, 100)
	testenv.WaitFor(t, "first 100 handled", handled(100))

	startConsumer(t, ConsumerOptions{Brokers: addrs, Group: group, Topics: []string{topic}, Handler: handler("b")})
	send(100, 200) // while the group rebalances
	testenv.WaitFor(t, "both members to own partitions", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		gs, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return false
		}
		g := gs[group]
		if g.State != "Stable" || len(g.Members) != 2 {
			return false
		}
		for _, m := range g.Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok || len(ca.Topics) == 0 {
				return false
			}
		}
		return true
	})
	send(200, 300)
	testenv.WaitFor(t, "all 300 handled", handled(300))
	// Everything handled is committed once the members settle.
	testenv.WaitFor(t, "group to commit all 300", func() bool {
		var sum int64
		for p := range int32(6) {
			if o := committed(t, adm, group, topic, p); o > 0 {
				sum += o
			}
		}
		return sum == 300
	})

	mu.Lock()
	defer mu.Unlock()
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s handled %d times, want once", id, n)
		}
	}
	if byMember["b"] == 0 {
		t.Errorf("the second member handled nothing (%v): no rebalance happened", byMember)
	}
}
