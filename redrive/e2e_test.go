package redrive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"

	"switchyard/delivery"
	"switchyard/delivery/kafka"
	"switchyard/delivery/rabbitmq"
	"switchyard/dlqstore"
	"switchyard/indexer"
	"switchyard/internal/testenv"
)

// The user story end to end: a consumer with a bug dead-letters every
// message, the indexer files the dead letters, the bug is fixed, and one
// redrive of the failure group gets every message handled exactly once.

const (
	e2eMessages = 20
	e2eWaitFor  = 30 * time.Second
	e2eCode     = "ORDER_NOT_FOUND"
)

func e2eQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// e2eRetry fails fast: three attempts a few milliseconds apart.
func e2eRetry() delivery.RetryPolicy {
	return delivery.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, MaxDelay: 5 * time.Millisecond}
}

// billing is the consumer's business logic: while bug is set every message
// fails with ORDER_NOT_FOUND; once fixed it counts each envelope it handles.
type billing struct {
	bug     atomic.Bool
	mu      sync.Mutex
	handled map[string]int // envelope id -> times handled after the fix
}

func newBilling() *billing {
	b := &billing{handled: map[string]int{}}
	b.bug.Store(true)
	return b
}

func (b *billing) handle(env delivery.Envelope) error {
	if b.bug.Load() {
		return delivery.Errorf(e2eCode, "order %s not found", env.Metadata.PartitionKey)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handled[env.ID]++
	return nil
}

func (b *billing) counts() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.handled))
	for k, v := range b.handled {
		out[k] = v
	}
	return out
}

// e2eEnvelopes returns n valid order envelopes.
func e2eEnvelopes(t testing.TB, n int) []delivery.Envelope {
	t.Helper()
	out := make([]delivery.Envelope, n)
	for i := range out {
		env, err := delivery.NewEnvelope("orders.order.created.v1", "shop", map[string]any{"n": i},
			delivery.Metadata{TenantID: "t1", PartitionKey: "order-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = env
	}
	return out
}

// e2eRun runs fn(ctx) in a goroutine until the returned stop is called (or
// the test ends) and reports an error it returns.
func e2eRun(t testing.TB, what string, fn func(ctx context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: %v", what, err)
				}
			case <-time.After(e2eWaitFor):
				t.Errorf("%s did not stop within %s", what, e2eWaitFor)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func e2eStore(t testing.TB) *dlqstore.Store {
	t.Helper()
	st, err := dlqstore.Open(context.Background(), t.TempDir()+"/dlq.db", dlqstore.Options{Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// e2eEntries returns every entry of a DLQ topic or queue.
func e2eEntries(t testing.TB, st *dlqstore.Store, dlq string) []dlqstore.Entry {
	t.Helper()
	var out []dlqstore.Entry
	f := dlqstore.Filter{Destination: dlq, Limit: 500}
	for {
		page, err := st.FindEntries(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Entries...)
		if page.Next == "" {
			return out
		}
		f.Cursor = page.Next
	}
}

// e2eRedrive starts a redrive of the failure group of the indexed dead
// letters of dlq, waits for it to complete, and checks the job, its
// ledger and the entries.
func e2eRedrive(t *testing.T, e *Engine, st *dlqstore.Store, dlq string, want []delivery.Envelope) Job {
	t.Helper()
	ctx := context.Background()
	entries := e2eEntries(t, st, dlq)
	if len(entries) != len(want) {
		t.Fatalf("%s holds %d entries before the redrive, want %d", dlq, len(entries), len(want))
	}
	group := entries[0].GroupID
	for _, en := range entries {
		if en.GroupID != group || en.Status != dlqstore.StatusDead || en.ErrorCode != e2eCode {
			t.Fatalf("entry %d: group %d status %s code %q; want all in group %d, dead, %s", en.ID, en.GroupID, en.Status, en.ErrorCode, group, e2eCode)
		}
	}
	job, err := e.Start(ctx, admin, Request{Action: ActionRedrive, Selector: Selector{Group: group}, Rate: 1000, Reason: "deployed the order lookup fix"})
	if err != nil {
		t.Fatal(err)
	}
	if job.Total != len(want) {
		t.Fatalf("job froze %d entries, want %d", job.Total, len(want))
	}
	end := waitJob(t, e, job.ID, dlqstore.JobCompleted, dlqstore.JobFailed, dlqstore.JobCancelled)
	if end.State != dlqstore.JobCompleted || end.Done != len(want) || end.Failed != 0 || end.Cancelled != 0 {
		t.Fatalf("job ended %+v, want completed with %d done", end, len(want))
	}
	ledger, next, err := e.Ledger(ctx, admin, job.ID, 0, 100)
	if err != nil || next != 0 {
		t.Fatalf("ledger: next %d, %v", next, err)
	}
	sent := 0
	for _, it := range ledger {
		if it.State == dlqstore.ItemSent {
			sent++
		} else {
			t.Errorf("ledger item %d (entry %d) is %s %q, want sent", it.Seq, it.EntryID, it.State, it.Error)
		}
	}
	if sent != len(want) {
		t.Errorf("ledger has %d sent items, want %d", sent, len(want))
	}
	return end
}

// e2eCheckHandled asserts the fixed handler handled every envelope exactly
// once and nothing else.
func e2eCheckHandled(t *testing.T, b *billing, want []delivery.Envelope) {
	t.Helper()
	got := b.counts()
	for _, env := range want {
		if n := got[env.ID]; n != 1 {
			t.Errorf("envelope %s handled %d times after the fix, want exactly 1", env.ID, n)
		}
		delete(got, env.ID)
	}
	for id, n := range got {
		t.Errorf("unknown envelope %s handled %d times", id, n)
	}
}

// e2eCheckEntries asserts the dead letters of dlq are exactly the ones
// redriven, and all of them are redriven.
func e2eCheckEntries(t *testing.T, st *dlqstore.Store, dlq string, n int) {
	t.Helper()
	entries := e2eEntries(t, st, dlq)
	if len(entries) != n {
		t.Errorf("%s holds %d entries after the redrive, want the same %d (a re-failure would add one)", dlq, len(entries), n)
	}
	for _, en := range entries {
		if en.Status != dlqstore.StatusRedriven {
			t.Errorf("entry %d is %s, want redriven", en.ID, en.Status)
		}
	}
	c, err := st.Counts(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ByStatus[dlqstore.StatusRedriven] != n || c.ByDestination[dlq] != n {
		t.Errorf("counts = %v by status, %v by destination; want %d redriven in %s", c.ByStatus, c.ByDestination, n, dlq)
	}
}

func TestE2EKafkaRedriveAfterFix(t *testing.T) {
	const cluster, topic, group = "main", "orders", "billing"
	dlq := delivery.DLQTopic(topic)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	st := e2eStore(t)
	ctx := context.Background()

	// The consumer runner with the bug: every message is dead-lettered
	// after its retries.
	bill := newBilling()
	consumer, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic}, Retry: e2eRetry(),
		Cluster: cluster, Service: "billing", Logger: e2eQuiet(),
		Handler: func(_ context.Context, d *kafka.Delivery) error { return bill.handle(d.Envelope) },
	})
	if err != nil {
		t.Fatal(err)
	}
	stopConsumer := e2eRun(t, "consumer", consumer.Run)

	x, err := indexer.NewKafkaIndexer(indexer.KafkaOptions{Cluster: cluster, Brokers: addrs, Store: st,
		Topics: []string{dlq}, DiscoveryInterval: 200 * time.Millisecond, Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	e2eRun(t, "indexer", x.Run)

	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: addrs, Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	envs := e2eEnvelopes(t, e2eMessages)
	for _, env := range envs {
		if err := pub.Publish(ctx, topic, env, nil); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, fmt.Sprintf("%d dead letters indexed", e2eMessages), func() bool {
		return len(e2eEntries(t, st, dlq)) == e2eMessages
	})
	if got := bill.counts(); len(got) != 0 {
		t.Fatalf("the buggy handler succeeded for %d envelopes", len(got))
	}

	// Deploy the fix, then redrive the failure group.
	bill.bug.Store(false)
	sender := NewKafkaSender(pub)
	e, err := New(Options{Store: st, Poll: 50 * time.Millisecond, Logger: e2eQuiet(),
		Sender: func(broker, cl string) (Sender, error) {
			if broker == delivery.BrokerKafka && cl == cluster {
				return sender, nil
			}
			return nil, fmt.Errorf("no %s connection %q", broker, cl)
		}})
	if err != nil {
		t.Fatal(err)
	}
	e2eRun(t, "engine", e.Run)
	e2eRedrive(t, e, st, dlq, envs)

	// The group has handled every record of the topic (the originals and
	// the redriven copies) once it has committed up to the end offsets.
	adm := kadm.NewClient(pub.Client())
	end := testenv.KafkaEndOffsets(t, adm, topic)
	if n := testenv.SumOffsets(end); n != 2*e2eMessages {
		t.Errorf("%s holds %d records, want %d originals + %d redriven", topic, n, e2eMessages, e2eMessages)
	}
	testenv.WaitFor(t, "the group to commit the redriven records", func() bool {
		os, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		for p, hwm := range end {
			o, ok := os.Lookup(topic, p)
			if !ok || o.Err != nil || o.At < hwm {
				return false
			}
		}
		return true
	})
	stopConsumer()
	e2eCheckHandled(t, bill, envs)
	if n := testenv.SumOffsets(testenv.KafkaEndOffsets(t, adm, dlq)); n != e2eMessages {
		t.Errorf("%s holds %d records, want the original %d: a redriven message failed again", dlq, n, e2eMessages)
	}
	e2eCheckEntries(t, st, dlq, e2eMessages)
}

// e2eQueueName is a unique queue name of the platform's convention.
func e2eQueueName(what string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "swtest" + hex.EncodeToString(b[:]) + "." + what + ".high"
}

// e2eRabbitQueue declares a unique queue and its <queue>.dlq, both deleted
// when the test ends.
func e2eRabbitQueue(t testing.TB, conn *amqp.Connection, what string) string {
	t.Helper()
	q := e2eQueueName(what)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := rabbitmq.DeclareQueue(ch, q, rabbitmq.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch, err := conn.Channel()
		if err != nil {
			t.Logf("delete queues %s: %v", q, err)
			return
		}
		defer ch.Close()
		for _, name := range []string{q, delivery.DLQQueue(q)} {
			if _, err := ch.QueueDelete(name, false, false, false); err != nil {
				t.Logf("delete queue %s: %v", name, err)
			}
		}
	})
	return q
}

// e2eReady is the number of ready messages in q.
func e2eReady(t testing.TB, conn *amqp.Connection, q string) int {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", q, err)
	}
	return info.Messages
}

func e2eDial(t testing.TB) (string, *amqp.Connection) {
	t.Helper()
	url := testenv.RabbitURL(t)
	conn, err := amqp.Dial(url)
	if err != nil {
		testenv.Missing(t, "RabbitMQ ("+err.Error()+")")
	}
	t.Cleanup(func() { conn.Close() })
	return url, conn
}

func TestE2ERabbitRedriveAfterFix(t *testing.T) {
	const cluster = "local"
	url, conn := e2eDial(t)
	q := e2eRabbitQueue(t, conn, "billing")
	dlq := delivery.DLQQueue(q)
	st := e2eStore(t)
	ctx := context.Background()

	bill := newBilling()
	consumer, err := rabbitmq.NewConsumer(rabbitmq.ConsumerOptions{
		URL: url, Queue: q, DLQ: dlq, Mode: rabbitmq.DLQExplicit, Retry: e2eRetry(),
		Cluster: cluster, Service: "billing", Logger: e2eQuiet(),
		Handler: func(_ context.Context, d *rabbitmq.Delivery) error { return bill.handle(d.Envelope) },
	})
	if err != nil {
		t.Fatal(err)
	}
	stopConsumer := e2eRun(t, "consumer", consumer.Run)

	x, err := indexer.NewRabbitIndexer(indexer.RabbitOptions{Cluster: cluster, URL: url, Queues: []string{dlq}, Store: st,
		BatchWait: 50 * time.Millisecond, Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	stopIndexer := e2eRun(t, "indexer", x.Run)

	pub, err := rabbitmq.NewPublisher(rabbitmq.PublisherOptions{URL: url, Name: "redrive-e2e " + q, Logger: e2eQuiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	envs := e2eEnvelopes(t, e2eMessages)
	for _, env := range envs {
		if err := pub.Publish(ctx, "", q, env, nil); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, fmt.Sprintf("%d dead letters indexed", e2eMessages), func() bool {
		return len(e2eEntries(t, st, dlq)) == e2eMessages
	})
	if got := bill.counts(); len(got) != 0 {
		t.Fatalf("the buggy handler succeeded for %d envelopes", len(got))
	}
	for _, en := range e2eEntries(t, st, dlq) {
		if want := "rabbitmq:/" + q; en.Resource != want {
			t.Fatalf("entry %d resource %q, want the origin queue %q", en.ID, en.Resource, want)
		}
	}

	bill.bug.Store(false)
	sender := NewRabbitSender(pub)
	e, err := New(Options{Store: st, Poll: 50 * time.Millisecond, Logger: e2eQuiet(),
		Sender: func(broker, cl string) (Sender, error) {
			if broker == delivery.BrokerRabbitMQ && cl == cluster {
				return sender, nil
			}
			return nil, fmt.Errorf("no %s connection %q", broker, cl)
		}})
	if err != nil {
		t.Fatal(err)
	}
	e2eRun(t, "engine", e.Run)
	e2eRedrive(t, e, st, dlq, envs)

	testenv.WaitFor(t, "the fixed handler to handle every redriven message", func() bool {
		return len(bill.counts()) == e2eMessages
	})
	// Stopping the consumer returns anything it has not acked to the
	// queue, so an empty queue afterwards means every message was settled.
	stopConsumer()
	if n := e2eReady(t, conn, q); n != 0 {
		t.Errorf("%s holds %d messages after the consumer stopped, want 0", q, n)
	}
	e2eCheckHandled(t, bill, envs)
	stopIndexer()
	if n := e2eReady(t, conn, dlq); n != 0 {
		t.Errorf("%s holds %d messages, want 0: a redriven message failed again", dlq, n)
	}
	e2eCheckEntries(t, st, dlq, e2eMessages)
}
