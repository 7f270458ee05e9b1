package redrive

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/delivery/kafka"
	"switchyard/delivery/rabbitmq"
	"switchyard/internal/testenv"
)

func spansRecorder(t *testing.T) (*tracetest.SpanRecorder, *delivery.Telemetry) {
	t.Helper()
	return deliverytest.NewSpanRecorder(t)
}

// spansWait waits until n spans match and returns them in start order.
func spansWait(t *testing.T, rec *tracetest.SpanRecorder, what string, n int, match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	return deliverytest.WaitSpans(t, senderWait, rec, what, n, match)
}

func spansTraceparent(s sdktrace.ReadOnlySpan) string {
	sc := s.SpanContext()
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// The whole story on Kafka: a message fails for good and is dead-lettered
// by the delivery core's consumer; the redrive, sent under the job's span,
// is a producer span in the job's trace (not the message's) linked to the
// attempt that gave up; the redriven record carries the redrive span's
// traceparent, and the consumer that handles it continues that trace.
func TestSpansKafkaRedriveContinuesTheStory(t *testing.T) {
	t.Parallel()
	const topic = "orders.order.placed.v1"
	addrs := senderKafka(t, 1, topic)
	rec, tel := spansRecorder(t)
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: addrs, Telemetry: tel, Cluster: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)

	var redrivenHandled atomic.Bool
	cons, err := kafka.NewConsumer(kafka.ConsumerOptions{
		Brokers: addrs, Group: "billing", Topics: []string{topic}, Telemetry: tel, Cluster: "test",
		Retry:  delivery.RetryPolicy{MaxAttempts: 1},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: func(_ context.Context, d *kafka.Delivery) error {
			for _, h := range d.Record.Headers {
				if h.Key == delivery.HeaderRedriveJob {
					redrivenHandled.Store(true)
					return nil
				}
			}
			return delivery.Errorf("PAYMENT_DECLINED", "card declined")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer: %v", err)
		}
	})

	env, err := delivery.NewEnvelope("orders.order.placed.v1", "checkout", map[string]int{"total": 5}, delivery.Metadata{PartitionKey: "ord-1", TenantID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	env.CorrelationID = "corr-redrive-1"
	if err := pub.Publish(ctx, topic, env, nil); err != nil {
		t.Fatal(err)
	}
	failing := spansWait(t, rec, "the failed attempt", 1, func(s sdktrace.ReadOnlySpan) bool {
		return deliverytest.SpanAttr(s, delivery.AttrStep) == delivery.StepAttempt && s.Status().Code == codes.Error
	})[0]

	r := senderConsume(t, addrs, topic+".dlq", 1)[0]
	dl := delivery.Decode(delivery.Message{
		Location: delivery.Location{Broker: delivery.BrokerKafka, Cluster: "test", Topic: r.Topic, Partition: r.Partition, Offset: r.Offset},
		Key:      r.Key, Headers: senderHeadersOf(r), Body: r.Value, Timestamp: r.Timestamp,
	})
	headers, _, _ := delivery.RedriveHeaders(dl, 77)
	if got := headers.String(delivery.HeaderTraceparent); got != spansTraceparent(failing) {
		t.Fatalf("redrive headers' traceparent %q, want the failing attempt's %q", got, spansTraceparent(failing))
	}

	jctx, job := tel.Tracer().Start(ctx, "redrive job 77")
	errs := NewKafkaSender(pub).Send(jctx, []Message{{
		EntryID: 501, Target: Target{Broker: delivery.BrokerKafka, Cluster: "test", Topic: topic},
		Key: dl.Key, Headers: headers, Body: dl.Payload, MessageID: env.ID,
	}})
	job.End()
	if errs[0] != nil {
		t.Fatalf("send: %v", errs[0])
	}

	rs := spansWait(t, rec, "the redrive span", 1, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == topic+" redrive" })[0]
	if rs.SpanKind() != trace.SpanKindProducer || deliverytest.SpanAttr(rs, delivery.AttrStep) != delivery.StepRedrive {
		t.Errorf("redrive span kind %v step %q", rs.SpanKind(), deliverytest.SpanAttr(rs, delivery.AttrStep))
	}
	if rs.Parent().SpanID() != job.SpanContext().SpanID() || rs.SpanContext().TraceID() == failing.SpanContext().TraceID() {
		t.Errorf("redrive span is not the job's child in a trace of its own: parent %s trace %s", rs.Parent().SpanID(), rs.SpanContext().TraceID())
	}
	if ls := rs.Links(); len(ls) != 1 || ls[0].SpanContext.SpanID() != failing.SpanContext().SpanID() || ls[0].SpanContext.TraceID() != failing.SpanContext().TraceID() {
		t.Errorf("redrive span links %v, want the failing attempt %s", ls, failing.SpanContext().SpanID())
	}
	for k, want := range map[string]string{
		delivery.AttrRedriveJob: "77", delivery.AttrDLQEntry: "501", delivery.AttrMessageID: env.ID,
		delivery.AttrCorrelationID: "corr-redrive-1", delivery.AttrTenant: "t1", delivery.AttrCluster: "test",
	} {
		if got := deliverytest.SpanAttr(rs, k); got != want {
			t.Errorf("redrive span %s = %q, want %q", k, got, want)
		}
	}

	sent := senderConsume(t, addrs, topic, 2)[1]
	if got := senderHeadersOf(sent).String(delivery.HeaderTraceparent); got != spansTraceparent(rs) {
		t.Errorf("redriven record's traceparent %q, want the redrive span's %q", got, spansTraceparent(rs))
	}
	testenv.WaitWithin(t, senderWait, "the redriven message handled", redrivenHandled.Load)
	procs := spansWait(t, rec, "the redriven message's process span", 1, func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == topic+" process" && s.Parent().SpanID() == rs.SpanContext().SpanID()
	})
	if procs[0].Status().Code == codes.Error {
		t.Errorf("redriven message's process span failed: %s", procs[0].Status().Description)
	}
}

// On RabbitMQ, without a job span, the redrive span is the root of a new
// trace, linked to the span the dead letter's traceparent names, and the
// sent message carries the redrive span's traceparent; the publisher's own
// publish span is not doubled.
func TestSpansRabbitRedriveIsANewTrace(t *testing.T) {
	t.Parallel()
	url, conn := senderRabbit(t)
	q := senderQueue(t, conn)
	rec, tel := spansRecorder(t)
	pub, err := rabbitmq.NewPublisher(rabbitmq.PublisherOptions{URL: url, Telemetry: tel, Name: "switchyard-redrive-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })

	headers := senderRedrivenHeaders(12)
	headers = append(headers,
		delivery.Header{Key: delivery.HeaderCorrelationID, Value: []byte("corr-9")},
		delivery.Header{Key: delivery.HeaderTenantID, Value: []byte("t2")})
	const deadTrace, deadSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	if err := NewRabbitSender(pub).Send(ctx, []Message{{
		EntryID: 9, Target: senderRabbitTarget(q), Headers: headers, Body: []byte(`{"id":"e9"}`), MessageID: "e9",
	}})[0]; err != nil {
		t.Fatalf("send: %v", err)
	}
	d := senderGet(t, conn, q)
	rs := spansWait(t, rec, "the redrive span", 1, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == q+" redrive" })[0]
	if rs.Parent().IsValid() || rs.SpanContext().TraceID().String() == deadTrace {
		t.Errorf("redrive span parent %v trace %s, want the root of a new trace", rs.Parent().SpanID(), rs.SpanContext().TraceID())
	}
	if ls := rs.Links(); len(ls) != 1 || ls[0].SpanContext.TraceID().String() != deadTrace || ls[0].SpanContext.SpanID().String() != deadSpan {
		t.Errorf("redrive span links %v, want %s/%s", ls, deadTrace, deadSpan)
	}
	for k, want := range map[string]string{
		delivery.AttrRedriveJob: "12", delivery.AttrDLQEntry: "9", delivery.AttrMessageID: "e9",
		delivery.AttrCorrelationID: "corr-9", delivery.AttrTenant: "t2", delivery.AttrCluster: "/",
	} {
		if got := deliverytest.SpanAttr(rs, k); got != want {
			t.Errorf("redrive span %s = %q, want %q", k, got, want)
		}
	}
	if got, _ := d.Headers[delivery.HeaderTraceparent].(string); got != spansTraceparent(rs) {
		t.Errorf("sent traceparent %q, want the redrive span's %q", got, spansTraceparent(rs))
	}
	for _, s := range rec.Ended() {
		if strings.HasSuffix(s.Name(), " publish") {
			t.Errorf("a publish span %q beside the redrive span", s.Name())
		}
	}
}

// A failed send marks the redrive span failed.
func TestSpansKafkaRedriveFailure(t *testing.T) {
	t.Parallel()
	addrs := senderKafka(t, 1, "orders.order.placed.v1")
	rec, tel := spansRecorder(t)
	pub, err := kafka.NewPublisher(kafka.PublisherOptions{Brokers: addrs, Telemetry: tel,
		Opts: []kgo.Opt{kgo.RecordDeliveryTimeout(2 * time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	ctx, cancel := context.WithTimeout(context.Background(), senderWait)
	defer cancel()
	errs := NewKafkaSender(pub).Send(ctx, []Message{{EntryID: 1, Target: senderKafkaTarget("no.such.topic.v1"), Body: []byte("x")}})
	if errs[0] == nil {
		t.Fatal("send to a missing topic succeeded")
	}
	rs := spansWait(t, rec, "the redrive span", 1, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "no.such.topic.v1 redrive" })[0]
	if rs.Status().Code != codes.Error || deliverytest.SpanAttr(rs, delivery.AttrDLQEntry) != strconv.Itoa(1) {
		t.Errorf("redrive span status %v entry %q, want error on entry 1", rs.Status().Code, deliverytest.SpanAttr(rs, delivery.AttrDLQEntry))
	}
}
