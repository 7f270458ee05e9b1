package rabbitmq

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/internal/testenv"
)

func newRecorder(t *testing.T) (*tracetest.SpanRecorder, *delivery.Telemetry) {
	t.Helper()
	return deliverytest.NewSpanRecorder(t)
}

// waitSpans waits until n spans called name have ended and returns them
// in start order.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	return deliverytest.WaitSpans(t, testenv.Wait, rec, "spans "+name, n, deliverytest.Named(name))
}

func waitSpan(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	return waitSpans(t, rec, name, 1)[0]
}

// A message that fails twice and then succeeds: one process span under the
// producer's, three attempt spans under it (two failed with the handler's
// code, the backoff between them), all in the producer's trace.
func TestSpansRetriedMessage(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	rec, tel := newRecorder(t)
	p := newTestPublisher(t, b.url, tel)
	env := newEnvelope(t)
	env.TraceID = ""
	env.CorrelationID = "corr-rabbit-1"
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatal(err)
	}
	const backoff = 30 * time.Millisecond
	var calls atomic.Int32
	startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Telemetry: tel, Service: "mailer",
		Retry: delivery.RetryPolicy{MaxAttempts: 5, Initial: backoff, MaxDelay: backoff, Multiplier: 1, Rand: func() float64 { return 0.999 }},
		Handler: func(context.Context, *Delivery) error {
			if calls.Add(1) <= 2 {
				return delivery.Errorf("SMTP_DOWN", "smtp refused the connection")
			}
			return nil
		},
	})
	attempts := waitSpans(t, rec, delivery.AttemptSpanName, 3)
	proc := waitSpan(t, rec, q+" process")
	pub := waitSpan(t, rec, q+" publish")

	if proc.Parent().SpanID() != pub.SpanContext().SpanID() {
		t.Error("process span is not a child of the publish span")
	}
	for k, want := range map[string]string{
		delivery.AttrMessageID: env.ID, delivery.AttrCorrelationID: "corr-rabbit-1", delivery.AttrTenant: "t1",
		delivery.AttrEventType: env.Type, delivery.AttrCluster: "/",
	} {
		if got := deliverytest.SpanAttr(pub, k); got != want {
			t.Errorf("publish span %s = %q, want %q", k, got, want)
		}
		if got := deliverytest.SpanAttr(proc, k); got != want {
			t.Errorf("process span %s = %q, want %q", k, got, want)
		}
	}
	if deliverytest.SpanAttr(pub, delivery.AttrStep) != delivery.StepPublish || deliverytest.SpanAttr(proc, delivery.AttrStep) != delivery.StepProcess {
		t.Errorf("steps %q / %q, want publish / process", deliverytest.SpanAttr(pub, delivery.AttrStep), deliverytest.SpanAttr(proc, delivery.AttrStep))
	}
	for i, a := range attempts {
		n := i + 1
		if a.Parent().SpanID() != proc.SpanContext().SpanID() {
			t.Errorf("attempt %d is not under the process span", n)
		}
		if got := deliverytest.SpanAttr(a, delivery.AttrAttempt); got != []string{"", "1", "2", "3"}[n] {
			t.Errorf("attempt span %d numbered %q", n, got)
		}
		if failed := a.Status().Code == codes.Error; failed != (n < 3) {
			t.Errorf("attempt %d status %v %q", n, a.Status().Code, a.Status().Description)
		}
		if n < 3 {
			if !strings.HasPrefix(a.Status().Description, "SMTP_DOWN: ") {
				t.Errorf("attempt %d status %q, want the handler's code", n, a.Status().Description)
			}
			if gap := attempts[i+1].StartTime().Sub(a.EndTime()); gap < backoff-time.Millisecond {
				t.Errorf("gap after attempt %d = %s, want the %s backoff", n, gap, backoff)
			}
		}
	}
}

// A message that fails for good: the dead-letter publish span under the
// process span, and the dead letter's traceparent names the failing
// attempt in the message's trace; a panic's stack is on that attempt.
func TestSpansDeadLetter(t *testing.T) {
	t.Parallel()
	b := mustBroker(t)
	q := b.queue(QueueOptions{})
	rec, tel := newRecorder(t)
	p := newTestPublisher(t, b.url, tel)
	env := newEnvelope(t)
	env.TraceID = ""
	if err := p.Publish(context.Background(), "", q, env, nil); err != nil {
		t.Fatal(err)
	}
	startConsumer(t, ConsumerOptions{
		URL: b.url, Queue: q, Telemetry: tel, Service: "mailer", Retry: fastRetry(2),
		Handler: func(context.Context, *Delivery) error {
			var m map[string]int
			m["boom"]++
			return nil
		},
	})
	dlq := delivery.DLQQueue(q)
	m := b.waitGet(dlq)
	dlSpan := waitSpan(t, rec, dlq+" publish")
	proc := waitSpan(t, rec, q+" process")
	attempts := waitSpans(t, rec, delivery.AttemptSpanName, 2)
	last := attempts[1]

	if dlSpan.SpanKind() != trace.SpanKindProducer || deliverytest.SpanAttr(dlSpan, delivery.AttrStep) != delivery.StepDeadLetter {
		t.Errorf("dead-letter span kind %v step %q", dlSpan.SpanKind(), deliverytest.SpanAttr(dlSpan, delivery.AttrStep))
	}
	if dlSpan.Parent().SpanID() != proc.SpanContext().SpanID() {
		t.Error("dead-letter span is not under the process span")
	}
	if ls := dlSpan.Links(); len(ls) != 1 || ls[0].SpanContext.SpanID() != last.SpanContext().SpanID() {
		t.Errorf("dead-letter span links %v, want the failing attempt", ls)
	}
	var stack string
	for _, e := range last.Events() {
		for _, kv := range e.Attributes {
			if kv.Key == delivery.AttrExceptionStacktrace {
				stack = kv.Value.AsString()
			}
		}
	}
	if !strings.Contains(stack, "spans_test.go") {
		t.Errorf("failing attempt's exception stack %q does not show the panic site", stack)
	}

	dl := decodeDLQ(m, dlq)
	tp := traceparentRE.FindStringSubmatch(dl.Headers.String(delivery.HeaderTraceparent))
	if tp == nil {
		t.Fatalf("dead letter traceparent %q is not W3C", dl.Headers.String(delivery.HeaderTraceparent))
	}
	if tp[1] != proc.SpanContext().TraceID().String() || dl.Envelope == nil || dl.Envelope.TraceID != tp[1] {
		t.Errorf("dead letter trace %s, want the message's %s", tp[1], proc.SpanContext().TraceID())
	}
	if tp[2] != last.SpanContext().SpanID().String() {
		t.Errorf("dead letter traceparent span %s, want the failing attempt %s", tp[2], last.SpanContext().SpanID())
	}
}
