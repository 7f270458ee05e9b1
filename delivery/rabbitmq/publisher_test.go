package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/internal/testenv"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

func TestPublishHeadersAndProperties(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	env := newEnvelope(t)
	env.TraceID = "" // filled by Publish
	env.CorrelationID = "corr-42"
	extra := delivery.Headers{{Key: "x-custom", Value: []byte("v")}, {Key: delivery.HeaderEventID, Value: []byte("forged")}}
	if err := p.Publish(context.Background(), "", q, env, extra); err != nil {
		t.Fatalf("publish: %v", err)
	}
	m := b.waitGet(q)
	if m.MessageId != env.ID || m.CorrelationId != "corr-42" || m.Type != env.Type {
		t.Errorf("properties id %q corr %q type %q", m.MessageId, m.CorrelationId, m.Type)
	}
	if m.ContentType != "application/json" || m.DeliveryMode != amqp.Persistent {
		t.Errorf("content type %q mode %d, want application/json persistent", m.ContentType, m.DeliveryMode)
	}
	if want := env.Time().Unix(); m.Timestamp.Unix() != want {
		t.Errorf("timestamp %v, want occurred_at %v", m.Timestamp, env.Time())
	}
	h := HeadersFromTable(m.Headers)
	for k, want := range map[string]string{
		delivery.HeaderCorrelationID: "corr-42",
		delivery.HeaderEventID:       env.ID, // not the forged extra
		delivery.HeaderEventType:     env.Type,
		delivery.HeaderTenantID:      "t1",
		"x-custom":                   "v",
	} {
		if got := h.String(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	tp := traceparentRE.FindStringSubmatch(h.String(delivery.HeaderTraceparent))
	if tp == nil {
		t.Fatalf("traceparent %q is not W3C", h.String(delivery.HeaderTraceparent))
	}
	var sent delivery.Envelope
	if err := json.Unmarshal(m.Body, &sent); err != nil {
		t.Fatalf("body is not an envelope: %v", err)
	}
	if sent.TraceID == "" || sent.TraceID != tp[1] {
		t.Errorf("trace_id %q, want the traceparent's %q", sent.TraceID, tp[1])
	}
	if sent.ID != env.ID || string(sent.Payload) != string(env.Payload) {
		t.Errorf("body %+v, want the envelope", sent)
	}
}

func TestPublishInvalidEnvelopeSendsNothing(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	env := newEnvelope(t)
	env.Type = "OrderCreated"
	env.Metadata.TenantID = ""
	err := p.Publish(context.Background(), "", q, env, nil)
	var ve *delivery.ValidationError
	if !errors.As(err, &ve) || len(ve.Violations) != 2 {
		t.Fatalf("got %v, want a ValidationError with 2 violations", err)
	}
	if n, _ := b.inspect(q); n != 0 {
		t.Errorf("queue holds %d messages, want 0", n)
	}
}

func TestPublishUnroutable(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	ex := "swtest" + randomSuffix()
	ch := b.channel()
	if err := DeclareExchange(ch, ex, amqp.ExchangeTopic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ch, err := b.conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(ex, false, false)
			ch.Close()
		}
	})
	ch.Close()
	p := newTestPublisher(t, b.url, nil)
	for i := range 3 { // each publish, not only the first, sees its return
		err := p.Publish(context.Background(), ex, "no.such.key", newEnvelope(t), nil)
		if !errors.Is(err, ErrUnroutable) {
			t.Fatalf("publish %d: got %v, want ErrUnroutable", i, err)
		}
		if !strings.Contains(err.Error(), ex) || !strings.Contains(err.Error(), "no.such.key") {
			t.Errorf("error %q does not name the exchange and routing key", err)
		}
		var ue *UnroutableError
		if !errors.As(err, &ue) || ue.ReplyCode != amqp.NoRoute {
			t.Errorf("got %#v, want an UnroutableError with NO_ROUTE", err)
		}
	}
	// A routable publish right after is not blamed for the earlier returns.
	q := b.queue(QueueOptions{})
	if err := BindQueue(b.channel(), q, ex, "good.key"); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), ex, "good.key", newEnvelope(t), nil); err != nil {
		t.Fatalf("routable publish: %v", err)
	}
	b.waitGet(q)
}

func TestPublishMissingExchangeThenRecovers(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	p := newTestPublisher(t, b.url, nil)
	err := p.Publish(context.Background(), "swtest-missing-"+randomSuffix(), "k", newEnvelope(t), nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("got %v, want a 404 channel exception", err)
	}
	if errors.Is(err, ErrUnroutable) {
		t.Errorf("a missing exchange is not reported as unroutable: %v", err)
	}
	env := newEnvelope(t)
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatalf("publish after the channel exception: %v", err)
	}
	if m := b.waitGet(q); m.MessageId != env.ID {
		t.Errorf("got message %q, want %q", m.MessageId, env.ID)
	}
}

func TestPublishAfterClose(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	p := newTestPublisher(t, b.url, nil)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), "", "x", newEnvelope(t), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}

func TestTraceFlowsFromProducerToConsumer(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel, err := delivery.NewTelemetry(nil, tp)
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPublisher(t, b.url, tel)
	env := newEnvelope(t)
	env.TraceID = ""
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Value
	startConsumer(t, ConsumerOptions{URL: b.url, Queue: q, Telemetry: tel, Handler: func(ctx context.Context, d *Delivery) error {
		handled.Store(trace.SpanContextFromContext(ctx))
		return nil
	}})
	testenv.WaitFor(t, "the handler", func() bool { return handled.Load() != nil })
	var pub, proc sdktrace.ReadOnlySpan
	testenv.WaitFor(t, "both spans to end", func() bool {
		for _, s := range rec.Ended() {
			switch s.Name() {
			case q + " publish":
				pub = s
			case q + " process":
				proc = s
			}
		}
		return pub != nil && proc != nil
	})
	if pub.SpanKind() != trace.SpanKindProducer || proc.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kinds %v / %v, want producer / consumer", pub.SpanKind(), proc.SpanKind())
	}
	if proc.Parent().SpanID() != pub.SpanContext().SpanID() || proc.SpanContext().TraceID() != pub.SpanContext().TraceID() {
		t.Errorf("process span is not a child of the publish span")
	}
	attempt := waitSpan(t, rec, delivery.AttemptSpanName)
	if attempt.Parent().SpanID() != proc.SpanContext().SpanID() {
		t.Errorf("attempt span is not a child of the process span")
	}
	if got := handled.Load().(trace.SpanContext); got.SpanID() != attempt.SpanContext().SpanID() {
		t.Errorf("handler ctx does not carry the attempt span")
	}
	var system string
	for _, a := range pub.Attributes() {
		if a.Key == delivery.AttrSystem {
			system = a.Value.AsString()
		}
	}
	if system != "rabbitmq" {
		t.Errorf("messaging.system %q, want rabbitmq", system)
	}
}
