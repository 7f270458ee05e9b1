package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

// DLQMode chooses who writes a dead letter.
type DLQMode int

const (
	// DLQExplicit (the default): the consumer publishes the dead letter to
	// the DLQ through the default exchange, with publisher confirms, carrying
	// the Switchyard error headers (delivery.EncodeHeaders: code, message,
	// details, stack, attempts, failure times, origin), and acks the original
	// only once the broker confirmed the dead letter.
	DLQExplicit DLQMode = iota
	// DLQNative: after the last attempt the consumer rejects the message
	// (Nack, requeue=false) and RabbitMQ's dead-letter exchange routes it, so
	// the queue must be declared with one (QueueOptions.UseDLX). The broker
	// moves the message atomically and the consumer writes nothing, but the
	// only context on the dead letter is RabbitMQ's x-death header (queue,
	// exchange, routing keys, reason "rejected", count, time): the handler's
	// error code, message, stack and attempt count are lost, and nothing is
	// checked: with no DLX configured the broker simply drops the message.
	DLQNative
)

func (m DLQMode) String() string {
	if m == DLQNative {
		return "native"
	}
	return "explicit"
}

const (
	defaultPrefetch          = 32
	defaultIdempotencyTTL    = 24 * time.Hour
	defaultDeadLetterBackoff = time.Second
	deadLetterTimeout        = 30 * time.Second
)

// Delivery is one message handed to a Handler.
type Delivery struct {
	Envelope delivery.Envelope
	Message  amqp.Delivery
	// Attempt counts the tries of this delivery, from 1.
	Attempt int
}

// ConsumerOptions configure a Consumer. Queue and Handler are required.
type ConsumerOptions struct {
	URL   string
	Queue string
	// Handler handles one message. Return a *delivery.Error to name the
	// failure; delivery.Permanent skips the remaining retries.
	Handler func(ctx context.Context, d *Delivery) error
	// Prefetch is the number of unacked messages the broker sends ahead.
	// Default 32. Messages are still handled one at a time, in order.
	Prefetch int
	// Retry sets the in-process attempts and delays; zero is the default policy.
	Retry delivery.RetryPolicy
	// DLQ is the dead-letter queue; default delivery.DLQQueue(Queue).
	DLQ  string
	Mode DLQMode
	// Idempotency, when set, skips messages whose envelope id was handled
	// before, and records the id after a success for IdempotencyTTL
	// (default 24 h).
	Idempotency    delivery.IdempotencyKeyStore
	IdempotencyTTL time.Duration
	// Poison sets the payload checks done before any handling; a message
	// that fails them is dead-lettered at once.
	Poison delivery.PoisonRules
	// DeadLetterBackoff is the wait before requeueing a message whose dead
	// letter could not be written. Default 1 s.
	DeadLetterBackoff time.Duration
	Telemetry         *delivery.Telemetry
	// Cluster and Service name the origin on dead letters and metrics.
	Cluster string
	Service string
	Logger  *slog.Logger
	Now     func() time.Time
}

// Consumer runs Handler over one queue. See Run.
type Consumer struct {
	opts  ConsumerOptions
	log   *slog.Logger
	vhost string
}

// NewConsumer validates opts and returns a Consumer; it connects in Run.
func NewConsumer(opts ConsumerOptions) (*Consumer, error) {
	if opts.URL == "" {
		return nil, errors.New("rabbitmq consumer: URL is required")
	}
	uri, err := amqp.ParseURI(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("rabbitmq consumer: parse URL: %w", err)
	}
	if opts.Queue == "" {
		return nil, errors.New("rabbitmq consumer: Queue is required")
	}
	if opts.Handler == nil {
		return nil, errors.New("rabbitmq consumer: Handler is required")
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = defaultPrefetch
	}
	if opts.Prefetch > 65535 {
		return nil, fmt.Errorf("rabbitmq consumer: Prefetch %d exceeds 65535", opts.Prefetch)
	}
	if opts.DLQ == "" {
		opts.DLQ = delivery.DLQQueue(opts.Queue)
	}
	if opts.Mode != DLQExplicit && opts.Mode != DLQNative {
		return nil, fmt.Errorf("rabbitmq consumer: unknown Mode %d", opts.Mode)
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = defaultIdempotencyTTL
	}
	if opts.DeadLetterBackoff <= 0 {
		opts.DeadLetterBackoff = defaultDeadLetterBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Consumer{
		opts:  opts,
		log:   opts.Logger.With("queue", opts.Queue),
		vhost: uri.Vhost,
	}, nil
}

// Run consumes until ctx is done and then returns nil; unacked messages go
// back to the queue when its connection closes. When the broker drops the
// connection or cancels the consumer (queue deleted), Run reconnects with
// backoff, logging once when the outage starts and once when it ends.
func (c *Consumer) Run(ctx context.Context) error {
	var (
		backoff time.Duration
		downAt  time.Time
	)
	for {
		connected := func() {
			if !downAt.IsZero() {
				c.log.Info("rabbitmq consumer reconnected", "outage", c.opts.Now().Sub(downAt).Round(time.Millisecond))
			}
			downAt, backoff = time.Time{}, 0
		}
		err := c.session(ctx, connected)
		if ctx.Err() != nil {
			return nil
		}
		if downAt.IsZero() {
			downAt = c.opts.Now()
			c.log.Warn("rabbitmq consumer disconnected; reconnecting", "err", err)
		}
		backoff = nextBackoff(backoff)
		if !delivery.Sleep(ctx, backoff) {
			return nil
		}
	}
}

// session is one connection's life: it consumes until ctx is done (nil) or
// the connection, channel or consumer ends (an error saying why).
func (c *Consumer) session(ctx context.Context, connected func()) error {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("switchyard-consumer " + c.opts.Queue)
	conn, err := amqp.DialConfig(c.opts.URL, amqp.Config{Dial: amqp.DefaultDial(dialTimeout), Properties: props})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	// Closing the connection returns every unacked delivery to the queue.
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(c.opts.Prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.Consume(c.opts.Queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.opts.Queue, err)
	}
	s := &session{conn: conn}
	defer func() { s.pub.close() }()
	connected()
	for {
		if ctx.Err() != nil { // select below picks at random when both are ready
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-deliveries:
			if !ok {
				select {
				case e, ok := <-closes:
					if ok && e != nil {
						return fmt.Errorf("channel closed: %w", e)
					}
				default:
				}
				return errors.New("consumer cancelled by broker or channel closed")
			}
			if err := c.handle(ctx, s, d); err != nil {
				return err
			}
		}
	}
}

// session holds the connection of one consume session and the confirm
// channel dead letters are published on, opened on first use and reopened
// after a channel exception.
type session struct {
	conn *amqp.Connection
	pub  *confirmChannel
}

func (s *session) publisher() (*confirmChannel, error) {
	if s.pub.usable() {
		return s.pub, nil
	}
	cc, err := openConfirmChannel(s.conn)
	if err != nil {
		return nil, err
	}
	s.pub = cc
	return cc, nil
}

// failure is what a dead letter records about the attempts.
type failure struct {
	err         error
	attempts    int
	first, last time.Time
}

// handle takes one delivery to its end: ack after success or a confirmed
// dead letter, nack with requeue otherwise. It returns an error only when
// the channel can no longer ack, which ends the session.
//
// Its spans tell the message's story: the "<queue> process" consumer span,
// a child of the producer's span through traceparent, holds one "process
// attempt" span per handler call (the handler runs inside it; the gap
// between two is the retry backoff) and, for an explicit dead letter, the
// dead-letter publish span. Attributes are set only on recording spans.
func (c *Consumer) handle(ctx context.Context, s *session, d amqp.Delivery) error {
	start := c.opts.Now()
	tel := c.opts.Telemetry
	tracer := tel.Tracer()
	hdrs := HeadersFromTable(d.Headers)
	ctx = tel.Extract(ctx, hdrs)
	ctx, span := tracer.Start(ctx, c.opts.Queue+" process", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(
			attribute.String(delivery.AttrSystem, delivery.BrokerRabbitMQ),
			attribute.String(delivery.AttrDest, c.opts.Queue),
			attribute.String(delivery.AttrCluster, c.vhost),
			attribute.String(delivery.AttrStep, delivery.StepProcess),
			attribute.String(delivery.AttrConsumer, c.opts.Service),
			attribute.String(attrRoutingKey, d.RoutingKey),
			attribute.String(attrOperation, "process"),
		)
	}

	env, err := c.opts.Poison.Check(d.Body)
	var who []attribute.KeyValue // what the attempt spans repeat of this one
	if recording {
		who = append(delivery.EnvelopeAttrs(envOrID(env, d.MessageId), c.vhost),
			attribute.String(delivery.AttrSystem, delivery.BrokerRabbitMQ),
			attribute.String(delivery.AttrDest, c.opts.Queue),
			attribute.String(delivery.AttrConsumer, c.opts.Service))
		span.SetAttributes(who...)
	}
	if err != nil {
		now := c.opts.Now()
		// No handler ran: the process span is where it failed.
		return c.deadLetter(ctx, span, span.SpanContext(), s, d, hdrs, env, failure{err: err, attempts: 1, first: now, last: now}, start)
	}

	if store := c.opts.Idempotency; store != nil {
		seen, err := store.Has(ctx, env.ID)
		if err != nil {
			c.log.Error("idempotency check failed; requeueing", "event_id", env.ID, "err", err)
			return c.requeue(ctx, d, c.opts.DeadLetterBackoff)
		}
		if seen {
			span.SetAttributes(attribute.Bool("switchyard.duplicate", true))
			c.log.Debug("duplicate message skipped", "event_id", env.ID)
			return ackErr(d.Ack(false))
		}
	}

	policy := c.opts.Retry
	var f failure
	for attempt := 1; ; attempt++ {
		actx, as := delivery.StartAttempt(ctx, tracer, attempt, who...)
		err := c.call(actx, &Delivery{Envelope: env, Message: d, Attempt: attempt})
		if err == nil {
			as.End()
			break
		}
		delivery.FailSpan(as, err, errorInfo(err))
		as.End()
		if ctx.Err() != nil {
			// Shutting down: the failure may be the cancellation itself, so
			// it does not count; another consumer gets the message.
			return c.requeue(ctx, d, 0)
		}
		f.err, f.attempts, f.last = err, attempt, c.opts.Now()
		if f.first.IsZero() {
			f.first = f.last
		}
		if delivery.IsPermanent(err) || !policy.Retry(attempt) {
			return c.deadLetter(ctx, span, as.SpanContext(), s, d, hdrs, env, f, start)
		}
		if !delivery.Sleep(ctx, policy.Delay(attempt)) {
			return c.requeue(ctx, d, 0)
		}
	}
	if store := c.opts.Idempotency; store != nil {
		if err := store.Put(ctx, env.ID, c.opts.IdempotencyTTL); err != nil {
			c.log.Warn("record idempotency key failed", "event_id", env.ID, "err", err)
		}
	}
	if err := d.Ack(false); err != nil {
		return ackErr(err)
	}
	c.opts.Telemetry.Record(ctx, c.outcome(env, "", start))
	return nil
}

// call runs the handler, turning a panic into a retryable HANDLER_PANIC
// error that keeps the stack.
func (c *Consumer) call(ctx context.Context, d *Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe := &panicError{value: r, stack: string(debug.Stack())}
			err = &delivery.Error{Code: delivery.CodeHandlerPanic, Message: pe.Error(), Cause: pe}
		}
	}()
	return c.opts.Handler(ctx, d)
}

type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }

// deadLetter ends a failed delivery: written to the DLQ and acked
// (explicit), or rejected to the broker's DLX (native). When the dead
// letter cannot be written the message is requeued after a backoff and
// nothing is lost.
//
// An explicit dead letter's traceparent is failed, the span of the
// attempt that gave up (the process span for a poison message): its trace
// id is still the message's, and a redrive links to that attempt. A native
// one keeps the producer's traceparent: the broker moves the message as it
// is, and a redrive links to the producer's span instead.
func (c *Consumer) deadLetter(ctx context.Context, span trace.Span, failed trace.SpanContext, s *session, d amqp.Delivery, hdrs delivery.Headers, env delivery.Envelope, f failure, start time.Time) error {
	info := delivery.ErrorInfoOf(f.err)
	var pe *panicError
	if errors.As(f.err, &pe) {
		info.Stack = pe.stack
		info.ExceptionType = fmt.Sprintf("%T", pe.value)
	}
	span.SetStatus(codes.Error, info.Code+": "+info.Message)
	span.SetAttributes(attribute.String(delivery.AttrErrorCode, info.Code))

	if c.opts.Mode == DLQNative {
		if err := d.Nack(false, false); err != nil {
			return ackErr(err)
		}
		span.AddEvent("rejected to the dead-letter exchange")
		c.log.Warn("message rejected to the broker's dead-letter exchange", "message_id", d.MessageId, "code", info.Code, "attempts", f.attempts, "err", f.err)
		c.opts.Telemetry.Record(ctx, c.outcome(env, info.Code, start))
		return nil
	}

	dl := delivery.DeadLetter{
		Origin: delivery.Location{
			Broker:     delivery.BrokerRabbitMQ,
			Cluster:    c.opts.Cluster,
			VHost:      c.vhost,
			Exchange:   d.Exchange,
			RoutingKey: d.RoutingKey,
			Queue:      c.opts.Queue,
			Service:    c.opts.Service,
			Partition:  -1,
			Offset:     -1,
		},
		Error:          info,
		Attempts:       f.attempts,
		FirstFailureAt: f.first,
		LastFailureAt:  f.last,
		Headers:        hdrs,
	}
	if failed.IsValid() {
		dl.Headers = c.opts.Telemetry.Inject(trace.ContextWithSpanContext(ctx, failed), hdrs)
	}
	msg := amqp.Publishing{
		Headers:         TableFromHeaders(delivery.EncodeHeaders(dl)),
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp.Persistent,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		AppId:           d.AppId,
		Body:            d.Body,
	}
	// The dead letter is finished even when shutdown starts meanwhile: the
	// message is already in hand and the write is bounded.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadLetterTimeout)
	defer cancel()
	pctx, ps := c.opts.Telemetry.Tracer().Start(pctx, c.opts.DLQ+" publish",
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(trace.Link{SpanContext: failed}))
	defer ps.End()
	if ps.IsRecording() {
		ps.SetAttributes(
			attribute.String(delivery.AttrSystem, delivery.BrokerRabbitMQ),
			attribute.String(delivery.AttrDest, c.opts.DLQ),
			attribute.String(delivery.AttrCluster, c.vhost),
			attribute.String(delivery.AttrStep, delivery.StepDeadLetter),
			attribute.String(attrOperation, "send"),
			attribute.String(delivery.AttrErrorCode, info.Code),
			attribute.Int(delivery.AttrAttempt, f.attempts),
		)
		ps.SetAttributes(delivery.EnvelopeAttrs(envOrID(env, d.MessageId), c.vhost)...)
	}
	pub, err := s.publisher()
	if err == nil {
		err = pub.publish(pctx, "", c.opts.DLQ, msg)
	}
	if err != nil {
		ps.RecordError(err)
		ps.SetStatus(codes.Error, err.Error())
		c.log.Error("dead letter not written; requeueing", "message_id", d.MessageId, "dlq", c.opts.DLQ, "err", err)
		return c.requeue(ctx, d, c.opts.DeadLetterBackoff)
	}
	if err := d.Ack(false); err != nil {
		// The dead letter is written but the original stays: on redelivery
		// it is dead-lettered again, a duplicate rather than a loss.
		return ackErr(err)
	}
	c.log.Info("message dead-lettered", "message_id", d.MessageId, "dlq", c.opts.DLQ, "code", info.Code, "attempts", f.attempts)
	c.opts.Telemetry.Record(ctx, c.outcome(env, info.Code, start))
	return nil
}

// Attribute keys of the semantic conventions beside delivery's.
const (
	attrRoutingKey = "messaging.rabbitmq.destination.routing_key"
	attrOperation  = "messaging.operation.type"
)

// requeue waits wait (cut short by ctx) and returns the message to the queue.
func (c *Consumer) requeue(ctx context.Context, d amqp.Delivery, wait time.Duration) error {
	delivery.Sleep(ctx, wait)
	return ackErr(d.Nack(false, true))
}

func (c *Consumer) outcome(env delivery.Envelope, code string, start time.Time) delivery.Outcome {
	return delivery.Outcome{
		System:      delivery.BrokerRabbitMQ,
		Destination: c.opts.Queue,
		Consumer:    c.opts.Service,
		EventType:   env.Type,
		Tenant:      env.Metadata.TenantID,
		ErrorCode:   code,
		Duration:    c.opts.Now().Sub(start),
	}
}

func ackErr(err error) error {
	if err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	return nil
}

// envOrID is env with the AMQP message id standing in for the event id
// of a message that is no envelope, for its spans.
func envOrID(env delivery.Envelope, messageID string) delivery.Envelope {
	if env.ID == "" {
		env.ID = messageID
	}
	return env
}

// errorInfo is the platform error of err, with a panic's stack and value
// type taken where it panicked.
func errorInfo(err error) delivery.ErrorInfo {
	info := delivery.ErrorInfoOf(err)
	var pe *panicError
	if errors.As(err, &pe) {
		info.Stack, info.ExceptionType = pe.stack, fmt.Sprintf("%T", pe.value)
	}
	return info
}
