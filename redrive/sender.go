package redrive

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/access"
	"switchyard/delivery"
)

// Target is where one message is published.
type Target struct {
	Broker  string `json:"broker"`  // delivery.BrokerKafka or delivery.BrokerRabbitMQ
	Cluster string `json:"cluster"` // Kafka cluster name; RabbitMQ: the connection's name
	Topic   string `json:"topic,omitempty"`
	// RabbitMQ: the queue is reached through the default exchange ("")
	// with the queue name as routing key, so a redrive reaches exactly the
	// queue that failed and not every queue bound to the original exchange.
	VHost      string `json:"vhost,omitempty"`
	Exchange   string `json:"exchange,omitempty"`    // always "" for now
	RoutingKey string `json:"routing_key,omitempty"` // the queue`
}

// Resource is the access-policy name of the target (kafka:<cluster>/<topic>
// or rabbitmq:<vhost>/<queue>).
func (t Target) Resource() string {
	if t.Broker == delivery.BrokerRabbitMQ {
		return access.RabbitQueue(t.VHost, t.RoutingKey).Name
	}
	return access.KafkaTopic(t.Cluster, t.Topic).Name
}

// Message is one dead letter to publish again.
type Message struct {
	EntryID int64
	Target  Target
	Key     []byte // Kafka record key: the original one, so per-key order holds
	Headers delivery.Headers
	Body    []byte
	// RabbitMQ properties.
	MessageID, CorrelationID, ContentType, Type string
}

// Sender publishes messages to one broker cluster. Send returns one error
// per message, in order: nil only once the broker acknowledged that
// message (Kafka acks=all through the idempotent producer; RabbitMQ
// publisher confirm, mandatory routing). Messages to one Kafka partition
// are written in the order given.
type Sender interface {
	Send(ctx context.Context, msgs []Message) []error
}

// startSpan starts the producer span of one redriven message, "<dest>
// redrive": a child of the job's span when ctx carries one, else the root
// of a new trace, never in the dead-lettered message's own trace, which
// ended with the dead letter. It links to the span the message's
// traceparent names: the attempt that gave up when Switchyard's consumers
// dead-lettered it, else the original producer's span. It returns the
// message's headers with traceparent (in place, tracestate dropped)
// naming the new span, so that the consumer handling the redriven message
// continues the redrive's trace, and the headers unchanged when tracing is
// off.
func startSpan(ctx context.Context, tel *delivery.Telemetry, m *Message) (trace.Span, delivery.Headers) {
	h := m.Headers
	link := trace.SpanContextFromContext(tel.Extract(context.Background(), h))
	dest, cluster := m.Target.Topic, m.Target.Cluster
	if m.Target.Broker == delivery.BrokerRabbitMQ {
		dest, cluster = m.Target.RoutingKey, m.Target.VHost
	}
	sctx, span := tel.Tracer().Start(ctx, dest+" "+delivery.StepRedrive,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(trace.Link{SpanContext: link}))
	if span.IsRecording() {
		first := func(vs ...string) string {
			for _, v := range vs {
				if v != "" {
					return v
				}
			}
			return ""
		}
		attrs := []attribute.KeyValue{
			attribute.String(delivery.AttrSystem, m.Target.Broker),
			attribute.String(delivery.AttrDest, dest),
			attribute.String(delivery.AttrStep, delivery.StepRedrive),
			attribute.String("messaging.operation.type", "send"),
			attribute.Int64(delivery.AttrDLQEntry, m.EntryID),
		}
		add := func(k, v string) {
			if v != "" {
				attrs = append(attrs, attribute.String(k, v))
			}
		}
		add(delivery.AttrCluster, cluster)
		add(delivery.AttrRedriveJob, h.String(delivery.HeaderRedriveJob))
		add(delivery.AttrMessageID, first(h.String(delivery.HeaderEventID), m.MessageID))
		add(delivery.AttrCorrelationID, first(h.String(delivery.HeaderCorrelationID), m.CorrelationID))
		add(delivery.AttrEventType, first(h.String(delivery.HeaderEventType), m.Type))
		add(delivery.AttrTenant, h.String(delivery.HeaderTenantID))
		span.SetAttributes(attrs...)
	}
	// A no-op tracer hands back the parent's span context: only a span of
	// its own replaces the message's traceparent.
	sc := span.SpanContext()
	if !sc.IsValid() || sc.SpanID() == trace.SpanContextFromContext(ctx).SpanID() {
		return span, h
	}
	tp := tel.Inject(sctx, nil).String(delivery.HeaderTraceparent)
	out := make(delivery.Headers, 0, len(h)+1)
	replaced := false
	for _, x := range h {
		switch x.Key {
		case delivery.HeaderTraceparent:
			if !replaced {
				out = append(out, delivery.Header{Key: x.Key, Value: []byte(tp)})
				replaced = true
			}
		case "tracestate":
		default:
			out = append(out, x)
		}
	}
	if !replaced {
		out = append(out, delivery.Header{Key: delivery.HeaderTraceparent, Value: []byte(tp)})
	}
	return span, out
}

// endSpan ends a redrive span with the message's outcome. Ending a span
// twice is harmless, so a sender may end one its publisher already ended.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
