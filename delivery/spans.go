package delivery

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// AttemptSpanName names every handling attempt's span, the same for all
// destinations and attempts (AttrAttempt numbers it), so that a span
// store's operation index stays small.
const AttemptSpanName = "process attempt"

// Semantic-convention keys of an exception event.
const (
	AttrExceptionType       = "exception.type"
	AttrExceptionMessage    = "exception.message"
	AttrExceptionStacktrace = "exception.stacktrace"
)

// StartAttempt starts the span of handling attempt n under the process
// span in ctx; the handler runs in the returned context. The Kafka and
// RabbitMQ runners both call it, so that their attempts read alike. who
// are the process span's attributes naming the message and where it was
// consumed (EnvelopeAttrs, system, destination, consumer): an attempt
// span carries them too, so that a span store can find the failing attempt
// of a dead letter by its event id, and checks the caller's tenant and
// resource scope on it as on the process span.
func StartAttempt(ctx context.Context, tracer trace.Tracer, n int, who ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := tracer.Start(ctx, AttemptSpanName, trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(who...)
		span.SetAttributes(
			attribute.String(AttrStep, StepAttempt),
			attribute.Int(AttrAttempt, n),
		)
	}
	return ctx, span
}

// FailSpan marks an attempt span failed with the platform error code and
// message and records the exception: a panic's with the stack taken where
// it panicked (info.Stack and info.ExceptionType), which RecordError could
// not know.
func FailSpan(span trace.Span, err error, info ErrorInfo) {
	if !span.IsRecording() {
		return
	}
	span.SetStatus(codes.Error, info.Code+": "+info.Message)
	span.SetAttributes(attribute.String(AttrErrorCode, info.Code))
	if info.Stack == "" {
		span.RecordError(err)
		return
	}
	span.AddEvent("exception", trace.WithAttributes(
		attribute.String(AttrExceptionType, info.ExceptionType),
		attribute.String(AttrExceptionMessage, err.Error()),
		attribute.String(AttrExceptionStacktrace, info.Stack),
	))
}

// EnvelopeAttrs are the span attributes naming env (event id, type,
// correlation id, tenant) and where it lives (cluster: the Kafka cluster or
// the RabbitMQ vhost). Empty values (a poison record, a publisher without a
// cluster name) are left out.
func EnvelopeAttrs(env Envelope, cluster string) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 5)
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	add(AttrMessageID, env.ID)
	add(AttrEventType, env.Type)
	add(AttrCorrelationID, env.CorrelationID)
	add(AttrTenant, env.Metadata.TenantID)
	add(AttrCluster, cluster)
	return attrs
}
