package rabbitmq

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

func testRabbitURL(t testing.TB) string {
	t.Helper()
	return testenv.RabbitURL(t)
}

func TestConsumerAlwaysFailingGoesToDLQ(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	env := newEnvelope(t)
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var calls atomic.Int32
	stop := startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Retry: fastRetry(3), Service: "mailer", Cluster: "local",
		Handler: func(ctx context.Context, d *Delivery) error {
			calls.Add(1)
			return &delivery.Error{Code: "SMTP_DOWN", Message: "smtp refused the connection", Details: map[string]any{"host": "mx1"}}
		},
	})
	m := b.waitGet(delivery.DLQQueue(q))
	stop()
	b.waitDrained(q)
	if got, _ := b.inspect(delivery.DLQQueue(q)); got != 0 {
		t.Errorf("DLQ holds %d more messages, want exactly one dead letter", got)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("handler called %d times, want 3 (MaxAttempts)", got)
	}

	dl := decodeDLQ(m, delivery.DLQQueue(q))
	if dl.Format != delivery.FormatSwitchyard {
		t.Errorf("format %q, want switchyard", dl.Format)
	}
	if dl.Error.Code != "SMTP_DOWN" || dl.Error.Message != "smtp refused the connection" {
		t.Errorf("error %+v, want SMTP_DOWN / smtp refused the connection", dl.Error)
	}
	if dl.Error.Details["host"] != "mx1" {
		t.Errorf("details %v, want host mx1", dl.Error.Details)
	}
	if dl.Attempts != 3 {
		t.Errorf("attempts %d, want 3", dl.Attempts)
	}
	o := dl.Origin
	if o.Broker != "rabbitmq" || o.Queue != q || o.Service != "mailer" || o.Cluster != "local" || o.VHost != "/" || o.RoutingKey != q || o.Exchange != "" {
		t.Errorf("origin %+v", o)
	}
	if dl.FirstFailureAt.IsZero() || dl.LastFailureAt.Before(dl.FirstFailureAt) {
		t.Errorf("failure times first %v last %v", dl.FirstFailureAt, dl.LastFailureAt)
	}
	if dl.Envelope == nil || dl.Envelope.ID != env.ID || dl.EnvelopeError != "" {
		t.Errorf("envelope %+v (%s), want the original", dl.Envelope, dl.EnvelopeError)
	}
	if m.MessageId != env.ID || m.CorrelationId != env.CorrelationID || m.Type != env.Type || m.ContentType != "application/json" || m.Timestamp.IsZero() {
		t.Errorf("properties not kept on the DLQ copy: id %q corr %q type %q ct %q ts %v", m.MessageId, m.CorrelationId, m.Type, m.ContentType, m.Timestamp)
	}
	if m.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery mode %d, want persistent", m.DeliveryMode)
	}
	if dl.Headers.String(delivery.HeaderEventID) != env.ID || dl.Headers.String(delivery.HeaderTraceparent) == "" {
		t.Errorf("original headers lost: %v", dl.Headers)
	}
}

func TestConsumerRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	if err := p.Publish(context.Background(), "", q, newEnvelope(t), nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var calls, sent atomic.Int32
	var attempts []int
	var mu sync.Mutex
	stop := startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Retry: fastRetry(5),
		Handler: func(ctx context.Context, d *Delivery) error {
			mu.Lock()
			attempts = append(attempts, d.Attempt)
			mu.Unlock()
			if calls.Add(1) <= 2 {
				return errors.New("temporary failure")
			}
			sent.Add(1)
			return nil
		},
	})
	testenv.WaitFor(t, "the side effect", func() bool { return sent.Load() == 1 })
	stop()
	b.waitDrained(q)
	if n, _ := b.inspect(delivery.DLQQueue(q)); n != 0 {
		t.Errorf("DLQ holds %d messages, want 0", n)
	}
	if got := sent.Load(); got != 1 {
		t.Errorf("side effect ran %d times, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 3 || attempts[0] != 1 || attempts[2] != 3 {
		t.Errorf("attempts seen %v, want [1 2 3]", attempts)
	}
}

func TestConsumerNativeDLX(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{UseDLX: true})
	p := newTestPublisher(t, b.url, nil)
	env := newEnvelope(t)
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var calls atomic.Int32
	stop := startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Retry: fastRetry(2), Mode: DLQNative,
		Handler: func(ctx context.Context, d *Delivery) error {
			calls.Add(1)
			return errors.New("boom")
		},
	})
	m := b.waitGet(delivery.DLQQueue(q))
	stop()
	b.waitDrained(q)
	if calls.Load() != 2 {
		t.Errorf("handler called %d times, want 2", calls.Load())
	}
	if _, ok := m.Headers["x-death"]; !ok {
		t.Fatalf("no x-death header on the dead letter: %v", m.Headers)
	}
	dl := decodeDLQ(m, delivery.DLQQueue(q))
	if dl.Format != delivery.FormatRabbitMQ {
		t.Errorf("format %q, want rabbitmq", dl.Format)
	}
	if dl.Origin.Queue != q {
		t.Errorf("origin queue %q, want %q", dl.Origin.Queue, q)
	}
	if dl.Error.Code != "RABBITMQ_REJECTED" {
		t.Errorf("code %q, want RABBITMQ_REJECTED", dl.Error.Code)
	}
	if dl.Envelope == nil || dl.Envelope.ID != env.ID {
		t.Errorf("envelope %+v, want the original", dl.Envelope)
	}
}

func TestConsumerPoisonGoesToDLQAtOnce(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	if err := p.PublishRaw(context.Background(), "", q, amqp.Publishing{MessageId: "m-1", Body: []byte("not json{")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var calls atomic.Int32
	stop := startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Retry: fastRetry(5),
		Handler: func(ctx context.Context, d *Delivery) error {
			calls.Add(1)
			return nil
		},
	})
	m := b.waitGet(delivery.DLQQueue(q))
	stop()
	b.waitDrained(q)
	if calls.Load() != 0 {
		t.Errorf("handler called %d times for an undecodable message, want 0", calls.Load())
	}
	dl := decodeDLQ(m, delivery.DLQQueue(q))
	if dl.Error.Code != delivery.CodeUndecodable || dl.Attempts != 1 {
		t.Errorf("code %q attempts %d, want %s and 1", dl.Error.Code, dl.Attempts, delivery.CodeUndecodable)
	}
	if string(dl.Payload) != "not json{" || m.MessageId != "m-1" {
		t.Errorf("payload %q id %q, want the original bytes and id", dl.Payload, m.MessageId)
	}
}

func TestConsumerInvalidEnvelopeIsValidationFailed(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	if err := p.PublishRaw(context.Background(), "", q, amqp.Publishing{Body: []byte(`{"id":"x","type":"Bad"}`)}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var calls atomic.Int32
	startConsumer(t, ConsumerOptions{URL: b.url, Queue: q, Handler: func(ctx context.Context, d *Delivery) error {
		calls.Add(1)
		return nil
	}})
	dl := decodeDLQ(b.waitGet(delivery.DLQQueue(q)), delivery.DLQQueue(q))
	if dl.Error.Code != delivery.CodeValidationFailed || dl.Attempts != 1 || calls.Load() != 0 {
		t.Errorf("code %q attempts %d calls %d, want VALIDATION_FAILED, 1, 0", dl.Error.Code, dl.Attempts, calls.Load())
	}
	if _, ok := dl.Error.Details["type"]; !ok {
		t.Errorf("details %v, want the type violation", dl.Error.Details)
	}
}

func TestConsumerDuplicateHandledOnce(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	dup, last := newEnvelope(t), newEnvelope(t)
	for _, e := range []delivery.Envelope{dup, dup, last} {
		if err := p.Publish(context.Background(), "", q, e, nil); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	stop := startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Idempotency: delivery.NewMemoryKeyStore(),
		Handler: func(ctx context.Context, d *Delivery) error {
			mu.Lock()
			seen[d.Envelope.ID]++
			mu.Unlock()
			return nil
		},
	})
	// Deliveries are handled in order, so once the last one is handled the
	// duplicate has been seen twice.
	testenv.WaitFor(t, "the last message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[last.ID] == 1
	})
	stop()
	b.waitDrained(q)
	mu.Lock()
	defer mu.Unlock()
	if seen[dup.ID] != 1 {
		t.Errorf("duplicate handled %d times, want 1", seen[dup.ID])
	}
}

func TestConsumerPanicIsDeadLetteredWithStack(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	if err := p.Publish(context.Background(), "", q, newEnvelope(t), nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	startConsumer(t, ConsumerOptions{URL: b.url, Queue: q, Retry: fastRetry(2), Handler: func(ctx context.Context, d *Delivery) error {
		var m map[string]int
		m["x"] = 1 // panics: nil map
		return nil
	}})
	dl := decodeDLQ(b.waitGet(delivery.DLQQueue(q)), delivery.DLQQueue(q))
	if dl.Error.Code != delivery.CodeHandlerPanic || dl.Attempts != 2 {
		t.Errorf("code %q attempts %d, want HANDLER_PANIC after 2", dl.Error.Code, dl.Attempts)
	}
	if !strings.Contains(dl.Error.Stack, "TestConsumerPanicIsDeadLetteredWithStack") {
		t.Errorf("stack does not show the handler:\n%s", dl.Error.Stack)
	}
	if !strings.Contains(dl.Error.Message, "nil map") {
		t.Errorf("message %q, want the panic value", dl.Error.Message)
	}
}

func TestConsumerNeverLosesMessageWhenDLQWriteFails(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	dlq := delivery.DLQQueue(q)
	ch := b.channel()
	if _, err := ch.QueueDelete(dlq, false, false, false); err != nil {
		t.Fatalf("delete DLQ: %v", err)
	}
	ch.Close()
	p := newTestPublisher(t, b.url, nil)
	env := newEnvelope(t)
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	var redelivered atomic.Bool
	stop := startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Retry: fastRetry(1), DeadLetterBackoff: 50 * time.Millisecond,
		Handler: func(ctx context.Context, d *Delivery) error {
			if d.Message.Redelivered {
				redelivered.Store(true)
			}
			return delivery.Permanent(errors.New("always broken"))
		},
	})
	// The dead letter is unroutable (no DLQ), so the message must come back.
	testenv.WaitFor(t, "the message to be requeued and redelivered", redelivered.Load)
	if b.exists(dlq) {
		t.Fatal("DLQ exists though it was deleted")
	}
	ch = b.channel()
	if _, err := ch.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
		t.Fatalf("redeclare DLQ: %v", err)
	}
	ch.Close()
	testenv.WaitFor(t, "the dead letter", func() bool { n, _ := b.inspect(dlq); return n >= 1 })
	stop()
	b.waitDrained(q)
	if n, _ := b.inspect(dlq); n != 1 {
		t.Errorf("DLQ holds %d messages, want exactly 1", n)
	}
	m, _ := b.get(dlq)
	if m.MessageId != env.ID {
		t.Errorf("dead letter id %q, want %q", m.MessageId, env.ID)
	}
}
