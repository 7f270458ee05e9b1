package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
	"switchyard/delivery/deliverytest"
	"switchyard/internal/testenv"
)

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]$`)

type testTelemetry struct {
	tel    *delivery.Telemetry
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
}

func newTelemetry(t *testing.T) testTelemetry {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tel, err := delivery.NewTelemetry(mp, tp)
	if err != nil {
		t.Fatal(err)
	}
	return testTelemetry{tel: tel, spans: spans, tp: tp, reader: reader}
}

func (tt testTelemetry) span(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	testenv.WaitFor(t, "span "+name, func() bool {
		for _, s := range tt.spans.Ended() {
			if s.Name() == name {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// counter sums the int64 counter name over every attribute set.
func (tt testTelemetry) counter(t *testing.T, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tt.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func header(r *kgo.Record, key string) string {
	return toHeaders(r.Headers).String(key)
}

// Publish writes the key, the JSON envelope and the propagation headers;
// trace_id is filled from the active span and matches traceparent.
func TestPublishHeadersAndTrace(t *testing.T) {
	topic := uniqueTopic("published")
	_, addrs := newCluster(t, 2, topic)
	tt := newTelemetry(t)
	pub := newPublisher(t, addrs, PublisherOptions{Telemetry: tt.tel})

	ctx, parent := tt.tp.Tracer("test").Start(context.Background(), "checkout request")
	env := envelope(t, "customer-42", map[string]any{"total": 99})
	env.TraceID = ""
	if err := pub.Publish(ctx, topic, env, delivery.Headers{{Key: "x-request-id", Value: []byte("r-1")}}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	parent.End()

	recs := readAll(t, addrs, topic)
	if len(recs) != 1 {
		t.Fatalf("topic holds %d records, want 1", len(recs))
	}
	r := recs[0]
	if string(r.Key) != "customer-42" {
		t.Errorf("key = %q, want the partition key customer-42", r.Key)
	}
	var got delivery.Envelope
	if err := json.Unmarshal(r.Value, &got); err != nil {
		t.Fatalf("value is not a JSON envelope: %v", err)
	}
	wantTrace := parent.SpanContext().TraceID().String()
	if got.TraceID != wantTrace {
		t.Errorf("envelope trace_id = %q, want the active span's %q", got.TraceID, wantTrace)
	}
	m := traceparentRE.FindStringSubmatch(header(r, "traceparent"))
	if m == nil {
		t.Fatalf("traceparent %q is not W3C", header(r, "traceparent"))
	}
	if m[1] != got.TraceID {
		t.Errorf("traceparent trace id %s != envelope trace_id %s", m[1], got.TraceID)
	}
	for k, want := range map[string]string{
		"correlation_id": env.CorrelationID,
		"event_id":       env.ID,
		"event_type":     "orders.order.created.v1",
		"tenant_id":      "t1",
		"content-type":   "application/json",
		"x-request-id":   "r-1",
	} {
		if got := header(r, k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	s := tt.span(t, topic+" publish")
	if s.SpanKind() != trace.SpanKindProducer {
		t.Errorf("publish span kind = %v, want producer", s.SpanKind())
	}
	if s.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("publish span is not a child of the active span")
	}
	if s.SpanContext().SpanID().String() != m[2] {
		t.Errorf("traceparent span id %s is not the publish span's %s", m[2], s.SpanContext().SpanID())
	}
	if deliverytest.SpanAttr(s, "messaging.system") != "kafka" || deliverytest.SpanAttr(s, "messaging.destination.name") != topic {
		t.Errorf("publish span attributes = %v", s.Attributes())
	}
	if deliverytest.SpanAttr(s, "messaging.kafka.offset") != "0" {
		t.Errorf("publish span offset attribute = %q, want 0 (set when the ack arrives)", deliverytest.SpanAttr(s, "messaging.kafka.offset"))
	}
}

// Without any tracing configured the event still gets a trace id, and
// traceparent carries it.
func TestPublishWithoutTracing(t *testing.T) {
	topic := uniqueTopic("untraced")
	_, addrs := newCluster(t, 1, topic)
	pub := newPublisher(t, addrs, PublisherOptions{})
	env := envelope(t, "k", 1)
	env.TraceID = ""
	publish(t, pub, topic, nil, env)
	r := readAll(t, addrs, topic)[0]
	var got delivery.Envelope
	if err := json.Unmarshal(r.Value, &got); err != nil {
		t.Fatal(err)
	}
	m := traceparentRE.FindStringSubmatch(header(r, "traceparent"))
	if m == nil || len(got.TraceID) != 32 || m[1] != got.TraceID {
		t.Errorf("trace_id %q, traceparent %q: want a generated trace id carried by both", got.TraceID, header(r, "traceparent"))
	}
}

// An invalid envelope is refused with every violation and nothing is written.
func TestPublishRejectsInvalidEnvelope(t *testing.T) {
	topic := uniqueTopic("rejected")
	_, addrs := newCluster(t, 1, topic)
	adm := newAdmin(t, addrs)
	pub := newPublisher(t, addrs, PublisherOptions{})
	publish(t, pub, topic, nil, envelope(t, "k", 1))
	before := testenv.KafkaEndOffsets(t, adm, topic)

	env := envelope(t, "", 1)
	env.Type = "Order Created"
	err := pub.Publish(context.Background(), topic, env, nil)
	var ve *delivery.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Publish error = %v, want *delivery.ValidationError", err)
	}
	fields := map[string]bool{}
	for _, v := range ve.Violations {
		fields[v.Field] = true
	}
	if !fields["type"] || !fields["metadata.partition_key"] {
		t.Errorf("violations %v, want type and metadata.partition_key", ve.Violations)
	}
	if after := testenv.KafkaEndOffsets(t, adm, topic); testenv.SumOffsets(after) != testenv.SumOffsets(before) {
		t.Errorf("high watermark moved from %v to %v after a rejected publish", before, after)
	}
}

// PublishTx is all or nothing for a read_committed consumer.
func TestPublishTx(t *testing.T) {
	topic := uniqueTopic("txn")
	_, addrs := newCluster(t, 1, topic)
	adm := newAdmin(t, addrs)
	pub := newPublisher(t, addrs, PublisherOptions{
		TransactionalID: "tx-" + topic,
		// A small batch limit makes an oversized record fail inside the
		// transaction, after its sibling was written.
		Opts: []kgo.Opt{kgo.ProducerBatchMaxBytes(16 << 10)},
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	invalid := envelope(t, "k", 1)
	invalid.ID = "not-a-uuid"
	var ve *delivery.ValidationError
	if err := pub.PublishTx(ctx, topic, []delivery.Envelope{envelope(t, "k", 1), invalid}); !errors.As(err, &ve) {
		t.Fatalf("PublishTx with an invalid envelope = %v, want *delivery.ValidationError", err)
	}
	if n := testenv.SumOffsets(testenv.KafkaEndOffsets(t, adm, topic)); n != 0 {
		t.Fatalf("an invalid batch wrote %d records", n)
	}

	aborted := envelope(t, "k", map[string]string{"state": "aborted"})
	huge := envelope(t, "k", map[string]string{"blob": strings.Repeat("x", 32<<10)})
	if err := pub.PublishTx(ctx, topic, []delivery.Envelope{aborted, huge}); err == nil {
		t.Fatal("PublishTx with an oversized record succeeded, want an error")
	}
	c1, c2 := envelope(t, "k", 1), envelope(t, "k", 2)
	if err := pub.PublishTx(ctx, topic, []delivery.Envelope{c1, c2}); err != nil {
		t.Fatalf("PublishTx: %v", err)
	}
	if err := pub.Publish(ctx, topic, envelope(t, "k", 3), nil); err != nil {
		t.Fatalf("Publish in transactional mode: %v", err)
	}

	ids := func(rs []*kgo.Record) []string {
		var out []string
		for _, r := range rs {
			var e delivery.Envelope
			if json.Unmarshal(r.Value, &e) == nil {
				out = append(out, e.ID)
			}
		}
		return out
	}
	committedIDs := ids(readN(t, addrs, topic, 3, kgo.FetchIsolationLevel(kgo.ReadCommitted())))
	// The aborted record sits at offset 0: a read_committed reader would
	// see it first if the abort had not hidden it.
	if len(committedIDs) != 3 || committedIDs[0] != c1.ID || committedIDs[1] != c2.ID {
		t.Errorf("read_committed sees %v, want [%s %s <single publish>]", committedIDs, c1.ID, c2.ID)
	}
	for _, id := range committedIDs {
		if id == aborted.ID {
			t.Errorf("read_committed sees the aborted record %s", id)
		}
	}
	// The aborted record was really written: only the abort hides it.
	uncommitted := ids(readN(t, addrs, topic, 1, kgo.FetchIsolationLevel(kgo.ReadUncommitted())))
	if len(uncommitted) == 0 || uncommitted[0] != aborted.ID {
		t.Errorf("read_uncommitted sees %v, want the aborted record %s first", uncommitted, aborted.ID)
	}
}

// The consumer span continues the producer's trace, and the outcome is
// counted in event.processed / event.failed.
func TestConsumerTelemetry(t *testing.T) {
	topic := uniqueTopic("traced")
	_, addrs := newCluster(t, 1, topic)
	adm := newAdmin(t, addrs)
	tt := newTelemetry(t)
	pub := newPublisher(t, addrs, PublisherOptions{Telemetry: tt.tel})
	group := "g-" + topic
	startConsumer(t, ConsumerOptions{
		Brokers: addrs, Group: group, Topics: []string{topic}, Telemetry: tt.tel, Retry: fastRetry(1),
		Handler: func(_ context.Context, d *Delivery) error {
			if d.Envelope.Metadata.PartitionKey == "bad" {
				return delivery.Errorf("NOPE", "no")
			}
			return nil
		},
	})
	publish(t, pub, topic, nil, envelope(t, "good", 1), envelope(t, "bad", 2))
	waitCommitted(t, adm, group, topic, 0, 2)

	var procs []sdktrace.ReadOnlySpan
	testenv.WaitFor(t, "two process spans", func() bool {
		procs = procs[:0]
		for _, s := range tt.spans.Ended() {
			if s.Name() == topic+" process" {
				procs = append(procs, s)
			}
		}
		return len(procs) == 2
	})
	pubSpans := map[trace.SpanID]trace.SpanContext{}
	for _, s := range tt.spans.Ended() {
		if s.Name() == topic+" publish" {
			pubSpans[s.SpanContext().SpanID()] = s.SpanContext()
		}
	}
	for _, proc := range procs {
		if proc.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("process span kind = %v, want consumer", proc.SpanKind())
		}
		psc, ok := pubSpans[proc.Parent().SpanID()]
		if !ok || psc.TraceID() != proc.SpanContext().TraceID() {
			t.Errorf("process span parent %v is not a publish span", proc.Parent())
		}
		if deliverytest.SpanAttr(proc, "messaging.consumer.group.name") != group {
			t.Errorf("process span attributes = %v", proc.Attributes())
		}
	}
	if n := tt.counter(t, delivery.MetricProcessed); n != 1 {
		t.Errorf("%s = %d, want 1", delivery.MetricProcessed, n)
	}
	if n := tt.counter(t, delivery.MetricFailed); n != 1 {
		t.Errorf("%s = %d, want 1", delivery.MetricFailed, n)
	}
	// The platform asks for trace_id with the metrics: the SDK attaches the
	// process span's trace id to each count as an exemplar.
	traces := map[string]bool{}
	for _, proc := range procs {
		traces[proc.SpanContext().TraceID().String()] = true
	}
	for _, name := range []string{delivery.MetricProcessed, delivery.MetricFailed} {
		ex := tt.exemplarTraceIDs(t, name)
		if len(ex) != 1 || !traces[ex[0]] {
			t.Errorf("%s exemplars carry trace ids %v, want one of the process spans' %v", name, ex, traces)
		}
	}
}

// exemplarTraceIDs returns the trace ids of the exemplars on a counter.
func (tt testTelemetry) exemplarTraceIDs(t *testing.T, name string) []string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tt.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range s.DataPoints {
					for _, e := range dp.Exemplars {
						ids = append(ids, trace.TraceID(e.TraceID).String())
					}
				}
			}
		}
	}
	return ids
}

// A caller's client is used as is: publish spans still end with the
// record's offset, and Close leaves the client open.
func TestPublisherWithCallerClient(t *testing.T) {
	topic := uniqueTopic("shared")
	_, addrs := newCluster(t, 1, topic)
	cl := newClient(t, addrs)
	tt := newTelemetry(t)
	pub, err := NewPublisher(PublisherOptions{Client: cl, Telemetry: tt.tel})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, pub, topic, nil, envelope(t, "k", 1))
	pub.Close()
	if s := tt.span(t, topic+" publish"); deliverytest.SpanAttr(s, "messaging.kafka.offset") != "0" {
		t.Errorf("publish span offset = %q, want 0", deliverytest.SpanAttr(s, "messaging.kafka.offset"))
	}
	produceRaw(t, cl, topic, "k", []byte("still open"))
	if _, err := NewPublisher(PublisherOptions{Client: cl, TransactionalID: "tx"}); err == nil {
		t.Error("NewPublisher accepted a TransactionalID its non-transactional client lacks")
	}
}
