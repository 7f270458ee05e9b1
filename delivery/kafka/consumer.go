package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/delivery"
)

// Delivery is one record handed to the handler. Attempt counts from 1.
type Delivery struct {
	Envelope delivery.Envelope
	Record   *kgo.Record
	Attempt  int
}

// Handler handles one envelope. Return a *delivery.Error to give the
// failure a platform code, delivery.Permanent(err) to skip the remaining
// retries. ctx is canceled when the runner stops or loses the partition.
type Handler func(ctx context.Context, d *Delivery) error

// ConsumerOptions configures a Consumer. Brokers, Group, Topics and Handler
// are required; everything else has a safe default.
type ConsumerOptions struct {
	Brokers []string
	Group   string
	Topics  []string
	Handler Handler
	// Retry is the in-process retry policy; the zero value is
	// delivery.DefaultRetryPolicy.
	Retry delivery.RetryPolicy
	// DLQTopic names the dead-letter topic of a source topic; default
	// delivery.DLQTopic (<topic>.dlq).
	DLQTopic func(topic string) string
	// Idempotency, when set, skips envelopes whose id it already holds and
	// records ids of handled ones for IdempotencyTTL (default 24 h).
	Idempotency    delivery.IdempotencyKeyStore
	IdempotencyTTL time.Duration
	Poison         delivery.PoisonRules
	Telemetry      *delivery.Telemetry
	// Cluster and Service are written into the dead letters' origin.
	Cluster string
	Service string
	Logger  *slog.Logger
	Now     func() time.Time
	// Opts are appended to the client options.
	Opts []kgo.Opt
}

// Consumer runs Handler over a consumer group: records of one partition in
// offset order, partitions concurrently (one goroutine per assigned
// partition), failures retried in process and then dead-lettered, offsets
// committed only past records that were handled or whose dead letter the
// broker acknowledged.
type Consumer struct {
	opts    ConsumerOptions
	log     *slog.Logger
	running atomic.Bool

	// Set by Run before its client exists. Callbacks and workers use the
	// client kgo hands to the callbacks, never a field Run sets later.
	runCtx context.Context
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[topicPartition]*worker
	closing bool
	ensured map[string]bool // DLQ topics known to exist
}

type topicPartition struct {
	topic     string
	partition int32
}

// NewConsumer validates opts and returns a consumer; Run starts it.
func NewConsumer(opts ConsumerOptions) (*Consumer, error) {
	switch {
	case len(opts.Brokers) == 0:
		return nil, errors.New("new consumer: Brokers is required")
	case opts.Group == "":
		return nil, errors.New("new consumer: Group is required")
	case len(opts.Topics) == 0:
		return nil, errors.New("new consumer: Topics is required")
	case opts.Handler == nil:
		return nil, errors.New("new consumer: Handler is required")
	}
	if opts.DLQTopic == nil {
		opts.DLQTopic = delivery.DLQTopic
	}
	for _, t := range opts.Topics {
		if d := opts.DLQTopic(t); d == t || d == "" {
			return nil, fmt.Errorf("new consumer: dead-letter topic of %q must be another topic", t)
		}
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := orDiscard(opts.Logger).With("group", opts.Group)
	return &Consumer{
		opts:    opts,
		log:     log,
		workers: map[topicPartition]*worker{},
		ensured: map[string]bool{},
	}, nil
}

// Run consumes until ctx is done, then stops the partition workers,
// commits what they finished, leaves the group and returns nil. It returns
// an error only when the client cannot be created or the cluster refuses
// the group for good (authorization). Run may be called once.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run called twice")
	}
	kopts := append(baseOpts(c.opts.Brokers, c.log),
		kgo.ConsumerGroup(c.opts.Group),
		kgo.ConsumeTopics(c.opts.Topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	)
	if c.opts.Service != "" {
		kopts = append(kopts, kgo.ClientID(c.opts.Service))
	}
	kopts = append(kopts, c.opts.Opts...)
	c.runCtx = ctx
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.opts.Group, err)
	}
	defer cl.Close()

	for _, t := range c.opts.Topics {
		if err := c.ensureDLQ(ctx, cl, t); err != nil {
			// Not fatal: the source topic may not exist yet. The first
			// dead letter of the topic tries again.
			c.log.Warn("cannot ensure dead-letter topic yet", "topic", t, "dlq", c.opts.DLQTopic(t), "err", err)
		}
	}

	runErr := c.poll(ctx, cl)

	// Stop every worker, then commit what they finished: never past a
	// record a worker abandoned. ctx is done, so the commit gets its own
	// deadline.
	ws := c.stopAll()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.commit(cctx, cl, ws); err != nil {
		c.log.Warn("final commit failed; finished records may be handled again", "err", err)
	}
	return runErr
}

// poll fetches and hands each partition's records to its worker until ctx
// is done.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client) error {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		var fatal error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if isFatal(err) {
				fatal = fmt.Errorf("consumer %s: fetch %s/%d: %w", c.opts.Group, t, p, err)
				return
			}
			c.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		})
		if fatal != nil {
			return fatal
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			w := c.worker(p.Topic, p.Partition)
			if w == nil {
				return // revoked since the fetch: the next owner reads them
			}
			// Blocking here is the backpressure: a busy partition holds
			// up fetching rather than buffering without bound.
			select {
			case w.recs <- p.Records:
			case <-w.ctx.Done():
			}
		})
	}
}

// isFatal reports errors no retry fixes: the group or topic is not ours.
func isFatal(err error) bool {
	return errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed)
}

func (c *Consumer) worker(topic string, partition int32) *worker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.workers[topicPartition{topic, partition}]
}

// assigned starts a worker per new partition. kgo calls it on its group
// goroutine; the workers belong to Run, which waits for them.
func (c *Consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	for topic, ps := range assigned {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if _, ok := c.workers[tp]; ok {
				continue
			}
			wctx, cancel := context.WithCancel(c.runCtx)
			w := &worker{
				c: c, cl: cl, tp: tp, ctx: wctx, cancel: cancel,
				recs: make(chan []*kgo.Record, 2),
				done: make(chan struct{}),
				next: kgo.EpochOffset{Epoch: -1, Offset: -1},
			}
			c.workers[tp] = w
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				w.run()
			}()
		}
	}
}

// revoked stops the workers of revoked partitions and commits what they
// finished, so that the next owner starts right after it.
func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	ws := c.stop(revoked)
	if err := c.commit(ctx, cl, ws); err != nil {
		c.log.Warn("commit on revoke failed; finished records may be handled again", "err", err)
	}
}

// lost stops the workers of lost partitions; their offsets cannot be
// committed any more.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.stop(lost)
}

func (c *Consumer) stop(tps map[string][]int32) []*worker {
	c.mu.Lock()
	var ws []*worker
	for topic, ps := range tps {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if w, ok := c.workers[tp]; ok {
				ws = append(ws, w)
				delete(c.workers, tp)
			}
		}
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.cancel()
	}
	for _, w := range ws {
		<-w.done
	}
	return ws
}

func (c *Consumer) stopAll() []*worker {
	c.mu.Lock()
	c.closing = true
	all := map[string][]int32{}
	for tp := range c.workers {
		all[tp.topic] = append(all[tp.topic], tp.partition)
	}
	c.mu.Unlock()
	ws := c.stop(all)
	c.wg.Wait()
	return ws
}

// commit commits the finished offsets of ws that are not committed yet.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client, ws []*worker) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var pending []*worker
	for _, w := range ws {
		eo, ok := w.uncommitted()
		if !ok {
			continue
		}
		if offsets[w.tp.topic] == nil {
			offsets[w.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[w.tp.topic][w.tp.partition] = eo
		pending = append(pending, w)
	}
	if len(pending) == 0 {
		return nil
	}
	var rerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					rerr = errors.Join(rerr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
				}
			}
		}
	})
	if rerr != nil {
		return fmt.Errorf("commit offsets: %w", rerr)
	}
	for _, w := range pending {
		w.markCommitted(offsets[w.tp.topic][w.tp.partition].Offset)
	}
	return nil
}

// ensureDLQ creates the dead-letter topic of topic with topic's partition
// count, once per Run.
func (c *Consumer) ensureDLQ(ctx context.Context, cl *kgo.Client, topic string) error {
	dlq := c.opts.DLQTopic(topic)
	c.mu.Lock()
	done := c.ensured[dlq]
	c.mu.Unlock()
	if done {
		return nil
	}
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe %s: %w", topic, err)
	}
	d, ok := td[topic]
	switch {
	case !ok:
		return fmt.Errorf("describe %s: not in metadata", topic)
	case d.Err != nil:
		return fmt.Errorf("describe %s: %w", topic, d.Err)
	}
	resp, err := adm.CreateTopic(ctx, int32(len(d.Partitions)), -1, nil, dlq)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create %s: %w", dlq, err)
	}
	if err == nil {
		c.log.Info("created dead-letter topic", "topic", dlq, "partitions", resp.NumPartitions)
	}
	c.mu.Lock()
	c.ensured[dlq] = true
	c.mu.Unlock()
	return nil
}

// worker handles one assigned partition's records in offset order.
type worker struct {
	c      *Consumer
	cl     *kgo.Client
	tp     topicPartition
	ctx    context.Context
	cancel context.CancelFunc
	recs   chan []*kgo.Record
	done   chan struct{}

	mu        sync.Mutex
	next      kgo.EpochOffset // offset after the last finished record
	committed int64
}

func (w *worker) run() {
	defer close(w.done)
	lastCommit := time.Now()
	for {
		select {
		case <-w.ctx.Done():
			return
		case batch := <-w.recs:
			for _, r := range batch {
				if w.ctx.Err() != nil {
					return // revoked or stopping: leave the rest to the next owner
				}
				if n := w.nextOffset(); n >= 0 && r.Offset < n {
					continue // already finished: fetched again after a rebalance
				}
				if !w.c.process(w, r) {
					return // ctx done: r stays unfinished and uncommitted
				}
				w.finish(r)
			}
			// Commit when caught up, or at least every second under load.
			if len(w.recs) == 0 || time.Since(lastCommit) >= time.Second {
				lastCommit = time.Now()
				w.commit()
			}
		}
	}
}

func (w *worker) commit() {
	if err := w.c.commit(w.ctx, w.cl, []*worker{w}); err != nil && w.ctx.Err() == nil {
		w.c.log.Warn("commit failed; will retry with the next batch", "topic", w.tp.topic, "partition", w.tp.partition, "err", err)
	}
}

func (w *worker) nextOffset() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next.Offset
}

func (w *worker) finish(r *kgo.Record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
}

func (w *worker) uncommitted() (kgo.EpochOffset, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next, w.next.Offset > 0 && w.next.Offset > w.committed
}

func (w *worker) markCommitted(off int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off > w.committed {
		w.committed = off
	}
}

// process takes r through poison check, idempotency guard, handler with
// retries and, when all attempts fail, the dead-letter topic. It returns
// false when ctx ended before r was finished.
//
// Its spans tell the record's story: the "<topic> process" consumer span,
// a child of the producer's span through traceparent, holds one "process
// attempt" span per handler call (the handler runs inside it, so its own
// spans nest there; the gap between two attempts is the retry backoff) and,
// for a record that fails for good, the dead-letter publish span.
// Attributes are set only on recording spans, so that a no-op tracer costs
// the hot path nothing but the calls.
func (c *Consumer) process(w *worker, r *kgo.Record) bool {
	start := c.opts.Now()
	headers := toHeaders(r.Headers)
	tracer := c.opts.Telemetry.Tracer()
	ctx := c.opts.Telemetry.Extract(w.ctx, headers)
	ctx, span := tracer.Start(ctx, r.Topic+" process", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(
			attribute.String(delivery.AttrSystem, delivery.BrokerKafka),
			attribute.String(delivery.AttrDest, r.Topic),
			attribute.String(delivery.AttrConsumer, c.opts.Group),
			attribute.String(delivery.AttrStep, delivery.StepProcess),
			attribute.String(attrOperation, "process"),
			attribute.Int(attrPartition, int(r.Partition)),
			attribute.Int64(attrOffset, r.Offset),
		)
	}
	out := delivery.Outcome{System: delivery.BrokerKafka, Destination: r.Topic, Consumer: c.opts.Group}
	// Built only when something is logged: With on every record would
	// cost more than the rest of the happy path.
	var env delivery.Envelope
	log := func() *slog.Logger {
		return c.log.With("topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "event_id", env.ID)
	}

	env, err := c.opts.Poison.Check(r.Value)
	out.EventType, out.Tenant = env.Type, env.Metadata.TenantID
	var who []attribute.KeyValue // what the attempt spans repeat of this one
	if recording {
		who = append(delivery.EnvelopeAttrs(env, c.opts.Cluster),
			attribute.String(delivery.AttrSystem, delivery.BrokerKafka),
			attribute.String(delivery.AttrDest, r.Topic),
			attribute.String(delivery.AttrConsumer, c.opts.Group))
		span.SetAttributes(who...)
	}
	if err != nil {
		now := c.opts.Now()
		log().Info("poison message, dead-lettering without retries", "err", err)
		// No handler ran: the process span is where it failed.
		return c.deadLetter(ctx, w, r, headers, delivery.ErrorInfoOf(err), 1, now, now, span, span.SpanContext(), env, out, start)
	}

	if store := c.opts.Idempotency; store != nil {
		seen, err := store.Has(ctx, env.ID)
		switch {
		case err != nil:
			// At-least-once is the default: handle rather than drop.
			log().Warn("idempotency store lookup failed; handling anyway", "err", err)
		case seen:
			log().Debug("duplicate event id, skipping handler")
			out.Duration = c.opts.Now().Sub(start)
			c.opts.Telemetry.Record(ctx, out)
			return true
		}
	}

	var first, last time.Time
	for attempt := 1; ; attempt++ {
		actx, as := delivery.StartAttempt(ctx, tracer, attempt, who...)
		stack, panicType, err := c.call(actx, &Delivery{Envelope: env, Record: r, Attempt: attempt})
		if err == nil {
			as.End()
			if store := c.opts.Idempotency; store != nil {
				if err := store.Put(ctx, env.ID, c.opts.IdempotencyTTL); err != nil {
					log().Warn("idempotency store put failed; a redelivery would be handled again", "err", err)
				}
			}
			out.Duration = c.opts.Now().Sub(start)
			c.opts.Telemetry.Record(ctx, out)
			return true
		}
		info := delivery.ErrorInfoOf(err)
		if stack != nil {
			info.Stack, info.ExceptionType = string(stack), panicType
		}
		delivery.FailSpan(as, err, info)
		as.End()
		if ctx.Err() != nil {
			return false
		}
		last = c.opts.Now()
		if first.IsZero() {
			first = last
		}
		if delivery.IsPermanent(err) || !c.opts.Retry.Retry(attempt) {
			log().Info("handler failed for good, dead-lettering", "attempts", attempt, "code", info.Code, "err", err)
			return c.deadLetter(ctx, w, r, headers, info, attempt, first, last, span, as.SpanContext(), env, out, start)
		}
		log().Debug("handler failed, retrying", "attempt", attempt, "err", err)
		if !delivery.Sleep(ctx, c.opts.Retry.Delay(attempt)) {
			return false
		}
	}
}

// call runs the handler, turning a panic into a HANDLER_PANIC error with
// its stack and the panic value's type.
func (c *Consumer) call(ctx context.Context, d *Delivery) (stack []byte, panicType string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &delivery.Error{Code: delivery.CodeHandlerPanic, Message: fmt.Sprintf("handler panicked: %v", p)}
			stack, panicType = debug.Stack(), fmt.Sprintf("%T", p)
		}
	}()
	return nil, "", c.opts.Handler(ctx, d)
}

// deadLetter writes r to its dead-letter topic and waits for the broker's
// acknowledgement, retrying with backoff until ctx is done. It returns
// true once the dead letter landed, so that only then the offset moves.
//
// The dead letter's traceparent is failed, the span of the failing attempt
// (the process span for a poison record): its trace id is still the
// message's, so the entry stays in the message's trace, and a redrive can
// link to the very attempt that gave up.
func (c *Consumer) deadLetter(ctx context.Context, w *worker, r *kgo.Record, headers delivery.Headers, info delivery.ErrorInfo,
	attempts int, first, last time.Time, span trace.Span, failed trace.SpanContext, env delivery.Envelope, out delivery.Outcome, start time.Time) bool {
	if failed.IsValid() {
		headers = c.opts.Telemetry.Inject(trace.ContextWithSpanContext(ctx, failed), headers)
	}
	dl := delivery.DeadLetter{
		Origin: delivery.Location{
			Broker:        delivery.BrokerKafka,
			Cluster:       c.opts.Cluster,
			Topic:         r.Topic,
			Partition:     r.Partition,
			Offset:        r.Offset,
			ConsumerGroup: c.opts.Group,
			Service:       c.opts.Service,
		},
		Error:          info,
		Attempts:       attempts,
		FirstFailureAt: first,
		LastFailureAt:  last,
		Headers:        headers,
	}
	dlq := &kgo.Record{
		Topic:   c.opts.DLQTopic(r.Topic),
		Key:     r.Key,
		Value:   r.Value,
		Headers: fromHeaders(delivery.EncodeHeaders(dl)),
	}
	span.SetStatus(codes.Error, info.Code+": "+info.Message)
	span.SetAttributes(attribute.String(delivery.AttrErrorCode, info.Code))

	pctx, ps := c.opts.Telemetry.Tracer().Start(ctx, dlq.Topic+" publish",
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(trace.Link{SpanContext: failed}))
	defer ps.End()
	if ps.IsRecording() {
		ps.SetAttributes(
			attribute.String(delivery.AttrSystem, delivery.BrokerKafka),
			attribute.String(delivery.AttrDest, dlq.Topic),
			attribute.String(delivery.AttrStep, delivery.StepDeadLetter),
			attribute.String(attrOperation, "send"),
			attribute.String(delivery.AttrErrorCode, info.Code),
			attribute.Int(delivery.AttrAttempt, attempts),
		)
		ps.SetAttributes(delivery.EnvelopeAttrs(env, c.opts.Cluster)...)
	}

	committedBefore := false
	for try := 1; ; try++ {
		err := c.ensureDLQ(pctx, w.cl, r.Topic)
		if err == nil {
			rec := *dlq // kgo fills in a record it produces; each try gets a fresh one
			err = w.cl.ProduceSync(pctx, &rec).FirstErr()
			if err == nil {
				ps.SetAttributes(attribute.Int(attrPartition, int(rec.Partition)), attribute.Int64(attrOffset, rec.Offset))
				break
			}
		}
		if ctx.Err() != nil {
			ps.SetStatus(codes.Error, "stopped before the dead letter was written")
			return false
		}
		ps.RecordError(err)
		c.log.Warn("dead-letter produce failed; offset held, retrying", "topic", dlq.Topic,
			"origin_topic", r.Topic, "origin_partition", r.Partition, "origin_offset", r.Offset, "try", try, "err", err)
		if !committedBefore {
			// The records before this one are done: let them be
			// committed while this one waits.
			committedBefore = true
			w.commit()
		}
		if !delivery.Sleep(ctx, dlqBackoff(try)) {
			ps.SetStatus(codes.Error, "stopped before the dead letter was written")
			return false
		}
	}
	out.ErrorCode = info.Code
	out.Duration = c.opts.Now().Sub(start)
	c.opts.Telemetry.Record(ctx, out)
	return true
}

// dlqBackoff is the wait before dead-letter produce try n+1: doubling from
// 100 ms up to 5 s, jittered by up to a half.
func dlqBackoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n-1, 6)
	d = min(d, 5*time.Second)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
