package redrive

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/delivery/rabbitmq"
	"switchyard/dlqstore"
)

// Run resumes the jobs a previous run left unfinished and runs new ones
// until ctx ends. A job's pending items are resent from the ledger: an item
// sent but not yet recorded when the process stopped is sent once more,
// with the same envelope id, so idempotent consumers drop the copy.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(e.opts.Poll)
	defer t.Stop()
	// A job still freezing was being started when the process stopped:
	// nothing of it was sent; end it and give its entries back.
	if ids, err := e.store.AbandonFreezing(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("redrive: ending half-frozen jobs failed", "err", err)
	} else if len(ids) > 0 {
		e.log.Warn("redrive: ended jobs the last run stopped while freezing", "jobs", ids)
	}
	for {
		recs, _, err := e.store.Jobs(ctx, dlqstore.JobQuery{Running: true, Limit: 500}) // every job: the runner is no principal
		if err != nil && ctx.Err() == nil {
			e.log.Warn("redrive: listing unfinished jobs failed", "err", err)
		}
		for _, r := range recs {
			if r.State == dlqstore.JobFreezing {
				continue // Start is still freezing it
			}
			e.mu.Lock()
			if e.running[r.ID] == nil {
				rs := &runState{cancel: make(chan struct{})}
				if r.State == dlqstore.JobCancelling {
					rs.once.Do(func() { close(rs.cancel) })
				}
				e.running[r.ID] = rs
				wg.Add(1)
				go func(id int64) {
					defer wg.Done()
					e.runJob(ctx, id, rs)
					e.mu.Lock()
					delete(e.running, id)
					e.mu.Unlock()
				}(r.ID)
			}
			e.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.wake:
		}
	}
}

func (rs *runState) cancelled() bool {
	select {
	case <-rs.cancel:
		return true
	default:
		return false
	}
}

// runJob sends a job's pending items batch by batch until none is left,
// it is cancelled, its canary fails, or ctx ends (it then resumes on the
// next Run). The run is a span (startJobSpan) and its sends run in that
// span's context, so each message's redrive span is its child.
func (e *Engine) runJob(ctx context.Context, id int64, rs *runState) {
	defer e.setPaused(id, false)
	rec, err := e.store.Job(ctx, id)
	if err != nil || !rec.FinishedAt.IsZero() {
		return
	}
	ctx, span := e.startJobSpan(ctx, rec)
	defer e.endJobSpan(ctx, span, id)
	var req Request
	if err := json.Unmarshal(rec.Request, &req); err != nil {
		e.finish(ctx, rec, dlqstore.JobFailed, "stored request unreadable: "+err.Error())
		return
	}
	sp, err := e.validateStored(req)
	if err != nil {
		e.finish(ctx, rec, dlqstore.JobFailed, delivery.ErrorMessage(err))
		return
	}
	pace := newPacer(sp.req.Rate, e.opts.Unlimited || !sp.sends, e.now)
	// The next batch is read while the current one is sent and recorded;
	// reads and the write transaction use different connections (WAL).
	var ahead *prefetch
	defer func() {
		if ahead != nil {
			<-ahead.done
		}
	}()
	after := 0                // the last seq taken
	var backoff time.Duration // while a broker outage pauses the job
	for ctx.Err() == nil {
		rec, err = e.store.Job(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("redrive: reading job failed; retrying", "job", id, "err", err)
			}
			return
		}
		if rs.cancelled() || rec.State == dlqstore.JobCancelling {
			// Cancel stored who asked before it signalled: read it again.
			if fresh, err := e.store.Job(ctx, id); err == nil {
				rec = fresh
			}
			e.finish(ctx, rec, dlqstore.JobCancelled, cmpOr(rec.Error, "cancelled"))
			return
		}
		limit := pace.batch()
		if c := sp.req.Canary; c > 0 && rec.Total > c {
			processed := rec.Done + rec.Failed
			switch {
			case rec.CanaryUntil.IsZero() && processed < c:
				limit = min(limit, c-processed)
			case rec.CanaryUntil.IsZero():
				until := e.now().Add(sp.req.CanaryWindow)
				if err := e.store.SetCanaryUntil(ctx, id, until); err != nil {
					return
				}
				if err := e.store.SetJobState(ctx, id, dlqstore.JobCanaryWait, "", false); err != nil {
					return
				}
				span.AddEvent("canary sent: waiting for the canary window", trace.WithAttributes(
					attribute.Int(AttrJobDone, rec.Done), attribute.Int(AttrJobFailed, rec.Failed), attribute.String("until", until.UTC().Format(time.RFC3339))))
				continue
			case rec.State == dlqstore.JobCanaryWait:
				n, err := e.store.Refailed(ctx, id)
				if err != nil {
					return
				}
				if n > 0 {
					e.finish(ctx, rec, dlqstore.JobCanaryFailed, fmt.Sprintf("%d of the %d canary messages dead-lettered again within %s; the other %d were not sent",
						n, processed, sp.req.CanaryWindow, rec.Total-processed))
					return
				}
				if wait := rec.CanaryUntil.Sub(e.now()); wait > 0 {
					e.sleep(ctx, rs, min(wait, e.opts.Poll))
					continue
				}
				if err := e.store.SetJobState(ctx, id, dlqstore.JobRunning, "", false); err != nil {
					return
				}
				span.AddEvent("canary window passed: sending the rest")
				// The window was no sending time: the rest is paced, and
				// its rate measured, from now.
				pace = newPacer(sp.req.Rate, e.opts.Unlimited || !sp.sends, e.now)
				rs.restart()
				continue
			}
		}
		var items []dlqstore.JobItem
		var entries []dlqstore.Entry
		if ahead != nil && ahead.after == after && ahead.limit == limit {
			<-ahead.done
			items, entries, err = ahead.items, ahead.entries, ahead.err
		} else {
			if ahead != nil {
				<-ahead.done
			}
			items, entries, err = e.store.PendingItems(ctx, id, after, limit)
		}
		ahead = nil
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("redrive: reading pending items failed", "job", id, "err", err)
			}
			return
		}
		if len(items) == 0 {
			e.finish(ctx, rec, dlqstore.JobCompleted, "")
			return
		}
		if !pace.wait(ctx, rs.cancel, len(items)) {
			continue // cancelled or stopping: the loop head decides
		}
		after = items[len(items)-1].Seq
		if len(items) == limit {
			ahead = e.prefetch(ctx, id, after, limit)
		}
		outs, outage := e.apply(ctx, id, sp, items, entries)
		if outage != nil && ctx.Err() == nil {
			// The broker is unreachable (or the topic not there yet):
			// nothing of the batch is recorded, the job says why and tries
			// the same batch again after a backoff, until it goes through
			// or an operator cancels.
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			msg := fmt.Sprintf("sending paused: %v; retrying every %s", outage, backoff)
			// The gauge first: whoever reads the job paused finds it
			// counted (the deferred setPaused clears it on return).
			e.setPaused(id, true)
			if err := e.store.SetJobState(ctx, id, rec.State, msg, false); err != nil {
				return
			}
			e.log.Warn("redrive: job paused by a broker outage", "job", id, "err", outage, "retry_in", backoff)
			span.AddEvent("sending paused by a broker outage", trace.WithAttributes(
				attribute.String("error", outage.Error()), attribute.String("retry_in", backoff.String())))
			if ahead != nil {
				<-ahead.done
				ahead = nil
			}
			after = items[0].Seq - 1
			pace = newPacer(sp.req.Rate, e.opts.Unlimited || !sp.sends, e.now)
			rs.restart()
			e.sleep(ctx, rs, backoff)
			continue
		}
		if backoff > 0 {
			backoff = 0
			e.setPaused(id, false)
			if err := e.store.SetJobState(ctx, id, rec.State, "", false); err != nil {
				return
			}
		}
		if ctx.Err() != nil {
			// Stopping: keep only what the broker acknowledged; the rest
			// stays pending and is sent again on resume.
			kept := outs[:0]
			for _, o := range outs {
				if o.State == dlqstore.ItemSent {
					kept = append(kept, o)
				}
			}
			outs = kept
		}
		reason := ""
		if sp.req.Action == ActionDiscard || sp.req.Action == ActionQuarantine {
			reason = sp.req.Reason
		}
		if err := e.store.CompleteItems(context.WithoutCancel(ctx), id, outs, sp.done, reason); err != nil {
			e.log.Error("redrive: recording outcomes failed; they will be sent again", "job", id, "err", err)
			return
		}
		if len(outs) < len(items) {
			after = 0 // stopping with items left pending: read from the start again
		}
		byState := map[dlqstore.ItemState]int{}
		for _, o := range outs {
			byState[o.State]++
		}
		for st, n := range byState {
			e.metrics.item(sp.req.Action, st, n)
		}
		rs.add(e.now(), len(outs))
	}
}

// tracerName is the instrumentation scope of the engine's job spans.
const tracerName = "switchyard/redrive"

// The attributes of a job's span, beside delivery.AttrRedriveJob (the job
// id): what it does and to how many entries from its start, and how it
// ended — its state and its items' outcomes — at its end.
const (
	// AttrJobAction is the job's action (redrive, quarantine, …).
	AttrJobAction = "switchyard.redrive.action"
	// AttrJobEntries is how many entries the job froze.
	AttrJobEntries = "switchyard.redrive.entries"
	// AttrJobDestinations is how many destinations the job sends to. One
	// destination is also named the way the senders' spans name theirs
	// (delivery.AttrSystem, AttrCluster, AttrDest), so the span store
	// shows the span only to callers who may view it; several are not
	// named on the span, whose caller may not be allowed them all (the
	// job page lists them, to whoever may see the job).
	AttrJobDestinations = "switchyard.redrive.destinations"
	// AttrJobState is the job's state when the run ended (completed,
	// failed, canary_failed, cancelled; running when the console stopped
	// it midway).
	AttrJobState = "switchyard.redrive.state"
	// AttrJobDone, AttrJobFailed and AttrJobCancelled count the job's
	// entries sent (or applied), failed and not sent, when the run ended.
	AttrJobDone      = "switchyard.redrive.done"
	AttrJobFailed    = "switchyard.redrive.failed"
	AttrJobCancelled = "switchyard.redrive.cancelled"
)

// JobSpanTenant is the tenant of a job's span: "*", every tenant's, which
// only a caller bound to all tenants may view (access.Scope.Allows).
const JobSpanTenant = "*"

// startJobSpan starts the span of one run of a job, "redrive job <id>":
// the root of a trace of its own, as Run, not a request, runs jobs.
func (e *Engine) startJobSpan(ctx context.Context, rec dlqstore.JobRecord) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		// A job may hold entries of several tenants, and who may see it is
		// decided per entry (JobViewer): its span belongs to every tenant,
		// so that only a caller of every tenant sees it on a trace; others
		// see its timing as a gap, and the per-message redrive spans under
		// it by their own tenant.
		attribute.String(delivery.AttrTenant, JobSpanTenant),
		attribute.Int64(delivery.AttrRedriveJob, rec.ID),
		attribute.String(AttrJobAction, rec.Action),
		attribute.Int(AttrJobEntries, rec.Total),
		attribute.Int(AttrJobDestinations, len(rec.Targets)),
	}
	if len(rec.Targets) == 1 {
		if n, err := access.ParseResource(rec.Targets[0]); err == nil {
			switch n.Kind {
			case access.KindKafkaTopic:
				attrs = append(attrs, attribute.String(delivery.AttrSystem, delivery.BrokerKafka),
					attribute.String(delivery.AttrCluster, n.Cluster), attribute.String(delivery.AttrDest, n.Topic))
			case access.KindRabbitQueue:
				attrs = append(attrs, attribute.String(delivery.AttrSystem, delivery.BrokerRabbitMQ),
					attribute.String(delivery.AttrCluster, n.VHost), attribute.String(delivery.AttrDest, n.Queue))
			}
		}
	}
	return e.tracer.Start(ctx, fmt.Sprintf("redrive job %d", rec.ID), trace.WithAttributes(attrs...))
}

// endJobSpan ends a job run's span with the job as it now stands: its
// state and outcome counts; status error when the job failed, its canary
// failed, or it completed with entries that failed (a partial failure is
// a failure to whoever reads the trace). A run that stopped before the
// end (the console stopping) says so; the next run has its own span.
func (e *Engine) endJobSpan(ctx context.Context, span trace.Span, id int64) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	rec, err := e.store.Job(context.WithoutCancel(ctx), id)
	if err != nil {
		span.RecordError(err)
		return
	}
	span.SetAttributes(attribute.String(AttrJobState, string(rec.State)), attribute.Int(AttrJobDone, rec.Done),
		attribute.Int(AttrJobFailed, rec.Failed), attribute.Int(AttrJobCancelled, rec.Cancelled))
	switch {
	case rec.FinishedAt.IsZero():
		span.AddEvent("stopped before the end: the job resumes on the next run")
	case rec.State == dlqstore.JobFailed || rec.State == dlqstore.JobCanaryFailed:
		span.SetStatus(codes.Error, rec.Error)
	case rec.Failed > 0:
		span.SetStatus(codes.Error, fmt.Sprintf("%d of the %d entries failed", rec.Failed, rec.Total))
	}
}

// prefetch is a batch being read ahead.
type prefetch struct {
	after, limit int
	done         chan struct{}
	items        []dlqstore.JobItem
	entries      []dlqstore.Entry
	err          error
}

func (e *Engine) prefetch(ctx context.Context, id int64, after, limit int) *prefetch {
	p := &prefetch{after: after, limit: limit, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.items, p.entries, p.err = e.store.PendingItems(ctx, id, after, limit)
	}()
	return p
}

// sleep waits d, or less when the job is cancelled or ctx ends.
func (e *Engine) sleep(ctx context.Context, rs *runState, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-rs.cancel:
	case <-t.C:
	}
}

// finish ends a job: items still pending are cancelled (their entries back
// in their previous status) unless it completed, and the end is audited.
func (e *Engine) finish(ctx context.Context, rec dlqstore.JobRecord, state dlqstore.JobState, why string) {
	ctx = context.WithoutCancel(ctx)
	e.setPaused(rec.ID, false)
	pending := rec.Total - rec.Done - rec.Failed - rec.Cancelled
	if state != dlqstore.JobCompleted {
		itemWhy := "not sent: the job was " + string(state)
		switch state {
		case dlqstore.JobCanaryFailed:
			itemWhy = "not sent: the canary failed"
		case dlqstore.JobFailed:
			itemWhy = "not sent: the job failed"
		}
		if err := e.store.CancelPending(ctx, rec.ID, itemWhy); err != nil {
			e.log.Error("redrive: cancelling pending items failed", "job", rec.ID, "err", err)
			return
		}
	}
	if err := e.store.SetJobState(ctx, rec.ID, state, why, true); err != nil {
		e.log.Error("redrive: ending job failed", "job", rec.ID, "err", err)
		return
	}
	e.metrics.ended(Action(rec.Action), state)
	if state != dlqstore.JobCompleted {
		e.metrics.item(Action(rec.Action), dlqstore.ItemCancelled, pending)
	}
	end, err := e.store.Job(ctx, rec.ID)
	if err != nil {
		return
	}
	var req Request
	_ = json.Unmarshal(end.Request, &req)
	outcome := access.OutcomeSuccess
	if state != dlqstore.JobCompleted || end.Failed > 0 {
		outcome = access.OutcomeFailure
	}
	e.audit(ctx, Actor{P: &access.Principal{User: end.Actor, Method: "job"}}, "dlq.job.finish", end.ID, req, outcome, map[string]any{
		"state": state, "total": end.Total, "done": end.Done, "failed": end.Failed, "cancelled": end.Cancelled, "error": why})
	e.log.Info("redrive: job ended", "job", end.ID, "action", end.Action, "state", state, "done", end.Done, "failed", end.Failed, "cancelled", end.Cancelled)
}

// apply does the job's action to one batch and returns each item's
// outcome, and an outage error when every message sent failed for a reason
// that says nothing about the messages (see transient).
func (e *Engine) apply(ctx context.Context, jobID int64, sp spec, items []dlqstore.JobItem, entries []dlqstore.Entry) ([]dlqstore.Outcome, error) {
	outs := make([]dlqstore.Outcome, len(items))
	for i, it := range items {
		outs[i] = dlqstore.Outcome{Seq: it.Seq, EntryID: it.EntryID, State: dlqstore.ItemSent}
		if entries[i].ID == 0 {
			outs[i].State, outs[i].Error = dlqstore.ItemFailed, "the entry was purged before the job reached it"
		}
	}
	if !sp.sends {
		return outs, nil
	}
	type batch struct {
		sender Sender
		idx    []int
		msgs   []Message
	}
	var order []string
	batches := map[string]*batch{}
	for i, it := range items {
		if outs[i].State != dlqstore.ItemSent {
			continue
		}
		if entries[i].Truncated {
			if err := e.refetch(ctx, &entries[i]); err != nil {
				outs[i].State, outs[i].Error = dlqstore.ItemFailed, err.Error()
				continue
			}
		}
		m, err := e.message(jobID, sp, it, entries[i])
		if err == nil {
			key := m.Target.Broker + "\x00" + m.Target.Cluster
			b := batches[key]
			if b == nil {
				s, serr := e.opts.Sender(m.Target.Broker, m.Target.Cluster)
				if serr != nil {
					err = serr
				} else {
					b = &batch{sender: s}
					batches[key] = b
					order = append(order, key)
				}
			}
			if b != nil {
				b.idx = append(b.idx, i)
				b.msgs = append(b.msgs, m)
				continue
			}
		}
		outs[i].State, outs[i].Error = dlqstore.ItemFailed, delivery.ErrorMessage(err)
	}
	sent, down := 0, 0
	var outage error
	for _, key := range order {
		b := batches[key]
		errs := b.sender.Send(ctx, b.msgs)
		for k, i := range b.idx {
			var err error
			if k < len(errs) {
				err = errs[k]
			} else {
				err = fmt.Errorf("the sender reported no outcome")
			}
			sent++
			if err != nil {
				outs[i].State, outs[i].Error = dlqstore.ItemFailed, err.Error()
				if transient(err) {
					down++
					outage = err
				}
			}
		}
	}
	if sent == 0 || down < sent {
		outage = nil
	}
	return outs, outage
}

// transient reports whether a send error is an outage to wait out (broker
// unreachable, connection closed, a retriable Kafka error such as an
// unknown topic or a leader election, a timeout) rather than a verdict on
// the message (too large, unroutable, nacked).
func transient(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	if errors.Is(err, rabbitmq.ErrUnroutable) || errors.Is(err, rabbitmq.ErrNacked) {
		return false
	}
	var ne net.Error
	var ae *amqp.Error
	return errors.As(err, &ne) || errors.As(err, &ae) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries)
}

// refetch replaces a cut payload with the whole record's value, read back
// from the Kafka DLQ; a RabbitMQ entry has no copy to read back.
func (e *Engine) refetch(ctx context.Context, en *dlqstore.Entry) error {
	if en.Broker != delivery.BrokerKafka || e.opts.Fetch == nil {
		return fmt.Errorf("the payload was cut to %d of %d bytes when indexed and the queue no longer has the message", len(en.DL.Payload), en.PayloadSize)
	}
	r, err := e.opts.Fetch(ctx, en.Cluster, en.Destination, en.Partition, en.Offset)
	if err != nil {
		return err
	}
	if en.PayloadHash != "" && fmt.Sprintf("%x", sha256.Sum256(r.Value)) != en.PayloadHash {
		return fmt.Errorf("the record at %s/%d@%d is not the one indexed (its hash differs)", en.Destination, en.Partition, en.Offset)
	}
	en.DL.Payload, en.Truncated = r.Value, false
	return nil
}

// RabbitCluster is the cluster name of the console's RabbitMQ connection,
// for destinations given as rabbitmq:<vhost>/<queue> of a Kafka entry.
const RabbitCluster = "rabbitmq"

// message is what a redrive (or a quarantine publish) sends for an entry.
func (e *Engine) message(jobID int64, sp spec, it dlqstore.JobItem, en dlqstore.Entry) (Message, error) {
	if en.Truncated {
		return Message{}, fmt.Errorf("the payload was cut to %d of %d bytes when indexed and cannot be sent whole", len(en.DL.Payload), en.PayloadSize)
	}
	rc := RabbitCluster
	if en.Broker == delivery.BrokerRabbitMQ {
		rc = en.Cluster
	}
	target := it.Target
	if sp.req.Action == ActionQuarantine {
		t, err := parseTarget(target, rc)
		if err != nil {
			return Message{}, err
		}
		if t.Broker == delivery.BrokerKafka {
			t.Topic = delivery.QuarantineName(t.Topic)
		} else {
			t.RoutingKey = delivery.QuarantineName(t.RoutingKey)
		}
		target = t.Resource()
	}
	t, err := parseTarget(target, rc)
	if err != nil {
		return Message{}, err
	}
	dl := en.DL
	headers, _, _ := delivery.RedriveHeaders(dl, jobID)
	m := Message{EntryID: en.ID, Target: t, Key: dl.Key, Headers: headers, Body: dl.Payload, MessageID: en.MessageID}
	if env := dl.Envelope; env != nil {
		m.MessageID, m.CorrelationID, m.Type, m.ContentType = env.ID, env.CorrelationID, env.Type, "application/json"
	}
	if sp.req.Action == ActionEditRedrive {
		orig := cmpOr(m.MessageID, fmt.Sprintf("entry-%d", en.ID))
		env, err := editedEnvelope(sp.req.Edit.Payload, orig)
		if err != nil {
			return Message{}, err
		}
		body, err := json.Marshal(env)
		if err != nil {
			return Message{}, err
		}
		m.Body, m.MessageID, m.CorrelationID, m.Type, m.ContentType = body, env.ID, env.CorrelationID, env.Type, "application/json"
		m.Headers = setHeader(m.Headers, delivery.HeaderEventID, env.ID)
		m.Headers = setHeader(m.Headers, delivery.HeaderCorrelationID, env.CorrelationID)
		m.Headers = setHeader(m.Headers, delivery.HeaderEventType, env.Type)
		for k, v := range sp.req.Edit.Headers {
			if v == nil {
				m.Headers = m.Headers.Without(func(key string) bool { return key == k })
			} else {
				m.Headers = setHeader(m.Headers, k, *v)
			}
		}
	}
	return m, nil
}

func setHeader(h delivery.Headers, k, v string) delivery.Headers {
	out := h.Without(func(key string) bool { return key == k })
	return append(out, delivery.Header{Key: k, Value: []byte(v)})
}

// editedEnvelope validates an edited envelope and gives it a new id with
// the original id as its correlation id. Errors: EINVALID.
func editedEnvelope(payload []byte, origID string) (delivery.Envelope, error) {
	env, err := delivery.ParseEnvelope(payload)
	if err != nil {
		return env, delivery.Errorf(delivery.EINVALID, "the edited payload is not an envelope: %v", err)
	}
	env.ID = uuid.NewString()
	env.CorrelationID = origID
	if err := env.Validate(); err != nil {
		return env, delivery.Errorf(delivery.EINVALID, "the edited envelope is invalid: %v", err)
	}
	return env, nil
}

// editDiff is the change an edit makes to the entry's envelope, for the
// audit log: each changed top-level and nested field with before and after.
func (e *Engine) editDiff(ctx context.Context, req Request) (map[string]any, error) {
	en, err := e.store.Entry(ctx, req.Selector.IDs[0])
	if err != nil {
		return nil, err
	}
	var before, after any
	_ = json.Unmarshal(en.DL.Payload, &before)
	if err := json.Unmarshal(req.Edit.Payload, &after); err != nil {
		return nil, err
	}
	changes := map[string]any{}
	diffJSON("", before, after, changes)
	delete(changes, "id")
	delete(changes, "correlation_id")
	out := map[string]any{"payload": changes}
	if len(req.Edit.Headers) > 0 {
		out["headers"] = req.Edit.Headers
	}
	return out, nil
}

func diffJSON(path string, a, b any, out map[string]any) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k, av := range am {
			diffJSON(join(path, k), av, bm[k], out)
		}
		for k, bv := range bm {
			if _, ok := am[k]; !ok {
				out[join(path, k)] = map[string]any{"before": nil, "after": bv}
			}
		}
		return
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	if string(ab) != string(bb) {
		out[path] = map[string]any{"before": a, "after": b}
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// pacer holds a job to its rate: batch n is released no earlier than the
// time the messages before it take at the rate, counted from the job's
// (re)start, so the average never exceeds the limit and bursts stay a tenth
// of a second's worth.
type pacer struct {
	rate      float64
	unlimited bool
	now       func() time.Time
	start     time.Time
	sent      int
}

func newPacer(rate float64, unlimited bool, now func() time.Time) *pacer {
	return &pacer{rate: rate, unlimited: unlimited || rate <= 0, now: now}
}

// batch is how many items to take next.
func (p *pacer) batch() int {
	if p.unlimited {
		return 500
	}
	return max(1, min(500, int(p.rate/10)))
}

// wait blocks until n more messages fit the rate; false when cancel closed
// or ctx ended first.
func (p *pacer) wait(ctx context.Context, cancel <-chan struct{}, n int) bool {
	if p.unlimited {
		return ctx.Err() == nil
	}
	if p.start.IsZero() {
		p.start = p.now()
	}
	due := p.start.Add(time.Duration(float64(p.sent) / p.rate * float64(time.Second)))
	p.sent += n
	if d := due.Sub(p.now()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			p.sent -= n
			return false
		case <-cancel:
			p.sent -= n
			return false
		case <-t.C:
		}
	}
	return true
}
