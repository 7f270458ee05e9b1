package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/internal/testenv"
)

// spansNamed returns the ended spans called name, in start order.
func (tt testTelemetry) spansNamed(name string) []sdktrace.ReadOnlySpan {
	return deliverytest.EndedSpans(tt.spans, deliverytest.Named(name))
}

// waitSpans waits until n spans called name have ended and returns them
// in start order.
func (tt testTelemetry) waitSpans(t *testing.T, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	return deliverytest.WaitSpans(t, testenv.Wait, tt.spans, "spans "+name, n, deliverytest.Named(name))
}

func hasException(s sdktrace.ReadOnlySpan, stackPart string) bool {
	for _, e := range s.Events() {
		if e.Name != "exception" {
			continue
		}
		for _, kv := range e.Attributes {
			if string(kv.Key) == delivery.AttrExceptionStacktrace && strings.Contains(kv.Value.AsString(), stackPart) {
				return true
			}
			if stackPart == "" && string(kv.Key) == delivery.AttrExceptionMessage {
				return true
			}
		}
	}
	return false
}

// A message that fails twice and then succeeds reads as one story in one
// trace: the producer's publish span, the consumer's process span under
// it, and three attempt spans under that, the first two failed with the
// handler's error code, the last one fine, the retry backoff between them,
// and the handler's own span inside its attempt.
func TestSpansRetriedMessage(t *testing.T) {
	topic := uniqueTopic("spanretry")
	_, addrs := newCluster(t, 1, topic)
	tt := newTelemetry(t)
	pub := newPublisher(t, addrs, PublisherOptions{Telemetry: tt.tel, Cluster: "prod-eu1"})
	const backoff = 40 * time.Millisecond

	var calls atomic.Int32
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: "g-" + topic, Topics: []string{topic},
		Telemetry: tt.tel, Cluster: "prod-eu1", Service: "billing",
		Retry: delivery.RetryPolicy{MaxAttempts: 5, Initial: backoff, MaxDelay: backoff, Multiplier: 1, Rand: func() float64 { return 0.999 }},
		Handler: func(ctx context.Context, d *Delivery) error {
			_, hs := tt.tel.Tracer().Start(ctx, "charge card")
			defer hs.End()
			if calls.Add(1) <= 2 {
				return delivery.Errorf("GATEWAY_TIMEOUT", "payment gateway did not answer")
			}
			return nil
		},
	})

	env := envelope(t, "order-1", map[string]any{"amount": 12})
	env.CorrelationID = "corr-retry-1"
	publish(t, pub, topic, nil, env)

	attempts := tt.waitSpans(t, delivery.AttemptSpanName, 3)
	proc := tt.span(t, topic+" process")
	prod := tt.span(t, topic+" publish")

	if got, want := deliverytest.SpanAttr(prod, delivery.AttrStep), delivery.StepPublish; got != want {
		t.Errorf("publish span step = %q, want %q", got, want)
	}
	for k, want := range map[string]string{
		delivery.AttrMessageID: env.ID, delivery.AttrCorrelationID: "corr-retry-1", delivery.AttrTenant: "t1",
		delivery.AttrEventType: env.Type, delivery.AttrCluster: "prod-eu1",
	} {
		if got := deliverytest.SpanAttr(prod, k); got != want {
			t.Errorf("publish span %s = %q, want %q", k, got, want)
		}
		if got := deliverytest.SpanAttr(proc, k); got != want {
			t.Errorf("process span %s = %q, want %q", k, got, want)
		}
		// The attempts name the message too: the span store finds a dead
		// letter's failing attempt by its event id, and checks the
		// caller's tenant on it.
		for _, a := range attempts {
			if got := deliverytest.SpanAttr(a, k); got != want {
				t.Errorf("attempt span %s = %q, want %q", k, got, want)
			}
		}
	}
	for _, a := range attempts {
		if got := deliverytest.SpanAttr(a, delivery.AttrDest); got != topic {
			t.Errorf("attempt span %s = %q, want %q", delivery.AttrDest, got, topic)
		}
	}
	if proc.SpanKind() != trace.SpanKindConsumer || deliverytest.SpanAttr(proc, delivery.AttrStep) != delivery.StepProcess {
		t.Errorf("process span kind %v step %q, want consumer/%s", proc.SpanKind(), deliverytest.SpanAttr(proc, delivery.AttrStep), delivery.StepProcess)
	}
	if proc.Parent().SpanID() != prod.SpanContext().SpanID() || proc.SpanContext().TraceID() != prod.SpanContext().TraceID() {
		t.Errorf("process span's parent is %s, want the publish span %s", proc.Parent().SpanID(), prod.SpanContext().SpanID())
	}
	if proc.Status().Code == codes.Error {
		t.Errorf("process span failed (%q) though the message was handled", proc.Status().Description)
	}

	if len(attempts) != 3 {
		t.Fatalf("%d attempt spans, want 3", len(attempts))
	}
	for i, a := range attempts {
		n := i + 1
		if a.Parent().SpanID() != proc.SpanContext().SpanID() {
			t.Errorf("attempt %d is not a child of the process span", n)
		}
		if got := deliverytest.SpanAttr(a, delivery.AttrAttempt); got != []string{"", "1", "2", "3"}[n] {
			t.Errorf("attempt span %d has %s = %q", n, delivery.AttrAttempt, got)
		}
		if got := deliverytest.SpanAttr(a, delivery.AttrStep); got != delivery.StepAttempt {
			t.Errorf("attempt span %d step = %q", n, got)
		}
		failed := a.Status().Code == codes.Error
		if n < 3 {
			if !failed || !strings.HasPrefix(a.Status().Description, "GATEWAY_TIMEOUT: ") {
				t.Errorf("attempt %d status = %v %q, want error GATEWAY_TIMEOUT", n, a.Status().Code, a.Status().Description)
			}
			if !hasException(a, "") {
				t.Errorf("attempt %d has no exception event", n)
			}
			if gap := attempts[i+1].StartTime().Sub(a.EndTime()); gap < backoff-time.Millisecond {
				t.Errorf("gap after attempt %d = %s, want the %s backoff", n, gap, backoff)
			}
		} else if failed {
			t.Errorf("attempt 3 failed: %q", a.Status().Description)
		}
	}
	handlerSpans := tt.waitSpans(t, "charge card", 3)
	for i, h := range handlerSpans {
		if h.Parent().SpanID() != attempts[i].SpanContext().SpanID() {
			t.Errorf("handler span %d is not inside attempt %d", i+1, i+1)
		}
	}
}

// A message that fails for good gets a dead-letter publish span under its
// process span, and the dead-letter record carries the traceparent of the
// attempt that gave up: same trace as the message, that attempt's span id.
// A panic's stack is on the attempt span's exception event.
func TestSpansDeadLetter(t *testing.T) {
	topic := uniqueTopic("spandlq")
	_, addrs := newCluster(t, 1, topic)
	tt := newTelemetry(t)
	pub := newPublisher(t, addrs, PublisherOptions{Telemetry: tt.tel})

	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: "g-" + topic, Topics: []string{topic},
		Telemetry: tt.tel, Cluster: "prod-eu1", Service: "billing", Retry: fastRetry(2),
		Handler: func(context.Context, *Delivery) error {
			var m map[string]int
			m["boom"]++ // a nil map write: a real runtime panic
			return nil
		},
	})
	env := envelope(t, "order-2", map[string]any{"amount": 99})
	env.TraceID = "" // the publisher fills it from its span
	publish(t, pub, topic, nil, env)

	dlqTopic := topic + ".dlq"
	dlqSpan := tt.span(t, dlqTopic+" publish")
	proc := tt.span(t, topic+" process")
	attempts := tt.waitSpans(t, delivery.AttemptSpanName, 2)
	last := attempts[len(attempts)-1]

	if got := deliverytest.SpanAttr(dlqSpan, delivery.AttrStep); got != delivery.StepDeadLetter {
		t.Errorf("dead-letter span step = %q, want %q", got, delivery.StepDeadLetter)
	}
	if dlqSpan.SpanKind() != trace.SpanKindProducer || dlqSpan.Parent().SpanID() != proc.SpanContext().SpanID() {
		t.Errorf("dead-letter span kind %v parent %s, want a producer under the process span %s", dlqSpan.SpanKind(), dlqSpan.Parent().SpanID(), proc.SpanContext().SpanID())
	}
	if got := deliverytest.SpanAttr(dlqSpan, delivery.AttrMessageID); got != env.ID {
		t.Errorf("dead-letter span message id = %q, want %q", got, env.ID)
	}
	if ls := dlqSpan.Links(); len(ls) != 1 || ls[0].SpanContext.SpanID() != last.SpanContext().SpanID() {
		t.Errorf("dead-letter span links %v, want the failing attempt %s", ls, last.SpanContext().SpanID())
	}
	if proc.Status().Code != codes.Error || !strings.HasPrefix(proc.Status().Description, delivery.CodeHandlerPanic) {
		t.Errorf("process span status %v %q, want error %s", proc.Status().Code, proc.Status().Description, delivery.CodeHandlerPanic)
	}
	if !hasException(last, "assignment to entry in nil map") && !hasException(last, "spans_test.go") {
		t.Errorf("failing attempt has no exception event with the panic's stack: %v", last.Events())
	}

	recs := readAll(t, addrs, dlqTopic)
	if len(recs) != 1 {
		t.Fatalf("dlq holds %d records, want 1", len(recs))
	}
	dl := delivery.Decode(message(recs[0]))
	m := traceparentRE.FindStringSubmatch(dl.Headers.String(delivery.HeaderTraceparent))
	if m == nil {
		t.Fatalf("dead letter traceparent %q is not W3C", dl.Headers.String(delivery.HeaderTraceparent))
	}
	if m[1] != proc.SpanContext().TraceID().String() || dl.Envelope == nil || m[1] != dl.Envelope.TraceID {
		t.Errorf("dead letter trace id %s, want the message's %s", m[1], proc.SpanContext().TraceID())
	}
	if m[2] != last.SpanContext().SpanID().String() {
		t.Errorf("dead letter traceparent span %s, want the failing attempt %s", m[2], last.SpanContext().SpanID())
	}
	if n := strings.Count(headersString(dl.Headers), delivery.HeaderTraceparent+"="); n != 1 {
		t.Errorf("dead letter carries traceparent %d times, want once", n)
	}
}

// With tracing off the dead letter keeps the producer's traceparent.
func TestSpansDeadLetterWithoutTracer(t *testing.T) {
	topic := uniqueTopic("spannotrace")
	_, addrs := newCluster(t, 1, topic)
	pub := newPublisher(t, addrs, PublisherOptions{})
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: "g-" + topic, Topics: []string{topic}, Retry: fastRetry(1),
		Handler: func(context.Context, *Delivery) error { return errors.New("nope") },
	})
	env := envelope(t, "order-3", map[string]any{"amount": 1})
	publish(t, pub, topic, nil, env)
	src := readAll(t, addrs, topic)[0]
	recs := readN(t, addrs, topic+".dlq", 1)
	if got, want := header(recs[0], delivery.HeaderTraceparent), header(src, delivery.HeaderTraceparent); got != want || got == "" {
		t.Errorf("dead letter traceparent %q, want the producer's %q", got, want)
	}
}

func headersString(h delivery.Headers) string {
	var b strings.Builder
	for _, x := range h {
		b.WriteString(x.Key + "=" + string(x.Value) + "\n")
	}
	return b.String()
}
