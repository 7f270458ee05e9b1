// Package kafka is the Kafka adapter of the delivery core, built on
// franz-go. Publisher writes platform envelopes with the propagation headers
// every consumer relies on; Consumer runs a handler over a consumer group
// with in-process retries, a dead-letter topic per source topic and offsets
// committed only past records that were handled or dead-lettered.
package kafka

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

// ContentTypeJSON is the content-type header value of envelopes.
const ContentTypeJSON = "application/json"

// HeaderContentType names the content type header.
const HeaderContentType = "content-type"

var (
	errNotTransactional = errors.New("publisher has no transactional id")
	errTransactional    = errors.New("not available in transactional mode")
)

// PublisherOptions configures a Publisher. Brokers or Client is required.
type PublisherOptions struct {
	Brokers []string
	// Client, when set, is used instead of a new client and is not closed
	// by Close. It must not be transactional unless TransactionalID names
	// its transactional id.
	Client   *kgo.Client
	ClientID string
	// TransactionalID switches the publisher to transactional mode: every
	// publish is a transaction of its own, and PublishTx is available.
	TransactionalID string
	Telemetry       *delivery.Telemetry
	// Cluster is the console's name of the cluster, written on publish
	// spans (delivery.AttrCluster) so that the access policy can check
	// them against kafka:<cluster>/<topic> patterns; empty leaves it out.
	Cluster string
	Logger  *slog.Logger
	// Opts are appended to the client options (ignored with Client).
	Opts []kgo.Opt
}

// Publisher writes envelopes to Kafka: idempotent, acks=all, with the
// trace, correlation and routing headers of the platform standard.
type Publisher struct {
	cl        *kgo.Client
	ownClient bool
	tx        bool
	// endSpans is set when the client lacks this package's hooks, so that
	// the promise ends publish spans instead.
	endSpans bool
	tel      *delivery.Telemetry
	cluster  string
	log      *slog.Logger

	txMu sync.Mutex // one transaction at a time per client
}

// NewPublisher creates a publisher and, unless opts.Client is set, its client.
func NewPublisher(opts PublisherOptions) (*Publisher, error) {
	log := orDiscard(opts.Logger)
	p := &Publisher{tel: opts.Telemetry, cluster: opts.Cluster, log: log, tx: opts.TransactionalID != ""}
	if opts.Client != nil {
		txid, _ := opts.Client.OptValue(kgo.TransactionalID).(string)
		if txid != opts.TransactionalID {
			return nil, fmt.Errorf("new publisher: client transactional id %q does not match TransactionalID %q", txid, opts.TransactionalID)
		}
		p.cl = opts.Client
		p.endSpans = !hasHooks(opts.Client)
		return p, nil
	}
	if len(opts.Brokers) == 0 {
		return nil, errors.New("new publisher: Brokers or Client is required")
	}
	kopts := baseOpts(opts.Brokers, log)
	if opts.ClientID != "" {
		kopts = append(kopts, kgo.ClientID(opts.ClientID))
	}
	if opts.TransactionalID != "" {
		kopts = append(kopts, kgo.TransactionalID(opts.TransactionalID))
	}
	kopts = append(kopts, opts.Opts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("new publisher: %w", err)
	}
	p.cl, p.ownClient = cl, true
	p.endSpans = !hasHooks(cl)
	return p, nil
}

// Client returns the underlying client.
func (p *Publisher) Client() *kgo.Client { return p.cl }

// Telemetry returns the publisher's telemetry (nil when none was given),
// so that code producing through Client, such as redrive senders, records
// its spans with the same tracer.
func (p *Publisher) Telemetry() *delivery.Telemetry { return p.tel }

// Cluster returns the cluster name given in PublisherOptions.
func (p *Publisher) Cluster() string { return p.cluster }

// Close flushes nothing and closes the client if the publisher created it.
// Call Flush first after PublishAsync.
func (p *Publisher) Close() {
	if p.ownClient {
		p.cl.Close()
	}
}

// Publish validates env, fills its trace_id from the span in ctx when
// empty, and writes it to topic, waiting for the broker's acknowledgement.
// An invalid envelope returns its *delivery.ValidationError and nothing is
// written. Headers in extra are added after the platform's own; extra keys
// that collide with those are dropped.
func (p *Publisher) Publish(ctx context.Context, topic string, env delivery.Envelope, extra delivery.Headers) error {
	r, err := p.record(ctx, topic, env, extra)
	if err != nil {
		return err
	}
	if p.tx {
		return p.inTx(ctx, []*kgo.Record{r})
	}
	return p.produceSync(r)
}

// PublishAsync is Publish without waiting: done (which may be nil) is
// called with the produced record or the error, from kgo's promise
// goroutine, so it must not block. A validation error calls done at once.
// Not available in transactional mode.
func (p *Publisher) PublishAsync(ctx context.Context, topic string, env delivery.Envelope, extra delivery.Headers, done func(*kgo.Record, error)) {
	if done == nil {
		done = func(*kgo.Record, error) {}
	}
	if p.tx {
		done(nil, fmt.Errorf("publish async: %w", errTransactional))
		return
	}
	r, err := p.record(ctx, topic, env, extra)
	if err != nil {
		done(nil, err)
		return
	}
	p.cl.Produce(r.Context, r, func(r *kgo.Record, err error) {
		if p.endSpans {
			endPublishSpan(r, err)
		}
		if err != nil {
			err = fmt.Errorf("publish to %s: %w", r.Topic, err)
		}
		done(r, err)
	})
}

// Flush waits until every record given to PublishAsync is acknowledged or
// failed.
func (p *Publisher) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// PublishRecord writes a raw record as is, synchronously: dead letters and
// redrives, whose headers are already complete. r.Topic must be set.
func (p *Publisher) PublishRecord(ctx context.Context, r *kgo.Record) error {
	if r == nil || r.Topic == "" {
		return errors.New("publish record: record with a topic is required")
	}
	r.Context = ctx
	if p.tx {
		return p.inTx(ctx, []*kgo.Record{r})
	}
	return p.produceSync(r)
}

// PublishTx writes envs to topic in one transaction: a read_committed
// consumer sees all of them or none. Every envelope is validated before
// anything is sent. Requires TransactionalID.
func (p *Publisher) PublishTx(ctx context.Context, topic string, envs []delivery.Envelope) error {
	if !p.tx {
		return fmt.Errorf("publish tx: %w", errNotTransactional)
	}
	rs := make([]*kgo.Record, 0, len(envs))
	var verr error
	for i, env := range envs {
		r, err := p.record(ctx, topic, env, nil)
		if err != nil {
			verr = errors.Join(verr, fmt.Errorf("envelope %d: %w", i, err))
			continue
		}
		rs = append(rs, r)
	}
	if verr != nil {
		// The spans of the valid ones never reach the hook.
		for _, r := range rs {
			endPublishSpan(r, errors.New("transaction not started: invalid envelope in batch"))
		}
		return verr
	}
	return p.inTx(ctx, rs)
}

// inTx produces rs in one transaction, aborting it on any error.
func (p *Publisher) inTx(ctx context.Context, rs []*kgo.Record) error {
	p.txMu.Lock()
	defer p.txMu.Unlock()
	if err := p.cl.BeginTransaction(); err != nil {
		for _, r := range rs {
			endPublishSpan(r, err)
		}
		return fmt.Errorf("begin transaction: %w", err)
	}
	// Ending a transaction must not be cut short by the caller's
	// cancellation: its outcome would become unknowable.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := p.produceAll(rs)
	if err == nil {
		if err = p.cl.EndTransaction(endCtx, kgo.TryCommit); err == nil {
			return nil
		}
		err = fmt.Errorf("commit transaction: %w", err)
	}
	abortErr := p.cl.AbortBufferedRecords(endCtx)
	if abortErr == nil {
		abortErr = p.cl.EndTransaction(endCtx, kgo.TryAbort)
	}
	if abortErr != nil {
		return errors.Join(err, fmt.Errorf("abort transaction: %w", abortErr))
	}
	return err
}

func (p *Publisher) produceSync(r *kgo.Record) error { return p.produceAll([]*kgo.Record{r}) }

// produceAll produces rs and waits for all of them; each record's own
// context carries its publish span.
func (p *Publisher) produceAll(rs []*kgo.Record) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	wg.Add(len(rs))
	for _, r := range rs {
		ctx := r.Context
		if ctx == nil {
			ctx = context.Background()
		}
		p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if p.endSpans {
				endPublishSpan(r, err)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("publish to %s: %w", r.Topic, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// record starts the publish span, completes and validates env and builds
// its record. On error the span is ended and no record is returned.
func (p *Publisher) record(ctx context.Context, topic string, env delivery.Envelope, extra delivery.Headers) (*kgo.Record, error) {
	ctx, span := p.tel.Tracer().Start(ctx, topic+" publish", trace.WithSpanKind(trace.SpanKindProducer))
	// Attributes only on a recording span: with tracing off (or a
	// sampled-out trace) publishing builds none of them.
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(delivery.AttrSystem, delivery.BrokerKafka),
			attribute.String(delivery.AttrDest, topic),
			attribute.String(delivery.AttrStep, delivery.StepPublish),
			attribute.String(attrOperation, "send"),
		)
		span.SetAttributes(delivery.EnvelopeAttrs(env, p.cluster)...)
	}
	fail := func(err error) (*kgo.Record, error) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return nil, err
	}
	sc := span.SpanContext()
	if !sc.IsValid() {
		// Tracing is off: still give the event a trace id (the schema
		// requires one) and a traceparent carrying it, so that consumers
		// can correlate.
		sc = rootSpanContext(env.TraceID)
		ctx = trace.ContextWithSpanContext(ctx, sc)
	}
	if env.TraceID == "" {
		env.TraceID = sc.TraceID().String()
	}
	if err := env.Validate(); err != nil {
		return fail(err)
	}
	value, err := json.Marshal(env)
	if err != nil {
		return fail(fmt.Errorf("encode envelope: %w", err))
	}
	h := p.tel.Inject(ctx, nil)
	add := func(k, v string) {
		if v != "" {
			h = append(h, delivery.Header{Key: k, Value: []byte(v)})
		}
	}
	add(delivery.HeaderCorrelationID, env.CorrelationID)
	add(delivery.HeaderEventID, env.ID)
	add(delivery.HeaderEventType, env.Type)
	add(delivery.HeaderTenantID, env.Metadata.TenantID)
	add(HeaderContentType, ContentTypeJSON)
	if len(extra) > 0 {
		own := make(map[string]bool, len(h))
		for _, x := range h {
			own[x.Key] = true
		}
		h = append(h, extra.Without(func(k string) bool { return own[k] })...)
	}
	return &kgo.Record{
		Topic:   topic,
		Key:     []byte(env.Metadata.PartitionKey),
		Value:   value,
		Headers: fromHeaders(h),
		Context: context.WithValue(ctx, publishSpanKey{}, span),
	}, nil
}

// rootSpanContext returns a non-sampled span context with traceID when it
// is a valid W3C trace id, else a random one.
func rootSpanContext(traceID string) trace.SpanContext {
	var cfg trace.SpanContextConfig
	if tid, err := trace.TraceIDFromHex(traceID); err == nil {
		cfg.TraceID = tid
	} else {
		_, _ = rand.Read(cfg.TraceID[:])
	}
	_, _ = rand.Read(cfg.SpanID[:])
	return trace.NewSpanContext(cfg)
}
