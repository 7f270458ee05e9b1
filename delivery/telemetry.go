package delivery

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tnoop "go.opentelemetry.io/otel/trace/noop"
)

// Metric names of the platform standard ("Observability").
const (
	MetricProcessed = "event.processed"
	MetricFailed    = "event.failed"
	MetricDuration  = "event.processing.duration"
)

// Attribute keys on the event metrics.
const (
	AttrEventType = "event.type"
	AttrSystem    = "messaging.system"
	AttrDest      = "messaging.destination.name"
	AttrConsumer  = "messaging.consumer.group.name"
	AttrErrorCode = "error.code"
	AttrTenant    = "tenant.id"
)

// Attribute keys on spans, beside the ones above: the span store indexes
// them (tracing.Derive) and the trace pages draw the story from them.
const (
	// AttrKafkaMessageKey is the record key on Kafka spans; a "$key" PII
	// rule masks it on the trace pages.
	AttrKafkaMessageKey = "messaging.kafka.message.key"
	// AttrMessageID is the event id (envelope id).
	AttrMessageID = "messaging.message.id"
	// AttrCorrelationID is the envelope's correlation_id, under the
	// semantic-convention name for a conversation.
	AttrCorrelationID = "messaging.message.conversation_id"
	// AttrCluster names the Kafka cluster (as configured in the console)
	// or the RabbitMQ vhost a span's destination lives in, so that the
	// access policy can check it against resource patterns.
	AttrCluster = "switchyard.cluster"
	// AttrAttempt is the 1-based handling attempt of a consumer attempt span.
	AttrAttempt = "switchyard.attempt"
	// AttrStep says which step of a message's story a span is:
	// StepPublish, StepAttempt, StepDeadLetter, StepRedrive.
	AttrStep = "switchyard.step"
	// AttrRedriveJob is the redrive job id on a redrive producer span.
	AttrRedriveJob = "switchyard.redrive.job"
	// AttrDLQEntry is the dead-letter entry id on a redrive producer span.
	AttrDLQEntry = "switchyard.dlq.entry"
)

// Values of AttrStep.
const (
	StepPublish    = "publish"
	StepProcess    = "process"
	StepAttempt    = "attempt"
	StepDeadLetter = "dead_letter"
	StepRedrive    = "redrive"
)

// Telemetry holds the instruments and tracer every adapter records with.
// The zero value (or a nil *Telemetry) records nothing.
type Telemetry struct {
	tracer    trace.Tracer
	processed metric.Int64Counter
	failed    metric.Int64Counter
	duration  metric.Float64Histogram
	prop      propagation.TextMapPropagator
}

// NewTelemetry creates the event instruments on mp and a tracer from tp;
// either may be nil for no-op.
func NewTelemetry(mp metric.MeterProvider, tp trace.TracerProvider) (*Telemetry, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	if tp == nil {
		tp = tnoop.NewTracerProvider()
	}
	m := mp.Meter("switchyard/delivery")
	t := &Telemetry{
		tracer: tp.Tracer("switchyard/delivery"),
		prop:   propagation.TraceContext{},
	}
	var err error
	if t.processed, err = m.Int64Counter(MetricProcessed, metric.WithDescription("Events handled successfully."), metric.WithUnit("{event}")); err != nil {
		return nil, fmt.Errorf("create %s: %w", MetricProcessed, err)
	}
	if t.failed, err = m.Int64Counter(MetricFailed, metric.WithDescription("Events whose handling failed for good and were dead-lettered."), metric.WithUnit("{event}")); err != nil {
		return nil, fmt.Errorf("create %s: %w", MetricFailed, err)
	}
	if t.duration, err = m.Float64Histogram(MetricDuration, metric.WithDescription("Time to handle one event, retries included."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)); err != nil {
		return nil, fmt.Errorf("create %s: %w", MetricDuration, err)
	}
	return t, nil
}

// Tracer returns the tracer, a no-op one for a nil Telemetry.
func (t *Telemetry) Tracer() trace.Tracer {
	if t == nil || t.tracer == nil {
		return tnoop.NewTracerProvider().Tracer("")
	}
	return t.tracer
}

// Outcome describes one handled event for the metrics.
type Outcome struct {
	System, Destination, Consumer string
	EventType, Tenant             string
	ErrorCode                     string // empty: processed
	Duration                      time.Duration
}

// Record counts the event as processed or failed and records its duration.
// ctx should carry the consumer span, so that the SDK attaches its trace id
// as an exemplar.
func (t *Telemetry) Record(ctx context.Context, o Outcome) {
	if t == nil || t.processed == nil {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String(AttrEventType, o.EventType),
		attribute.String(AttrSystem, o.System),
		attribute.String(AttrDest, o.Destination),
		attribute.String(AttrConsumer, o.Consumer),
		attribute.String(AttrTenant, o.Tenant),
	}
	if o.ErrorCode == "" {
		t.processed.Add(ctx, 1, metric.WithAttributes(attrs...))
	} else {
		fattrs := append(attrs, attribute.String(AttrErrorCode, o.ErrorCode))
		t.failed.Add(ctx, 1, metric.WithAttributes(fattrs...))
	}
	t.duration.Record(ctx, o.Duration.Seconds(), metric.WithAttributes(attrs...))
}

// Inject writes the span context of ctx into headers as W3C traceparent
// (and tracestate), replacing earlier values.
func (t *Telemetry) Inject(ctx context.Context, h Headers) Headers {
	c := &headerCarrier{h: h}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.h
}

// Extract returns ctx with the remote span context found in headers.
func (t *Telemetry) Extract(ctx context.Context, h Headers) context.Context {
	return propagation.TraceContext{}.Extract(ctx, &headerCarrier{h: h})
}

type headerCarrier struct{ h Headers }

func (c *headerCarrier) Get(key string) string { return c.h.String(key) }
func (c *headerCarrier) Set(key, value string) {
	c.h = c.h.Without(func(k string) bool { return k == key })
	c.h = append(c.h, Header{Key: key, Value: []byte(value)})
}
func (c *headerCarrier) Keys() []string {
	ks := make([]string, len(c.h))
	for i, x := range c.h {
		ks[i] = x.Key
	}
	return ks
}

// TraceIDOf returns the trace id of the span in ctx, or "".
func TraceIDOf(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
