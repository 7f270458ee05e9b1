// Package rabbitmq is the RabbitMQ adapter of the delivery core. Publisher
// sends platform envelopes with publisher confirms and mandatory routing, so
// that an unroutable or refused message is an error and never silence;
// Consumer runs a handler over a queue with in-process retries, idempotency,
// poison-pill detection and dead-lettering, acking a message only once it
// was handled or its dead letter was confirmed by the broker.
package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

// ErrClosed is returned by a Publisher used after Close.
var ErrClosed = errors.New("publisher closed")

const (
	defaultConfirmTimeout = 30 * time.Second
	dialTimeout           = 10 * time.Second
	minBackoff            = 100 * time.Millisecond
	maxBackoff            = 10 * time.Second
	contentTypeJSON       = "application/json"
)

// PublisherOptions configure a Publisher. Only URL is required.
type PublisherOptions struct {
	// URL is the AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/.
	URL string
	// Telemetry records the producer span; nil records nothing.
	Telemetry *delivery.Telemetry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ConfirmTimeout bounds the wait for one publisher confirm when ctx has
	// no earlier deadline. Default 30 s.
	ConfirmTimeout time.Duration
	// Name is the connection name shown by the management UI; default
	// "switchyard-publisher".
	Name string
	// Now defaults to time.Now; it stamps messages whose envelope has no
	// valid occurred_at and paces reconnects.
	Now func() time.Time
}

// Publisher publishes with confirms over one connection and one channel.
// Publishes are serialized (one message in flight), which is what lets a
// basic.return be matched to its publish; use PublishRawBatch (many in
// flight) or several Publishers for more throughput. After the connection drops, the next publish reconnects,
// waiting (within its ctx) for the backoff between attempts.
type Publisher struct {
	opts  PublisherOptions
	log   *slog.Logger
	now   func() time.Time
	vhost string

	sem    chan struct{} // held while publishing or connecting; ctx-aware mutex
	closed chan struct{}

	// Guarded by sem.
	conn     *amqp.Connection
	cc       *confirmChannel
	backoff  time.Duration
	nextDial time.Time
	downAt   time.Time // start of the current outage; zero when connected
	isClosed bool
}

// NewPublisher connects to the broker and returns a Publisher.
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	if opts.URL == "" {
		return nil, errors.New("rabbitmq publisher: URL is required")
	}
	uri, err := amqp.ParseURI(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq publisher: parse URL: %w", err)
	}
	if opts.ConfirmTimeout <= 0 {
		opts.ConfirmTimeout = defaultConfirmTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Name == "" {
		opts.Name = "switchyard-publisher"
	}
	p := &Publisher{
		opts:   opts,
		log:    opts.Logger,
		now:    opts.Now,
		vhost:  uri.Vhost,
		sem:    make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	if err := p.connect(); err != nil {
		return nil, fmt.Errorf("rabbitmq publisher: %w", err)
	}
	return p, nil
}

// Publish validates env and publishes it as JSON to exchange with
// routingKey, persistent and mandatory, and waits for the broker's confirm.
// An empty trace_id is filled from the span in ctx (or a new trace id).
// Errors: *delivery.ValidationError (nothing sent); an error matching
// ErrUnroutable when no queue is bound; ErrNacked; channel, connection and
// ctx errors. The propagation headers (traceparent, correlation_id,
// event_id, event_type, tenant_id) take precedence over extra.
func (p *Publisher) Publish(ctx context.Context, exchange, routingKey string, env delivery.Envelope, extra delivery.Headers) error {
	// The span first: an empty trace_id is its trace's, so that the
	// envelope names the trace its story is told in.
	ctx, span := p.startSpan(ctx, exchange, routingKey, env.ID)
	defer span.End()
	if env.TraceID == "" {
		env.TraceID = delivery.TraceIDOf(ctx)
		if env.TraceID == "" {
			env.TraceID = newTraceID().String()
		}
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String(delivery.AttrStep, delivery.StepPublish))
		span.SetAttributes(delivery.EnvelopeAttrs(env, "")...)
	}
	if err := env.Validate(); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}

	body, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode envelope %s: %w", env.ID, err)
	}
	h := append(delivery.Headers(nil), extra...)
	h = append(h,
		delivery.Header{Key: delivery.HeaderCorrelationID, Value: []byte(env.CorrelationID)},
		delivery.Header{Key: delivery.HeaderEventID, Value: []byte(env.ID)},
		delivery.Header{Key: delivery.HeaderEventType, Value: []byte(env.Type)},
		delivery.Header{Key: delivery.HeaderTenantID, Value: []byte(env.Metadata.TenantID)},
	)
	h = p.opts.Telemetry.Inject(propagationContext(ctx, env.TraceID), h)
	ts := env.Time()
	if ts.IsZero() {
		ts = p.now()
	}
	msg := amqp.Publishing{
		Headers:       TableFromHeaders(h),
		ContentType:   contentTypeJSON,
		DeliveryMode:  amqp.Persistent,
		MessageId:     env.ID,
		CorrelationId: env.CorrelationID,
		Type:          env.Type,
		Timestamp:     ts.UTC(),
		Body:          body,
	}
	if err := p.publish(ctx, exchange, routingKey, msg); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}

// startSpan opens the producer span of one publish, with the messaging
// attributes of the semantic conventions when it records.
func (p *Publisher) startSpan(ctx context.Context, exchange, routingKey, id string) (context.Context, trace.Span) {
	ctx, span := p.opts.Telemetry.Tracer().Start(ctx, routingKey+" publish", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(p.sendAttrs(exchange, routingKey, id)...)
	}
	return ctx, span
}

// sendAttrs are the attributes of a producer span sending message id to
// exchange with routingKey.
func (p *Publisher) sendAttrs(exchange, routingKey, id string) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String(delivery.AttrSystem, delivery.BrokerRabbitMQ),
		attribute.String(delivery.AttrDest, exchange),
		attribute.String(delivery.AttrCluster, p.vhost),
		attribute.String(attrRoutingKey, routingKey),
		attribute.String(delivery.AttrMessageID, id),
		attribute.String(attrOperation, "send"),
	}
}

// Telemetry returns the publisher's telemetry (nil when none was given),
// so that callers starting their own producer spans for PublishRawBatch
// (RawPublishing.Span), such as redrive senders, use the same tracer.
func (p *Publisher) Telemetry() *delivery.Telemetry { return p.opts.Telemetry }

// VHost returns the virtual host of the publisher's URL, the "cluster" of
// its spans (delivery.AttrCluster).
func (p *Publisher) VHost() string { return p.vhost }

// PublishRaw publishes msg as it is, mandatory and with confirms; dead
// letters and redrives use it. Errors as for Publish, without validation.
func (p *Publisher) PublishRaw(ctx context.Context, exchange, routingKey string, msg amqp.Publishing) error {
	ctx, span := p.startSpan(ctx, exchange, routingKey, msg.MessageId)
	defer span.End()
	if err := p.publish(ctx, exchange, routingKey, msg); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}

// RawPublishing is one message of PublishRawBatch.
type RawPublishing struct {
	Exchange   string
	RoutingKey string
	Msg        amqp.Publishing
	// Span, when set, is the producer span the caller started for this
	// message (a redrive's, whose traceparent Msg already carries):
	// PublishRawBatch records the outcome on it and ends it instead of
	// starting a publish span of its own.
	Span trace.Span
}

// PublishRawBatch publishes msgs as PublishRaw does (as they are,
// mandatory, with confirms), in order, but with many unconfirmed at once,
// and returns one error per message, nil once the broker confirmed it:
// an unroutable or refused message fails alone. Messages after a channel
// exception are sent on a new channel; those in flight when it happened
// fail. ConfirmTimeout bounds the wait for each next confirm. Only
// byte-identical messages to the same route can have their unroutable
// outcomes swapped, because a basic.return does not name its publish.
func (p *Publisher) PublishRawBatch(ctx context.Context, msgs []RawPublishing) []error {
	errs := make([]error, len(msgs))
	fail := func(from int, err error) []error {
		for j := from; j < len(errs); j++ {
			errs[j] = err
		}
		return errs
	}
	if len(msgs) == 0 {
		return errs
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fail(0, fmt.Errorf("publish batch: %w", ctx.Err()))
	}
	defer func() { <-p.sem }()
	if p.isClosed {
		return fail(0, ErrClosed)
	}
	tracer := p.opts.Telemetry.Tracer()
	start := func(m *RawPublishing) func(error) {
		span := m.Span
		if span == nil {
			_, span = tracer.Start(ctx, m.RoutingKey+" publish", trace.WithSpanKind(trace.SpanKindProducer))
			if span.IsRecording() {
				span.SetAttributes(p.sendAttrs(m.Exchange, m.RoutingKey, m.Msg.MessageId)...)
			}
		}
		return func(err error) {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
	for from := 0; from < len(msgs); {
		cc, err := p.channel(ctx)
		if err != nil {
			return fail(from, fmt.Errorf("publish batch: %w", err))
		}
		n, werr := cc.publishBatch(ctx, msgs[from:], errs[from:], p.opts.ConfirmTimeout, start)
		if n == 0 {
			// Nothing was written: that message fails, so that a channel
			// that cannot take it does not hold the batch forever.
			errs[from], n = werr, 1
		}
		from += n
	}
	return errs
}

func (p *Publisher) publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, ctx.Err())
	}
	defer func() { <-p.sem }()
	if p.isClosed {
		return ErrClosed
	}
	cc, err := p.channel(ctx)
	if err != nil {
		return fmt.Errorf("publish to exchange %q with routing key %q: %w", exchange, key, err)
	}
	cctx, cancel := context.WithTimeout(ctx, p.opts.ConfirmTimeout)
	defer cancel()
	return cc.publish(cctx, exchange, key, msg)
}

// channel returns an open confirm channel, reopening the channel after a
// channel exception and redialing after a connection loss. Called with sem.
func (p *Publisher) channel(ctx context.Context) (*confirmChannel, error) {
	if p.cc.usable() {
		return p.cc, nil
	}
	if p.conn != nil && !p.conn.IsClosed() {
		cc, err := openConfirmChannel(p.conn)
		if err == nil {
			p.cc = cc
			return cc, nil
		}
		// The connection is unusable though not yet seen closed; redial.
		_ = p.conn.Close()
	}
	if p.downAt.IsZero() {
		p.downAt = p.now()
		p.log.Warn("rabbitmq publisher connection lost; reconnecting")
	}
	if wait := p.nextDial.Sub(p.now()); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("reconnect: %w", ctx.Err())
		case <-p.closed:
			return nil, ErrClosed
		}
	}
	if err := p.connect(); err != nil {
		return nil, err
	}
	return p.cc, nil
}

// connect dials and opens the confirm channel. After a failure the next
// attempt waits an exponential backoff; the end of an outage is logged
// once, not every attempt. Called with sem or from NewPublisher.
func (p *Publisher) connect() error {
	conn, cc, err := dial(p.opts.URL, p.opts.Name)
	if err != nil {
		p.backoff = nextBackoff(p.backoff)
		p.nextDial = p.now().Add(p.backoff)
		return err
	}
	if !p.downAt.IsZero() {
		p.log.Info("rabbitmq publisher reconnected", "outage", p.now().Sub(p.downAt).Round(time.Millisecond))
	}
	p.conn, p.cc = conn, cc
	p.downAt, p.backoff, p.nextDial = time.Time{}, 0, time.Time{}
	return nil
}

// Close closes the channel and the connection. Publishes after Close fail
// with ErrClosed.
func (p *Publisher) Close() error {
	select {
	case <-p.closed:
		return nil
	default:
		close(p.closed) // wakes a publish waiting out the reconnect backoff
	}
	p.sem <- struct{}{}
	defer func() { <-p.sem }()
	p.isClosed = true
	p.cc.close()
	if p.conn != nil && !p.conn.IsClosed() {
		if err := p.conn.Close(); err != nil {
			return fmt.Errorf("close rabbitmq publisher: %w", err)
		}
	}
	return nil
}

// dial opens a connection and a confirm channel on it.
func dial(url, name string) (*amqp.Connection, *confirmChannel, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp.DialConfig(url, amqp.Config{
		Dial:       amqp.DefaultDial(dialTimeout),
		Properties: props,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	cc, err := openConfirmChannel(conn)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, cc, nil
}

// nextBackoff doubles the reconnect delay from minBackoff up to maxBackoff.
func nextBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return minBackoff
	}
	if d *= 2; d > maxBackoff {
		return maxBackoff
	}
	return d
}

// propagationContext returns ctx itself when it carries a valid span, and
// otherwise ctx with a synthetic sampled-off span context in trace traceID,
// so that every message carries a traceparent even without a tracer.
func propagationContext(ctx context.Context, traceID string) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil || !tid.IsValid() {
		tid = newTraceID()
	}
	var sid trace.SpanID
	_, _ = rand.Read(sid[:])
	return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
}

func newTraceID() trace.TraceID {
	var t trace.TraceID
	_, _ = rand.Read(t[:])
	return t
}
