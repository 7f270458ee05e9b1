package redrive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"switchyard/access"
	"switchyard/delivery"
	"switchyard/dlqstore"
)

// AuditLog records job events. *access.Audit implements it.
type AuditLog interface {
	Append(ctx context.Context, e access.AuditEvent) error
}

// Options configures an Engine.
type Options struct {
	Store  dlqstore.JobStore // required
	Policy access.Policy
	Audit  AuditLog // nil = not recorded
	// Sender returns the sender of a broker cluster (delivery.BrokerKafka
	// and a cluster name, or delivery.BrokerRabbitMQ and the RabbitMQ
	// connection's name); an error when the console has none.
	Sender func(broker, cluster string) (Sender, error)
	// Fetch reads a Kafka dead letter's record back when the index holds
	// only the first bytes of its payload (nil: such entries fail).
	Fetch Fetcher
	// MaxRate caps Request.Rate (default DefaultMaxRate messages/s).
	MaxRate float64
	// Unlimited turns the rate limit off (benchmarks).
	Unlimited   bool
	EditEnabled bool // allow edit_redrive (config dlq.edit_redrive)
	// Registerer, when set, gets the engine's metrics
	// (switchyard_dlq_job_items_total, switchyard_dlq_jobs_finished_total,
	// switchyard_dlq_jobs_paused).
	Registerer prometheus.Registerer
	// CanaryDefault is the canary of a request that asks for the default
	// (Request.CanaryDefault) when its set holds more than
	// CanaryThreshold entries (defaults DefaultCanary and
	// DefaultCanaryThreshold; a negative CanaryDefault turns it off).
	CanaryDefault, CanaryThreshold int
	// Poll is how often Run looks for jobs to resume and a canary for
	// re-failures (default 1 s).
	Poll time.Duration
	// TracerProvider records each job run as a span, "redrive job <id>"
	// (see runJob), under which the senders' per-message redrive spans
	// hang, so a trace shows what one job sent and how it ended. nil
	// records nothing.
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
	Now            func() time.Time
}

// Engine plans, starts, runs, resumes and cancels jobs. Its methods are
// safe for concurrent use.
type Engine struct {
	opts  Options
	store dlqstore.JobStore
	log   *slog.Logger
	now   func() time.Time
	wake  chan struct{}

	metrics *metrics
	tracer  trace.Tracer

	mu      sync.Mutex
	running map[int64]*runState // jobs with a goroutine in this process
	paused  map[int64]bool      // jobs a broker outage holds up
}

// runState is what a running job keeps in memory: its measured rate and
// its cancel signal.
type runState struct {
	cancel chan struct{}
	once   sync.Once
	mu     sync.Mutex
	// The batches sent since sending (re)started — at the job's start, and
	// after a canary window or a broker outage: when the first went out
	// and how many it held, when the last did, and how many in all.
	first, last time.Time
	firstN, n   int
}

// New returns an engine; Run resumes unfinished jobs and runs new ones.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("redrive: a store is required")
	}
	if opts.MaxRate <= 0 {
		opts.MaxRate = DefaultMaxRate
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.CanaryDefault == 0 {
		opts.CanaryDefault = DefaultCanary
	}
	if opts.CanaryThreshold <= 0 {
		opts.CanaryThreshold = DefaultCanaryThreshold
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TracerProvider == nil {
		opts.TracerProvider = noop.NewTracerProvider()
	}
	if opts.Sender == nil {
		opts.Sender = func(broker, cluster string) (Sender, error) {
			return nil, fmt.Errorf("no %s connection %q to send with", broker, cluster)
		}
	}
	e := &Engine{opts: opts, store: opts.Store, log: opts.Logger, now: opts.Now,
		wake: make(chan struct{}, 1), running: map[int64]*runState{}, paused: map[int64]bool{},
		tracer: opts.TracerProvider.Tracer(tracerName)}
	m, err := newMetrics(opts.Registerer, func() float64 {
		e.mu.Lock()
		defer e.mu.Unlock()
		return float64(len(e.paused))
	})
	if err != nil {
		return nil, err
	}
	e.metrics = m
	return e, nil
}

func (e *Engine) setPaused(id int64, on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if on {
		e.paused[id] = true
	} else {
		delete(e.paused, id)
	}
}

// EditEnabled reports whether edit-and-redrive is enabled.
func (e *Engine) EditEnabled() bool { return e.opts.EditEnabled }

// MaxRate is the highest rate a request may ask for.
func (e *Engine) MaxRate() float64 { return e.opts.MaxRate }

// spec is a validated request with what the store needs.
type spec struct {
	req      Request
	access   access.Action
	eligible []dlqstore.Status
	hold     dlqstore.Status // status while in the job ("" = unchanged)
	done     dlqstore.Status // status once sent or applied
	sends    bool            // publishes to a broker
}

// maxReason bounds a reason.
const maxReason = 2000

func (e *Engine) validate(req Request, starting, editAllowed bool) (spec, error) {
	bad := func(format string, args ...any) (spec, error) {
		return spec{}, delivery.Errorf(delivery.EINVALID, format, args...)
	}
	sp := spec{req: req}
	r, ok := ruleOf(req.Action)
	if !ok {
		return bad("unknown action %q (want redrive, quarantine, discard, restore or edit_redrive)", req.Action)
	}
	sp.access, sp.eligible, sp.hold, sp.done, sp.sends = r.access, r.eligible, r.hold, r.done, req.Action.Republishes()
	switch req.Action {
	case ActionEditRedrive:
		if !editAllowed {
			return bad("edit and redrive is turned off (set dlq.edit_redrive in the console's config)")
		}
		if len(req.Selector.IDs) != 1 || req.Selector.Group != 0 || req.Selector.Filter != nil || req.Selector.RestOf != 0 {
			return bad("edit and redrive works on exactly one entry")
		}
		if req.Edit == nil || len(req.Edit.Payload) == 0 {
			return bad("edit and redrive needs the edited envelope")
		}
	case ActionQuarantine:
		// Publishing to <topic>.quarantine holds the entries like a redrive.
		sp.sends = req.PublishQuarantine
		if sp.sends {
			sp.hold = dlqstore.StatusRedriving
		}
	}
	if req.Action != ActionEditRedrive && req.Edit != nil {
		return bad("an edit is only for edit_redrive")
	}
	s := req.Selector
	n := 0
	if len(s.IDs) > 0 {
		n++
	}
	if s.Group != 0 {
		n++
	}
	if s.Filter != nil {
		n++
	}
	if s.RestOf != 0 {
		n++
	}
	if n != 1 {
		return bad("the selector needs exactly one of ids, group, filter or rest_of")
	}
	if s.RestOf < 0 {
		return bad("rest_of must be a job id")
	}
	if len(s.IDs) > dlqstore.MaxSelectIDs {
		return bad("at most %d ids; select by group or filter instead", dlqstore.MaxSelectIDs)
	}
	if req.Rate == 0 {
		sp.req.Rate = DefaultRate
	}
	if sp.req.Rate < 0 || sp.req.Rate > e.opts.MaxRate {
		return bad("rate must be between 0 and %g messages per second", e.opts.MaxRate)
	}
	if req.Canary < 0 {
		return bad("canary must not be negative")
	}
	if req.Canary > 0 && !sp.sends {
		return bad("a canary is only for jobs that publish (redrive)")
	}
	if secs := req.CanaryWindowSeconds; secs != 0 {
		w := time.Duration(secs * float64(time.Second))
		if math.IsNaN(secs) || secs < 0 || secs > 24*3600 || (req.CanaryWindow != 0 && req.CanaryWindow != w) {
			return bad("canary_window_seconds must be between 0 and 86400 (and agree with canary_window when both are given)")
		}
		sp.req.CanaryWindow = w
	}
	if req.CanaryWindow < 0 || req.CanaryWindow > 24*time.Hour {
		return bad("the canary window must be between 0 and 24h")
	}
	if req.CanaryDefault && !sp.sends {
		sp.req.CanaryDefault = false // nothing is sent: no canary to default
	}
	if (req.Canary > 0 || sp.req.CanaryDefault) && sp.req.CanaryWindow == 0 {
		sp.req.CanaryWindow = DefaultCanaryWindow
	}
	if req.Target != "" {
		if !req.Action.Republishes() {
			return bad("a destination is only for redrive")
		}
		if _, err := parseTarget(req.Target, ""); err != nil {
			return spec{}, err
		}
	}
	if req.PublishQuarantine && req.Action != ActionQuarantine {
		return bad("publish_quarantine is only for quarantine")
	}
	sp.req.Reason = strings.TrimSpace(req.Reason)
	if starting && sp.req.Reason == "" {
		return bad("say why: a job needs a reason, which the audit log keeps")
	}
	if len(sp.req.Reason) > maxReason {
		return bad("the reason is too long (at most %d characters)", maxReason)
	}
	if req.Edit != nil {
		if _, err := editedEnvelope(req.Edit.Payload, "orig"); err != nil {
			return spec{}, err
		}
	}
	return sp, nil
}

// parseTarget reads a resource name (access.ParseResource) as where to
// publish; rabbitCluster is the RabbitMQ connection to use. Errors:
// EINVALID for anything but a Kafka topic or a RabbitMQ queue.
func parseTarget(res, rabbitCluster string) (Target, error) {
	n, err := access.ParseResource(res)
	switch {
	case err == nil && n.Kind == access.KindKafkaTopic:
		return Target{Broker: delivery.BrokerKafka, Cluster: n.Cluster, Topic: n.Topic}, nil
	case err == nil && n.Kind == access.KindRabbitQueue:
		return Target{Broker: delivery.BrokerRabbitMQ, Cluster: rabbitCluster, VHost: n.VHost, RoutingKey: n.Queue}, nil
	}
	return Target{}, delivery.Errorf(delivery.EINVALID, "destination %q: want kafka:<cluster>/<topic> or rabbitmq:<vhost>/<queue>", res)
}

// selection is the store selection of a validated request for a
// principal: their scope for the job's action (dlqstore.ScopeFor), and a
// filter's text kept off payloads unless they may search them
// (dlqstore.MaySearchPayloads) — a plan's count would otherwise tell them
// what a masked field holds, whoever calls the engine.
func (e *Engine) selection(a Actor, sp spec) (dlqstore.Selection, error) {
	pol := e.opts.Policy
	if len(pol.Rules(a.P, sp.access)) == 0 {
		return dlqstore.Selection{}, delivery.Errorf(delivery.EFORBIDDEN, "you may not %s dead letters (no binding grants %s)", verb(sp.req.Action), sp.access)
	}
	if sp.req.Action == ActionEditRedrive {
		if len(pol.Rules(a.P, access.ActionRedrive)) == 0 {
			return dlqstore.Selection{}, delivery.Errorf(delivery.EFORBIDDEN, "you may not redrive dead letters")
		}
	}
	if d := sp.req.Target; d != "" {
		if err := pol.Authorize(a.P, access.ActionRedriveElsewhere, access.Res(d)); err != nil {
			return dlqstore.Selection{}, delivery.Errorf(delivery.EFORBIDDEN, "you may not redrive to %s (needs %s on it)", d, access.ActionRedriveElsewhere)
		}
	}
	sel := dlqstore.Selection{Scope: dlqstore.ScopeFor(pol, a.P, sp.access), Eligible: sp.eligible, Target: sp.req.Target}
	s := sp.req.Selector
	switch {
	case len(s.IDs) > 0:
		sel.IDs = slices.Compact(slices.Sorted(slices.Values(s.IDs)))
	case s.Group != 0:
		sel.Group = s.Group
	case s.RestOf != 0:
		sel.RestOf = s.RestOf
	default:
		f := *s.Filter // validated by the store with the selection
		f.NoPayloadText = !dlqstore.MaySearchPayloads(pol, a.P, sp.access)
		sel.Filter = &f
	}
	return sel, nil
}

// Plan is a dry run: what Start would freeze now, for this principal.
// Errors: EINVALID, EFORBIDDEN.
func (e *Engine) Plan(ctx context.Context, a Actor, req Request) (Plan, error) {
	sp, err := e.validate(req, false, e.opts.EditEnabled)
	if err != nil {
		return Plan{}, err
	}
	sel, err := e.selection(a, sp)
	if err != nil {
		return Plan{}, err
	}
	if err := e.checkRestOf(ctx, a, sp); err != nil {
		return Plan{}, err
	}
	return e.plan(ctx, sp, sel)
}

// checkRestOf lets the rest of a job be selected only by someone who may
// see that job (a job they may not see is ENOTFOUND, as everywhere), once
// it has stopped: while it runs, its rest is still its own to send.
func (e *Engine) checkRestOf(ctx context.Context, a Actor, sp spec) error {
	id := sp.req.Selector.RestOf
	if id == 0 {
		return nil
	}
	rec, err := e.store.ViewJob(ctx, id, e.viewer(a))
	if err != nil {
		return err
	}
	if rec.FinishedAt.IsZero() {
		return delivery.Errorf(delivery.EINVALID, "job %d is still running: its rest is planned once it has stopped", id)
	}
	return nil
}

// withCanaryDefault gives a request that asks for the default canary
// (Request.CanaryDefault, Canary 0) the engine's for a set of count
// entries above the threshold.
func (e *Engine) withCanaryDefault(sp *spec, count int) {
	if sp.req.CanaryDefault && sp.req.Canary == 0 && e.opts.CanaryDefault > 0 && count > e.opts.CanaryThreshold {
		sp.req.Canary = e.opts.CanaryDefault
	}
	if sp.req.Canary == 0 {
		sp.req.CanaryWindow = 0
	}
}

// Estimate is how long a job of count entries takes at rate (0 when
// unlimited): the sending, plus the canary window when a canary holds the
// rest back (a canary as big as the set holds nothing back, and the job
// does not wait).
func Estimate(count int, rate float64, canary int, window time.Duration) time.Duration {
	var d time.Duration
	if rate > 0 {
		d = time.Duration(float64(count) / rate * float64(time.Second))
	}
	if canary > 0 && count > canary {
		d += window
	}
	return d.Round(time.Second)
}

func (e *Engine) plan(ctx context.Context, sp spec, sel dlqstore.Selection) (Plan, error) {
	sp2, err := e.store.PlanSelection(ctx, sel, MaxSample)
	if err != nil {
		return Plan{}, err
	}
	e.withCanaryDefault(&sp, sp2.Count)
	p := Plan{Action: sp.req.Action, Count: sp2.Count, Rate: sp.req.Rate, Canary: sp.req.Canary, CanaryWindow: sp.req.CanaryWindow,
		Targets: []TargetCount{}, Sample: []SampleItem{}}
	for t, n := range sp2.Targets {
		p.Targets = append(p.Targets, TargetCount{Target: t, Count: n})
	}
	slices.SortFunc(p.Targets, func(x, y TargetCount) int {
		if x.Count != y.Count {
			return y.Count - x.Count
		}
		return strings.Compare(x.Target, y.Target)
	})
	for _, en := range sp2.Sample {
		si := SampleItem{EntryID: en.ID, Target: cmpOr(sp.req.Target, en.Resource), ErrorMessage: firstLine(en.DL.Error.Message)}
		if sp.sends && sp.req.Action != ActionQuarantine {
			_, si.HeadersAdded, si.HeadersRemoved = delivery.RedriveHeaders(en.DL, 0)
			for i := range si.HeadersAdded {
				if si.HeadersAdded[i].Key == delivery.HeaderRedriveJob {
					si.HeadersAdded[i].Value = []byte("(the job's id)")
				}
			}
		}
		p.Sample = append(p.Sample, si)
	}
	if sp.sends {
		rate := p.Rate
		if e.opts.Unlimited {
			rate = 0
		}
		p.EstimatedTime = Estimate(p.Count, rate, p.Canary, p.CanaryWindow)
		p.EstimatedSeconds = p.EstimatedTime.Seconds()
	}
	if p.Canary > 0 && p.Count > 0 && p.Count <= p.Canary {
		p.Warnings = append(p.Warnings, fmt.Sprintf("the canary (%d) is the whole set: nothing is held back, so there is no canary window; choose a smaller canary to send a few first", p.Canary))
	}
	if sp2.Ineligible > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d selected entries are left out: their status (%s) is not one %s applies to",
			sp2.Ineligible, "e.g. redriving, redriven or resolved", verb(sp.req.Action)))
	}
	if sp2.TextBehind > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("text search covers entries up to %s ago: these counts leave out newer entries that match; starting the job first waits for text search to catch up, so that they are selected too",
			max(sp2.TextBehind.Round(time.Second), time.Second)))
	}
	if sp2.TextPending {
		p.Warnings = append(p.Warnings, "older entries are still being added to text search (after an upgrade or a rebuild): those not added yet are neither counted nor selected")
	}
	if n := len(sel.IDs); n > 0 && n > sp2.Count+sp2.Ineligible {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d of the %d ids are not found or not yours to %s", n-sp2.Count-sp2.Ineligible, n, verb(sp.req.Action)))
	}
	if sp.sends && sp2.TruncatedBody > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d entries had their payload cut when indexed: Kafka ones are read back whole from their dead-letter topic; RabbitMQ ones cannot be sent (raise dlq.rabbit_payload_cap)", sp2.TruncatedBody))
	}
	if p.Count == 0 {
		p.Warnings = append(p.Warnings, "nothing to do: the selection holds no entry this action applies to")
	}
	return p, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Start validates, authorizes and freezes a job, records it in the audit
// log and lets Run send it. Errors: EINVALID, EFORBIDDEN, ECONFLICT (a job
// runs on one of its destinations and Force is not set).
func (e *Engine) Start(ctx context.Context, a Actor, req Request) (Job, error) {
	if req.DryRun {
		return Job{}, delivery.Errorf(delivery.EINVALID, "a dry run has a plan, not a job: call Plan")
	}
	sp, err := e.validate(req, true, e.opts.EditEnabled)
	if err != nil {
		return Job{}, err
	}
	sel, err := e.selection(a, sp)
	if err != nil {
		return Job{}, err
	}
	if err := e.checkRestOf(ctx, a, sp); err != nil {
		return Job{}, err
	}
	if sp.req.CanaryDefault && sp.req.Canary == 0 {
		pl, err := e.store.PlanSelection(ctx, sel, 0)
		if err != nil {
			return Job{}, err
		}
		e.withCanaryDefault(&sp, pl.Count)
	}
	body, _ := json.Marshal(sp.req)
	rec := dlqstore.JobRecord{Action: string(sp.req.Action), State: dlqstore.JobRunning, Actor: actorName(a), Reason: sp.req.Reason, Request: body, Access: sp.access}
	// One sending job per destination unless forced: the store checks it
	// in the transaction that freezes the entries.
	sel.Exclusive = sp.sends && !sp.req.Force
	rec, err = e.store.CreateJob(ctx, rec, sel, sp.hold)
	if err != nil {
		err = e.nameBusy(ctx, a, err)
		e.audit(ctx, a, "dlq.job.start", 0, sp.req, access.OutcomeFailure, map[string]any{"error": delivery.ErrorMessage(err)})
		return Job{}, err
	}
	details := map[string]any{"total": rec.Total, "destinations": rec.PerTarget, "rate": sp.req.Rate, "canary": sp.req.Canary}
	if sp.req.Edit != nil {
		if d, err := e.editDiff(ctx, sp.req); err == nil {
			details["edit_diff"] = d
		}
	}
	e.audit(ctx, a, "dlq.job.start", rec.ID, sp.req, access.OutcomeSuccess, details)
	e.kick()
	return e.jobOf(rec), nil
}

// nameBusy names the job that holds a refused start's destination
// (dlqstore.BusyError) to a caller who may see it (see viewer); to anyone
// else the refusal says only that another job runs there.
func (e *Engine) nameBusy(ctx context.Context, a Actor, err error) error {
	var busy *dlqstore.BusyError
	if !errors.As(err, &busy) {
		return err
	}
	if _, verr := e.store.ViewJob(ctx, busy.Job, e.viewer(a)); verr != nil {
		return err
	}
	return delivery.Errorf(delivery.ECONFLICT, "job %d is still running on %s: wait for it, cancel it, or start anyway with force", busy.Job, busy.Target)
}

func actorName(a Actor) string {
	if a.P == nil {
		return ""
	}
	return a.P.User
}

func (e *Engine) audit(ctx context.Context, a Actor, action string, jobID int64, req Request, outcome string, details map[string]any) {
	if e.opts.Audit == nil {
		return
	}
	if details == nil {
		details = map[string]any{}
	}
	details["job_action"] = string(req.Action)
	details["selector"] = req.Selector
	if req.Target != "" {
		details["destination"] = req.Target
	}
	ev := access.AuditEvent{Time: e.now(), Actor: actorName(a), SourceIP: a.SourceIP, UserAgent: a.UserAgent,
		Action: action, Resource: access.ConsoleDLQ, Reason: req.Reason, Outcome: outcome, Details: details}
	if a.P != nil {
		ev.Method = a.P.Method
	}
	if jobID != 0 {
		ev.AffectedIDs = []string{fmt.Sprintf("job:%d", jobID)}
	}
	if err := e.opts.Audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		e.log.Error("redrive: audit record lost", "action", action, "job", jobID, "err", err)
	}
}

// viewer is what the store needs to judge which jobs a principal may see
// and cancel (dlqstore.JobViewer): their rules for every action a job can
// need. A job is theirs to see when those rules allow every entry of it,
// as Start demanded of whoever started it, or are unrestricted (an admin).
// A nil principal has no rules and sees no job.
func (e *Engine) viewer(a Actor) dlqstore.JobViewer {
	// The actions a job can need: its entries' (validate's sp.access)
	// and redrive_elsewhere on a destination.
	acts := []access.Action{access.ActionRedrive, access.ActionEdit, access.ActionQuarantine, access.ActionDiscard, access.ActionRedriveElsewhere}
	v := dlqstore.JobViewer{Rules: make(map[access.Action][]access.Rule, len(acts))}
	for _, act := range acts {
		v.Rules[act] = e.opts.Policy.Rules(a.P, act)
	}
	return v
}

// Job returns a job with its progress if a may see it (see viewer).
// Errors: ENOTFOUND, for a job a may not see as for one that does not
// exist.
func (e *Engine) Job(ctx context.Context, a Actor, id int64) (Job, error) {
	rec, err := e.store.ViewJob(ctx, id, e.viewer(a))
	if err != nil {
		return Job{}, err
	}
	return e.jobOf(rec), nil
}

// Jobs lists the jobs a may see, newest first, and the Before of the next
// page (0 on the last). The store filters them in its query, so a page is
// full unless it is the last. Errors: EINVALID (Running and Finished).
func (e *Engine) Jobs(ctx context.Context, a Actor, f JobFilter) ([]Job, int64, error) {
	v := e.viewer(a)
	recs, next, err := e.store.Jobs(ctx, dlqstore.JobQuery{Running: f.Running, Finished: f.Finished, Before: f.Before, Limit: f.Limit, Viewer: &v})
	if err != nil {
		return nil, 0, err
	}
	out := make([]Job, len(recs))
	for i, r := range recs {
		out[i] = e.jobOf(r)
	}
	return out, next, nil
}

// Ledger pages the per-entry outcomes of a job a may see after seq
// afterSeq; the int is the afterSeq of the next page (0 = end). Errors:
// ENOTFOUND (as Job).
func (e *Engine) Ledger(ctx context.Context, a Actor, id int64, afterSeq, limit int) ([]LedgerItem, int, error) {
	if _, err := e.store.ViewJob(ctx, id, e.viewer(a)); err != nil {
		return nil, 0, err
	}
	items, next, err := e.store.JobItems(ctx, id, afterSeq, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]LedgerItem, len(items))
	for i, it := range items {
		out[i] = LedgerItem{Seq: it.Seq, EntryID: it.EntryID, Target: it.Target, State: it.State, Error: it.Error, At: it.DoneAt}
	}
	return out, next, nil
}

// Refailures lists, for a job a may see, the entries its messages became
// when they dead-lettered again — the canaries that came back, on a
// canary-failed job — oldest first, up to limit, and how many there are
// in all: only those a may view (their view scope, in the store's query).
// Errors: ENOTFOUND (as Job).
func (e *Engine) Refailures(ctx context.Context, a Actor, id int64, limit int) ([]dlqstore.Refailure, int, error) {
	if _, err := e.store.ViewJob(ctx, id, e.viewer(a)); err != nil {
		return nil, 0, err
	}
	return e.store.Refailures(ctx, id, dlqstore.ScopeFor(e.opts.Policy, a.P, access.ActionView), limit)
}

// History lists the jobs that acted on an entry, oldest first: only those
// a may see, since a job's actor and reason are about all of its entries,
// other tenants' included.
func (e *Engine) History(ctx context.Context, a Actor, entryID int64) ([]HistoryItem, error) {
	v := e.viewer(a)
	hs, err := e.store.EntryHistory(ctx, entryID, &v)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryItem, len(hs))
	for i, h := range hs {
		at := h.Item.DoneAt
		if at.IsZero() {
			at = h.Job.CreatedAt
		}
		out[i] = HistoryItem{JobID: h.Job.ID, Action: Action(h.Job.Action), Actor: h.Job.Actor, Reason: h.Job.Reason,
			State: h.Item.State, Target: h.Item.Target, Error: h.Item.Error, At: at}
	}
	return out, nil
}

// Cancel asks a job to stop: nothing more is sent after the batch in
// flight, nothing sent is reverted, and the entries not sent go back to
// their previous status. Only someone who may see the job may cancel it
// (see viewer): whoever may act on every entry of it, or an admin.
// Errors: ENOTFOUND (no such job, or not one a may see), EINVALID (the
// job has finished).
func (e *Engine) Cancel(ctx context.Context, a Actor, id int64) (Job, error) {
	rec, err := e.store.ViewJob(ctx, id, e.viewer(a))
	if err != nil {
		return Job{}, err
	}
	var req Request
	_ = json.Unmarshal(rec.Request, &req)
	if !rec.FinishedAt.IsZero() {
		return Job{}, delivery.Errorf(delivery.EINVALID, "job %d has already ended (%s)", id, rec.State)
	}
	// Who asked is a field of the job; the error says it in words. Only
	// the store can tell whether the job ended before the cancel took: a
	// read after it could find the job ended by this very cancel (its
	// runner is quick to end a cancelled job), and called that a refusal.
	marked, err := e.store.CancelJob(ctx, id, actorName(a), "cancelled by "+actorName(a))
	if err != nil {
		return Job{}, err
	}
	if !marked {
		state := "ended"
		if now, err := e.store.Job(ctx, id); err == nil {
			state = string(now.State)
		}
		return Job{}, delivery.Errorf(delivery.EINVALID, "job %d has already ended (%s)", id, state)
	}
	e.mu.Lock()
	if rs := e.running[id]; rs != nil {
		rs.once.Do(func() { close(rs.cancel) })
	}
	e.mu.Unlock()
	e.audit(ctx, a, "dlq.job.cancel", id, req, access.OutcomeSuccess, map[string]any{"done_before_cancel": rec.Done})
	e.kick()
	return e.Job(ctx, a, id)
}

// validateStored re-reads a stored request (validated at start; a job
// started while edits were enabled still runs).
func (e *Engine) validateStored(req Request) (spec, error) {
	return e.validate(req, false, true)
}

func (e *Engine) jobOf(r dlqstore.JobRecord) Job {
	var req Request
	_ = json.Unmarshal(r.Request, &req)
	j := Job{ID: r.ID, Action: Action(r.Action), State: r.State, Actor: r.Actor, Reason: r.Reason, Selector: req.Selector,
		Target: req.Target, Rate: req.Rate, Canary: req.Canary, CanaryWindow: req.CanaryWindow, Force: req.Force,
		PublishQuarantine: req.PublishQuarantine, Total: r.Total, Done: r.Done, Failed: r.Failed, Cancelled: r.Cancelled,
		Targets: r.Targets, Error: r.Error, CancelledBy: r.CancelledBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, FinishedAt: r.FinishedAt}
	if j.Targets == nil {
		j.Targets = []string{}
	}
	j.Remaining = max(0, j.Total-j.Done-j.Failed-j.Cancelled)
	j.CanaryWindowSeconds = j.CanaryWindow.Seconds()
	if j.Finished() {
		return j
	}
	e.mu.Lock()
	rs := e.running[r.ID]
	e.mu.Unlock()
	if rs != nil {
		j.CurrentRate = rs.rate()
	}
	j.ETA = eta(j, r.CanaryUntil, e.now(), e.opts.Unlimited)
	j.ETASeconds = j.ETA.Seconds()
	return j
}

// eta is how long a running job has left: its remaining entries at the
// measured rate — the job's own until sending has been measured (a first
// batch goes out at once, so the first second says nothing) — plus the
// canary window still ahead: all of it before the canary is out, what is
// left of it while the job waits on it.
func eta(j Job, canaryUntil, now time.Time, unlimited bool) time.Duration {
	rate := j.CurrentRate
	if rate <= 0 && !unlimited {
		rate = j.Rate
	}
	var d time.Duration
	if rate > 0 && j.Remaining > 0 {
		d = time.Duration(float64(j.Remaining) / rate * float64(time.Second))
	}
	if j.Canary > 0 && j.Total > j.Canary {
		switch {
		case canaryUntil.IsZero():
			d += j.CanaryWindow
		case j.State == dlqstore.JobCanaryWait:
			d += max(0, canaryUntil.Sub(now))
		}
	}
	return d.Round(time.Second)
}

// rate is the measured rate: the messages sent after the first batch of
// this stretch of sending over the time since that batch went out (each
// batch waits its turn at the job's rate), 0 until a second batch is out.
func (rs *runState) rate() float64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	el := rs.last.Sub(rs.first)
	if rs.n <= rs.firstN || el <= 0 {
		return 0
	}
	return float64(rs.n-rs.firstN) / el.Seconds()
}

// add records a batch of n sent at at.
func (rs *runState) add(at time.Time, n int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.first.IsZero() {
		rs.first, rs.firstN = at, n
	}
	rs.last = at
	rs.n += n
}

// restart starts a new stretch of sending: after a canary window or a
// broker outage, the time before it is not sending time.
func (rs *runState) restart() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.first, rs.last, rs.firstN, rs.n = time.Time{}, time.Time{}, 0, 0
}

func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}
