package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

// broker is a test's admin connection to the real RabbitMQ.
type broker struct {
	t    testing.TB
	url  string
	conn *amqp.Connection
}

func newBroker(t testing.TB, url string) *broker {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &broker{t: t, url: url, conn: conn}
}

func mustBroker(t testing.TB) *broker {
	t.Helper()
	return newBroker(t, testRabbitURL(t))
}

// channel opens a fresh channel: a channel exception (404, 406) closes a
// channel, so each admin step gets its own.
func (b *broker) channel() *amqp.Channel {
	b.t.Helper()
	ch, err := b.conn.Channel()
	if err != nil {
		b.t.Fatalf("open channel: %v", err)
	}
	return ch
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// queue declares a uniquely named queue and its DLQ, both deleted at cleanup.
func (b *broker) queue(opts QueueOptions) string {
	b.t.Helper()
	q := "swtest" + randomSuffix() + ".work.high"
	ch := b.channel()
	defer ch.Close()
	if err := DeclareQueue(ch, q, opts); err != nil {
		b.t.Fatalf("declare: %v", err)
	}
	b.t.Cleanup(func() {
		ch, err := b.conn.Channel()
		if err != nil {
			return
		}
		defer ch.Close()
		_, _ = ch.QueueDelete(q, false, false, false)
		_, _ = ch.QueueDelete(delivery.DLQQueue(q), false, false, false)
	})
	return q
}

// inspect returns the ready message count and consumer count of queue.
func (b *broker) inspect(queue string) (messages, consumers int) {
	b.t.Helper()
	ch := b.channel()
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		b.t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages, q.Consumers
}

// exists reports whether queue exists.
func (b *broker) exists(queue string) bool {
	b.t.Helper()
	ch := b.channel()
	defer ch.Close()
	_, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false
	}
	if err != nil {
		b.t.Fatalf("inspect %s: %v", queue, err)
	}
	return true
}

// get takes one message off queue (auto-ack), or reports none.
func (b *broker) get(queue string) (amqp.Delivery, bool) {
	b.t.Helper()
	ch := b.channel()
	defer ch.Close()
	d, ok, err := ch.Get(queue, true)
	if err != nil {
		b.t.Fatalf("get %s: %v", queue, err)
	}
	return d, ok
}

// waitGet polls queue for a message for up to 20 s.
func (b *broker) waitGet(queue string) amqp.Delivery {
	b.t.Helper()
	var d amqp.Delivery
	testenv.WaitFor(b.t, "a message in "+queue, func() bool {
		var ok bool
		d, ok = b.get(queue)
		return ok
	})
	return d
}

// waitDrained waits until queue has no consumer and no ready message: once
// the consumer is gone the broker has requeued whatever it left unacked,
// so an empty queue then means every message was acked.
func (b *broker) waitDrained(queue string) {
	b.t.Helper()
	testenv.WaitFor(b.t, queue+" without consumers", func() bool {
		_, c := b.inspect(queue)
		return c == 0
	})
	if n, _ := b.inspect(queue); n != 0 {
		b.t.Errorf("%s holds %d messages after the consumer stopped, want 0 (unacked or requeued)", queue, n)
	}
}

// newEnvelope returns a valid envelope.
func newEnvelope(t testing.TB) delivery.Envelope {
	t.Helper()
	env, err := delivery.NewEnvelope("notify.email.requested.v1", "test-service", map[string]string{"to": "a@example.com"},
		delivery.Metadata{PartitionKey: "user-1", TenantID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	env.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	return env
}

func newTestPublisher(t testing.TB, url string, tel *delivery.Telemetry) *Publisher {
	t.Helper()
	p, err := NewPublisher(PublisherOptions{URL: url, Telemetry: tel, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// startConsumer runs a consumer until the returned stop is called (or the
// test ends) and fails the test if Run returns an error.
func startConsumer(t testing.TB, opts ConsumerOptions) (stop func()) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	c, err := NewConsumer(opts)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func fastRetry(attempts int) delivery.RetryPolicy {
	return delivery.RetryPolicy{MaxAttempts: attempts, Initial: time.Millisecond, MaxDelay: 5 * time.Millisecond}
}

// decodeDLQ decodes a dead letter as the console would.
func decodeDLQ(d amqp.Delivery, dlq string) delivery.DeadLetter {
	return delivery.Decode(delivery.Message{
		Location:  delivery.Location{Broker: delivery.BrokerRabbitMQ, Queue: dlq, Partition: -1, Offset: -1},
		MessageID: d.MessageId,
		Headers:   HeadersFromTable(d.Headers),
		Body:      d.Body,
		Timestamp: d.Timestamp,
	})
}
